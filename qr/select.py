"""Choosing the dose objects of one study: the table in QR_RULES.md, one function per branch."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from qr.models import QueryImage, QuerySeries, QueryStudy
from qr.params import GROUPS, QueryParams
from qr.series import ImageCache

XRAY_RDSR = "1.2.840.10008.5.1.4.1.1.88.67"
RRDSR = "1.2.840.10008.5.1.4.1.1.88.68"
PATIENT_RDSR = "1.2.840.10008.5.1.4.1.1.88.73"
ENHANCED_XRAY_RDSR = "1.2.840.10008.5.1.4.1.1.88.76"
ENHANCED_SR = "1.2.840.10008.5.1.4.1.1.88.22"
XRAY_DOSE = frozenset({XRAY_RDSR, PATIENT_RDSR, ENHANCED_XRAY_RDSR})
ALL_DOSE = XRAY_DOSE | {RRDSR}
SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"
SCREEN_MAX_INSTANCES = 5

Keep = dict[int, set[int] | None]  # series pk -> image pks to keep, None = the whole series


@dataclass
class Pick:
    keep: Keep = field(default_factory=dict)
    reasons: dict[int, str] = field(default_factory=dict)
    study_reason: str = ""


@dataclass
class StudyContext:
    study: QueryStudy
    series: list[QuerySeries]  # rows still in play (station filter applied)
    cache: ImageCache
    params: QueryParams

    def of(self, codes: tuple[str, ...] | set[str]) -> list[QuerySeries]:
        return [s for s in self.series if s.modality in codes]


def _instances(ctx: StudyContext, classes: frozenset[str] | set[str]) -> Keep:
    found: Keep = {}
    for row in ctx.of({"SR"}):
        hits = {i.pk for i in ctx.cache.images(row) if i.sop_class_uid in classes}
        if hits:
            found[row.pk] = hits
    return found


def dose_reports(
    ctx: StudyContext, classes: frozenset[str], esr: bool, empty: bool = True
) -> tuple[Keep, str]:
    """The best dose objects in the SR series: RDSR > ESR > empty SR (only with --emptysr)."""
    found = _instances(ctx, classes)
    if found:
        return found, "dose report found"
    if esr:
        found = _instances(ctx, {ENHANCED_SR})
        if found:
            return found, "enhanced SR found"
    if empty and ctx.params.emptysr:
        hits: Keep = {row.pk: None for row in ctx.of({"SR"}) if not ctx.cache.images(row)}
        if hits:
            return hits, "empty SR series treated as dose report (--emptysr)"
    return {}, ""


def _drop(rows: list[QuerySeries], reason: str) -> dict[int, str]:
    return {row.pk: reason for row in rows}


def pick_projection(ctx: StudyContext, codes: tuple[str, ...]) -> Pick:
    """MG and DX: RDSR instances if found, else the images; SR series without one dropped."""
    reports, why = dose_reports(ctx, XRAY_DOSE, esr=False)
    images = ctx.of(codes)
    if reports:
        return Pick(reports, _drop(images, f"images not needed: {why}"))
    return Pick({row.pk: None for row in images}, _drop(ctx.of({"SR"}), "SR holds no dose report"))


def pick_fluoro(ctx: StudyContext) -> Pick:
    reports, _ = dose_reports(ctx, XRAY_DOSE, esr=True)
    if reports:
        return Pick(reports, _drop(ctx.of(GROUPS["FL"]), "images not needed: dose report found"))
    return Pick(study_reason="no dose report")


def pick_ct(ctx: StudyContext) -> Pick:
    reports, why = dose_reports(ctx, XRAY_DOSE, esr=True)
    others = [s for s in ctx.series if s.modality != "SR"]
    if reports:
        return Pick(reports, _drop(others, f"images not needed: {why}"))
    dose_info = [s for s in others if "dose info" in s.series_description.lower()]
    if dose_info:
        rest = [s for s in others if s not in dose_info]
        return Pick({s.pk: None for s in dose_info}, _drop(rest, "not the dose info series"))
    if ctx.params.toshiba:
        return _pick_toshiba(ctx, others)
    if not any(s.series_description for s in others):
        small = [s for s in others if (s.number_of_instances or 0) <= SCREEN_MAX_INSTANCES]
        big = [s for s in others if s not in small]
        reason = f"more than {SCREEN_MAX_INSTANCES} instances: not a dose screen"
        pick = Pick({s.pk: None for s in small}, _drop(big, reason))
        if not small:
            pick.study_reason = "no dose report"
        return pick
    return Pick(study_reason="no dose report")


def _pick_toshiba(ctx: StudyContext, rows: list[QuerySeries]) -> Pick:
    pick = Pick()
    for row in rows:
        first = ctx.cache.first_image(row)
        if first is None:
            pick.reasons[row.pk] = "no instance 1"
        elif first.sop_class_uid.startswith(SECONDARY_CAPTURE):
            pick.keep[row.pk] = None
        else:
            pick.keep[row.pk] = {first.pk}
    return pick


def pick_nm(ctx: StudyContext) -> Pick:
    """RRDSR instances and the first image of each PET series; else the first NM series."""
    keep, _ = dose_reports(ctx, frozenset({RRDSR}), esr=False, empty=False)
    for row in ctx.of({"PT"}):
        first = ctx.cache.first_image(row)
        if first is not None:
            keep[row.pk] = {first.pk}
    nm = sorted(ctx.of({"NM"}), key=lambda s: (s.series_number is None, s.series_number or 0))
    if keep:
        return Pick(keep, _drop(nm, "NM images not needed: RRDSR or PET found"))
    if nm:
        return Pick({nm[0].pk: None}, _drop(nm[1:], "not the first NM series"))
    return Pick(study_reason="no dose report")


def pick_sr(ctx: StudyContext) -> Pick:
    reports, _ = dose_reports(ctx, ALL_DOSE, esr=True)
    if reports:
        return Pick(reports)
    return Pick(study_reason="no dose report")


BRANCHES: dict[str, Callable[[StudyContext], Pick]] = {
    "CT": pick_ct,
    "MG": lambda ctx: pick_projection(ctx, GROUPS["MG"]),
    "DX": lambda ctx: pick_projection(ctx, GROUPS["DX"]),
    "FL": pick_fluoro,
    "NM": pick_nm,
    "SR": pick_sr,
}


def merge(picks: list[Pick]) -> Pick:
    """Union of what each requested modality keeps; a whole series beats part of it."""
    out = Pick()
    for pick in picks:
        for pk, images in pick.keep.items():
            if pk in out.keep and (out.keep[pk] is None or images is None):
                out.keep[pk] = None
            elif pk in out.keep:
                out.keep[pk] = (out.keep[pk] or set()) | images  # type: ignore[operator]
            else:
                out.keep[pk] = None if images is None else set(images)
        for pk, reason in pick.reasons.items():
            out.reasons.setdefault(pk, reason)
    out.study_reason = "; ".join(sorted({p.study_reason for p in picks if p.study_reason}))
    return out


def choose(ctx: StudyContext, groups: list[str]) -> Pick:
    present = {s.modality for s in ctx.series}
    picks = [
        BRANCHES[g](ctx) for g in groups if g == "SR" or present & set(GROUPS[g])
    ]
    return merge(picks)


def apply(ctx: StudyContext, pick: Pick, wanted: set[str]) -> None:
    """Write the decision onto the series and image rows (kept in memory, saved by caller)."""
    for row in ctx.series:
        if row.pk not in pick.keep:
            row.excluded = True
            default = "modality not requested" if row.modality not in wanted else "not needed"
            row.reason = pick.reasons.get(row.pk, default)
            continue
        chosen = pick.keep[row.pk]
        images = ctx.cache.rows.get(row.pk) or ctx.cache.partial.get(row.pk) or []
        if chosen is None or (images and {i.pk for i in images} <= chosen
                              and row.pk in ctx.cache.rows):
            continue
        row.move_level = QuerySeries.IMAGE
        for image in images:
            if image.pk not in chosen:
                image.excluded, image.reason = True, "not a dose object of this series"


def image_rows(ctx: StudyContext) -> list[QueryImage]:
    out: list[QueryImage] = []
    for row in ctx.series:
        out.extend(ctx.cache.rows.get(row.pk) or ctx.cache.partial.get(row.pk) or [])
    return out
