"""DCMTK storescu/echoscu against a running store node process and a real worker."""

from __future__ import annotations

from pathlib import Path

import pytest

from imports.classify import classify_sop_class
from imports.models import ImportRecord, Outcome
from store.models import StoreRuntime
from tests.conftest import samples_dir, wait_for, wait_port
from tests.store_helpers import (
    acknowledged,
    dcmtk_readable,
    echoscu,
    make_node,
    pynetdicom_send,
    start_node_and_worker,
    storescu,
    storescu_popen,
)

pytestmark = [pytest.mark.interop, pytest.mark.samples]


def _sample_files() -> list[Path]:
    files = sorted((samples_dir() / "openrem").glob("*.dcm"))
    assert len(files) >= 50
    return files


def _sop_class(path: Path) -> str:
    from pydicom import dcmread

    return str(dcmread(path, stop_before_pixels=True, specific_tags=["SOPClassUID"]).SOPClassUID)


def _start(spawn, node, tmp_path: Path, *extra: str) -> None:  # type: ignore[no-untyped-def]
    start_node_and_worker(spawn, node, tmp_path / "logs", *extra)


def _check_imported(node, files: list[Path]) -> None:  # type: ignore[no-untyped-def]
    from tests.store_helpers import sop_uid

    uids = {sop_uid(f): f for f in files}

    def all_recorded() -> bool:
        done = ImportRecord.objects.filter(store_node=node).exclude(outcome=Outcome.PENDING)
        return set(done.values_list("sop_instance_uid", flat=True)) >= set(uids)

    wait_for(all_recorded, timeout=120, interval=0.5)
    records = ImportRecord.objects.filter(store_node=node)
    assert records.count() == len(files)  # one record per object received, no replays
    assert not records.filter(outcome=Outcome.FAILED).exists(), list(
        records.filter(outcome=Outcome.FAILED).values_list("path", "error")
    )
    for uid, path in uids.items():
        if classify_sop_class(_sop_class(path)) == "importable":
            outcomes = set(records.filter(sop_instance_uid=uid).values_list("outcome", flat=True))
            assert outcomes <= {Outcome.IMPORTED, Outcome.DUPLICATE}, (path.name, outcomes)
            assert Outcome.IMPORTED in outcomes or outcomes == {Outcome.DUPLICATE}


def test_it_receives_every_sample_over_one_association(spawn, tmp_path) -> None:  # type: ignore[no-untyped-def]
    node = make_node(allowed_calling_aets="STORESCU, ECHOSCU, PYSCU")
    files = _sample_files()
    _start(spawn, node, tmp_path)
    good, bad = dcmtk_readable(files)
    assert len(bad) <= 2, bad  # DCMTK cannot parse one sample; pynetdicom sends it
    result = storescu(node, good)
    assert result.returncode == 0, result.stderr[-2000:]
    assert acknowledged(result.stdout + result.stderr) == [str(f) for f in good]
    assert pynetdicom_send(node, bad) == [0] * len(bad)
    _check_imported(node, files)
    assert echoscu(node).returncode == 0


def test_it_receives_every_sample_over_four_parallel_associations(spawn, tmp_path) -> None:  # type: ignore[no-untyped-def]
    node = make_node()
    files = _sample_files()
    _start(spawn, node, tmp_path, "--processes", "2")  # two listeners share the port
    good, bad = dcmtk_readable(files)
    groups = [good[i::4] for i in range(4)]
    senders = [storescu_popen(node, group) for group in groups]
    outputs = [sender.communicate(timeout=180)[0] for sender in senders]
    for sender, output, group in zip(senders, outputs, groups, strict=True):
        assert sender.returncode == 0, output[-2000:]
        assert acknowledged(output) == [str(f) for f in group]
    assert pynetdicom_send(node, bad) == [0] * len(bad)
    _check_imported(node, files)

    def all_counted() -> bool:  # the main process adds up its helper's counters
        runtime = StoreRuntime.for_node(node)
        # 5 senders; the worker's periodic C-ECHO of every node may add one more.
        return runtime.objects_received == len(files) and runtime.associations_total >= 5

    wait_for(all_counted, timeout=10, interval=0.3)


def test_it_answers_echo_and_rejects_callers_not_on_the_allow_list(spawn) -> None:  # type: ignore[no-untyped-def]
    node = make_node(allowed_calling_aets="MODALITY1")
    spawn("store", "run", str(node.pk))
    wait_port(node.port, timeout=60)
    assert echoscu(node, calling="MODALITY1").returncode == 0
    refused = echoscu(node, calling="INTRUDER")
    assert refused.returncode != 0
    assert "Calling AE Title Not Recognized" in refused.stdout + refused.stderr
    sent = storescu(node, _sample_files()[:1], calling="INTRUDER")
    assert sent.returncode != 0 and not acknowledged(sent.stdout + sent.stderr)

    def counted() -> bool:
        runtime = StoreRuntime.for_node(node)
        return runtime.associations_rejected == 2 and "INTRUDER" in runtime.last_error

    wait_for(counted, timeout=10, interval=0.2)
