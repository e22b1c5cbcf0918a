"""Build small but valid dose reports and dose-bearing images with pydicom.

    ds = build_ct_rdsr(events=3)
    write(ds, tmp_path / "ct.dcm")

Every builder returns a pydicom Dataset with file meta, fresh UIDs unless given, and the
values a correct importer should read back (see the keyword arguments).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydicom import Dataset
from pydicom.dataset import FileMetaDataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import UID, ExplicitVRLittleEndian, ImplicitVRLittleEndian, generate_uid

XRAY_RDSR = "1.2.840.10008.5.1.4.1.1.88.67"
RADIOPHARMACEUTICAL_RDSR = "1.2.840.10008.5.1.4.1.1.88.68"
COMPREHENSIVE_SR = "1.2.840.10008.5.1.4.1.1.88.33"
ENHANCED_SR = "1.2.840.10008.5.1.4.1.1.88.22"
BREAST = {"Left": "T-04030", "Right": "T-04020"}  # SRT codes for the breasts
DX_IMAGE = "1.2.840.10008.5.1.4.1.1.1.1"
MG_IMAGE = "1.2.840.10008.5.1.4.1.1.1.2"
CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2"


# -- content items -----------------------------------------------------------------------
def code(value: str, meaning: str, scheme: str = "DCM") -> Dataset:
    item = Dataset()
    item.CodeValue = value
    item.CodingSchemeDesignator = scheme
    item.CodeMeaning = meaning
    return item


def _item(vt: str, name: Dataset, relation: str = "CONTAINS") -> Dataset:
    item = Dataset()
    item.RelationshipType = relation
    item.ValueType = vt
    item.ConceptNameCodeSequence = DicomSequence([name])
    return item


def container(name: Dataset, children: Sequence[Dataset], relation: str = "CONTAINS") -> Dataset:
    item = _item("CONTAINER", name, relation)
    item.ContinuityOfContent = "SEPARATE"
    item.ContentSequence = DicomSequence(list(children))
    return item


def num(name: Dataset, value: float, unit: str, relation: str = "CONTAINS") -> Dataset:
    item = _item("NUM", name, relation)
    measured = Dataset()
    measured.NumericValue = f"{value:.10g}"
    measured.MeasurementUnitsCodeSequence = DicomSequence([code(unit, unit, "UCUM")])
    item.MeasuredValueSequence = DicomSequence([measured])
    return item


def text(name: Dataset, value: str, relation: str = "CONTAINS") -> Dataset:
    item = _item("TEXT", name, relation)
    item.TextValue = value
    return item


def coded(name: Dataset, value: Dataset, relation: str = "CONTAINS") -> Dataset:
    item = _item("CODE", name, relation)
    item.ConceptCodeSequence = DicomSequence([value])
    return item


def uidref(name: Dataset, value: str, relation: str = "CONTAINS") -> Dataset:
    item = _item("UIDREF", name, relation)
    item.UID = value
    return item


def datetime_item(name: Dataset, value: str, relation: str = "CONTAINS") -> Dataset:
    item = _item("DATETIME", name, relation)
    item.DateTime = value
    return item


# -- common header -----------------------------------------------------------------------
@dataclass
class Header:
    study_uid: str = field(default_factory=generate_uid)
    sop_uid: str = field(default_factory=generate_uid)
    study_date: str = "20240115"
    study_time: str = "093000"
    accession: str = "ACC001"
    description: str = "Synthetic study"
    manufacturer: str = "Doseport Test"
    model: str = "Builder 1"
    station: str = "STATION1"
    institution: str = "Test Hospital"
    serial: str = "SN123"
    patient_name: str = "DOE^JANE"
    patient_id: str = "PID001"
    birth_date: str = "19700101"
    sex: str = "F"
    age: str = "054Y"
    charset: str | None = "ISO_IR 100"  # None: no Specific Character Set element


def _base(sop_class: str, modality: str, h: Header) -> Dataset:
    ds = Dataset()
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UID(sop_class)
    meta.MediaStorageSOPInstanceUID = UID(h.sop_uid)
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = UID("1.2.826.0.1.3680043.8.498.1")
    ds.file_meta = meta
    if h.charset is not None:
        ds.SpecificCharacterSet = h.charset
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = h.sop_uid
    ds.StudyInstanceUID = h.study_uid
    ds.SeriesInstanceUID = generate_uid()
    ds.Modality = modality
    ds.StudyDate = h.study_date
    ds.StudyTime = h.study_time
    ds.AccessionNumber = h.accession
    ds.StudyDescription = h.description
    ds.Manufacturer = h.manufacturer
    ds.ManufacturerModelName = h.model
    ds.StationName = h.station
    ds.InstitutionName = h.institution
    ds.DeviceSerialNumber = h.serial
    ds.PatientName = h.patient_name
    ds.PatientID = h.patient_id
    ds.PatientBirthDate = h.birth_date
    ds.PatientSex = h.sex
    ds.PatientAge = h.age
    ds.StudyID = "1"
    ds.SeriesNumber = "1"
    ds.InstanceNumber = "1"
    return ds


def _sr(sop_class: str, root: Dataset, template: str, h: Header,
        children: list[Dataset]) -> Dataset:
    ds = _base(sop_class, "SR", h)
    ds.ValueType = "CONTAINER"
    ds.ContinuityOfContent = "SEPARATE"
    ds.ConceptNameCodeSequence = DicomSequence([root])
    if template:
        tpl = Dataset()
        tpl.MappingResource = "DCMR"
        tpl.TemplateIdentifier = template
        ds.ContentTemplateSequence = DicomSequence([tpl])
    ds.CompletionFlag = "COMPLETE"
    ds.VerificationFlag = "UNVERIFIED"
    ds.ContentDate = h.study_date
    ds.ContentTime = h.study_time
    ds.ContentSequence = DicomSequence(children)
    return ds


XRAY_REPORT = code("113701", "X-Ray Radiation Dose Report")


# -- CT ----------------------------------------------------------------------------------
@dataclass
class CtEvent:
    protocol: str = "Chest"
    acquisition_type: str = "Spiral Acquisition"
    ctdivol: float = 10.0
    dlp: float = 400.0
    kvp: float = 120.0
    tube_current: float = 200.0
    exposure_time: float = 5.0
    scanning_length: float = 400.0
    pitch: float | None = 1.0
    uid: str = field(default_factory=generate_uid)


def build_ct_rdsr(
    events: int | Sequence[CtEvent] = 2, header: Header | None = None,
    dlp_unit: str = "mGy.cm", template: str = "10011", sop_class: str = XRAY_RDSR,
) -> Dataset:
    h = header or Header()
    evs = [CtEvent(dlp=100.0 * (i + 1)) for i in range(events)] if isinstance(events, int) \
        else list(events)
    factor = {"mGy.cm": 1.0, "Gy.cm": 1e-3}.get(dlp_unit, 1.0)
    total = sum(e.dlp for e in evs)
    children = [
        coded(code("121058", "Procedure reported"), code("P5-08000", "Computed Tomography X-Ray",
                                                         "SRT"), "HAS CONCEPT MOD"),
        container(code("113811", "CT Accumulated Dose Data"), [
            num(code("113812", "Total Number of Irradiation Events"), len(evs), "{events}"),
            num(code("113813", "CT Dose Length Product Total"), total * factor, dlp_unit),
        ]),
    ]
    for e in evs:
        params = [
            num(code("113824", "Exposure Time"), e.exposure_time, "s"),
            num(code("113825", "Scanning Length"), e.scanning_length, "mm"),
            num(code("113826", "Nominal Single Collimation Width"), 0.6, "mm"),
            num(code("113827", "Nominal Total Collimation Width"), 38.4, "mm"),
            num(code("113823", "Number of X-Ray Sources"), 1, "{X-Ray sources}"),
            container(code("113831", "CT X-Ray Source Parameters"), [
                text(code("113832", "Identification of the X-Ray Source"), "A"),
                num(code("113733", "KVP"), e.kvp, "kV"),
                num(code("113833", "Maximum X-Ray Tube Current"), e.tube_current, "mA"),
                num(code("113734", "X-Ray Tube Current"), e.tube_current, "mA"),
            ]),
        ]
        if e.pitch is not None:
            params.insert(4, num(code("113828", "Pitch Factor"), e.pitch, "{ratio}"))
        children.append(container(code("113819", "CT Acquisition"), [
            text(code("125203", "Acquisition Protocol"), e.protocol),
            coded(code("123014", "Target Region"), code("T-D3000", "Chest", "SRT")),
            coded(code("113820", "CT Acquisition Type"), code("P5-08001", e.acquisition_type,
                                                              "SRT")),
            uidref(code("113769", "Irradiation Event UID"), e.uid),
            container(code("113822", "CT Acquisition Parameters"), params),
            container(code("113829", "CT Dose"), [
                num(code("113830", "Mean CTDIvol"), e.ctdivol, "mGy"),
                coded(code("113835", "CTDIw Phantom Type"),
                      code("113691", "IEC Body Dosimetry Phantom")),
                num(code("113838", "DLP"), e.dlp * factor, dlp_unit),
            ]),
        ]))
    return _sr(sop_class, XRAY_REPORT, template, h, children)


# -- projection --------------------------------------------------------------------------
@dataclass
class ProjectionEvent:
    event_type: str = "Stationary Acquisition"
    protocol: str = "Chest PA"
    dap: float = 0.5  # in dap_unit
    dose_rp: float = 0.001  # Gy
    kvp: float = 80.0
    exposure_time_ms: float = 10.0
    laterality: str = ""
    agd: float | None = None
    uid: str = field(default_factory=generate_uid)


def build_projection_rdsr(
    events: int | Sequence[ProjectionEvent] = 2, header: Header | None = None,
    dap_unit: str = "dGy.cm2", procedure: str = "Projection X-Ray",
    device_type: str = "", mammography: bool = False,
) -> Dataset:
    h = header or Header()
    evs = [ProjectionEvent() for _ in range(events)] if isinstance(events, int) else list(events)
    plane = code("113622", "Single Plane")
    if mammography:
        sides = sorted({e.laterality for e in evs if e.laterality})
        accumulated: list[Dataset] = [
            coded(code("113764", "Acquisition Plane"), plane, "HAS CONCEPT MOD")
        ]
        for side in sides:
            agd = sum(e.agd or 0.0 for e in evs if e.laterality == side)
            item = num(code("111637", "Accumulated Average Glandular Dose"), agd, "mGy")
            item.ContentSequence = DicomSequence([coded(
                code("G-C171", "Laterality", "SRT"), code(BREAST[side], f"{side} breast", "SRT"),
                "HAS CONCEPT MOD")])
            accumulated.append(item)
    else:
        accumulated = [
            coded(code("113764", "Acquisition Plane"), plane, "HAS CONCEPT MOD"),
            container(code("113706", "Accumulated Projection X-Ray Dose"), [
                num(code("113722", "Dose Area Product Total"), sum(e.dap for e in evs), dap_unit),
                num(code("113725", "Dose (RP) Total"), sum(e.dose_rp for e in evs), "Gy"),
                num(code("113730", "Total Fluoro Time"), 0, "s"),
            ]),
        ]
    children = [
        coded(code("121058", "Procedure reported"), code("P5-40010", procedure, "SRT"),
              "HAS CONCEPT MOD"),
    ]
    if device_type:
        children.append(coded(code("122142", "Acquisition Device Type"),
                              code("113957", device_type)))
    children.append(container(code("113702", "Accumulated X-Ray Dose Data"), accumulated))
    for e in evs:
        items = [
            coded(code("113764", "Acquisition Plane"), plane),
            uidref(code("113769", "Irradiation Event UID"), e.uid),
            coded(code("113721", "Irradiation Event Type"), code("113611", e.event_type)),
            text(code("125203", "Acquisition Protocol"), e.protocol),
            num(code("122130", "Dose Area Product"), e.dap, dap_unit),
            num(code("113738", "Dose (RP)"), e.dose_rp, "Gy"),
            container(code("113771", "X-Ray Filters"), [
                coded(code("113757", "X-Ray Filter Material"),
                      code("C-120F9", "Copper or Copper compound", "SRT")),
                num(code("113758", "X-Ray Filter Thickness Minimum"), 0.1, "mm"),
                num(code("113773", "X-Ray Filter Thickness Maximum"), 0.1, "mm"),
            ]),
            num(code("113733", "KVP"), e.kvp, "kV"),
            num(code("113735", "Exposure Time"), e.exposure_time_ms, "ms"),
        ]
        if e.laterality:
            items.append(coded(code("G-C171", "Laterality", "SRT"),
                               code(BREAST[e.laterality], f"{e.laterality} breast", "SRT"),
                               "HAS CONCEPT MOD"))
        if e.agd is not None:
            items.append(num(code("111631", "Average Glandular Dose"), e.agd, "mGy"))
        children.append(container(code("113706", "Irradiation Event X-Ray Data"), items))
    return _sr(XRAY_RDSR, XRAY_REPORT, "10001", h, children)


def build_mg_rdsr(header: Header | None = None) -> Dataset:
    evs = [
        ProjectionEvent(laterality="Left", agd=1.2, protocol="L CC", kvp=28),
        ProjectionEvent(laterality="Right", agd=1.4, protocol="R CC", kvp=29),
    ]
    return build_projection_rdsr(evs, header=header, procedure="Mammography", mammography=True)


def build_mg_image(
    header: Header | None = None, laterality: str = "L", agd_dgy: float = 0.012,
    acquisition_time: str = "093512", for_processing: bool = False,
) -> Dataset:
    h = header or Header()
    sop_class = MG_IMAGE + (".1" if for_processing else "")
    ds = _base(sop_class, "MG", h)
    ds.ImageType = ["ORIGINAL", "PRIMARY"]
    ds.ImageLaterality = laterality
    ds.ViewPosition = "CC"
    ds.AcquisitionDate = h.study_date
    ds.AcquisitionTime = acquisition_time
    ds.KVP = "28"
    ds.ExposureTime = "500"
    ds.XRayTubeCurrent = "100"
    ds.ExposureInuAs = "50000"
    ds.OrganDose = f"{agd_dgy}"
    ds.EntranceDoseInmGy = "5.2"
    ds.BodyPartThickness = "45"
    ds.CompressionForce = "100"
    ds.AnodeTargetMaterial = "TUNGSTEN"
    ds.FilterMaterial = "RHODIUM"
    ds.ProtocolName = "CC"
    return ds


def build_dx_image(header: Header | None = None, dap_dgycm2: float = 1.5) -> Dataset:
    h = header or Header()
    ds = _base(DX_IMAGE, "DX", h)
    ds.ImageType = ["ORIGINAL", "PRIMARY"]
    ds.AcquisitionDate = h.study_date
    ds.AcquisitionTime = "093512"
    ds.KVP = "80"
    ds.ExposureTime = "12"
    ds.XRayTubeCurrent = "320"
    ds.ExposureInuAs = "4000"
    ds.ImageAndFluoroscopyAreaDoseProduct = f"{dap_dgycm2}"
    ds.DistanceSourceToDetector = "1800"
    ds.ProtocolName = "Chest PA"
    ds.ExposureIndex = "400"
    ds.TargetExposureIndex = "500"
    ds.DeviationIndex = "-1.0"
    return ds


def build_rrdsr(
    header: Header | None = None, activity_mbq: float = 350.0, agent: str = "Fluorodeoxyglucose",
    nuclide: str = "^18^Fluorine", half_life_s: float = 6586.2, effective_dose_msv: float = 6.5,
    event_uid: str | None = None,
) -> Dataset:
    h = header or Header()
    administration = container(code("113502", "Radiopharmaceutical Administration"), [
        coded(code("F-61FDB", "Radiopharmaceutical agent", "SRT"), code("C-B1031", agent, "SRT")),
        coded(code("C-10072", "Radionuclide", "SRT"), code("C-111A1", nuclide, "SRT")),
        num(code("R-42806", "Radionuclide Half Life", "SRT"), half_life_s, "s"),
        uidref(code("113503", "Radiopharmaceutical Administration Event UID"),
               event_uid or generate_uid()),
        datetime_item(code("123003", "Radiopharmaceutical Start DateTime"),
                      h.study_date + "081500"),
        datetime_item(code("123004", "Radiopharmaceutical Stop DateTime"),
                      h.study_date + "081600"),
        num(code("113507", "Administered activity"), activity_mbq, "MBq"),
        container(code("220001", "Effective Dose Information", "99SMS_RADSUM"), [
            num(code("113839", "Effective Dose"), effective_dose_msv, "mSv"),
        ]),
        coded(code("G-C340", "Route of administration", "SRT"),
              code("G-D101", "Intravenous route", "SRT")),
    ])
    root = code("113500", "Radiopharmaceutical Radiation Dose Report")
    return _sr(RADIOPHARMACEUTICAL_RDSR, root, "10021", h, [administration])


PET_IMAGE = "1.2.840.10008.5.1.4.1.1.128"


def build_pet_image(
    header: Header | None = None, activity_bq: float = 380e6, agent: str = "FDG",
) -> Dataset:
    """A PET image header (no pixels) with one radiopharmaceutical administration."""
    h = header or Header()
    ds = _base(PET_IMAGE, "PT", h)
    ds.ImageType = ["ORIGINAL", "PRIMARY"]
    info = Dataset()
    info.Radiopharmaceutical = agent
    info.RadionuclideTotalDose = f"{activity_bq:.0f}"
    info.RadionuclideHalfLife = "6586.2"
    info.RadiopharmaceuticalStartDateTime = h.study_date + "082000"
    info.RadionuclideCodeSequence = DicomSequence([code("C-111A1", "^18^Fluorine", "SRT")])
    ds.RadiopharmaceuticalInformationSequence = DicomSequence([info])
    return ds


def build_non_dose_sr(header: Header | None = None) -> Dataset:
    h = header or Header()
    return _sr(COMPREHENSIVE_SR, code("18748-4", "Diagnostic imaging report", "LN"), "", h,
               [text(code("121071", "Finding"), "No abnormality")])


def build_ct_image(header: Header | None = None) -> Dataset:
    h = header or Header()
    ds = _base(CT_IMAGE, "CT", h)
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    return ds


def write(
    ds: Dataset, path: Path | str, implicit_vr: bool = False, undefined_lengths: bool = False,
) -> Path:
    """Save with file meta; `implicit_vr` writes Implicit VR Little Endian and
    `undefined_lengths` writes every sequence and item with undefined length and
    delimiters, as many modalities do (the defaults write explicit VR, defined lengths)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if implicit_vr:
        ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
    if undefined_lengths:
        _undefined_lengths(ds)
    ds.save_as(path, enforce_file_format=True)
    return path


def _undefined_lengths(ds: Dataset) -> None:
    for elem in ds:
        if elem.VR == "SQ":
            elem.is_undefined_length = True
            for item in elem.value:
                item.is_undefined_length_sequence_item = True
                _undefined_lengths(item)


def header_for(**kwargs: Any) -> Header:
    return Header(**kwargs)
