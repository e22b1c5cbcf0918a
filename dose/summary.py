"""Each study's headline numbers, worked out in SQL and stored on its row.

The one definition of a study's headline totals (`computed()`): events, DLP, DAP, dose at
the reference point, AGD per breast side and administered activity, following the export's
TOTALS rules (dose/serialize.py). `refresh()` writes them into the study's `headline_*`
columns with one UPDATE, so that the Studies list, its dose ranges and sorts, the study page,
the dose insight and the alert rules read plain indexed columns instead of summing a
study's events, planes, breasts and administrations at every request (a dose range over
100,000 studies was a grouped pass over 554,112 events).

Who keeps them current:
- the import (imports/persist.py `store_report`) refreshes the study it changed, in the
  same transaction, once per object (`deferred()` keeps the signals below quiet meanwhile);
- a study, event, plane, breast or administration saved through the ORM elsewhere (the
  admin, tests, a shell) refreshes its study through `post_save` signals;
- migration dose 0007 fills them for the studies stored before, and `refresh_all()` does
  the same for a database loaded raw (bench/pages.py).
Rows deleted in bulk, or written with raw SQL, need a `refresh()` of their studies.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from django.db import connection
from django.db.models import (
    Case,
    Count,
    Exists,
    F,
    FloatField,
    IntegerField,
    Model,
    OuterRef,
    Q,
    Subquery,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Coalesce, Trim, Upper
from django.db.models.signals import post_save
from django.db.models.sql import UpdateQuery

from dose.models import (
    AccumulatedBreast,
    AccumulatedPlane,
    IrradiationEvent,
    RadiopharmaceuticalAdministration,
    Study,
)
from lib.laterality import _SIDES

AGD_SIDES = ("L", "R", "B")

# Headline name (what dose.queries.headline() and the insight/alert code call it) ->
# the Study column that stores it.
COLUMNS: dict[str, str] = {
    "n_events": "headline_events",
    "dlp_total": "headline_dlp_mGycm",
    "dap_total": "headline_dap_Gym2",
    "dose_rp_total": "headline_dose_rp_Gy",
    "agd_L": "headline_agd_left_mGy",
    "agd_R": "headline_agd_right_mGy",
    "agd_B": "headline_agd_both_mGy",
    "activity_total": "headline_activity_MBq",
}
PROTOCOLS_MAX = 4000  # characters of the protocol list kept for the text search
REFRESH_BATCH = 500  # studies per UPDATE in refresh()


def _count(model: type[IrradiationEvent | RadiopharmaceuticalAdministration]) -> Subquery:
    rows = (
        model.objects.filter(study=OuterRef("pk")).order_by().values("study")
        .annotate(n=Count("pk")).values("n")
    )
    return Subquery(rows, output_field=IntegerField())


def _sum(model: type[AccumulatedPlane | AccumulatedBreast | IrradiationEvent
                     | RadiopharmaceuticalAdministration], field: str,
         **where: object) -> Subquery:
    rows = (
        model.objects.filter(study=OuterRef("pk"), **where).order_by().values("study")
        .annotate(total=Sum(field)).values("total")
    )
    return Subquery(rows, output_field=FloatField())


def _has(model: type[AccumulatedPlane | AccumulatedBreast]) -> Exists:
    return Exists(model.objects.filter(study=OuterRef("pk")))


def breast_words(code: str) -> list[str]:
    """The upper-case words a breast's laterality may have for one side (lib.laterality)."""
    return [word for word, side in _SIDES.items() if side == code]


def _agd(code: str) -> Case:
    """Accumulated AGD of one side: a report's breast totals if it has any, else the events'."""
    breasts = (
        AccumulatedBreast.objects.filter(study=OuterRef("pk"))
        .annotate(side=Upper(Trim("laterality"))).filter(side__in=breast_words(code))
        .order_by().values("study").annotate(total=Sum("accumulated_agd_mGy")).values("total")
    )
    return Case(
        When(_has(AccumulatedBreast), then=Subquery(breasts, output_field=FloatField())),
        default=_sum(IrradiationEvent, "agd_mGy", laterality_code=code),
        output_field=FloatField(),
    )


def _planes_or_events(plane_field: str, event_field: str) -> Case:
    """A projection total: the report's accumulated planes if it has any, else the events'."""
    return Case(
        When(_has(AccumulatedPlane), then=_sum(AccumulatedPlane, plane_field)),
        When(
            modality_type__in=(Study.DX, Study.RF, Study.MG),
            then=_sum(IrradiationEvent, event_field),
        ),
        default=None,
        output_field=FloatField(),
    )


def computed() -> dict[str, Any]:
    """Headline name -> the SQL expression that works it out from the study's rows."""
    return {
        "n_events": Coalesce(_count(IrradiationEvent), Value(0))
        + Coalesce(_count(RadiopharmaceuticalAdministration), Value(0)),
        "dlp_total": Case(
            When(modality_type=Study.CT, then=Coalesce(
                F("dlp_total_mGycm"), _sum(IrradiationEvent, "dlp_mGycm")
            )),
            default=None, output_field=FloatField(),
        ),
        "dap_total": _planes_or_events("dap_total_Gym2", "dap_Gym2"),
        "dose_rp_total": _planes_or_events("dose_rp_total_Gy", "dose_rp_Gy"),
        "agd_L": _agd("L"), "agd_R": _agd("R"), "agd_B": _agd("B"),
        "activity_total": _sum(
            RadiopharmaceuticalAdministration, "administered_activity_MBq"
        ),
    }


