"""Run a Query: study -> series -> image levels, dose-object choice, already-imported check."""

from __future__ import annotations

import logging

from django.db import transaction

from nodes.models import RemoteNode
from qr import select, series, study
from qr.imported import imported_sop_uids
from qr.models import Query as QueryJob
from qr.models import QueryImage, QuerySeries, QueryStudy, Status
from qr.params import GROUPS, QueryParams
from qr.session import FindSession, QueryStopped

logger = logging.getLogger(__name__)


def run_query(query: QueryJob) -> str:
    """Run `query` to one final status; every error is kept on the query.

    Runs only if this call claims the query (qr.models.Job.claim): a second delivery of
    the same task, or a query cancelled before it started, returns its status untouched."""
    if not query.claim():
        return query.status
    remote = query.remote
    if remote is None:
        query.add_error("the remote node was deleted")
        query.finish(Status.FAILED, "the remote node was deleted")
        return query.status
    params = QueryParams.from_json(query.params)
    try:
        with FindSession(query, remote.peer()) as session:
            _run(session, remote, params)
    except QueryStopped as stop:
        if not stop.cancelled:
            query.add_error(stop.reason)
        status = Status.CANCELLED if stop.cancelled else Status.FAILED
        query.finish(status, stop.reason)
        _save_count(query)
        return query.status
    except Exception as exc:  # never leave a query "running": record why it stopped
        logger.exception("query %s stopped by an unexpected error", query.pk)
        query.add_error(f"unexpected error: {type(exc).__name__}: {exc}")
        query.finish(Status.FAILED, "stopped by an unexpected error")
        return query.status
    _save_count(query)
    status = Status.PARTIAL if query.errors else Status.COMPLETE
    summary = query.summary()
    query.finish(
        status, f"{summary['to_retrieve']} of {summary['studies']} studies to retrieve"
    )
    logger.info("query %s %s: %s", query.pk, query.status, summary)
    return query.status


def _save_count(query: QueryJob) -> None:
    QueryJob.objects.filter(pk=query.pk).update(find_count=query.find_count)


def _run(session: FindSession, remote: RemoteNode, params: QueryParams) -> None:
    query = session.query
    query.set_message("querying studies")
    found = study.find_studies(session, params, remote.use_modality_tag)
    rows = QueryStudy.objects.bulk_create([study.study_row(query.pk, ds) for ds in found])
    for row in rows:
        study.filter_study(row, params)
    QueryStudy.objects.bulk_update(rows, ["excluded", "reason"])
    alive = [r for r in rows if not r.excluded]
    for n, row in enumerate(alive, 1):
        query.set_message(f"querying series of study {n} of {len(alive)}")
        process_study(session, row, params)


def process_study(session: FindSession, row: QueryStudy, params: QueryParams) -> None:
    """Series level, selection and the already-imported check for one study; saves its rows."""
    cache = series.ImageCache(session)
    all_series = series.find_series(session, row)
    wanted = set(params.codes)
    present = series.series_modalities(row, all_series)
    row.matched = ",".join(
        g for g in params.groups if present & set(GROUPS[g])
    )
    if not present & wanted:
        row.excluded, row.reason = True, "none of the requested modalities"
    else:
        series.filter_station(all_series, params)
        ctx = select.StudyContext(row, [s for s in all_series if not s.excluded], cache, params)
        pick = select.choose(ctx, params.groups)
        select.apply(ctx, pick, wanted)
        kept = [s for s in ctx.series if not s.excluded]
        if not kept:
            row.excluded = True
            row.reason = pick.study_reason or "no series left"
        else:
            _known_instances(cache, kept, params)
            if not [s for s in kept if not s.excluded]:
                row.excluded, row.reason = True, "already imported"
    _save(row, all_series, cache)


def _known_instances(
    cache: series.ImageCache, kept: list[QuerySeries], params: QueryParams
) -> None:
    """List every instance we will move (arrivals are linked by UID); drop imported ones."""
    for row in kept:
        if row.move_level == QuerySeries.SERIES:
            cache.images(row)
    if params.dup:
        return
    chosen = [
        i for row in kept for i in _kept_images(cache, row)
    ]
    done = imported_sop_uids(i.sop_instance_uid for i in chosen)
    if not done:
        return
    for row in kept:
        images = _kept_images(cache, row)
        if not images:
            continue
        for image in images:
            if image.sop_instance_uid in done:
                image.excluded, image.reason = True, "already imported"
        if all(i.excluded for i in images):
            row.excluded, row.reason = True, "already imported"
        elif any(i.excluded for i in images):
            row.move_level = QuerySeries.IMAGE


def _kept_images(cache: series.ImageCache, row: QuerySeries) -> list[QueryImage]:
    images = cache.rows.get(row.pk) or cache.partial.get(row.pk) or []
    return [i for i in images if not i.excluded]


def _save(row: QueryStudy, all_series: list[QuerySeries], cache: series.ImageCache) -> None:
    images = [
        i for s in all_series for i in (cache.rows.get(s.pk) or cache.partial.get(s.pk) or [])
    ]
    with transaction.atomic():
        row.save(update_fields=[
            "excluded", "reason", "matched", "modalities_in_study", "modalities_rebuilt",
        ])
        QuerySeries.objects.bulk_update(
            all_series, ["excluded", "reason", "move_level", "images_queried"]
        )
        QueryImage.objects.bulk_update(images, ["excluded", "reason"])
