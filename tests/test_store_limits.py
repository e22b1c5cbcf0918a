"""Bounded input (issue 12): each attack on a store node tried as an attacker would, on
loopback. Each of these failed on the node before store/acceptor existed."""

from __future__ import annotations

import random
import socket
import struct
import time
import zlib
from pathlib import Path

import pytest
from pydicom.dataset import FileMetaDataset
from pydicom.uid import UID, DeflatedExplicitVRLittleEndian, ExplicitVRLittleEndian, generate_uid
from pynetdicom import AE, _config
from pynetdicom.dsutils import encode_file_meta

from lib.dicom import Peer, echo
from store.spool import node_spool_dir
from store.wire import p_data_pdu, pdv_item
from tests.builders.rdsr import build_ct_image, build_ct_rdsr
from tests.conftest import wait_for, wait_port
from tests.store_helpers import (
    drain,
    encode_dataset,
    make_node,
    pynetdicom_send,
    store_command,
)

pytestmark = pytest.mark.interop

CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2"
XRAY_RDSR = "1.2.840.10008.5.1.4.1.1.88.67"
SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"
MIB = 1024 * 1024


def _rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def _fds(pid: int) -> int:
    return len(list(Path(f"/proc/{pid}/fd").iterdir()))


@pytest.fixture
def running(spawn, tmp_path):  # type: ignore[no-untyped-def]
    node = make_node()
    log = tmp_path / "node.log"
    proc = drain(spawn("store", "run", str(node.pk)), log)
    wait_port(node.port, timeout=60)
    return node, proc, log


def _echo_ok(node) -> bool:  # type: ignore[no-untyped-def]
    return echo(node.peer()).ok


def _associate(node, *sop_classes: str, syntax: str = ExplicitVRLittleEndian):  # type: ignore[no-untyped-def]
    ae = AE(ae_title="ATTACKER")
    ae.dimse_timeout = 20
    for uid in sop_classes:
        ae.add_requested_context(uid, [syntax])
    assoc = ae.associate("127.0.0.1", node.port, ae_title=node.ae_title)
    assert assoc.is_established
    return assoc


def _send_file_as_is(node, sop_class: str, path: Path, syntax: str = ExplicitVRLittleEndian) -> int:  # type: ignore[no-untyped-def]
    """C-STORE a file's data set bytes exactly as they are in the file."""
    assoc = _associate(node, sop_class, syntax=syntax)
    _config.STORE_SEND_CHUNKED_DATASET = True
    try:
        response = assoc.send_c_store(path)
    finally:
        _config.STORE_SEND_CHUNKED_DATASET = False
        assoc.release()
    return int(getattr(response, "Status", -1))


def _file(path: Path, sop_class: str, data: bytes, syntax: str = ExplicitVRLittleEndian) -> Path:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UID(sop_class)
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = UID(syntax)
    path.write_bytes(b"\0" * 128 + b"DICM" + encode_file_meta(meta) + data)
    return path


def _no_traceback(log: Path) -> None:
    text = log.read_text()
    assert "Traceback" not in text, text[-3000:]


def test_it_refuses_huge_association_requests_unread(running) -> None:  # type: ignore[no-untyped-def]
    """Was: 10 connections announcing a 60 MiB A-ASSOCIATE-RQ: RSS +640 MiB."""
    node, proc, log = running
    before = _rss_kb(proc.pid)
    socks = []
    try:
        for _ in range(10):
            sock = socket.create_connection(("127.0.0.1", node.port), timeout=5)
            sock.sendall(struct.pack(">BBL", 0x01, 0, 60 * MIB) + b"\0" * 4096)
            socks.append(sock)
        time.sleep(1.0)
        assert _rss_kb(proc.pid) - before < 40 * 1024
        assert _echo_ok(node)
    finally:
        for sock in socks:
            sock.close()
    assert "PDU of 62914560 bytes before the association" in log.read_text()
    _no_traceback(log)


