"""Names people read for codes the pages would otherwise show raw."""

from __future__ import annotations

from django import template

register = template.Library()

# imports.classify kinds -> what the object is, in a physicist's words.
KIND_NAMES = {
    "ct_rdsr": "CT dose report (RDSR)",
    "projection_rdsr": "X-ray dose report (RDSR)",
    "nm_rdsr": "Radiopharmaceutical dose report",
    "rf_siemens_summary": "Siemens fluoroscopy dose summary",
    "dx_image": "Radiograph (image header)",
    "mg_image": "Mammogram (image header)",
    "ct_philips_screen": "Philips CT dose screen",
    "ct_dose_screen": "CT dose screen",
    "nm_image": "NM or PET image (header)",
    "patient_dose_report": "Patient radiation dose report",
}


@register.filter
def kind_name(code: str | None) -> str:
    """The name of an import kind; an unknown code as written, with spaces for "_"."""
    if not code:
        return ""
    return KIND_NAMES.get(code, code.replace("_", " "))
