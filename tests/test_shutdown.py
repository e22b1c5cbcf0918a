"""SIGTERM: every doseport process kind exits promptly and leaves nothing acknowledged behind.

`doseport worker` and `doseport stores` within 5 s, `doseport store run N` within 5 s idle
and 10 s with an association in flight. A task the worker held is finished or put back on
the queue; every object the node answered Success is imported.
"""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydicom.uid import generate_uid

from imports.models import ImportRecord, Outcome
from store.models import State, StoreRuntime
from store.spool import Spool
from tests.builders.rdsr import build_ct_rdsr, header_for, write
from tests.conftest import wait_for, wait_port
from tests.store_helpers import acknowledged, drain, make_node, sop_uid, storescu_popen

pytestmark = pytest.mark.interop


@pytest.fixture
def queue(transactional_db) -> Iterator[None]:  # type: ignore[no-untyped-def]
    """Tasks go to the real queue that spawned workers read."""
    from huey.contrib.djhuey import HUEY

    HUEY.immediate = False
    HUEY.flush()
    try:
        yield
    finally:
        HUEY.flush()
        HUEY.immediate = True


def _reports(folder: Path, count: int) -> list[Path]:
    """`count` distinct small dose reports (one built, then re-identified: fast)."""
    ds = build_ct_rdsr(events=1, header=header_for(accession="SHUT"))
    files = []
    for i in range(count):
        uid = generate_uid()
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = uid
        ds.StudyInstanceUID = generate_uid()
        ds.AccessionNumber = f"SHUT{i:04d}"
        files.append(write(ds, folder / f"{i:04d}.dcm"))
    return files


def _stop(proc: subprocess.Popen[bytes], limit_s: float) -> float:
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=limit_s + 20)  # bounded, and long enough to say by how much
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)
    took = time.monotonic() - started
    assert took <= limit_s, f"exited {took:.1f} s after SIGTERM (limit {limit_s} s)"
    return took


def _imported(uids: set[str]) -> list[str]:
    return list(ImportRecord.objects.filter(outcome=Outcome.IMPORTED, sop_instance_uid__in=uids)
                .values_list("sop_instance_uid", flat=True))


def test_it_stops_an_idle_worker_within_five_seconds(spawn, queue, tmp_path) -> None:  # type: ignore[no-untyped-def]
    worker = drain(spawn("worker"), tmp_path / "worker.log")
    time.sleep(3)  # up and napping between empty polls
    assert worker.poll() is None
    _stop(worker, 5.0)


def test_it_hands_back_the_task_in_hand_and_exits_within_five_seconds(
    spawn, queue, tmp_path  # type: ignore[no-untyped-def]
) -> None:
    from imports.tasks import import_files_task

    # Enough work that the task outlives the worker's 3 s grace after SIGTERM even on an
    # idle machine (~200 small reports/s): with 400 it finished and nothing was handed back.
    files = _reports(tmp_path / "in", 2000)
    uids = {sop_uid(p) for p in files}
    node = make_node()
    import_files_task([str(p) for p in files], "store", node.pk)  # one long task
    worker = drain(spawn("worker"), tmp_path / "worker.log")
    wait_for(lambda: 0 < len(_imported(uids)), timeout=60, interval=0.1)
    assert len(_imported(uids)) < len(uids), "the task finished before the stop: use more files"
    _stop(worker, 5.0)
    assert len(_imported(uids)) < len(uids)

    drain(spawn("worker"), tmp_path / "worker2.log")  # the next worker finishes the job
    wait_for(lambda: set(_imported(uids)) == uids, timeout=120, interval=0.5)
    assert sorted(_imported(uids)) == sorted(uids)  # each exactly once


def test_it_stops_the_store_supervisor_and_its_nodes_within_five_seconds(
    spawn, tmp_path  # type: ignore[no-untyped-def]
) -> None:
    node = make_node(auto_start=True)
    stores = drain(spawn("stores"), tmp_path / "stores.log")
    wait_for(lambda: StoreRuntime.for_node(node).is_running, timeout=30, interval=0.1)
    node_pid = StoreRuntime.for_node(node).pid
    assert node_pid
    _stop(stores, 5.0)
    assert not Path(f"/proc/{node_pid}").exists() or "zombie" in Path(
        f"/proc/{node_pid}/status").read_text()
    assert StoreRuntime.for_node(node).state == State.STOPPED


def test_it_stops_an_idle_node_within_five_seconds(spawn, tmp_path) -> None:  # type: ignore[no-untyped-def]
    node = make_node()
    proc = drain(spawn("store", "run", str(node.pk)), tmp_path / "node.log")
    wait_port(node.port, timeout=30)
    _stop(proc, 5.0)
    assert StoreRuntime.for_node(node).state == State.STOPPED


def test_it_stops_a_node_with_an_association_in_flight_within_ten_seconds_losing_nothing(
    spawn, queue, tmp_path  # type: ignore[no-untyped-def]
) -> None:
    files = _reports(tmp_path / "send", 1000)
    node = make_node()
    proc = drain(spawn("store", "run", str(node.pk)), tmp_path / "node.log")
    wait_port(node.port, timeout=30)
    spool = Spool.for_node(node.pk)
    sender = storescu_popen(node, files)
    wait_for(lambda: len(spool.files()) >= 50, timeout=60, interval=0.05)
    assert sender.poll() is None, "the association ended before the stop: send more"
    _stop(proc, 10.0)
    out, _ = sender.communicate(timeout=60)
    acked = acknowledged(out)
    assert len(acked) >= 50
    acked_uids = {sop_uid(Path(p)) for p in acked}
    spooled = {sop_uid(p) for p in spool.files()}
    assert acked_uids <= spooled  # durable before Success

    # The node is gone (no recovery sweep): what it answered must already be queued.
    drain(spawn("worker"), tmp_path / "worker.log")
    wait_for(lambda: set(_imported(acked_uids)) == acked_uids, timeout=180, interval=0.5)