def test_idle_connections_from_one_address_neither_block_others_nor_stay(running) -> None:  # type: ignore[no-untyped-def]
    """Was: 21 idle TCP connections blocked echo for 29 s."""
    node, proc, log = running
    socks = []
    try:
        for _ in range(21):
            sock = socket.socket()
            sock.bind(("127.0.0.2", 0))  # another loopback address: another peer
            sock.settimeout(10)
            try:
                sock.connect(("127.0.0.1", node.port))
            except OSError:
                pass
            socks.append(sock)
        started = time.monotonic()
        assert _echo_ok(node)
        assert time.monotonic() - started < 3
        # The node closes each idle one once the first-PDU wait (5 s) is over.
        deadline = time.monotonic() + 15
        for sock in socks:
            try:
                while sock.recv(1024):
                    pass
            except OSError:
                pass
            assert time.monotonic() < deadline
    finally:
        for sock in socks:
            sock.close()
    assert "connection refused (16 connections open from this address)" in log.read_text()
    _no_traceback(log)


def test_a_deflate_bomb_is_inflated_no_further_than_the_header_look(running, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Was: a 400 KiB deflated Secondary Capture inflating to 400 MiB: store RSS +576 MiB."""
    node, proc, log = running
    ds = build_ct_image()
    ds.SOPClassUID = SECONDARY_CAPTURE
    if "PixelData" in ds:
        del ds.PixelData
    header = encode_dataset(ds)
    packer = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    parts = [packer.compress(header + b"\xe0\x7f\x10\x00OB\0\0" + struct.pack("<I", 400 * MIB))]
    zeros = bytes(MIB)
    parts += [packer.compress(zeros) for _ in range(400)]
    parts.append(packer.flush())
    bomb = b"".join(parts)
    assert len(bomb) < MIB
    path = _file(tmp_path / "bomb.dcm", SECONDARY_CAPTURE, bomb, DeflatedExplicitVRLittleEndian)
    before = _rss_kb(proc.pid)
    status = _send_file_as_is(node, SECONDARY_CAPTURE, path, DeflatedExplicitVRLittleEndian)
    assert status in (0x0000, 0xC000), hex(status)
    assert _rss_kb(proc.pid) - before < 60 * 1024
    assert _echo_ok(node)
    _no_traceback(log)


def test_over_long_uids_are_refused_before_a_spool_file_is_opened(running) -> None:  # type: ignore[no-untyped-def]
    """Was: 30 C-STOREs with a 70,000-character SOP Instance UID leaked 30 spool files."""
    node, proc, log = running
    wait_for(lambda: _echo_ok(node), timeout=10)
    fds = _fds(proc.pid)
    ds = build_ct_rdsr(events=1)
    data = encode_dataset(ds)
    # The node logs an identical warning once a minute (doseport.logfilters.CollapseRepeats)
    # and its text names the peer's address and port: under load the system can give a
    # later association the port of an earlier one, and then its line is counted, not
    # written. So each short UID differs, and the long ones are counted per client port.
    long_ports: set[int] = set()
    for n in range(30):
        # past the command cap, or just too long (and different each time)
        uid = "1." + ("2" * 70_000 if n % 2 else f"{n:02d}" + "2" * 66)
        assoc = _associate(node, XRAY_RDSR)
        if n % 2:
            long_ports.add(assoc.dul.socket.socket.getsockname()[1])
        context_id = assoc.accepted_contexts[0].context_id
        command = store_command(XRAY_RDSR, uid, n + 1)
        try:
            for start in range(0, len(command), 16000):
                last = start + 16000 >= len(command)
                assoc.dul.socket.send(p_data_pdu([pdv_item(
                    context_id, 0x03 if last else 0x01, command[start:start + 16000])]))
            assoc.dul.socket.send(p_data_pdu([pdv_item(context_id, 0x02, data)]))
            wait_for(lambda: assoc.is_aborted or not assoc.is_alive(), timeout=10)  # noqa: B023
        finally:
            if assoc.is_established:
                assoc.abort()
    spool = node_spool_dir(node.pk)
    wait_for(lambda: _fds(proc.pid) <= fds + 2, timeout=10)
    assert [p for p in spool.rglob("*") if p.is_file() and p.suffix == ".dcm"] == []
    assert pynetdicom_send(node, [_write(build_ct_rdsr(events=1), spool)]) == [0]
    # the node writes its refusal after it aborted: the last line may lag the abort
    # (under load the last lines may lag the abort by more than the other checks took)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        text = log.read_text()
        if (text.count("command set larger than 65536 bytes") >= len(long_ports)
                and text.count("Affected SOP Instance UID is not a UID") >= 15):
            break
        time.sleep(0.05)
    refusals = [line for line in text.splitlines() if "refus" in line.lower() or "abort" in line]
    assert text.count("Affected SOP Instance UID is not a UID") == 15, refusals
    assert text.count("command set larger than 65536 bytes") == len(long_ports), refusals
    _no_traceback(log)


def _write(ds, spool: Path) -> Path:  # type: ignore[no-untyped-def]
    from tests.builders.rdsr import write

    return write(ds, spool.parent / f"probe-{ds.SOPInstanceUID}.dcm")


@pytest.mark.parametrize("kind", ["random bytes", "unterminated sequence"])
def test_what_is_not_a_data_set_is_not_answered_success(running, tmp_path, kind: str) -> None:  # type: ignore[no-untyped-def]
    """Was: random bytes sent as a CT image, and an RDSR with an unterminated sequence,
    answered Success by the fast lane and then quarantined."""
    node, proc, log = running
    if kind == "random bytes":
        sop_class, data = CT_IMAGE, random.Random(7).randbytes(50_000)
    else:
        sop_class = XRAY_RDSR
        report = build_ct_rdsr(events=3)
        report["ContentSequence"].is_undefined_length = True
        data = encode_dataset(report)
        delimiter = b"\xfe\xff\xdd\xe0\x00\x00\x00\x00"
        assert data.endswith(delimiter)
        data = data[:-len(delimiter)]  # the content tree's sequence is never closed
    path = _file(tmp_path / "bad.dcm", sop_class, data)
    status = _send_file_as_is(node, sop_class, path)
    assert status == 0xC000, hex(status)
    assert [p for p in node_spool_dir(node.pk).rglob("*.dcm")] == []
    assert "not a data set" in log.read_text()
    _no_traceback(log)


def _associate_rq(calling: bytes, called: bytes, uid: bytes = b"1.2.840.10008.1.1") -> bytes:
    app = b"1.2.840.10008.3.1.1.1"

    def item(kind: int, value: bytes) -> bytes:
        return struct.pack(">BBH", kind, 0, len(value)) + value

    context = item(0x20, bytes((1, 0, 0, 0)) + item(0x30, uid) +
                   item(0x40, b"1.2.840.10008.1.2"))
    user = item(0x50, item(0x51, struct.pack(">I", 16384)) + item(0x52, b"1.2.3.4"))
    body = (struct.pack(">HH", 1, 0) + called.ljust(16) + calling.ljust(16) + bytes(32)
            + item(0x10, app) + context + user)
    return struct.pack(">BBL", 0x01, 0, len(body)) + body


def test_non_ascii_ae_titles_and_uids_are_refused_with_one_line(running) -> None:  # type: ignore[no-untyped-def]
    """Was: a traceback per association request with a non-ASCII AE title or UID."""
    node, proc, log = running
    called = node.ae_title.encode()
    requests = [
        _associate_rq("ÄRZTE".encode("latin-1"), called),
        _associate_rq(b"SCU", "DOSESTÖRE".encode()),
        _associate_rq(b"SCU", called, uid="1.2.840.1ä".encode()),
        _associate_rq(b"SCU", called, uid=b"1." + b"9" * 80),
    ]
    for request in requests:
        with socket.create_connection(("127.0.0.1", node.port), timeout=5) as sock:
            sock.sendall(request)
            reply = sock.recv(64)
            assert reply[:1] in (b"\x07", b""), reply  # A-ABORT, or closed
    assert _echo_ok(node)
    text = log.read_text()
    assert text.count("is not 1-16 ASCII characters") == 2
    assert text.count("is not a UID") == 2
    _no_traceback(log)


def test_the_allow_list_admits_exactly_what_it_lists(spawn, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Was: the site AE title DOSEPORT always got through an allow-list."""
    node = make_node(allowed_calling_aets="CT1")
    drain(spawn("store", "run", str(node.pk)), tmp_path / "node.log")
    wait_port(node.port, timeout=60)

    def calling(ae_title: str) -> bool:
        peer = Peer(ae_title=node.ae_title, host="127.0.0.1", port=node.port,
                    calling_ae_title=ae_title)
        return echo(peer).ok

    assert calling("CT1")
    assert not calling("DOSEPORT")
    assert not calling("CT2")
    assert calling("DOSEPORT-HC")  # the health check, from this host
    assert _echo_ok(node)  # node.peer() calls as the health check AE title
