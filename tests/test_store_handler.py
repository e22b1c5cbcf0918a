"""The C-STORE handler called directly: order of steps, statuses, nothing half-written."""

from __future__ import annotations

import os
import stat
from io import BytesIO
from pathlib import Path

import pytest
from pydicom import Dataset, dcmread
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, generate_uid
from pynetdicom import AE, evt
from pynetdicom.association import Association
from pynetdicom.dimse_primitives import C_STORE
from pynetdicom.presentation import build_context

from store.handlers import (
    CANNOT_UNDERSTAND,
    OUT_OF_RESOURCES,
    PROCESSING_FAILURE,
    SUCCESS,
    NodeContext,
    handle_store,
)
from store.spool import Spool
from tests.builders.rdsr import build_ct_image, build_ct_rdsr, build_dx_image, build_non_dose_sr
from tests.store_helpers import encode_dataset

XRAY_RDSR = "1.2.840.10008.5.1.4.1.1.88.67"


def _event(ds: Dataset | None = None, raw: bytes | None = None, sop_class: str = "",
           implicit: bool = False) -> evt.Event:
    sop_class = sop_class or str(ds.SOPClassUID)  # type: ignore[union-attr]
    request = C_STORE()
    request.MessageID = 1
    request.AffectedSOPClassUID = sop_class
    request.AffectedSOPInstanceUID = str(ds.SOPInstanceUID) if ds else generate_uid()
    request.DataSet = BytesIO(raw if raw is not None else encode_dataset(ds, implicit))  # type: ignore[arg-type]
    syntax = ImplicitVRLittleEndian if implicit else ExplicitVRLittleEndian
    context = build_context(sop_class, syntax)
    context.context_id = 1
    assoc = Association(AE("TESTSCP"), "acceptor")
    return evt.Event(assoc, evt.EVT_C_STORE, {"request": request, "context": context.as_tuple})


class Recorder:
    def __init__(self, fail: bool = False) -> None:
        self.calls: list[tuple[Path, int]] = []
        self.fail = fail

    def __call__(self, path: Path, node_id: int) -> None:
        if self.fail:
            raise ConnectionError("queue down")
        self.calls.append((path, node_id))


@pytest.fixture
def ctx(tmp_path: Path) -> NodeContext:
    return NodeContext(node_id=7, spool=Spool(tmp_path / "spool"), enqueue=Recorder())


def _files(ctx: NodeContext) -> list[Path]:
    return sorted(p for p in ctx.spool.root.rglob("*") if p.is_file())


def test_it_spools_the_raw_bytes_then_enqueues_then_answers_success(ctx: NodeContext) -> None:
    ds = build_ct_rdsr(events=2)
    event = _event(ds)
    assert handle_store(event, ctx) == SUCCESS
    [(path, node_id)] = ctx.enqueue.calls  # type: ignore[attr-defined]
    assert node_id == 7 and path.parent.parent == ctx.spool.in_dir  # in/<UTC day>/
    assert path.name.startswith(str(ds.SOPInstanceUID) + ".")
    assert path.read_bytes().endswith(encode_dataset(ds))  # not decoded and re-encoded
    stored = dcmread(path)
    assert stored.SOPInstanceUID == ds.SOPInstanceUID
    assert stored.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
    assert list(ctx.spool.tmp_dir.iterdir()) == []
    assert ctx.counters.objects_received == 1
    assert ctx.counters.bytes_received == len(encode_dataset(ds))


def test_it_gives_every_copy_of_one_object_its_own_file(ctx: NodeContext) -> None:
    ds = build_ct_rdsr(events=1)
    assert handle_store(_event(ds), ctx) == SUCCESS
    assert handle_store(_event(ds), ctx) == SUCCESS
    assert len(ctx.spool.files()) == 2


def test_it_discards_unmatched_objects_when_the_delete_setting_says_so(ctx: NodeContext) -> None:
    ctx.del_no_match = True
    assert handle_store(_event(build_ct_image()), ctx) == SUCCESS
    assert handle_store(_event(build_non_dose_sr()), ctx) == SUCCESS  # decided by header peek
    assert _files(ctx) == [] and ctx.enqueue.calls == []  # type: ignore[attr-defined]
    assert ctx.counters.objects_discarded == 2
    assert handle_store(_event(build_ct_rdsr(events=1)), ctx) == SUCCESS
    assert len(_files(ctx)) == 1


def test_it_keeps_unmatched_objects_by_default(ctx: NodeContext) -> None:
    assert handle_store(_event(build_ct_image()), ctx) == SUCCESS
    assert len(ctx.enqueue.calls) == 1  # type: ignore[attr-defined]


def test_it_peeks_at_the_header_when_the_sop_class_is_not_enough(ctx: NodeContext) -> None:
    ctx.del_no_match = True
    dx = build_dx_image()
    assert handle_store(_event(dx, implicit=True), ctx) == SUCCESS
    # a DX image with dose fields is kept
    assert len(ctx.enqueue.calls) == 1  # type: ignore[attr-defined]


def test_it_answers_cannot_understand_when_a_needed_header_is_unreadable(
    ctx: NodeContext,
) -> None:
    ds = build_dx_image()
    raw = encode_dataset(ds)[:-3]  # the last element ends early
    status = handle_store(_event(ds, raw=raw), ctx)
    assert isinstance(status, Dataset)
    assert CANNOT_UNDERSTAND <= status.Status <= 0xCFFF
    assert "not a data set" in status.ErrorComment and len(status.ErrorComment) <= 64
    assert _files(ctx) == []
    assert ctx.counters.objects_failed == 1


