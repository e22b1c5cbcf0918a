"""The C-STORE fast lane (store/acceptor/lane.py) against real senders, and its wire encodings.

The lane must be indistinguishable from pynetdicom's own path: same bytes in the spool,
same statuses, same counters; and it must cope with PDU layouts DCMTK and pynetdicom do
not produce (command and data set in one PDU, two messages in one PDU, a command split
over PDUs).
"""

from __future__ import annotations

import subprocess
from io import BytesIO
from pathlib import Path

import pytest
from pydicom import Dataset, dcmread
from pydicom.filereader import read_dataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid
from pynetdicom import AE
from pynetdicom.dimse_messages import C_STORE_RQ, C_STORE_RSP
from pynetdicom.dimse_primitives import C_STORE
from pynetdicom.dsutils import encode
from pynetdicom.pdu import P_DATA_TF

from nodes.models import DeleteSettings, StoreNode
from store.models import StoreRuntime
from store.spool import node_spool_dir
from store.wire import (
    command_pdus,
    p_data_pdu,
    parse_command,
    pdv_item,
    store_response,
)
from tests.builders.rdsr import build_ct_image, build_ct_rdsr, build_dx_image, write
from tests.conftest import require_tool, wait_for, wait_port
from tests.store_helpers import dcmtk_env, drain, encode_dataset, make_node

XRAY_RDSR = "1.2.840.10008.5.1.4.1.1.88.67"
MR_IMAGE = "1.2.840.10008.5.1.4.1.1.4"
VERIFICATION = "1.2.840.10008.1.1"


def _store_command(ds: Dataset, message_id: int) -> bytes:
    """The command set of a C-STORE-RQ for `ds`, as pynetdicom encodes it."""
    primitive = C_STORE()
    primitive.MessageID = message_id
    primitive.AffectedSOPClassUID = ds.SOPClassUID
    primitive.AffectedSOPInstanceUID = ds.SOPInstanceUID
    primitive.Priority = 0
    primitive.DataSet = BytesIO(b"\0")  # only says that a data set follows
    message = C_STORE_RQ()
    message.primitive_to_message(primitive)
    command = encode(message.command_set, True, True)
    assert command is not None
    return command


def _mr_image() -> Dataset:
    ds = build_ct_image()
    ds.SOPClassUID = MR_IMAGE
    ds.Modality = "MR"
    return ds


def _spooled(node: StoreNode) -> dict[str, Path]:
    """SOP Instance UID -> spool file."""
    found = {}
    for path in (node_spool_dir(node.pk) / "in").rglob("*.dcm"):
        found[str(dcmread(path, stop_before_pixels=True).SOPInstanceUID)] = path
    return found


def _start(spawn, tmp_path: Path, name: str, **env: str) -> StoreNode:  # type: ignore[no-untyped-def]
    node = make_node(name=name, ae_title=name.upper()[:16])
    drain(spawn("store", "run", str(node.pk), env=env), tmp_path / f"{name}.log")
    wait_port(node.port, timeout=20)
    return node


def _associate(node: StoreNode, *sop_classes: str, max_pdu: int = 16382):  # type: ignore[no-untyped-def]
    ae = AE(ae_title="LANESCU")
    ae.maximum_pdu_size = max_pdu
    ae.dimse_timeout = 20
    for uid in sop_classes:
        ae.add_requested_context(uid, [ExplicitVRLittleEndian])
    ae.add_requested_context(VERIFICATION)
    assoc = ae.associate("127.0.0.1", node.port, ae_title=node.ae_title)
    assert assoc.is_established
    return assoc


def _raw(assoc):  # type: ignore[no-untyped-def]
    """Hold the association's own thread off the DIMSE queue: the test reads it (as
    pynetdicom's send_* methods do)."""
    assoc._reactor_checkpoint.clear()
    wait_for(lambda: assoc._is_paused, timeout=5)
    return assoc


# -- wire encodings ----------------------------------------------------------------------
def test_the_store_response_is_byte_for_byte_what_pynetdicom_encodes() -> None:
    sop_class, sop_uid = XRAY_RDSR, generate_uid()
    for status in (0x0000, 0xA700):
        primitive = C_STORE()
        primitive.MessageIDBeingRespondedTo = 7
        primitive.AffectedSOPClassUID = sop_class
        primitive.AffectedSOPInstanceUID = sop_uid
        primitive.Status = status
        message = C_STORE_RSP()
        message.primitive_to_message(primitive)
        theirs = encode(message.command_set, True, True)
        assert store_response(sop_class, sop_uid, 7, status) == theirs


