"""Crash recovery sweep: spooled files without an ImportRecord are enqueued again."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from imports.models import ImportRecord, Outcome, Source
from store import recovery
from store.spool import Spool


def _age(path: Path, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


@pytest.mark.django_db
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


@pytest.mark.django_db
def test_it_removes_partial_files_of_dead_writers(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool")
    spool.ensure()
    dead = spool.tmp_dir / "999999-abc.part"  # no such pid
    dead.write_bytes(b"half")
    mine = spool.tmp_dir / f"{os.getpid()}-def.part"
    mine.write_bytes(b"being written")
    assert spool.clean_tmp() == 1
    assert not dead.exists() and mine.exists()


@pytest.mark.interop
def test_it_imports_an_orphaned_spool_file_when_the_node_starts(spawn, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A crash after the spool write but before the enqueue: the start-up sweep recovers it."""
    from tests.builders.rdsr import build_ct_rdsr, header_for, write
    from tests.conftest import wait_for
    from tests.store_helpers import make_node, start_node_and_worker

    node = make_node()
    header = header_for(accession="ORPHAN1")
    built = write(build_ct_rdsr(events=1, header=header), tmp_path / "orphan.dcm")
    orphan = Spool.for_node(node.pk).write([built.read_bytes()], header.sop_uid)
    _age(orphan, 600)
    start_node_and_worker(spawn, node, tmp_path / "logs")

    def imported() -> bool:
        return ImportRecord.objects.filter(
            sop_instance_uid=header.sop_uid, outcome=Outcome.IMPORTED
        ).exists()

    wait_for(imported, timeout=60, interval=0.5)
    record = ImportRecord.objects.get(path=str(orphan))
    assert record.store_node_id == node.pk and record.source == Source.STORE