def test_it_answers_out_of_resources_and_leaves_nothing_when_the_spool_fails(
    tmp_path: Path,
) -> None:
    blocker = tmp_path / "spool"
    blocker.write_bytes(b"a file where the spool folder should be")
    ctx = NodeContext(node_id=1, spool=Spool(blocker), enqueue=Recorder())
    status = handle_store(_event(build_ct_rdsr(events=1)), ctx)
    assert isinstance(status, Dataset) and status.Status == OUT_OF_RESOURCES
    assert status.ErrorComment == "cannot write the object to disk"
    assert ctx.enqueue.calls == []  # type: ignore[attr-defined]
    assert "cannot write to the spool" in ctx.counters.last_error
    blocker.unlink()
    assert handle_store(_event(build_ct_rdsr(events=1)), ctx) == SUCCESS  # recovers


def test_it_still_answers_success_when_the_queue_is_down_because_the_file_is_durable(
    tmp_path: Path,
) -> None:
    ctx = NodeContext(node_id=1, spool=Spool(tmp_path / "s"), enqueue=Recorder(fail=True))
    assert handle_store(_event(build_ct_rdsr(events=1)), ctx) == SUCCESS
    assert len(ctx.spool.files()) == 1
    assert "import queue unavailable" in ctx.counters.last_error


def test_it_never_lets_an_exception_escape(ctx: NodeContext, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    def broken(uid: str) -> str:
        raise RuntimeError("classifier bug")

    monkeypatch.setattr("store.handlers.classify_sop_class", broken)
    status = handle_store(_event(build_ct_rdsr(events=1)), ctx)
    assert isinstance(status, Dataset) and status.Status == PROCESSING_FAILURE
    assert "classifier bug" in ctx.counters.last_error


@pytest.mark.parametrize("unnamed", [True, False], ids=["O_TMPFILE", "tmp-rename"])
def test_it_writes_the_spool_file_atomically(  # type: ignore[no-untyped-def]
    tmp_path: Path, monkeypatch, unnamed: bool
) -> None:
    (tmp_path / "probe").mkdir()
    if unnamed and not Spool._can_link_unnamed(tmp_path / "probe"):
        pytest.skip("this file system cannot link O_TMPFILE files")
    spool = Spool(tmp_path / "s", unnamed=unnamed)

    def boom(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("store.spool.os.link" if unnamed else "store.spool.os.rename", boom)
    with pytest.raises(OSError):
        spool.write([b"x" * 1000], "1.2.3")
    assert list(spool.tmp_dir.iterdir()) == [] and spool.files() == []
    assert [p.name for p in spool.in_dir.rglob("*") if p.is_file()] == []
    monkeypatch.undo()
    path = spool.write([b"y" * 1000], "1.2.4")  # and the next object goes through
    assert path.read_bytes() == b"y" * 1000 and spool.files() == [path]


@pytest.mark.parametrize("unnamed", [True, False], ids=["O_TMPFILE", "tmp-rename"])
@pytest.mark.parametrize("failing", [1, 2], ids=["file-fsync", "folder-fsync"])
def test_a_failed_fsync_after_naming_leaves_no_file_and_the_next_object_goes_through(  # type: ignore[no-untyped-def]
    tmp_path: Path, monkeypatch, unnamed: bool, failing: int
) -> None:
    """The name is given before the fsyncs (O_TMPFILE) or between them (tmp/): an EIO
    from either must still leave nothing under a final name, as it was never answered."""
    (tmp_path / "probe").mkdir()
    if unnamed and not Spool._can_link_unnamed(tmp_path / "probe"):
        pytest.skip("this file system cannot link O_TMPFILE files")
    spool = Spool(tmp_path / "s", unnamed=unnamed)
    spool.write([b"w"], "1.2.2")  # folders exist before fsync is made to fail
    real_fsync = os.fsync
    calls: list[str] = []

    def fsync(fd: int) -> None:
        is_dir = stat.S_ISDIR(os.fstat(fd).st_mode)
        calls.append("folder" if is_dir else "file")
        if len(calls) == failing:
            raise OSError(5, "Input/output error")
        real_fsync(fd)

    monkeypatch.setattr("store.spool.os.fsync", fsync)
    with pytest.raises(OSError):
        spool.write([b"x" * 5000], "1.2.3")
    assert [p.name.split(".")[2] for p in spool.files()] == ["2"]  # only the earlier one
    assert list(spool.tmp_dir.iterdir()) == []
    calls.clear()
    failing = 0
    path = spool.write([b"y" * 5000], "1.2.4")
    assert path.read_bytes() == b"y" * 5000
    assert calls == ["file", "folder"]  # both made durable before the caller answers


def test_it_links_unnamed_files_where_it_can_and_leaves_nothing_in_tmp(tmp_path: Path) -> None:
    (tmp_path / "probe").mkdir()
    if not Spool._can_link_unnamed(tmp_path / "probe"):
        pytest.skip("this file system cannot link O_TMPFILE files")
    spool = Spool(tmp_path / "s")
    path = spool.write([b"abc"], "1.2.5")
    assert spool.unnamed is True
    assert list(spool.tmp_dir.iterdir()) == [] and path.read_bytes() == b"abc"
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no probe left over