def test_the_store_response_carries_an_error_comment_pydicom_can_read() -> None:
    raw = store_response(XRAY_RDSR, "1.2.3", 9, 0xA700, "cannot write the object to disk")
    ds = read_dataset(BytesIO(raw), is_implicit_VR=True, is_little_endian=True)
    assert ds.Status == 0xA700 and ds.MessageIDBeingRespondedTo == 9
    assert ds.ErrorComment == "cannot write the object to disk"
    assert ds.CommandGroupLength == len(raw) - 12


def test_a_command_is_split_into_pdus_no_larger_than_the_peer_accepts() -> None:
    command = store_response(XRAY_RDSR, generate_uid(), 1, 0)
    stream = command_pdus(3, command, 40)
    fragments: list[bytes] = []
    pos = 0
    while pos < len(stream):
        length = int.from_bytes(stream[pos + 2:pos + 6], "big")
        assert length <= 40
        pdu = P_DATA_TF()
        pdu.decode(stream[pos:pos + 6 + length])
        for item in pdu.presentation_data_value_items:
            assert item.context_id == 3
            assert item.presentation_data_value is not None
            fragments.append(item.presentation_data_value)
        pos += 6 + length
    assert len(fragments) > 1
    assert b"".join(f[1:] for f in fragments) == command
    assert [f[0] for f in fragments] == [0x01] * (len(fragments) - 1) + [0x03]


def test_a_malformed_command_is_not_parsed() -> None:
    good = store_response(XRAY_RDSR, "1.2.3", 1, 0)
    assert parse_command(good) is not None
    assert parse_command(good[:-3]) is None  # value runs past the end
    assert parse_command(b"\x08\x00\x16\x00\x02\x00\x00\x00ab") is None  # not group 0000


