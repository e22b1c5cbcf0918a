"""Siemens 'Radiation Summary Report' (Enhanced SR, 99SMS_RADSUM C-10): RF totals only."""

from __future__ import annotations

from pydicom import Dataset

from imports.classify import RF_SIEMENS_SUMMARY
from imports.extractors import header
from imports.extractors.data import ReportData
from imports.extractors.sr import tree


def extract(ds: Dataset) -> ReportData:
    root = tree(ds)
    study = header.study_fields(ds)
    study["modality_type"] = "RF"
    frames = root.num("C-200", "1")
    plane = {
        "plane": "Single Plane",
        "dap_total_Gym2": root.num("C-204", "Gy.m2"),
        "total_fluoro_time_s": root.num("C-202", "s"),
        "total_number_of_radiographic_frames": int(frames) if frames is not None else None,
    }
    return ReportData(kind=RF_SIEMENS_SUMMARY, study=study, planes=[plane])
