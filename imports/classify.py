"""Which importer, if any, can extract dose data from an object.

STUB until the import issue lands: classifies by SOP Class UID only. The signatures
below are the contract used by the store handler, the importer and `doseport import`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydicom import Dataset

CT_RDSR = "ct_rdsr"
PROJECTION_RDSR = "projection_rdsr"
NM_RDSR = "nm_rdsr"
RF_SIEMENS_SUMMARY = "rf_siemens_summary"
DX_IMAGE = "dx_image"
MG_IMAGE = "mg_image"
CT_PHILIPS_SCREEN = "ct_philips_screen"
NM_IMAGE = "nm_image"

XRAY_RDSR = "1.2.840.10008.5.1.4.1.1.88.67"
RADIOPHARMACEUTICAL_RDSR = "1.2.840.10008.5.1.4.1.1.88.68"
PATIENT_RDSR = "1.2.840.10008.5.1.4.1.1.88.73"
ENHANCED_XRAY_RDSR = "1.2.840.10008.5.1.4.1.1.88.76"
ENHANCED_SR = "1.2.840.10008.5.1.4.1.1.88.22"
COMPREHENSIVE_SR = "1.2.840.10008.5.1.4.1.1.88.33"
SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"

SopVerdict = Literal["importable", "not_importable", "needs_header"]


@dataclass(frozen=True)
class Classification:
    kind: str | None
    reason: str = ""

    @property
    def importable(self) -> bool:
        return self.kind is not None


def classify_sop_class(sop_class_uid: str) -> SopVerdict:
    """Fast path for the store handler: decide from the SOP Class UID alone if possible."""
    if sop_class_uid in {XRAY_RDSR, RADIOPHARMACEUTICAL_RDSR, PATIENT_RDSR, ENHANCED_XRAY_RDSR}:
        return "importable"
    if sop_class_uid in {
        ENHANCED_SR, COMPREHENSIVE_SR, SECONDARY_CAPTURE,
        "1.2.840.10008.5.1.4.1.1.1", "1.2.840.10008.5.1.4.1.1.1.1", "1.2.840.10008.5.1.4.1.1.1.1.1",
        "1.2.840.10008.5.1.4.1.1.1.2", "1.2.840.10008.5.1.4.1.1.1.2.1",
        "1.2.840.10008.5.1.4.1.1.20", "1.2.840.10008.5.1.4.1.1.128",
    }:
        return "needs_header"
    return "not_importable"


def classify(ds: Dataset) -> Classification:
    sop_class = str(ds.get("SOPClassUID", ""))
    if sop_class in {XRAY_RDSR, PATIENT_RDSR, ENHANCED_XRAY_RDSR}:
        return Classification(CT_RDSR)
    if sop_class == RADIOPHARMACEUTICAL_RDSR:
        return Classification(NM_RDSR)
    return Classification(None, f"SOP class {sop_class or '(missing)'} holds no dose data we read")
