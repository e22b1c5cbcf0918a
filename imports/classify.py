"""Which importer, if any, can extract dose data from an object.

One function for the store handler, the importer and `doseport import`. `classify_sop_class`
is the store handler's fast path; `classify` decides from the SOP class and a few header
fields (no pixel data needed).
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
CT_DOSE_SCREEN = "ct_dose_screen"  # any other vendor's screen with an Exposure Dose Sequence
NM_IMAGE = "nm_image"
PATIENT_DOSE_REPORT = "patient_dose_report"  # 88.73 without CT or projection content
KINDS = (
    CT_RDSR, PROJECTION_RDSR, NM_RDSR, RF_SIEMENS_SUMMARY, DX_IMAGE, MG_IMAGE,
    CT_PHILIPS_SCREEN, CT_DOSE_SCREEN, NM_IMAGE, PATIENT_DOSE_REPORT,
)
# What the pages call each kind (the code stays in exports, the API and the command line).
KIND_LABELS = {
    CT_RDSR: "CT dose report",
    PROJECTION_RDSR: "X-ray dose report",
    NM_RDSR: "Radiopharmaceutical dose report",
    RF_SIEMENS_SUMMARY: "Siemens radiation summary",
    DX_IMAGE: "DX/CR image",
    MG_IMAGE: "Mammography image",
    CT_PHILIPS_SCREEN: "CT dose screen (Philips)",
    CT_DOSE_SCREEN: "CT dose screen",
    NM_IMAGE: "NM/PET image",
    PATIENT_DOSE_REPORT: "Patient dose report",
}
CT_SCREEN_KINDS = (CT_PHILIPS_SCREEN, CT_DOSE_SCREEN)
RDSR_KINDS = (CT_RDSR, PROJECTION_RDSR, NM_RDSR, RF_SIEMENS_SUMMARY)

XRAY_RDSR = "1.2.840.10008.5.1.4.1.1.88.67"
RADIOPHARMACEUTICAL_RDSR = "1.2.840.10008.5.1.4.1.1.88.68"
PATIENT_RDSR = "1.2.840.10008.5.1.4.1.1.88.73"
ENHANCED_XRAY_RDSR = "1.2.840.10008.5.1.4.1.1.88.76"
ENHANCED_SR = "1.2.840.10008.5.1.4.1.1.88.22"
COMPREHENSIVE_SR = "1.2.840.10008.5.1.4.1.1.88.33"
SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"
CR_IMAGE = "1.2.840.10008.5.1.4.1.1.1"
DX_PRESENTATION = "1.2.840.10008.5.1.4.1.1.1.1"
DX_PROCESSING = "1.2.840.10008.5.1.4.1.1.1.1.1"
IO_PRESENTATION = "1.2.840.10008.5.1.4.1.1.1.3"  # dental intra-oral
IO_PROCESSING = "1.2.840.10008.5.1.4.1.1.1.3.1"
MG_PRESENTATION = "1.2.840.10008.5.1.4.1.1.1.2"
MG_PROCESSING = "1.2.840.10008.5.1.4.1.1.1.2.1"
NM_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.20"
PET_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.128"

DOSE_SR_CLASSES = {XRAY_RDSR, RADIOPHARMACEUTICAL_RDSR, PATIENT_RDSR, ENHANCED_XRAY_RDSR}
GENERIC_SR_CLASSES = {ENHANCED_SR, COMPREHENSIVE_SR}
# Panoramic (PX) images use the DX classes; intra-oral ones have their own.
DX_CLASSES = {CR_IMAGE, DX_PRESENTATION, DX_PROCESSING, IO_PRESENTATION, IO_PROCESSING}
MG_CLASSES = {MG_PRESENTATION, MG_PROCESSING}
NM_CLASSES = {NM_IMAGE_STORAGE, PET_IMAGE_STORAGE}

XRAY_DOSE_REPORT = ("113701", "DCM")
RADIOPHARMACEUTICAL_DOSE_REPORT = ("113500", "DCM")
SIEMENS_RADIATION_SUMMARY = ("C-10", "99SMS_RADSUM")
CT_CONTENT_CODES = {"113811", "113819", "113812"}  # CT accumulated dose, CT acquisition
PROJECTION_CONTENT_CODES = {"113702", "113706", "113722"}

SopVerdict = Literal["importable", "not_importable", "needs_header"]


@dataclass(frozen=True)
class Classification:
    kind: str | None
    reason: str = ""

    @property
    def importable(self) -> bool:
        return self.kind is not None


def classify_sop_class(sop_class_uid: str) -> SopVerdict:
    """Fast path for the store handler: decide from the SOP Class UID alone if possible.

    "importable" only for the dedicated dose SR classes whose content we always read; the
    X-Ray RDSR class still needs its template to pick the extractor, but it is always a
    dose object.
    """
    if sop_class_uid in DOSE_SR_CLASSES:
        return "importable"
    if sop_class_uid in GENERIC_SR_CLASSES | {SECONDARY_CAPTURE} | DX_CLASSES | MG_CLASSES:
        return "needs_header"
    if sop_class_uid in NM_CLASSES:
        return "needs_header"
    return "not_importable"


def _code(ds: Dataset) -> tuple[str, str] | None:
    seq = ds.get("ConceptNameCodeSequence")
    if not seq:
        return None
    item = seq[0]
    return (str(item.get("CodeValue", "")).strip(), str(item.get("CodingSchemeDesignator", "")))


def template_id(ds: Dataset) -> str:
    seq = ds.get("ContentTemplateSequence")
    if not seq:
        return ""
    return str(seq[0].get("TemplateIdentifier", "")).strip()


def _content_codes(ds: Dataset) -> set[str]:
    from imports.extractors.sr import ExtractError, tree

    try:  # the extractors' tree: read from raw bytes, built once per dataset
        return {child.code for child in tree(ds).children}
    except ExtractError:  # a malformed value deeper down; extraction will report it
        pass
    codes: set[str] = set()
    for item in ds.get("ContentSequence", []):
        name = item.get("ConceptNameCodeSequence")
        if name:
            codes.add(str(name[0].get("CodeValue", "")).strip())
    return codes


def _classify_xray_report(ds: Dataset) -> Classification:
    template = template_id(ds)
    if template == "10011":
        return Classification(CT_RDSR)
    if template == "10001":
        return Classification(PROJECTION_RDSR)
    if template == "10021":
        return Classification(NM_RDSR)
    codes = _content_codes(ds)
    if codes & CT_CONTENT_CODES:
        return Classification(CT_RDSR)
    if codes & PROJECTION_CONTENT_CODES:
        return Classification(PROJECTION_RDSR)
    return Classification(
        None, f"X-ray dose report with template {template or '(none)'} and no CT or "
        "projection dose content"
    )


def _classify_sr(ds: Dataset, sop_class: str) -> Classification:
    code = _code(ds)
    if sop_class == RADIOPHARMACEUTICAL_RDSR or code == RADIOPHARMACEUTICAL_DOSE_REPORT:
        return Classification(NM_RDSR)
    if code == XRAY_DOSE_REPORT or sop_class in {XRAY_RDSR, ENHANCED_XRAY_RDSR}:
        return _classify_xray_report(ds)
    if sop_class == ENHANCED_SR and code == SIEMENS_RADIATION_SUMMARY:
        return Classification(RF_SIEMENS_SUMMARY)
    if sop_class == PATIENT_RDSR:
        verdict = _classify_xray_report(ds)
        return verdict if verdict.importable else Classification(PATIENT_DOSE_REPORT)
    shown = f"{code[0]}, {code[1]}" if code else "none"
    return Classification(None, f"structured report is not a dose report (root concept {shown})")


def _image_type(ds: Dataset) -> list[str]:
    value = ds.get("ImageType")
    if value is None:
        return []
    if isinstance(value, str):
        return [v.strip().upper() for v in value.split("\\")]
    return [str(v).strip().upper() for v in value]


def has_exposure_dose_sequence(ds: Dataset) -> bool:
    """A dose screen's header: an Exposure Dose Sequence (0040,030E) with a CTDIvol."""
    return any("CTDIvol" in item for item in ds.get("ExposureDoseSequence") or [])


