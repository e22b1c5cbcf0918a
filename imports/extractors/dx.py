"""CR / DX / PX image headers: one projection event per image."""

from __future__ import annotations

from pydicom import Dataset

from imports.classify import DX_IMAGE
from imports.extractors import header
from imports.extractors.data import EventData, ReportData
from imports.extractors.image_common import event_fields, filters


def extract(ds: Dataset) -> ReportData:
    study = header.study_fields(ds)
    study["modality_type"] = "DX"
    fields = event_fields(ds)
    fields["laterality"] = ""
    sid = fields["distance_source_to_detector_mm"]
    if sid is not None and _writes_decimetres(ds) and sid < 100:
        fields["distance_source_to_detector_mm"] = sid * 100
    event = EventData(fields=fields, filters=filters(ds))
    return ReportData(kind=DX_IMAGE, study=study, events=[event])


def _writes_decimetres(ds: Dataset) -> bool:
    """Kodak/Carestream DR 7500 writes Distance Source to Detector in dm."""
    return "KODAK" in header.text(ds, "Manufacturer").upper() and "7500" in header.text(
        ds, "ManufacturerModelName"
    )
