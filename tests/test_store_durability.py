"""SIGKILL the node while storescu sends 500 RDSRs: nothing acknowledged is ever lost.

After the supervisor restarts the node and the sender resends what was not acknowledged,
every object that had been answered 0x0000 is imported exactly once.
"""

from __future__ import annotations

import os
import random
import signal
import threading
from pathlib import Path

import pytest

from imports.models import ImportRecord, Outcome
from lib.dicom import echo
from store.models import StoreRuntime
from tests.builders.rdsr import build_ct_rdsr, header_for, write
from tests.conftest import wait_for
from tests.store_helpers import (
    SUCCESS_LINE,
    acknowledged,
    drain,
    make_node,
    storescu,
    storescu_popen,
)

pytestmark = pytest.mark.interop

COUNT = 500


def _build(folder: Path) -> dict[str, str]:
    """Write COUNT small CT RDSRs; returns path -> SOP Instance UID."""
    files: dict[str, str] = {}
    for i in range(COUNT):
        header = header_for(accession=f"DUR{i:04d}")
        path = write(build_ct_rdsr(events=1, header=header), folder / f"rdsr-{i:04d}.dcm")
        files[str(path)] = header.sop_uid
    return files


def _running_pid(node_id: int) -> int | None:
    runtime = StoreRuntime.for_node(node_id)
    return runtime.pid if runtime.is_running else None


def test_it_imports_every_acknowledged_object_exactly_once_after_sigkill(
    spawn, tmp_path  # type: ignore[no-untyped-def]
) -> None:
    files = _build(tmp_path / "rdsr")
    node = make_node(auto_start=True)
    drain(spawn("stores"), tmp_path / "stores.log")
    drain(spawn("worker"), tmp_path / "worker.log")
    first_pid = int(wait_for(lambda: _running_pid(node.pk), timeout=60, interval=0.1))  # type: ignore[call-overload]

    seed = int(os.environ.get("DOSEPORT_TEST_SEED") or random.SystemRandom().randrange(10**6))
    print(f"kill point seeded with {seed} (DOSEPORT_TEST_SEED={seed} repeats it)")
    kill_after = random.Random(seed).randint(20, COUNT - 50)
    sender = storescu_popen(node, [Path(p) for p in files])
    lines: list[str] = []
    killed = threading.Event()

    def read() -> None:
        assert sender.stdout is not None
        done = 0
        for line in sender.stdout:
            lines.append(line)
            if SUCCESS_LINE in line:
                done += 1
                if done == kill_after and not killed.is_set():
                    os.kill(first_pid, signal.SIGKILL)
                    killed.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    sender.wait(timeout=240)
    reader.join(timeout=10)
    assert killed.is_set(), "the sender finished before the node was killed"
    acked = acknowledged("".join(lines))
    assert kill_after <= len(acked) < COUNT

    wait_for(lambda: echo(node.peer()).ok, timeout=15, interval=0.2)
    assert _running_pid(node.pk) != first_pid
    rest = [Path(p) for p in files if p not in set(acked)]
    resent = storescu(node, rest, timeout=240)
    assert resent.returncode == 0, resent.stderr[-2000:]
    assert len(acknowledged(resent.stdout + resent.stderr)) == len(rest)

    all_uids = set(files.values())

    def all_imported() -> bool:
        imported = ImportRecord.objects.filter(outcome=Outcome.IMPORTED, store_node=node)
        return set(imported.values_list("sop_instance_uid", flat=True)) >= all_uids

    wait_for(all_imported, timeout=240, interval=1.0)
    imported = list(
        ImportRecord.objects.filter(outcome=Outcome.IMPORTED).values_list(
            "sop_instance_uid", flat=True
        )
    )
    assert len(imported) == len(set(imported)) == COUNT  # each exactly once
    assert not ImportRecord.objects.filter(outcome=Outcome.FAILED).exists()