def _classify_secondary_capture(ds: Dataset) -> Classification:
    modality = str(ds.get("Modality", "")).upper()
    if modality == "MG" and "ORIGINAL" in _image_type(ds):
        return Classification(MG_IMAGE)
    manufacturer = str(ds.get("Manufacturer", "")).lower()
    description = str(ds.get("SeriesDescription", "")).strip().lower()
    if "philips" in manufacturer and description == "dose info":
        return Classification(CT_PHILIPS_SCREEN)
    if has_exposure_dose_sequence(ds):
        return Classification(CT_DOSE_SCREEN)  # GE and any other vendor's dose screen
    return Classification(
        None, f"secondary capture (modality {modality or 'none'}) is not a known dose screen"
    )


def classify(ds: Dataset) -> Classification:
    sop_class = str(ds.get("SOPClassUID", "")).strip()
    if sop_class in DOSE_SR_CLASSES or sop_class in GENERIC_SR_CLASSES:
        return _classify_sr(ds, sop_class)
    if sop_class in DX_CLASSES:
        return Classification(DX_IMAGE)
    if sop_class in MG_CLASSES:
        return Classification(MG_IMAGE)
    if sop_class == SECONDARY_CAPTURE:
        return _classify_secondary_capture(ds)
    if sop_class in NM_CLASSES:
        return Classification(NM_IMAGE)
    return Classification(None, f"SOP class {sop_class or '(missing)'} holds no dose data we read")
