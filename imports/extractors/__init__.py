"""One extractor per object kind: `extract(ds) -> ReportData`, raising ExtractError."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from importlib import import_module

from pydicom import Dataset

from imports.classify import CT_SCREEN_KINDS
from imports.extractors.data import ReportData
from imports.extractors.sr import ExtractError
from lib.laterality import laterality_code

__all__ = ["ExtractError", "ReportData", "extract"]

_MODULES = {
    "ct_rdsr": "rdsr_ct",
    "projection_rdsr": "rdsr_projection",
    "nm_rdsr": "rdsr_nm",
    "rf_siemens_summary": "rf_siemens",
    "dx_image": "dx",
    "mg_image": "mg",
    "ct_philips_screen": "ct_screen",
    "ct_dose_screen": "ct_screen",
    "nm_image": "nm_image",
}


def extractor(kind: str) -> Callable[[Dataset], ReportData]:
    module = import_module(f"imports.extractors.{_MODULES[kind]}")
    if kind in CT_SCREEN_KINDS:  # one reader for every vendor's screen, typed by the kind
        return partial(module.extract, kind=kind)
    func: Callable[[Dataset], ReportData] = module.extract
    return func


SR_KINDS = {"ct_rdsr", "projection_rdsr", "nm_rdsr", "rf_siemens_summary"}


def extract(kind: str, ds: Dataset) -> ReportData:
    if kind in SR_KINDS and "ContentSequence" not in ds:
        raise ExtractError("dose report has no content (empty or truncated content tree)")
    report = extractor(kind)(ds)
    if not report.study.get("study_instance_uid"):
        raise ExtractError("no Study Instance UID")
    for event in report.events:  # one vocabulary for breasts, whatever the source's words
        if "laterality" in event.fields:
            event.fields["laterality_code"] = laterality_code(event.fields["laterality"])
    return report
