"""Builders for dose objects beyond the RDSR builder: CT dose screens, dental images, a
Patient Radiation Dose SR and cine-only angiography reports."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pydicom import Dataset
from pydicom.sequence import Sequence as DicomSequence

from tests.builders.rdsr import (
    Header,
    ProjectionEvent,
    _base,
    _sr,
    build_projection_rdsr,
    code,
    coded,
    num,
)

SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"
IO_PRESENTATION = "1.2.840.10008.5.1.4.1.1.1.3"
IO_PROCESSING = "1.2.840.10008.5.1.4.1.1.1.3.1"
PATIENT_RDSR = "1.2.840.10008.5.1.4.1.1.88.73"


@dataclass
class ScreenSeries:
    ctdivol: float = 10.0
    dlp: float = 400.0
    kvp: float = 120.0
    current_ua: float = 200000.0
    exposure_ms: float = 5000.0
    acquisition_type: str = "SPIRAL"
    body_part: str = "CHEST"


def build_ge_dose_screen(
    series: Sequence[ScreenSeries], header: Header | None = None, total: float | None = None,
) -> Dataset:
    """A GE 'Dose Report' secondary capture: CTDIvol per item, DLP only in the comments."""
    h = header or Header(manufacturer="GE MEDICAL SYSTEMS", model="Revolution CT")
    ds = _base(SECONDARY_CAPTURE, "CT", h)
    ds.SeriesDescription = "Dose Report"
    ds.ImageType = ["DERIVED", "SECONDARY", "SCREEN SAVE"]
    items = []
    for s in series:
        item = Dataset()
        item.BodyPartExamined = s.body_part
        item.KVP = f"{s.kvp:g}"
        item.ExposureTime = f"{s.exposure_ms:.0f}"
        item.XRayTubeCurrentInuA = f"{s.current_ua:g}"
        item.AcquisitionType = s.acquisition_type
        item.SingleCollimationWidth = 0.625
        item.TotalCollimationWidth = 40.0
        item.SpiralPitchFactor = 0.984
        item.CTDIvol = s.ctdivol
        item.CTDIPhantomTypeCodeSequence = DicomSequence(
            [code("113691", "IEC Body Dosimetry Phantom")])
        items.append(item)
    ds.ExposureDoseSequence = DicomSequence(items)
    lines = [f"Event={i} DLP={s.dlp:.2f}" for i, s in enumerate(series, start=1)]
    lines.append(f"Total DLP={total if total is not None else sum(s.dlp for s in series):.2f}")
    ds.CommentsOnRadiationDose = "\r\n".join(lines)
    return ds


def build_philips_dose_screen(
    series: Sequence[ScreenSeries], header: Header | None = None,
) -> Dataset:
    """A Philips 'Dose Info' screen: DLP per series and for the study in (00E1,xx21)."""
    h = header or Header(manufacturer="Philips", model="Brilliance 64")
    ds = _base(SECONDARY_CAPTURE, "CT", h)
    ds.SeriesDescription = "Dose Info"
    items = []
    for i, s in enumerate(series, start=1):
        item = Dataset()
        item.SeriesNumber = str(i)
        item.KVP = f"{s.kvp:g}"
        item.ExposureTime = f"{s.exposure_ms:.0f}"
        item.XRayTubeCurrentInuA = f"{s.current_ua:g}"
        item.AcquisitionType = s.acquisition_type
        item.CTDIvol = s.ctdivol
        item.private_block(0x00E1, "ELSCINT1", create=True).add_new(0x21, "DS", f"{s.dlp:g}")
        items.append(item)
    ds.ExposureDoseSequence = DicomSequence(items)
    ds.private_block(0x00E1, "ELSCINT1", create=True).add_new(
        0x21, "DS", f"{sum(s.dlp for s in series):g}")
    return ds


def build_io_image(
    header: Header | None = None, processing: bool = False, entrance_mgy: float = 1.1,
) -> Dataset:
    """A dental intra-oral image header."""
    h = header or Header(manufacturer="Dental Co", model="IO 1")
    ds = _base(IO_PROCESSING if processing else IO_PRESENTATION, "IO", h)
    ds.ImageType = ["ORIGINAL", "PRIMARY"]
    ds.AcquisitionDate = h.study_date
    ds.AcquisitionTime = "101010"
    ds.KVP = "70"
    ds.XRayTubeCurrent = "7"
    ds.ExposureTime = "160"
    ds.EntranceDoseInmGy = f"{entrance_mgy:g}"
    ds.ImageAndFluoroscopyAreaDoseProduct = "0.041"  # dGy.cm2
    ds.ProtocolName = "Molar upper left"
    return ds


def build_patient_dose_sr(header: Header | None = None) -> Dataset:
    """88.73 carrying an estimated skin dose only (TID 10030-like), no irradiation events."""
    h = header or Header()
    children = [
        num(code("113930", "Peak Skin Dose"), 0.9, "Gy"),
        coded(code("113835", "Dose estimation method"), code("113960", "Calculated")),
    ]
    return _sr(PATIENT_RDSR, code("128401", "Patient Radiation Dose Report"), "10030", h,
               children)


def build_cine_rdsr(
    runs: int = 3, pulses: int = 30, header: Header | None = None, device_type: str = "",
    plane_b: bool = False,
) -> Dataset:
    """An angiography/cardiology report holding only cine runs (stationary acquisitions of
    many pulses with a dose at the reference point)."""
    evs = [ProjectionEvent(protocol=f"Coro {i}", dose_rp=0.02) for i in range(runs)]
    ds = build_projection_rdsr(evs, header=header, device_type=device_type)
    for item in ds.ContentSequence:
        name = item.ConceptNameCodeSequence[0].CodeValue
        if name == "113706" and item.ValueType == "CONTAINER":
            item.ContentSequence.append(num(code("113768", "Number of Pulses"), pulses, "{pulses}"))
            if plane_b:
                for child in item.ContentSequence:
                    if child.ConceptNameCodeSequence[0].CodeValue == "113764":
                        child.ConceptCodeSequence = DicomSequence([code("113621", "Plane B")])
    return ds
