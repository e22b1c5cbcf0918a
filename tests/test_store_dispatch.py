"""The node's import hand-off: paths reach the task queue in batches, none are lost."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from imports.models import Outcome, Source
from store.dispatch import ImportDispatcher
from tests.builders.rdsr import build_ct_rdsr, write

WAIT_S = 10.0


class Queue:
    """Stands in for the task queue: records batches; can hold the first put or fail."""

    def __init__(self, hold_first: bool = False, fail: int = 0) -> None:
        self.batches: list[list[Path]] = []
        self.errors: list[str] = []
        self.fail = fail
        self.entered = threading.Event()
        self.release = threading.Event()
        if not hold_first:
            self.release.set()
        self.changed = threading.Condition()

    def put(self, paths: list[Path], node_id: int) -> None:
        assert node_id == 3
        self.entered.set()
        assert self.release.wait(WAIT_S)
        if self.fail:
            self.fail -= 1
            raise OSError("queue database is locked")
        with self.changed:
            self.batches.append(list(paths))
            self.changed.notify_all()

    def wait_for(self, count: int) -> list[Path]:
        with self.changed:
            assert self.changed.wait_for(
                lambda: sum(map(len, self.batches)) >= count, WAIT_S
            ), self.batches
            return [p for batch in self.batches for p in batch]


def paths(n: int, start: int = 0) -> list[Path]:
    return [Path(f"/spool/3/in/1.2.3.{i}.dcm") for i in range(start, start + n)]


def test_a_single_object_goes_out_at_once_and_a_burst_in_batches() -> None:
    q = Queue(hold_first=True)
    d = ImportDispatcher(3, q.put, q.errors.append, max_batch=4)
    d.start()
    d.submit(paths(1)[0], 3)
    assert q.entered.wait(WAIT_S)  # the first object did not wait for company
    for p in paths(9, start=1):  # arrive while the first put is still running
        d.submit(p, 3)
    q.release.set()
    assert q.wait_for(10) == paths(10)  # every path, in order
    assert [len(b) for b in q.batches] == [1, 4, 4, 1]
    d.stop()
    assert not d.thread.is_alive() and not q.errors


def test_stop_puts_what_is_still_waiting() -> None:
    q = Queue(hold_first=True)
    d = ImportDispatcher(3, q.put, q.errors.append, max_batch=32)
    d.start()
    for p in paths(50):
        d.submit(p, 3)
    assert q.entered.wait(WAIT_S)
    stopper = threading.Thread(target=d.stop)
    stopper.start()
    q.release.set()
    stopper.join(WAIT_S)
    assert not d.thread.is_alive()
    assert [p for b in q.batches for p in b] == paths(50)


def test_a_failed_put_is_reported_and_the_next_objects_still_go_out() -> None:
    q = Queue(fail=1)
    d = ImportDispatcher(3, q.put, q.errors.append)
    d.start()
    d.submit(paths(1)[0], 3)
    assert q.entered.wait(WAIT_S)
    d.submit(paths(1, start=1)[0], 3)
    got = q.wait_for(1)
    d.stop()
    # The failed batch is left to the recovery sweep (the files are in the spool).
    assert got == paths(1, start=1)
    assert q.errors == ["cannot queue imports: queue database is locked"]


def test_it_drops_past_its_bound_and_says_so_instead_of_growing() -> None:
    q = Queue(hold_first=True)
    d = ImportDispatcher(3, q.put, q.errors.append, max_batch=8, max_pending=5)
    d.start()
    d.submit(paths(1)[0], 3)
    assert q.entered.wait(WAIT_S)
    for p in paths(8, start=1):
        d.submit(p, 3)
    assert d.dropped == 3 and len(q.errors) == 1 and "recovery sweep" in q.errors[0]
    q.release.set()
    assert q.wait_for(6) == paths(6)
    d.stop()


@pytest.mark.django_db
def test_the_batch_task_imports_every_file(tmp_path: Path) -> None:
    from imports.models import ImportRecord
    from imports.tasks import import_files_task

    files = [str(write(build_ct_rdsr(i), tmp_path / f"ct{i}.dcm")) for i in range(3)]
    files.append(str(tmp_path / "gone.dcm"))  # vanished before the worker got to it
    assert import_files_task.call_local(files, Source.STORE, None) == 4
    outcomes = sorted(ImportRecord.objects.values_list("outcome", flat=True))
    assert outcomes.count(Outcome.IMPORTED) == 3 and len(outcomes) == 4
