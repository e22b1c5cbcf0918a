"""Mammography image headers (MG classes, and Hologic's ORIGINAL secondary captures)."""

from __future__ import annotations

from pydicom import Dataset

from imports.classify import MG_IMAGE
from imports.extractors import header
from imports.extractors.data import EventData, ReportData
from imports.extractors.image_common import MATERIALS, event_fields, filters


def anode_target_material(ds: Dataset) -> str:
    """The code meaning a dose report gives (CID 10016), not the header's word."""
    word = header.text(ds, "AnodeTargetMaterial")
    return MATERIALS.get(word.upper(), word.title())[:64]


def collimated_field_area_m2(ds: Dataset) -> float | None:
    """Field area at the image receptor: collimator edges (pixels) x imager pixel spacing,
    else the Field of View Dimensions (mm)."""
    spacing = ds.get("ImagerPixelSpacing")
    edges = [header.number(ds, f"Collimator{name}Edge") for name in (
        "LeftVertical", "RightVertical", "UpperHorizontal", "LowerHorizontal")]
    if spacing is not None and len(spacing) == 2 and None not in edges:
        left, right, upper, lower = (float(e) for e in edges if e is not None)
        width_mm = (right - left) * float(spacing[1])
        height_mm = (lower - upper) * float(spacing[0])
        if width_mm > 0 and height_mm > 0:
            return width_mm * height_mm / 1e6
    dims = ds.get("FieldOfViewDimensions")
    if dims is not None and len(dims) == 2 and float(dims[0]) > 0 and float(dims[1]) > 0:
        return float(dims[0]) * float(dims[1]) / 1e6
    return None


def extract(ds: Dataset) -> ReportData:
    study = header.study_fields(ds)
    study["modality_type"] = "MG"
    fields = event_fields(ds)
    organ_dose = header.number(ds, "OrganDose")  # dGy
    fields.update({
        "agd_mGy": organ_dose * 100 if organ_dose is not None else None,
        "compression_thickness_mm": header.number(ds, "BodyPartThickness"),
        "compression_force_N": header.number(ds, "CompressionForce"),
        "anode_target_material": anode_target_material(ds),
        "collimated_field_area_m2": collimated_field_area_m2(ds),
        "hvl_mm": header.number(ds, "HalfValueLayer"),
        "target_region": "Breast",
    })
    event = EventData(fields=fields, filters=filters(ds))
    return ReportData(kind=MG_IMAGE, study=study, events=[event])