def stored() -> dict[str, Any]:
    """Headline name -> the column that stores it (what the pages read)."""
    return {name: F(column) for name, column in COLUMNS.items()}


def _computed_columns() -> dict[str, Any]:
    """Study column -> the expression that works it out (computed(), by column)."""
    return {COLUMNS[name]: expr for name, expr in computed().items()}


def _protocol_text(names: Iterable[str]) -> str:
    """What headline_protocols stores: the distinct protocols sorted, one per line."""
    return "\n".join(sorted(set(names)))[:PROTOCOLS_MAX]


def _protocols(pks: list[int]) -> dict[int, str]:
    """Study id -> its events' distinct acquisition protocols (_protocol_text)."""
    found: dict[int, list[str]] = {pk: [] for pk in pks}
    rows = (IrradiationEvent.objects.filter(study_id__in=pks).exclude(acquisition_protocol="")
            .order_by().values_list("study_id", "acquisition_protocol").distinct())
    for study_id, protocol in rows:
        found[study_id].append(protocol)
    return {pk: _protocol_text(names) for pk, names in found.items()}


def refresh(pks: Iterable[int]) -> None:
    """Work out and store the headline of these studies: per study two statements compiled
    once (the import's path: the ORM compiled this expression tree in ~15 ms, three times the
    rest of an import), per batch of REFRESH_BATCH one UPDATE and one read of protocols."""
    ids = sorted(set(pks))
    if len(ids) <= 2:
        for pk in ids:
            _refresh_one(pk)
        return
    columns = _computed_columns()
    for start in range(0, len(ids), REFRESH_BATCH):
        batch = ids[start:start + REFRESH_BATCH]
        Study.objects.filter(pk__in=batch).update(**columns)
        texts: dict[str, list[int]] = {}
        for pk, text in _protocols(batch).items():
            texts.setdefault(text, []).append(pk)
        for text, same in texts.items():  # studies share their protocol lists
            Study.objects.filter(pk__in=same).update(headline_protocols=text)


_PK = -7_340_033  # stands for the study's id while the statement is compiled
_TEXT = "\x00protocols\x00"  # stands for its protocol list


@dataclass(frozen=True)
class _Compiled:
    update: str
    params: tuple[Any, ...]
    pk_at: int
    text_at: int
    protocols: str


_compiled: dict[tuple[str, str], _Compiled] = {}


def _compile() -> _Compiled:
    key = (connection.alias, connection.vendor)
    if key not in _compiled:
        query = UpdateQuery(Study)
        query.add_update_values({**_computed_columns(), "headline_protocols": Value(_TEXT)})
        query.add_q(Q(pk=_PK))
        sql, params = query.get_compiler(connection.alias).as_sql()
        params = tuple(params)
        quote = connection.ops.quote_name
        protocols = (
            f"SELECT DISTINCT {quote('acquisition_protocol')} "
            f"FROM {quote(IrradiationEvent._meta.db_table)} "
            f"WHERE {quote('study_id')} = %s AND {quote('acquisition_protocol')} <> ''"
        )
        _compiled[key] = _Compiled(sql, params, params.index(_PK), params.index(_TEXT),
                                   protocols)
    return _compiled[key]


def _refresh_one(pk: int) -> None:
    compiled = _compile()
    params = list(compiled.params)
    with connection.cursor() as cursor:
        cursor.execute(compiled.protocols, [pk])
        params[compiled.pk_at] = pk
        params[compiled.text_at] = _protocol_text(row[0] for row in cursor.fetchall())
        cursor.execute(compiled.update, params)


def refresh_all(progress: Any = None) -> int:
    """Refresh every study (after a raw load); returns how many. `progress(done, total)`."""
    with connection.cursor() as cursor:
        # Statistics first: on a table loaded without them PostgreSQL planned each study's
        # subqueries as scans (100,000 studies: 400 s instead of 40 s).
        for model in (Study, IrradiationEvent, AccumulatedPlane, AccumulatedBreast,
                      RadiopharmaceuticalAdministration):
            cursor.execute(f"ANALYZE {connection.ops.quote_name(model._meta.db_table)}")
    ids = list(Study.objects.order_by("pk").values_list("pk", flat=True))
    step = REFRESH_BATCH * 20
    for start in range(0, len(ids), step):
        refresh(ids[start:start + step])
        if progress is not None:
            progress(min(start + step, len(ids)), len(ids))
    return len(ids)


_deferred: contextvars.ContextVar[bool] = contextvars.ContextVar("summary_deferred",
                                                                default=False)


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """Saves inside this block do not refresh through the signals: the caller refreshes
    once after (imports/persist.py)."""
    token = _deferred.set(True)
    try:
        yield
    finally:
        _deferred.reset(token)


def _study_saved(sender: type[Model], instance: Study, **kwargs: Any) -> None:
    if not _deferred.get():
        refresh([instance.pk])


def _row_saved(sender: type[Model], instance: Any, **kwargs: Any) -> None:
    if not _deferred.get() and instance.study_id is not None:
        refresh([instance.study_id])


def connect_signals() -> None:
    """Called once from DoseConfig.ready()."""
    post_save.connect(_study_saved, sender=Study, dispatch_uid="dose.summary.study")
    for model in (IrradiationEvent, AccumulatedPlane, AccumulatedBreast,
                  RadiopharmaceuticalAdministration):
        post_save.connect(_row_saved, sender=model, dispatch_uid=f"dose.summary.{model.__name__}")
