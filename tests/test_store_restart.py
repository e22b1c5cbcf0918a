"""Restarts with supervisord's `startsecs` semantics.

A node (or any child) that was ready and then dies comes back at once, however often; only
one that dies before it is ready backs off, and the node's status says so. A node stopped on
purpose shows "stopped", never a coming restart.
"""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from doseport.processes import Child
from imports.models import ImportRecord, Outcome
from lib.dicom import echo
from store.models import State, StoreRuntime
from store.supervisor import mark_stopped
from tests.builders.rdsr import build_ct_rdsr, header_for, write
from tests.conftest import wait_for
from tests.store_helpers import acknowledged, drain, make_node, storescu

READY_THEN_SLEEP = (
    "import time\n"
    "from doseport.processes import notify_ready\n"
    "notify_ready()\n"
    "time.sleep(60)\n"
)


def _running_pid(node_id: int) -> int | None:
    runtime = StoreRuntime.for_node(node_id)
    return runtime.pid if runtime.is_running else None


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture
def children() -> Iterator[list[Child]]:
    made: list[Child] = []
    yield made
    for child in made:
        if child.proc is not None and child.proc.poll() is None:
            child.proc.kill()
            child.proc.wait(timeout=5)
        child.close_ready_fd()


def _tend_until(child: Child, check: object, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        child.tend(time.monotonic())
        if callable(check) and check():
            return
        time.sleep(0.05)
    raise AssertionError(f"not true within {timeout} s")


# -- the Child bookkeeping ---------------------------------------------------------------
def test_it_restarts_a_child_that_was_ready_at_once_however_often(children: list[Child]) -> None:
    child = Child("ready", [sys.executable, "-c", READY_THEN_SLEEP], notify_ready=True)
    children.append(child)
    for _ in range(6):
        _tend_until(child, lambda: child.ready)
        assert child.proc is not None
        child.proc.kill()
        child.proc.wait(timeout=5)
        assert child.tend(time.monotonic())  # notices the death
        assert child.proc is None and child.failures == 0
        assert child.next_start <= time.monotonic()  # no backoff, the 6th time too
        assert child.tend(time.monotonic())  # started again on the next look
        assert child.proc is not None


def test_it_backs_off_a_child_that_dies_before_it_is_ready_and_forgets_once_ready(
    children: list[Child], tmp_path: Path
) -> None:
    flag = tmp_path / "may-start"
    script = (
        "import pathlib, sys, time\n"
        "from doseport.processes import notify_ready\n"
        f"if not pathlib.Path({str(flag)!r}).exists(): sys.exit(3)\n"
        "notify_ready()\n"
        "time.sleep(60)\n"
    )
    child = Child("flaky", [sys.executable, "-c", script], notify_ready=True)
    children.append(child)
    delays = []
    for _ in range(3):
        child.next_start = 0.0  # do not wait out the backoff in the test
        child.tend(time.monotonic())
        assert child.proc is not None
        child.proc.wait(timeout=20)
        before = time.monotonic()
        assert child.tend(before)
        delays.append(child.next_start - before)
    assert child.failures == 3
    assert delays == pytest.approx([0.5, 1.0, 2.0], abs=0.05)
    flag.touch()
    child.next_start = 0.0
    _tend_until(child, lambda: child.ready)
    assert child.failures == 0  # ready: the failed starts are forgotten


def test_it_counts_a_child_that_cannot_say_as_ready_after_it_ran_a_second(
    children: list[Child],
) -> None:
    child = Child("sleeper", ["sleep", "60"])
    children.append(child)
    child.tend(time.monotonic())
    child.failures = 4
    assert not child.check_ready(time.monotonic(), alive=True)
    assert child.check_ready(time.monotonic() + 1.1, alive=True)
    assert child.failures == 0


@pytest.mark.django_db
def test_it_shows_a_node_stopped_while_backing_off_as_stopped() -> None:
    node = make_node()
    runtime = StoreRuntime.for_node(node)
    runtime.state = State.CRASHED
    runtime.last_error = (
        "node process exited with code 2; it never became ready (3 failed starts in a row); "
        "backing off, next start in 2.0 s: cannot listen on 127.0.0.1:104: address in use"
    )
    runtime.save()
    mark_stopped(node.pk)
    runtime = StoreRuntime.for_node(node)
    assert runtime.shown_state == "stopped"
    assert "next start" not in runtime.last_error and "restarting" not in runtime.last_error
    assert runtime.last_error == (
        "node process exited with code 2; then stopped on request: "
        "cannot listen on 127.0.0.1:104: address in use"
    )


# -- real supervisor, real node ----------------------------------------------------------
def test_it_restarts_a_killed_auto_start_node_within_ten_seconds(spawn, tmp_path) -> None:  # type: ignore[no-untyped-def]
    node = make_node(auto_start=True)
    log = tmp_path / "stores.log"
    drain(spawn("stores"), log)
    first = wait_for(lambda: _running_pid(node.pk), timeout=30, interval=0.1)
    assert echo(node.peer()).ok

    os.kill(int(first), signal.SIGKILL)  # type: ignore[call-overload]
    wait_for(lambda: echo(node.peer()).ok and _running_pid(node.pk) not in (None, first),
             timeout=10, interval=0.2)
    runtime = StoreRuntime.for_node(node)
    assert runtime.restarts == 1
    # The node clears the note once it runs again; the supervisor's log keeps it.
    wait_for(lambda: "killed by signal SIGKILL; restarting at once" in log.read_text(),
             timeout=5)


def test_it_starts_and_stops_a_controlled_node_on_request(spawn, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from store import control

    witness = make_node(name="witness", auto_start=True)
    node = make_node()
    drain(spawn("stores"), tmp_path / "stores.log")
    # The supervisor has made passes once the auto-start witness answers.
    wait_for(lambda: echo(witness.peer()).ok, timeout=30, interval=0.2)
    assert StoreRuntime.for_node(witness).supervisor_alive
    assert not _listening(node.port)  # a node nobody started stays down
    control.start(node)
    wait_for(lambda: echo(node.peer()).ok, timeout=15, interval=0.2)
    control.stop(node)
    wait_for(lambda: not _listening(node.port), timeout=15, interval=0.2)
    wait_for(lambda: StoreRuntime.for_node(node).state == State.STOPPED, timeout=10)
    assert StoreRuntime.for_node(node).shown_state == "stopped"


def test_it_restarts_a_node_whose_configuration_changed(spawn, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from tests.conftest import free_port

    node = make_node(auto_start=True)
    drain(spawn("stores"), tmp_path / "stores.log")
    wait_for(lambda: echo(node.peer()).ok, timeout=20, interval=0.2)
    old_port = node.port
    node.port = free_port()
    node.save()
    wait_for(lambda: echo(node.peer()).ok, timeout=20, interval=0.2)
    wait_for(lambda: not _listening(old_port), timeout=10, interval=0.2)


def test_it_says_why_a_node_cannot_listen_backs_off_and_starts_once_the_port_is_free(
    spawn, tmp_path  # type: ignore[no-untyped-def]
) -> None:
    node = make_node(auto_start=True)
    squatter = socket.socket()
    squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    squatter.bind(("127.0.0.1", node.port))
    squatter.listen(1)
    drain(spawn("stores"), tmp_path / "stores.log")

    def explained() -> bool:
        runtime = StoreRuntime.for_node(node)
        return runtime.state == State.CRASHED and "backing off" in runtime.last_error

    wait_for(explained, timeout=30, interval=0.2)
    runtime = StoreRuntime.for_node(node)
    assert not runtime.is_running
    # The reason first, naming the program that holds the port (this test process).
    assert runtime.last_error.startswith(f"port {node.port} is in use by another program"), (
        runtime.last_error)
    assert f"(pid {os.getpid()})" in runtime.last_error
    assert runtime.server_name  # the supervisor that tried says who it is
    squatter.close()
    wait_for(lambda: echo(node.peer()).ok, timeout=40, interval=0.3)
    wait_for(lambda: StoreRuntime.for_node(node).is_running, timeout=10, interval=0.2)


# -- 15 kills under a retrying sender -----------------------------------------------------
KILLS = 15
REPORTS = 120
BATCH = 10  # objects per association of the retrying sender


def _retrying_sender(node, files: dict[str, str], done: threading.Event,  # type: ignore[no-untyped-def]
                     acked: set[str]) -> None:
    """Like a modality: send what is not acknowledged yet, again and again."""
    while not done.is_set():
        left = [p for p in files if p not in acked]
        if not left:
            return
        batch = [Path(p) for p in left[:BATCH]]
        result = storescu(node, batch, timeout=60)
        acked.update(acknowledged(result.stdout + result.stderr))
        if result.returncode != 0:
            time.sleep(0.2)  # node down: retry soon, as modalities do


def test_it_comes_back_within_ten_seconds_after_each_of_15_kills_and_imports_once(
    spawn, tmp_path  # type: ignore[no-untyped-def]
) -> None:
    seed = int(os.environ.get("DOSEPORT_TEST_SEED") or random.SystemRandom().randrange(10**6))
    print(f"kill gaps seeded with {seed} (DOSEPORT_TEST_SEED={seed} repeats them)")
    rng = random.Random(seed)
    files = {}
    for i in range(REPORTS):
        header = header_for(accession=f"KILL{i:04d}")
        path = write(build_ct_rdsr(events=1, header=header), tmp_path / "rdsr" / f"{i:04d}.dcm")
        files[str(path)] = header.sop_uid
    node = make_node(auto_start=True)
    drain(spawn("stores"), tmp_path / "stores.log")
    drain(spawn("worker"), tmp_path / "worker.log")
    pid = int(wait_for(lambda: _running_pid(node.pk), timeout=120, interval=0.1))  # type: ignore[call-overload]

    # Two senders, like two modalities that both hold the reports and retry until answered.
    acks: list[set[str]] = [set(), set()]
    done = threading.Event()
    senders = [threading.Thread(target=_retrying_sender, args=(node, files, done, acked),
                                daemon=True) for acked in acks]
    for sender in senders:
        sender.start()
    back_after: list[float] = []
    gaps: list[float] = []
    killed_at = time.monotonic()
    try:
        for n in range(KILLS):
            # 1-3 s after the last kill (or as soon as the node is back, if later).
            due = killed_at + rng.uniform(1.0, 3.0)
            time.sleep(max(0.0, due - time.monotonic()))
            os.kill(pid, signal.SIGKILL)
            if n:
                gaps.append(time.monotonic() - killed_at)
            killed_at, old = time.monotonic(), pid

            def back(old: int = old) -> int | None:
                new = _running_pid(node.pk)
                return new if new not in (None, old) and _listening(node.port) else None

            # Waits longer than the limit so that a miss says by how much.
            pid = int(wait_for(back, timeout=30, interval=0.05))  # type: ignore[call-overload]
            back_after.append(time.monotonic() - killed_at)
        print("back on the port after", ", ".join(f"{s:.1f}" for s in back_after), "s")
        print("kills apart by", ", ".join(f"{s:.1f}" for s in gaps), "s")
        assert max(back_after) <= 10
        assert StoreRuntime.for_node(node).restarts == KILLS
        for sender, acked in zip(senders, acks, strict=True):
            sender.join(timeout=180)
            assert not sender.is_alive(), f"only {len(acked)} of {REPORTS} acknowledged"
    finally:
        done.set()
    assert acks[0] == set(files) and acks[1] == set(files)

    uids = set(files.values())

    def imported() -> list[str]:
        return list(ImportRecord.objects.filter(outcome=Outcome.IMPORTED, store_node=node)
                    .values_list("sop_instance_uid", flat=True))

    wait_for(lambda: set(imported()) >= uids, timeout=180, interval=1.0)
    assert sorted(imported()) == sorted(uids)  # each exactly once
    assert not ImportRecord.objects.filter(outcome=Outcome.FAILED).exists()


def test_it_never_hands_the_readiness_pipe_to_the_nodes_own_children() -> None:
    env = {**os.environ, "DOSEPORT_READY_FD": "999"}
    script = ("import os\nfrom doseport.processes import notify_ready\nnotify_ready()\n"
              "print(os.environ.get('DOSEPORT_READY_FD'))")
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                         text=True, timeout=60, check=True)
    assert out.stdout.strip() == "None"
