"""Two servers on one PostgreSQL and one Redis (docs/deploy.md).

Each server has its own data folder (spool), supervisor and worker, and its own name
(DOSEPORT_SERVER_NAME). A store node runs only on its server; what it receives is imported
by that server's worker alone: with server B's worker down, B's objects wait (never failed by
A's worker, which cannot see B's spool) and are imported, once, when B's worker is back.
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from django.db import connection

from imports.models import ImportRecord, Outcome
from nodes.models import StoreNode
from store.models import StoreRuntime
from tests.builders.rdsr import build_ct_rdsr, header_for, write
from tests.conftest import wait_for
from tests.store_helpers import acknowledged, drain, make_node, sop_uid, storescu

pytestmark = pytest.mark.interop


@pytest.fixture
def servers(process_env: dict[str, str], tmp_path: Path) -> Iterator[dict[str, dict[str, str]]]:
    # tests/conftest.py deselects these without PostgreSQL and Redis (the SQLite pass)
    assert connection.vendor == "postgresql" and os.environ.get("REDIS_URL")
    from doseport.queue import flush_imports

    tag = f"{os.getpid()}"
    envs = {}
    for letter in ("a", "b"):
        home = tmp_path / f"home-{letter}"
        home.mkdir(mode=0o700)
        envs[letter] = {**process_env, "DOSEPORT_HOME": str(home),
                        "DOSEPORT_SERVER_NAME": f"srv-{letter}-{tag}"}
    names = [env["DOSEPORT_SERVER_NAME"] for env in envs.values()]
    for name in names:
        flush_imports(name)
    try:
        yield envs
    finally:
        for name in names:
            flush_imports(name)


def _reports(folder: Path, prefix: str, count: int) -> list[Path]:
    return [write(build_ct_rdsr(events=1, header=header_for(accession=f"{prefix}{i}")),
                  folder / f"{prefix}{i}.dcm") for i in range(count)]


def _send(node: StoreNode, files: list[Path]) -> None:
    result = storescu(node, files, timeout=60)
    assert sorted(acknowledged(result.stdout + result.stderr)) == sorted(map(str, files)), (
        result.stdout + result.stderr)


def _records(files: list[Path]) -> list[ImportRecord]:
    return list(ImportRecord.objects.filter(sop_instance_uid__in=[sop_uid(p) for p in files]))


def _imported(files: list[Path]) -> bool:
    records = _records(files)
    return len(records) == len(files) and all(r.outcome == Outcome.IMPORTED for r in records)


def _running(node: StoreNode) -> Callable[[], bool]:
    return lambda: StoreRuntime.for_node(node).is_running


def _all_imported(files: list[Path]) -> Callable[[], bool]:
    return lambda: _imported(files)


def _env_of(pid: int) -> str:
    return Path(f"/proc/{pid}/environ").read_bytes().replace(b"\0", b"\n").decode()


@pytest.mark.shared_db
def test_it_runs_each_node_and_imports_its_objects_on_its_own_server(
    spawn, servers, tmp_path  # type: ignore[no-untyped-def]
) -> None:
    name = {k: env["DOSEPORT_SERVER_NAME"] for k, env in servers.items()}
    node_a = make_node(name="on-a", ae_title="ONA", auto_start=True, runs_on=name["a"])
    node_b = make_node(name="on-b", ae_title="ONB", auto_start=True, runs_on=name["b"])
    procs: dict[str, subprocess.Popen[bytes]] = {}
    for k, env in servers.items():
        drain(spawn("stores", env=env), tmp_path / f"stores-{k}.log")
        procs[f"worker-{k}"] = drain(spawn("worker", env=env), tmp_path / f"worker-{k}.log")

    for node, k in ((node_a, "a"), (node_b, "b")):
        wait_for(_running(node), timeout=180, interval=0.3)
        runtime = StoreRuntime.for_node(node)
        assert runtime.server_name == name[k]
        assert runtime.pid is not None
        # The node process is a child of server k's supervisor, with server k's data folder.
        assert f"DOSEPORT_HOME={servers[k]['DOSEPORT_HOME']}\n" in _env_of(runtime.pid)

    first = {k: _reports(tmp_path / "in", f"TWO{k.upper()}", 3) for k in ("a", "b")}
    _send(node_a, first["a"])
    _send(node_b, first["b"])
    for k in ("a", "b"):
        wait_for(_all_imported(first[k]), timeout=60, interval=0.3)
        spool = str(Path(servers[k]["DOSEPORT_HOME"]) / "spool")
        assert all(r.path.startswith(spool) for r in _records(first[k]))

    # Server B's worker stops: B's objects wait in B's spool and on B's import queue.
    procs["worker-b"].send_signal(signal.SIGTERM)
    procs["worker-b"].wait(timeout=20)
    waiting = _reports(tmp_path / "in", "TWOWAIT", 3)
    _send(node_b, waiting)
    # A's worker keeps working (so it had every chance to take B's tasks) ...
    later_a = _reports(tmp_path / "in", "TWOLATERA", 2)
    _send(node_a, later_a)
    wait_for(lambda: _imported(later_a), timeout=60, interval=0.3)
    # ... and did not touch B's: no record, imported or failed, and the files are there.
    assert _records(waiting) == []
    spooled_b = list((Path(servers["b"]["DOSEPORT_HOME"]) / "spool").rglob("*.dcm"))
    assert len(spooled_b) >= len(waiting)

    drain(spawn("worker", env=servers["b"]), tmp_path / "worker-b2.log")
    wait_for(lambda: _imported(waiting), timeout=60, interval=0.3)
    for files in (*first.values(), waiting, later_a):
        assert len(_records(files)) == len(files)  # each once


def test_it_enqueues_each_minutes_periodic_tasks_once_whatever_the_number_of_workers() -> None:
    import datetime

    from huey import MemoryHuey, crontab

    from doseport.processes import OncePerMinuteScheduler

    huey = MemoryHuey("periodic-once", utc=True)

    @huey.periodic_task(crontab(minute="*"))
    def every_minute() -> None:
        """A periodic task of the shared queue (echo, scheduled queries, reaper)."""

    schedulers = [OncePerMinuteScheduler(huey, interval=1, periodic=True) for _ in range(2)]
    minute = datetime.datetime(2026, 12, 3, 10, 0, 5)
    for n in range(3):
        for scheduler in schedulers:  # each server's worker gets to the same minute
            scheduler.enqueue_periodic_tasks(minute + datetime.timedelta(minutes=n))
    assert huey.pending_count() == 3  # once a minute, not once per worker
    # Claims older than two minutes are removed as new ones are made.
    assert huey.get("periodic-claim:202612031000", peek=True) is None
    assert huey.get("periodic-claim:202612031002", peek=True) == "1"


@pytest.mark.django_db
def test_it_echoes_a_store_node_from_the_server_that_runs_it() -> None:
    from huey.contrib.djhuey import HUEY

    from doseport.queue import flush_imports, imports_huey
    from nodes.tasks import queue_echo

    other = f"srv-echo-{os.getpid()}"
    node_b = make_node(name="echo-b", ae_title="ECHOB", runs_on=other)
    node_here = make_node(name="echo-here", ae_title="ECHOHERE")
    HUEY.immediate = False
    HUEY.flush()
    flush_imports(other)
    try:
        queue_echo(node_b)  # its 127.0.0.1 is the other server's
        queue_echo(node_here)
        assert imports_huey(other).huey.pending_count() == 1
        assert [t.name for t in HUEY.pending()] == ["echo_node_task"]
    finally:
        HUEY.flush()
        flush_imports(other)
        HUEY.immediate = True
