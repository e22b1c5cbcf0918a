"""A query or move left "running" by a worker that died is failed; a live one is left alone."""

from __future__ import annotations

import datetime as dt
import os
import signal
import socket
import subprocess
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from nodes.models import RemoteNode
from qr import lease
from qr.jobs import new_query
from qr.models import HEARTBEAT_EVERY_S, Move, Query, Status, worker_id
from qr.params import QueryParams
from qr.run import run_query
from qr.session import CancelCheck
from qr.tasks import query_task, reap_stale_jobs_task
from tests.conftest import free_port, wait_for
from tests.fake_remote import FakeRemote, remote_node, series_of

MINUTE = dt.timedelta(minutes=1)


def remote(**timeouts: int) -> RemoteNode:
    values = {"connect_timeout": 5, "acse_timeout": 10, "dimse_timeout": 60,
              "network_timeout": 120, **timeouts}
    return RemoteNode.objects.create(
        name=f"pacs-{RemoteNode.objects.count()}", ae_title="PACS", host="127.0.0.1",
        port=11113, **values,
    )


def running(node: RemoteNode | None, beat_ago: dt.timedelta | None) -> Query:
    """A query some worker marked running; its last heartbeat `beat_ago` (None: never)."""
    now = timezone.now()
    return Query.objects.create(
        remote=node, status=Status.RUNNING, started_at=now - (beat_ago or MINUTE) - MINUTE,
        heartbeat_at=None if beat_ago is None else now - beat_ago, worker="otherhost:4242",
        message="querying series of study 3 of 9",
    )


def test_it_fails_a_running_query_whose_heartbeat_is_older_than_the_bound(db: Any) -> None:
    query = running(remote(), lease.STALE_AFTER + MINUTE)
    assert [job.pk for job in lease.reap_stale(timezone.now())] == [query.pk]
    query.refresh_from_db()
    assert query.status == Status.FAILED and query.finished_at is not None
    assert query.message == "worker stopped while this job was running; start it again"
    assert len(query.errors) == 1
    assert query.errors[0].startswith(lease.STOPPED + " (worker otherhost:4242, last heartbeat")
    assert lease.reap_stale(timezone.now()) == []  # once


def test_it_leaves_a_job_with_a_fresh_heartbeat_running(db: Any) -> None:
    node = remote()
    fresh = running(node, lease.STALE_AFTER - MINUTE)
    stale = running(node, lease.STALE_AFTER + MINUTE)
    assert [job.pk for job in lease.reap_stale(timezone.now())] == [stale.pk]
    fresh.refresh_from_db()
    assert fresh.status == Status.RUNNING and fresh.errors == [] and fresh.finished_at is None


def test_it_waits_as_long_as_the_remotes_timeouts_allow_one_response(db: Any) -> None:
    slow = remote(dimse_timeout=3600, network_timeout=3600)
    assert lease.longest_silence(slow) > dt.timedelta(hours=2)
    assert lease.longest_silence(remote()) == lease.STALE_AFTER  # the defaults fit in 5 min
    waiting = running(slow, dt.timedelta(minutes=30))
    assert lease.reap_stale(timezone.now()) == []
    waiting.refresh_from_db()
    assert waiting.status == Status.RUNNING
    gone = running(slow, dt.timedelta(hours=3))
    assert [job.pk for job in lease.reap_stale(timezone.now())] == [gone.pk]


def test_it_fails_a_move_and_a_job_from_before_heartbeats(db: Any) -> None:
    node = remote()
    old = running(node, None)  # started before the migration: judged by started_at
    Query.objects.filter(pk=old.pk).update(started_at=timezone.now() - dt.timedelta(hours=1))
    done = Query.objects.create(remote=node, status=Status.COMPLETE)
    move = Move.objects.create(query=done, status=Status.RUNNING,
                               started_at=timezone.now() - dt.timedelta(hours=1),
                               heartbeat_at=timezone.now() - dt.timedelta(hours=1))
    orphan = Move.objects.create(query=running(None, dt.timedelta(hours=1)),
                                 status=Status.RUNNING, started_at=timezone.now() - MINUTE,
                                 heartbeat_at=timezone.now() - MINUTE)
    reaped = {(type(job).__name__, job.pk) for job in lease.reap_stale(timezone.now())}
    assert reaped == {("Query", old.pk), ("Move", move.pk), ("Query", orphan.query_id)}
    move.refresh_from_db()
    orphan.refresh_from_db()
    assert move.status == Status.FAILED
    assert move.errors[0].startswith(lease.STOPPED + " (worker unknown, last heartbeat")
    assert orphan.status == Status.RUNNING
    done.refresh_from_db()
    assert done.status == Status.COMPLETE


def test_it_leaves_a_job_that_beat_after_the_reaper_read_it(db: Any) -> None:
    query = running(remote(), lease.STALE_AFTER + MINUTE)
    read = Query.objects.get(pk=query.pk)
    Query.objects.filter(pk=query.pk).update(heartbeat_at=timezone.now())
    assert lease._fail(read, timezone.now()) is False
    query.refresh_from_db()
    assert query.status == Status.RUNNING


def test_it_reaps_from_the_periodic_task(db: Any) -> None:
    from huey.contrib.djhuey import HUEY

    due = {task.name for task in HUEY.read_periodic(timezone.now())}
    assert "reap_stale_jobs_task" in due  # every minute
    stale = running(remote(), lease.STALE_AFTER + MINUTE)
    assert reap_stale_jobs_task.call_local() == 1
    stale.refresh_from_db()
    assert stale.status == Status.FAILED
    assert reap_stale_jobs_task.call_local() == 0


