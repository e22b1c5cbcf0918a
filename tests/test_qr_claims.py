"""Jobs are claimed with one conditional UPDATE: a second delivery does nothing; cancel is a
state transition the worker honours."""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from qr.jobs import execute_query, new_move, new_query
from qr.models import Move, Query, Status
from qr.move import run_move
from qr.params import QueryParams
from qr.run import run_query
from qr.tasks import move_task, query_task
from tests.conftest import wait_for
from tests.fake_remote import RDSR, FakeRemote, StoreSCP, remote_node, series_of, store_node

DAY = dt.date(2024, 1, 2)


@pytest.fixture
def peers() -> Iterator[tuple[FakeRemote, StoreSCP]]:
    scp = StoreSCP().start()
    objs = series_of("1.2.3.1", "SR", 6, sop_class=RDSR) + series_of("1.2.3.1", "SR", 6,
                                                                       sop_class=RDSR)
    fake = FakeRemote(objs, destinations={"DPSTORE": ("127.0.0.1", scp.port)}).start()
    yield fake, scp
    fake.stop()
    scp.stop()


def queried(fake: FakeRemote, scp: StoreSCP) -> Query:
    params = QueryParams(sr_only=True, date_from=DAY, date_until=DAY).normalized()
    query = new_query(remote_node(fake), store_node(scp), params)
    run_query(query)
    return query


def test_it_runs_a_query_delivered_twice_once(db: Any, peers: Any) -> None:
    fake, _ = peers
    query = new_query(remote_node(fake), None,
                      QueryParams(sr_only=True, date_from=DAY, date_until=DAY).normalized())
    first, second = Query.objects.get(pk=query.pk), Query.objects.get(pk=query.pk)
    assert run_query(first) == Status.COMPLETE
    finds = len(fake.finds)
    # the second delivery read the row while it was still queued: its claim must fail
    assert second.status == Status.QUEUED
    assert run_query(second) == Status.COMPLETE
    assert len(fake.finds) == finds and not second.claimed
    assert query_task.call_local(query.pk) == Status.COMPLETE and len(fake.finds) == finds


def test_it_runs_a_move_delivered_twice_once(db: Any, peers: Any) -> None:
    fake, scp = peers
    move = new_move(queried(fake, scp))
    first, second = Move.objects.get(pk=move.pk), Move.objects.get(pk=move.pk)
    assert run_move(first) == Status.COMPLETE
    assert run_move(second) == Status.COMPLETE and not second.claimed
    assert move_task.call_local(move.pk) == Status.COMPLETE
    assert len(fake.moves) == 2 and len(scp.received) == 12
    assert Move.objects.get(pk=move.pk).requests == 2


def test_it_runs_a_move_once_when_two_workers_race_for_it(
    transactional_db: Any, peers: Any
) -> None:
    fake, scp = peers
    move = new_move(queried(fake, scp))
    copies = [Move.objects.get(pk=move.pk) for _ in range(2)]
    gate = threading.Barrier(2)
    results: list[str] = []

    def deliver(copy: Move) -> None:
        from django.db import connection

        gate.wait(timeout=5)
        try:
            results.append(run_move(copy))
        finally:
            connection.close()

    threads = [threading.Thread(target=deliver, args=(c,)) for c in copies]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(c.claimed for c in copies) == [False, True]
    assert len(fake.moves) == 2 and len(scp.received) == 12


def test_it_never_starts_a_job_cancelled_while_queued(db: Any, peers: Any) -> None:
    fake, scp = peers
    query = queried(fake, scp)
    move = new_move(query)
    stale = Move.objects.get(pk=move.pk)  # the worker's copy, read before the cancel
    assert move.request_cancel() == Status.CANCELLED
    assert run_move(stale) == Status.CANCELLED
    assert fake.moves == [] and scp.received == []
    assert query.remote is not None
    again = new_query(query.remote, None, QueryParams.from_json(query.params))
    again.request_cancel()
    assert execute_query(again.pk) == Status.CANCELLED
    assert Query.objects.get(pk=again.pk).started_at is None


def test_it_stops_a_running_move_when_cancelled(transactional_db: Any, peers: Any) -> None:
    fake, scp = peers
    fake.sub_op_delay = 0.25  # a series takes 1.5 s: the cancel lands inside the first
    move = new_move(queried(fake, scp))
    outcome: list[str] = []

    def work() -> None:
        from django.db import connection

        try:
            outcome.append(run_move(Move.objects.get(pk=move.pk)))
        finally:
            connection.close()

    thread = threading.Thread(target=work)
    thread.start()
    wait_for(lambda: len(scp.received) >= 2, timeout=10)
    assert Move.objects.get(pk=move.pk).request_cancel() == Status.RUNNING
    thread.join(timeout=20)
    assert outcome == [Status.CANCELLED]
    stored = Move.objects.get(pk=move.pk)
    assert stored.status == Status.CANCELLED and stored.finished_at is not None
    assert fake.cancelled == 1 and len(fake.moves) == 1  # C-CANCEL; series 2 never asked
    assert len(scp.received) < 12


def test_the_cancel_button_cancels_a_queued_query_and_flags_a_running_retrieve(
    db: Any, peers: Any, client: Any, importer: Any
) -> None:
    fake, scp = peers
    query = queried(fake, scp)
    running = new_move(query)
    Move.objects.filter(pk=running.pk).update(status=Status.RUNNING)
    waiting = new_query(query.remote, None, QueryParams.from_json(query.params))  # type: ignore[arg-type]
    finds = len(fake.finds)
    client.force_login(importer)
    assert client.post(f"/qr/{waiting.pk}/cancel/").status_code == 302
    assert client.post(f"/qr/{query.pk}/cancel/").status_code == 302
    waiting.refresh_from_db()
    assert waiting.status == Status.CANCELLED and waiting.message == "cancelled before it started"
    assert execute_query(waiting.pk) == Status.CANCELLED and len(fake.finds) == finds
    stored = Move.objects.get(pk=running.pk)
    assert stored.status == Status.RUNNING and stored.cancel_requested  # its worker stops it
    query.refresh_from_db()
    assert query.status == Status.COMPLETE and not query.cancel_requested  # done: untouched


def test_it_stops_a_running_query_when_cancelled(db: Any, monkeypatch: Any) -> None:
    from tests.fake_remote import in_memory

    objs = []
    for n in range(4):
        objs += series_of(f"1.2.3.{n + 1}", "SR", 1, sop_class=RDSR)
    fake = in_memory(FakeRemote(objs), monkeypatch)
    query = new_query(remote_node(fake), None,
                      QueryParams(sr_only=True, date_from=DAY, date_until=DAY).normalized())
    answer = fake.find_matches

    def cancel_after_the_first_series_query(q: Any) -> Any:
        if q.QueryRetrieveLevel == "SERIES":
            query.request_cancel()
            time.sleep(0.6)  # past the engine's cancel check interval
        return answer(q)

    fake.find_matches = cancel_after_the_first_series_query  # type: ignore[method-assign]
    assert run_query(query) == Status.CANCELLED
    assert [f.QueryRetrieveLevel for f in fake.finds].count("SERIES") == 1
    assert fake.associations == fake.released == 1
