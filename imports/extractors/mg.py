"""Mammography image headers (MG classes, and Hologic's ORIGINAL secondary captures)."""

from __future__ import annotations

from pydicom import Dataset

from imports.classify import MG_IMAGE
from imports.extractors import header
from imports.extractors.data import EventData, ReportData
from imports.extractors.image_common import event_fields, filters


def extract(ds: Dataset) -> ReportData:
    study = header.study_fields(ds)
    study["modality_type"] = "MG"
    fields = event_fields(ds)
    organ_dose = header.number(ds, "OrganDose")  # dGy
    fields.update({
        "agd_mGy": organ_dose * 100 if organ_dose is not None else None,
        "compression_thickness_mm": header.number(ds, "BodyPartThickness"),
        "compression_force_N": header.number(ds, "CompressionForce"),
        "anode_target_material": header.text(ds, "AnodeTargetMaterial").title()[:64],
        "hvl_mm": header.number(ds, "HalfValueLayer"),
        "target_region": "Breast",
    })
    event = EventData(fields=fields, filters=filters(ds))
    return ReportData(kind=MG_IMAGE, study=study, events=[event])
