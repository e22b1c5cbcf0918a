"""Creating and running Query/Move jobs; shared by the web, the CLI and the scheduler."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.utils import timezone

from nodes.models import RemoteNode, StoreNode
from qr.models import Move, Query, ScheduledQuery, Status
from qr.move import run_move
from qr.params import QueryParams
from qr.run import run_query


def new_query(
    remote: RemoteNode, store: StoreNode | None, params: QueryParams, user: Any = None,
    auto_move: bool = False, scheduled: ScheduledQuery | None = None,
) -> Query:
    return Query.objects.create(
        remote=remote, store=store, params=params.to_json(), user=user,
        remote_name=remote.name, auto_move=auto_move, scheduled=scheduled,
    )


def new_move(query: Query, store: StoreNode | None = None) -> Move:
    store = store or query.store
    method = query.remote.retrieve_method if query.remote else "move"
    return Move.objects.create(
        query=query, store=store, method=method,
        destination_aet=store.ae_title if store else "",
    )


def execute_query(query_id: int) -> str:
    """The body of the query job: run it, then retrieve when the query asks for it."""
    query = Query.objects.filter(pk=query_id).first()
    if query is None:  # deleted while the task waited in the queue
        return "deleted"
    if query.status != Status.QUEUED:  # cheap early out; run_query's claim decides
        return query.status
    status = run_query(query)
    if not query.claimed:
        return status  # not ours: another delivery claimed it (or it was cancelled)
    if query.auto_move and status in (Status.COMPLETE, Status.PARTIAL):
        execute_move(new_move(query).pk)
    return status


def execute_move(move_id: int) -> str:
    move = Move.objects.select_related("query__remote", "store").filter(pk=move_id).first()
    if move is None:
        return "deleted"
    if move.status != Status.QUEUED:  # cheap early out; run_move's claim decides
        return move.status
    return run_move(move)


def run_again(query: Query, user: Any = None) -> Query:
    params = QueryParams.from_json(query.params)
    if query.remote is None:
        raise ValueError("the remote node of this query was deleted")
    return new_query(query.remote, query.store, params, user=user, auto_move=query.auto_move)


def schedule_params(schedule: ScheduledQuery, now: dt.datetime) -> QueryParams:
    """The saved options over 'the last N hours' ending now (local time)."""
    params = QueryParams.from_json(schedule.params)
    local_now = timezone.localtime(now)
    start = local_now - dt.timedelta(hours=schedule.last_hours)
    params.date_from, params.date_until = start.date(), local_now.date()
    params.time_from = params.time_until = ""
    if start.date() == local_now.date():
        params.time_from, params.time_until = start.strftime("%H%M"), local_now.strftime("%H%M")
    return params.normalized(today=local_now.date())


def due_schedules(now: dt.datetime) -> list[Query]:
    """Create the queries of the schedules that are due; the caller runs them."""
    created = []
    for schedule in ScheduledQuery.objects.filter(enabled=True).select_related("remote", "store"):
        if not schedule.is_due(now):
            continue
        # Claim this run: of two ticks (two workers, or a tick delivered twice) only the
        # one whose UPDATE still sees the old last_run_at creates the query.
        if not ScheduledQuery.objects.filter(
            pk=schedule.pk, last_run_at=schedule.last_run_at
        ).update(last_run_at=now):
            continue
        schedule.last_run_at = now
        created.append(new_query(
            schedule.remote, schedule.store, schedule_params(schedule, now),
            auto_move=schedule.move, scheduled=schedule,
        ))
    return created
