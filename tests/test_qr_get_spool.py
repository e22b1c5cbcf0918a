"""C-GET sub-operations go through the store spool: named, written and fsynced exactly
like C-STORE objects before they are answered, and imported from there."""

from __future__ import annotations

import os
import shutil
from io import BytesIO
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from pydicom import dcmread

from lib.dicom import Received
from qr.getstore import GetReceiver, spool_for
from store.spool import node_spool_dir
from tests.builders.rdsr import build_ct_rdsr, header_for
from tests.store_helpers import encode_dataset

EXPLICIT = "1.2.840.10008.1.2.1"
NODE_ID = 987654  # a spool no other test uses


def _event(ds: Any) -> Received:
    """What lib.dicom's session hands the receiver for one C-GET sub-operation."""
    return Received(str(ds.SOPClassUID), str(ds.SOPInstanceUID), EXPLICIT, "PACS",
                    BytesIO(encode_dataset(ds)).getbuffer())


@pytest.fixture
def receiver() -> Any:
    shutil.rmtree(node_spool_dir(NODE_ID), ignore_errors=True)
    move = SimpleNamespace(pk=1, store_id=NODE_ID, beat=lambda: None)
    yield GetReceiver(move)  # type: ignore[arg-type]
    shutil.rmtree(node_spool_dir(NODE_ID), ignore_errors=True)


def test_it_spools_and_fsyncs_a_c_get_object_before_answering_success(
    receiver: GetReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[int] = []  # inodes, in the order fsync() saw them
    real_fsync = os.fsync

    def recording_fsync(fd: int) -> None:
        synced.append(os.fstat(fd).st_ino)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    header = header_for(accession="GET1")
    ds = build_ct_rdsr(events=1, header=header)
    status = receiver.handle(_event(ds))
    assert status == 0x0000
    spool = spool_for(receiver.move)
    assert spool.root == node_spool_dir(NODE_ID)
    [path] = spool.files()
    assert path.parent.parent == spool.in_dir  # in/<day>/, like a C-STORE object
    assert path.name.startswith(header.sop_uid + ".") and path.suffix == ".dcm"
    assert receiver.pending == [path]
    # The file and its folder were fsynced before handle() returned the status.
    assert path.stat().st_ino in synced and path.parent.stat().st_ino in synced
    read = dcmread(path)
    assert read.SOPInstanceUID == header.sop_uid
    assert read.file_meta.TransferSyntaxUID == EXPLICIT
    assert read.file_meta.SourceApplicationEntityTitle == "PACS"
    assert read.AccessionNumber == "GET1"


def test_it_answers_out_of_resources_and_keeps_nothing_when_the_spool_fails(
    receiver: GetReceiver,
) -> None:
    root = node_spool_dir(NODE_ID)
    root.parent.mkdir(parents=True, exist_ok=True)
    root.write_text("not a folder")  # every write into the spool fails
    try:
        assert receiver.handle(_event(build_ct_rdsr(events=1))) == 0xA700
        assert receiver.pending == []
    finally:
        root.unlink()


def test_it_uses_a_spool_of_its_own_when_the_store_node_was_deleted() -> None:
    move = SimpleNamespace(pk=2, store_id=None)
    spool = spool_for(move)  # type: ignore[arg-type]
    assert spool.root.parent == Path(node_spool_dir(1)).parent
    assert spool.root.name == "get"


def test_it_imports_c_get_objects_from_the_store_nodes_spool(db: Any) -> None:
    from imports.models import ImportRecord
    from tests.test_qr_move import World, srs, two_ct_studies

    objs = two_ct_studies()
    w = World(objs).start(retrieve_method="get")
    try:
        move = w.move(w.query(modalities=["CT"]))
    finally:
        w.stop()
    spool = spool_for(move)
    paths = list(ImportRecord.objects.values_list("path", flat=True))
    assert len(paths) == len(srs(objs)) == 4
    assert all(Path(p).parent.parent == spool.in_dir for p in paths)
