"""Crash recovery sweep: spooled files without an ImportRecord are enqueued again."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from imports.models import ImportRecord, Outcome, Source
from store import recovery
from store.spool import Spool

pytestmark = pytest.mark.django_db


def _age(path: Path, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


def test_it_reenqueues_old_spooled_files_that_have_no_import_record(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool")
    orphan = spool.write([b"orphan"], "1.2.3.1")
    done = spool.write([b"done"], "1.2.3.2")
    kept = spool.write([b"kept"], "1.2.3.3")
    young = spool.write([b"young"], "1.2.3.4")
    for path in (orphan, done, kept):
        _age(path, 600)
    ImportRecord.objects.create(source=Source.STORE, path=str(done), outcome=Outcome.IMPORTED)
    ImportRecord.objects.create(
        source=Source.STORE, path="/elsewhere", kept_path=str(kept), outcome=Outcome.DUPLICATE
    )
    calls: list[tuple[Path, int]] = []
    found = recovery.sweep(3, spool, lambda p, n: calls.append((p, n)))
    assert found == [orphan] and calls == [(orphan, 3)]
    assert young.exists()  # too young: may still be on its way through the queue


def test_it_removes_partial_files_of_dead_writers(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool")
    spool.ensure()
    dead = spool.tmp_dir / "999999-abc.part"  # no such pid
    dead.write_bytes(b"half")
    mine = spool.tmp_dir / f"{os.getpid()}-def.part"
    mine.write_bytes(b"being written")
    assert spool.clean_tmp() == 1
    assert not dead.exists() and mine.exists()
