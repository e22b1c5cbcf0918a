"""`doseport run`'s Supervisor (doseport/processes.py): restart with backoff, clean stop.

The children are real `sleep`/`python` processes; the store supervisor's decisions on top
of the same Child are in test_store_supervisor.py.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from doseport.processes import Child, Exit, Supervisor, stop_children


@pytest.fixture
def children() -> Iterator[list[Child]]:
    made: list[Child] = []
    yield made
    for child in made:
        if child.proc is not None and child.proc.poll() is None:
            child.proc.kill()
            child.proc.wait(timeout=5)


def _until(check: Callable[[], object], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError(f"not true within {timeout} s")


def test_it_restarts_a_killed_child_within_a_second_then_backs_off(children: list[Child]) -> None:
    child = Child("sleeper", ["sleep", "60"])
    children.append(child)
    supervisor = Supervisor([child])
    assert supervisor.run_once()
    first = child.proc
    assert first is not None and first.poll() is None
    assert not supervisor.run_once()  # running: nothing to do

    first.kill()
    first.wait(timeout=5)
    assert supervisor.run_once()  # notices the death
    assert child.proc is None and child.next_start - time.monotonic() <= 0.5
    _until(lambda: supervisor.run_once() and child.proc is not None)
    second = child.proc
    assert second is not None and second is not first and second.poll() is None

    second.kill()
    second.wait(timeout=5)
    supervisor.run_once()
    assert child.failures == 2
    assert child.next_start - time.monotonic() > 0.5  # second failure in a row waits longer
    supervisor.stop_all()


def test_it_forgets_failed_starts_once_a_child_has_run_its_start_seconds(
    children: list[Child],
) -> None:
    child = Child("sleeper", ["sleep", "60"], failures=5)
    children.append(child)
    child.start()
    child.started_at -= 1.5  # supervisord's startsecs: running this long counts as started
    assert child.check_ready(time.monotonic(), alive=True)
    assert child.failures == 0 and child.backoff() == 0.5


def test_it_caps_the_backoff_at_thirty_seconds() -> None:
    child = Child("crasher", ["false"], failures=20, started_at=time.monotonic())
    assert child.backoff() == 30.0


def test_it_stops_all_children_and_kills_those_ignoring_sigterm(
    children: list[Child], tmp_path: Path
) -> None:
    ready = tmp_path / "ready"
    stubborn = Child("stubborn", [
        sys.executable, "-c",
        "import pathlib, signal, sys, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "pathlib.Path(sys.argv[1]).touch()\n"
        "time.sleep(60)\n",
        str(ready),
    ])
    polite = Child("polite", ["sleep", "60"])
    children.extend([stubborn, polite])
    Supervisor([stubborn, polite]).run_once()
    procs = [stubborn.proc, polite.proc]
    _until(ready.exists, timeout=20)  # the stubborn one ignores SIGTERM from here on
    started = time.monotonic()
    stop_children([stubborn, polite], grace_s=1.0)
    assert time.monotonic() - started < 5
    assert [p.returncode for p in procs if p is not None] == [-9, -15]
    assert stubborn.proc is None and polite.proc is None


def test_it_says_how_a_child_ended() -> None:
    assert Exit(-9, 0.5).reason == "killed by signal SIGKILL"
    assert Exit(3, 0.5).reason == "exited with code 3"
    assert Exit(-200, 0.5).reason == "killed by signal 200"