# -- against a running node --------------------------------------------------------------
def test_the_lane_spools_exactly_what_pynetdicoms_path_spools(spawn, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Same senders and objects into a node with the lane and one without: same bytes."""
    lane = _start(spawn, tmp_path, "lane")
    plain = _start(spawn, tmp_path, "plain", DOSEPORT_STORE_FAST_LANE="false")
    objects = [build_ct_rdsr(events=20), build_ct_image(), build_dx_image()]
    for node in (lane, plain):
        assoc = _associate(node, *{str(ds.SOPClassUID) for ds in objects})
        try:
            for ds in objects:
                assert assoc.send_c_store(ds).Status == 0x0000
                assert assoc.send_c_echo().Status == 0x0000  # interleaved C-ECHO
        finally:
            assoc.release()
    mine, theirs = _spooled(lane), _spooled(plain)
    assert set(mine) == set(theirs) == {str(ds.SOPInstanceUID) for ds in objects}
    for uid, path in mine.items():
        assert path.read_bytes() == theirs[uid].read_bytes()
    for node in (lane, plain):
        wait_for(lambda: StoreRuntime.for_node(node).objects_received == 3, timeout=10)  # noqa: B023
    assert StoreRuntime.for_node(lane).bytes_received == StoreRuntime.for_node(
        plain).bytes_received


def test_command_and_data_set_in_one_pdu_and_two_messages_in_one_pdu(spawn, tmp_path) -> None:  # type: ignore[no-untyped-def]
    node = _start(spawn, tmp_path, "packed")
    first, second = build_ct_rdsr(events=3), build_ct_rdsr(events=4)
    assoc = _raw(_associate(node, XRAY_RDSR))
    context_id = assoc.accepted_contexts[0].context_id

    def items(ds: Dataset, message_id: int) -> tuple[bytes, bytes, bytes]:
        command = _store_command(ds, message_id)
        data = encode_dataset(ds)
        half = len(data) // 2
        return (pdv_item(context_id, 0x03, command), pdv_item(context_id, 0x00, data[:half]),
                pdv_item(context_id, 0x02, data[half:]))

    c1, d1a, d1b = items(first, 1)
    c2, d2a, d2b = items(second, 2)
    try:
        # PDU 1: command 1 and half its data set; PDU 2: the rest of 1 and all of 2.
        assoc.dul.socket.send(p_data_pdu([c1, d1a]))
        assoc.dul.socket.send(p_data_pdu([d1b, c2, d2a, d2b]))
        answers = {}
        for _ in range(2):
            _, answer = assoc.dimse.get_msg(True)
            assert answer is not None, "no C-STORE-RSP within the DIMSE timeout"
            answers[answer.MessageIDBeingRespondedTo] = answer.Status
        assert answers == {1: 0x0000, 2: 0x0000}
        assoc._reactor_checkpoint.set()
        assert assoc.send_c_echo().Status == 0x0000
    finally:
        assoc.release()
    spooled = _spooled(node)
    for ds in (first, second):
        stored = spooled[str(ds.SOPInstanceUID)].read_bytes()
        assert stored.endswith(encode_dataset(ds))


def test_a_command_split_over_pdus_and_a_tiny_peer_pdu_limit(spawn, tmp_path) -> None:  # type: ignore[no-untyped-def]
    node = _start(spawn, tmp_path, "split")
    ds = build_ct_rdsr(events=2)
    assoc = _raw(_associate(node, XRAY_RDSR, max_pdu=64))  # our response must come in pieces
    context_id = assoc.accepted_contexts[0].context_id
    command = _store_command(ds, 5)
    try:
        for start in range(0, len(command), 30):
            last = start + 30 >= len(command)
            chunk = command[start:start + 30]
            assoc.dul.socket.send(p_data_pdu([pdv_item(context_id, 0x03 if last else 0x01,
                                                       chunk)]))
        assoc.dul.socket.send(p_data_pdu([pdv_item(context_id, 0x02, encode_dataset(ds))]))
        _, answer = assoc.dimse.get_msg(True)
        assert answer is not None and answer.Status == 0x0000
        assert answer.MessageIDBeingRespondedTo == 5
        assoc._reactor_checkpoint.set()
    finally:
        assoc.release()
    assert str(ds.SOPInstanceUID) in _spooled(node)


def test_objects_no_importer_wants_follow_the_delete_setting(spawn, tmp_path) -> None:  # type: ignore[no-untyped-def]
    settings = DeleteSettings.get()
    settings.del_no_match = True
    settings.save()
    node = _start(spawn, tmp_path, "discard")
    mr, report = _mr_image(), build_ct_rdsr(events=1)
    assoc = _associate(node, MR_IMAGE, XRAY_RDSR)
    try:
        assert assoc.send_c_store(mr).Status == 0x0000
        assert assoc.send_c_store(report).Status == 0x0000
    finally:
        assoc.release()
    assert set(_spooled(node)) == {str(report.SOPInstanceUID)}
    wait_for(lambda: StoreRuntime.for_node(node).objects_discarded == 1, timeout=10)
    assert StoreRuntime.for_node(node).objects_received == 1


def test_dcmtk_sending_in_small_pdus(spawn, tmp_path) -> None:  # type: ignore[no-untyped-def]
    require_tool("storescu")
    node = _start(spawn, tmp_path, "dcmtk")
    ds = build_ct_image()
    ds.Rows = ds.Columns = 256
    ds.BitsAllocated = ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 0
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.PixelData = bytes(range(256)) * 512  # 128 KiB: 32 PDUs of 4 KiB
    path = write(ds, tmp_path / "ct.dcm")
    done = subprocess.run(
        ["storescu", "--max-send-pdu", "4096", "-aec", node.ae_title, "127.0.0.1",
         str(node.port), str(path)],
        env=dcmtk_env(), capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 0, done.stderr
    stored = dcmread(_spooled(node)[str(ds.SOPInstanceUID)])
    assert stored.PixelData == ds.PixelData
    assert str(stored.file_meta.SourceApplicationEntityTitle).strip() == "STORESCU"


@pytest.mark.parametrize("lane", ["true", "false"])
def test_an_object_cut_off_by_an_abort_leaves_nothing(spawn, tmp_path, lane: str) -> None:  # type: ignore[no-untyped-def]
    node = _start(spawn, tmp_path, f"abort{lane}", DOSEPORT_STORE_FAST_LANE=lane)
    ds = build_ct_rdsr(events=30)
    assoc = _associate(node, XRAY_RDSR)
    context_id = assoc.accepted_contexts[0].context_id
    command = _store_command(ds, 1)
    data = encode_dataset(ds)
    assoc.dul.socket.send(p_data_pdu([pdv_item(context_id, 0x03, command),
                                      pdv_item(context_id, 0x00, data[:1000])]))
    assoc.abort()
    spool = node_spool_dir(node.pk)
    wait_for(lambda: not [p for p in spool.rglob("*") if p.is_file()], timeout=10)
    assoc = _associate(node, XRAY_RDSR)
    try:
        assert assoc.send_c_store(ds).Status == 0x0000
    finally:
        assoc.release()
    assert list(_spooled(node)) == [str(ds.SOPInstanceUID)]