def test_it_refreshes_the_heartbeat_from_the_engines_cancel_check(db: Any) -> None:
    query = running(remote(), dt.timedelta(minutes=4))
    check = CancelCheck(query)
    before = timezone.now()
    assert check() is False
    query.refresh_from_db()
    assert query.heartbeat_at is not None and query.heartbeat_at >= before
    # at most one write per HEARTBEAT_EVERY_S, however often the engine asks
    old = timezone.now() - dt.timedelta(minutes=4)
    Query.objects.filter(pk=query.pk).update(heartbeat_at=old)
    check.job.last_beat -= HEARTBEAT_EVERY_S / 2
    check()
    assert Query.objects.get(pk=query.pk).heartbeat_at == old
    check.job.last_beat -= HEARTBEAT_EVERY_S
    check()
    assert Query.objects.get(pk=query.pk).heartbeat_at != old


def test_it_records_the_worker_when_a_query_runs(db: Any) -> None:
    fake = FakeRemote(series_of("1.2.3.1", "CT", 1, date="20240102")).start()
    try:
        day = dt.date(2024, 1, 2)
        params = QueryParams(modalities=["CT"], date_from=day, date_until=day).normalized()
        query = new_query(remote_node(fake), None, params)
        assert run_query(query) == Status.COMPLETE
    finally:
        fake.stop()
    query.refresh_from_db()
    assert query.worker == worker_id() == f"{socket.gethostname()}:{os.getpid()}"
    assert query.started_at is not None and query.heartbeat_at is not None
    assert query.heartbeat_at >= query.started_at


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that completes TCP handshakes and never answers: an association hangs."""
    port = free_port()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))
        sock.listen(8)
        yield port


def test_it_fails_the_job_of_a_worker_killed_mid_query(
    spawn: Callable[..., subprocess.Popen[bytes]], silent_port: int, client: Client,
    importer: Any,
) -> None:
    from huey.contrib.djhuey import HUEY

    node = RemoteNode.objects.create(
        name="silent", ae_title="SILENT", host="127.0.0.1", port=silent_port,
        connect_timeout=5, acse_timeout=120, dimse_timeout=60, network_timeout=120,
    )
    day = dt.date(2024, 1, 2)
    params = QueryParams(modalities=["CT"], date_from=day, date_until=day).normalized()
    query = new_query(node, None, params)
    HUEY.immediate = False
    HUEY.flush()
    try:
        proc = spawn("worker", "--workers", "1")
        query_task(query.pk)
        wait_for(lambda: Query.objects.get(pk=query.pk).status == Status.RUNNING, 30)
        query.refresh_from_db()
        assert query.worker == f"{socket.gethostname()}:{proc.pid}"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        HUEY.flush()
        HUEY.immediate = True
    assert lease.reap_stale(timezone.now()) == []  # its heartbeat is still fresh
    later = timezone.now() + lease.longest_silence(node) + dt.timedelta(seconds=1)
    assert [job.pk for job in lease.reap_stale(later)] == [query.pk]
    client.force_login(importer)
    history = client.get("/qr/history/").content.decode()
    assert '<td class="status bad">failed</td>' in history
    detail = client.get(f"/qr/{query.pk}/").content.decode()
    assert lease.STOPPED in detail


def test_a_reaped_job_that_was_still_running_keeps_the_history_and_its_real_outcome(
    db: Any,
) -> None:
    """The worker was alive but silent past the bound: the reaper's entry stays, errors
    written afterwards are appended to it, and the real outcome is explained."""
    query = running(remote(), lease.STALE_AFTER + MINUTE)
    Query.objects.filter(pk=query.pk).update(status=Status.QUEUED)
    query.status = Status.QUEUED
    assert query.claim()  # the live worker's own copy of the row, as run_query holds it
    Query.objects.filter(pk=query.pk).update(heartbeat_at=timezone.now() - 2 * lease.STALE_AFTER)
    assert [job.pk for job in lease.reap_stale(timezone.now())] == [query.pk]
    query.add_error("C-FIND series of study 3: timed out; retrying once")
    query.finish(Status.PARTIAL, "3 of 4 studies")
    stored = Query.objects.get(pk=query.pk)
    assert stored.status == Status.PARTIAL and stored.message == "3 of 4 studies"
    assert len(stored.errors) == 3
    assert stored.errors[0].startswith(lease.STOPPED)
    assert stored.errors[1] == "C-FIND series of study 3: timed out; retrying once"
    assert stored.errors[2].startswith("this job had been marked failed at ")
    assert stored.errors[2].endswith("it was still running and ended partial")


def test_a_job_that_was_not_reaped_finishes_without_a_note(db: Any) -> None:
    query = running(remote(), MINUTE)
    query.add_error("one series refused")
    query.finish(Status.COMPLETE, "done")
    stored = Query.objects.get(pk=query.pk)
    assert stored.status == Status.COMPLETE and stored.errors == ["one series refused"]


def test_the_job_page_names_the_worker_and_its_last_sign_of_life(
    client: Client, importer: Any
) -> None:
    query = running(remote(), dt.timedelta(minutes=2))
    client.force_login(importer)
    html = client.get(f"/qr/{query.pk}/live/").content.decode()
    beat = timezone.localtime(query.heartbeat_at)
    assert "Worker otherhost:4242" in html
    assert f"last sign of life {beat:%Y-%m-%d %H:%M:%S}" in html
    lease.reap_stale(timezone.now() + lease.STALE_AFTER)
    html = client.get(f"/qr/{query.pk}/live/").content.decode()
    assert "Worker otherhost:4242" in html and "last sign of life" not in html
    assert lease.STOPPED in html
