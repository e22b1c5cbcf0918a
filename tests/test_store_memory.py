"""A node's memory does not follow the number of objects it received (issue 14, item 0).

bench/soak.py measures the whole node; these tests pin the two causes that were found:
the periodic recovery sweep held every spooled path of the last day at once, and glibc's
per-thread arenas kept freed memory (lib/malloc.py).
"""

from __future__ import annotations

import os
import time
import tracemalloc
from pathlib import Path

import pytest

from imports.models import ImportRecord, Outcome, Source
from lib import malloc
from store import recovery
from store.spool import Spool


def _spool_with(tmp_path: Path, count: int) -> tuple[Spool, Path]:
    """`count` old spooled files, all imported except the last one."""
    spool = Spool(tmp_path / f"spool-{count}", durable=False)
    paths = [spool.write([b"x"], f"1.2.3.{i}") for i in range(count)]
    old = time.time() - 600
    for path in paths:
        os.utime(path, (old, old))
    ImportRecord.objects.bulk_create(
        ImportRecord(source=Source.STORE, path=str(p), outcome=Outcome.IMPORTED)
        for p in paths[:-1]
    )
    return spool, paths[-1]


def _sweep_peak(spool: Spool) -> tuple[int, list[Path]]:
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        before = tracemalloc.get_traced_memory()[0]
        found = recovery.sweep(1, spool, lambda path, node_id: None)
        peak = tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()
    return peak, found


@pytest.mark.django_db
def test_it_sweeps_a_spool_in_memory_that_does_not_grow_with_its_files(tmp_path: Path) -> None:
    small, small_orphan = _spool_with(tmp_path, recovery.BATCH)
    large, large_orphan = _spool_with(tmp_path, 8 * recovery.BATCH)
    small_peak, small_found = _sweep_peak(small)
    large_peak, large_found = _sweep_peak(large)
    assert small_found == [small_orphan] and large_found == [large_orphan]
    print(f"sweep peak: {small_peak} bytes for {recovery.BATCH} files, "
          f"{large_peak} bytes for {8 * recovery.BATCH}")
    assert large_peak < 2 * small_peak  # a list of every path was 8 times larger


def test_it_gives_the_node_process_one_malloc_arena_and_trims() -> None:
    # glibc (every supported Linux): both calls reach malloc; elsewhere they are no-ops.
    assert malloc.use_one_arena() is True
    assert isinstance(malloc.trim(), bool)
