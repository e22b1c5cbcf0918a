"""The headline quantities that reference levels and alert rules compare (schema units).

A quantity is either per event (CTDIvol of each CT acquisition, AGD of each mammography
exposure) or per study (DLP, DAP, dose at the reference point, administered activity: the
study's headline totals from dose.queries.summary_expressions()). Values are stored in the
schema's units (EXPORT_SCHEMA.md); forms and pages use the units people read
(docs/display.md): DAP in the site's DAP unit, dose at the reference point in mGy.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings

from lib import format as fmt


@dataclass(frozen=True)
class Quantity:
    code: str
    label: str
    modalities: tuple[str, ...]
    event_field: str  # IrradiationEvent field of a per-event quantity
    summary: str  # dose.queries.summary_expressions() name of a per-study quantity
    unit: str  # schema unit

    @property
    def per_event(self) -> bool:
        return bool(self.event_field)

    @property
    def cumulative_ok(self) -> bool:
        """Sums over studies mean something for study totals, not for CTDIvol or AGD."""
        return not self.per_event


QUANTITIES: dict[str, Quantity] = {
    q.code: q
    for q in (
        Quantity("ctdivol", "CTDIvol per event", ("CT",), "ctdivol_mGy", "", "mGy"),
        Quantity("dlp", "DLP per study", ("CT",), "", "dlp_total", "mGy·cm"),
        Quantity("dap", "DAP per study", ("DX", "RF"), "", "dap_total", "Gy·m²"),
        Quantity("dose_rp", "Dose at the reference point per study", ("RF",), "",
                 "dose_rp_total", "Gy"),
        Quantity("agd", "AGD per exposure", ("MG",), "agd_mGy", "", "mGy"),
        Quantity("activity", "Administered activity per study", ("NM",), "",
                 "activity_total", "MBq"),
    )
}
QUANTITY_CHOICES = [(q.code, q.label) for q in QUANTITIES.values()]


@dataclass(frozen=True)
class ShownUnit:
    label: str
    per_schema_unit: float  # how many of the shown unit make one schema unit


def shown_unit(code: str) -> ShownUnit:
    """The unit pages and forms use for a quantity (docs/display.md)."""
    if code == "dap":
        unit = fmt.dap_unit(settings.DAP_UNIT)
        return ShownUnit(unit.label, unit.per_Gym2)
    if code == "dose_rp":
        return ShownUnit("mGy", 1000.0)
    return ShownUnit(QUANTITIES[code].unit, 1.0)


def to_schema(code: str, shown: float) -> float:
    return shown / shown_unit(code).per_schema_unit


def to_shown(code: str, value: float) -> float:
    return value * shown_unit(code).per_schema_unit


def text(code: str, value: float | None) -> str:
    """A stored value as people read it, without the unit ("" for None)."""
    if value is None:
        return ""
    return fmt.number(to_shown(code, float(value)))
