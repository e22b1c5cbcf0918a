"""Helpers shared by the store node tests: a node row, DCMTK senders, output parsing."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

from pydicom import Dataset, dcmread
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset

from nodes.models import StoreNode
from store.spool import node_spool_dir
from tests.conftest import free_port, require_tool

SUCCESS_LINE = "Received Store Response (Success)"


def make_node(**fields: object) -> StoreNode:
    values: dict[str, object] = {
        "name": "store-under-test", "ae_title": "DOSESTORE", "port": free_port(),
        "bind_address": "127.0.0.1", "controlled": True,
    }
    values.update(fields)
    node = StoreNode.objects.create(**values)
    # Ids can repeat between tests (the database is emptied): never inherit a spool.
    spool = node_spool_dir(node.pk)
    if spool.is_symlink() or spool.is_file():
        spool.unlink()
    elif spool.exists():
        shutil.rmtree(spool)
    return node


def dcmtk_env(nodelay: bool = True) -> dict[str, str]:
    env = dict(os.environ)
    if nodelay:
        env["TCP_NODELAY"] = "1"
    else:
        env.pop("TCP_NODELAY", None)
    return env


def storescu(
    node: StoreNode, files: list[Path], calling: str = "STORESCU", timeout: float = 120,
    extra: tuple[str, ...] = (),
) -> subprocess.CompletedProcess[str]:
    """Send `files` over one association (-R: propose exactly their SOP classes)."""
    exe = require_tool("storescu")
    argv = [
        exe, "-v", "-R", "-aet", calling, "-aec", node.ae_title, *extra,
        "127.0.0.1", str(node.port), *map(str, files),
    ]
    return subprocess.run(
        argv, env=dcmtk_env(), capture_output=True, text=True, timeout=timeout, check=False
    )


def storescu_popen(
    node: StoreNode, files: list[Path], calling: str = "STORESCU"
) -> subprocess.Popen[str]:
    exe = require_tool("storescu")
    argv = [
        exe, "-v", "-R", "-aet", calling, "-aec", node.ae_title,
        "127.0.0.1", str(node.port), *map(str, files),
    ]
    return subprocess.Popen(
        argv, env=dcmtk_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def acknowledged(output: str) -> list[str]:
    """File paths whose C-STORE was answered Success, from `storescu -v` output."""
    done: list[str] = []
    current: str | None = None
    for line in output.splitlines():
        sent = re.search(r"Sending file: (.+)$", line)
        if sent:
            current = sent.group(1).strip()
        elif SUCCESS_LINE in line and current is not None:
            done.append(current)
            current = None
    return done


def sop_uid(path: Path) -> str:
    return str(dcmread(path, stop_before_pixels=True, specific_tags=["SOPInstanceUID"])
               .SOPInstanceUID)


def echoscu(node: StoreNode, calling: str = "ECHOSCU") -> subprocess.CompletedProcess[str]:
    exe = require_tool("echoscu")
    return subprocess.run(
        [exe, "-aet", calling, "-aec", node.ae_title, "127.0.0.1", str(node.port)],
        env=dcmtk_env(), capture_output=True, text=True, timeout=30, check=False,
    )


def dcmtk_readable(files: list[Path]) -> tuple[list[Path], list[Path]]:
    """Split files into those DCMTK can parse and those it cannot (sent with pynetdicom)."""
    exe = require_tool("dcmdump")
    good: list[Path] = []
    bad: list[Path] = []
    for path in files:
        probe = subprocess.run([exe, "-q", str(path)], capture_output=True, timeout=30,
                               check=False)
        (good if probe.returncode == 0 else bad).append(path)
    return good, bad


def pynetdicom_send(node: StoreNode, files: list[Path], calling: str = "PYSCU") -> list[int]:
    """Send with pynetdicom (for files DCMTK refuses to parse); returns the statuses."""
    from pynetdicom import AE

    datasets = [dcmread(path) for path in files]
    ae = AE(ae_title=calling)
    for uid in {str(ds.SOPClassUID) for ds in datasets}:
        ae.add_requested_context(uid)
    assoc = ae.associate("127.0.0.1", node.port, ae_title=node.ae_title)
    assert assoc.is_established
    statuses = []
    try:
        for ds in datasets:
            rsp = assoc.send_c_store(ds)
            statuses.append(int(getattr(rsp, "Status", -1)))
    finally:
        assoc.release()
    return statuses


def drain(proc: subprocess.Popen[bytes], log: Path) -> subprocess.Popen[bytes]:
    """Copy a spawned child's output to `log` so that a full pipe never blocks it."""
    import threading

    def copy() -> None:
        assert proc.stdout is not None
        with log.open("ab") as out:
            for line in proc.stdout:
                out.write(line)
                out.flush()

    threading.Thread(target=copy, daemon=True).start()
    return proc


def start_node_and_worker(spawn, node: StoreNode, logs: Path, *extra: str) -> None:  # type: ignore[no-untyped-def]
    """`doseport store run N` and `doseport worker` as children, output drained to logs/."""
    from tests.conftest import wait_port

    logs.mkdir(parents=True, exist_ok=True)
    drain(spawn("store", "run", str(node.pk), *extra), logs / "node.log")
    drain(spawn("worker"), logs / "worker.log")
    wait_port(node.port, timeout=60)


def encode_dataset(ds: Dataset, implicit: bool = False) -> bytes:
    """A data set's bytes as they travel in a C-STORE (little endian, no file meta)."""
    fp = DicomBytesIO()
    fp.is_little_endian = True
    fp.is_implicit_VR = implicit
    write_dataset(fp, ds)
    return fp.getvalue()


# -- fuzzing (tests/test_store_fuzz.py, bench/fuzz.py) -----------------------------------
FUZZ_CONTEXTS = (
    (1, "1.2.840.10008.5.1.4.1.1.2", "1.2.840.10008.1.2.1"),  # CT image, explicit VR LE
    (3, "1.2.840.10008.5.1.4.1.1.88.67", "1.2.840.10008.1.2.1"),  # X-Ray RDSR
    (5, "1.2.840.10008.5.1.4.1.1.7", "1.2.840.10008.1.2.1.99"),  # SC, deflated
    (7, "1.2.840.10008.1.1", "1.2.840.10008.1.2"),  # verification, implicit VR LE
)


def _item(kind: int, value: bytes) -> bytes:
    import struct

    return struct.pack(">BBH", kind, 0, len(value)) + value


def associate_rq(called: str, calling: str = "FUZZ") -> bytes:
    """An A-ASSOCIATE-RQ proposing FUZZ_CONTEXTS."""
    import struct

    contexts = b"".join(
        _item(0x20, bytes((cid, 0, 0, 0)) + _item(0x30, sop.encode()) + _item(0x40, ts.encode()))
        for cid, sop, ts in FUZZ_CONTEXTS
    )
    user = _item(0x50, _item(0x51, struct.pack(">I", 16384)) + _item(0x52, b"1.2.3.4.5"))
    body = (struct.pack(">HH", 1, 0) + called.encode().ljust(16) + calling.encode().ljust(16)
            + bytes(32) + _item(0x10, b"1.2.840.10008.3.1.1.1") + contexts + user)
    return struct.pack(">BBL", 0x01, 0, len(body)) + body


def _element(tag: int, value: bytes) -> bytes:
    import struct

    if len(value) % 2:
        value += b"\0"
    return struct.pack("<HHI", tag >> 16, tag & 0xFFFF, len(value)) + value


def store_command(sop_class: str, sop_uid: str, message_id: int = 1) -> bytes:
    import struct

    body = b"".join((
        _element(0x00000002, sop_class.encode()),
        _element(0x00000100, struct.pack("<H", 0x0001)),
        _element(0x00000110, struct.pack("<H", message_id)),
        _element(0x00000700, struct.pack("<H", 0)),
        _element(0x00000800, struct.pack("<H", 0x0001)),
        _element(0x00001000, sop_uid.encode()),
    ))
    return _element(0x00000000, struct.pack("<I", len(body))) + body


def fuzz_cases(seed: int, count: int, called: str) -> list[tuple[str, bool, list[bytes]]]:
    """`count` malformed inputs: (kind, associate first?, byte chunks to send after)."""
    import random
    import struct
    import zlib

    from store.wire import p_data_pdu, pdv_item
    from tests.builders.rdsr import build_ct_image, build_ct_rdsr

    rnd = random.Random(seed)
    good_rq = associate_rq(called)
    rdsr = encode_dataset(build_ct_rdsr(events=2))
    image = build_ct_image()
    image.Rows = image.Columns = 64
    image.BitsAllocated = image.BitsStored = 16
    image.HighBit = 15
    image.PixelRepresentation = 0
    image.SamplesPerPixel = 1
    image.PhotometricInterpretation = "MONOCHROME2"
    image.PixelData = bytes(64 * 64 * 2)
    ct = encode_dataset(image)
    ct_class, rdsr_class, sc_class = (cx[1] for cx in FUZZ_CONTEXTS[:3])

    def store(cid: int, sop_class: str, data: bytes, uid: str = "1.2.3.4") -> list[bytes]:
        return [p_data_pdu([pdv_item(cid, 0x03, store_command(sop_class, uid)),
                            pdv_item(cid, 0x02, data)])]

    def mutate(data: bytes, flips: int) -> bytes:
        raw = bytearray(data)
        for _ in range(flips):
            raw[rnd.randrange(len(raw))] = rnd.randrange(256)
        return bytes(raw)

    def bomb() -> bytes:
        packer = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
        head = ct[:200] + b"\xe0\x7f\x10\x00OB\0\0" + struct.pack("<I", 64 << 20)
        return packer.compress(head) + b"".join(
            packer.compress(bytes(1 << 20)) for _ in range(64)) + packer.flush()

    bombs = bomb()
    makers = {
        "random bytes": lambda: (False, [rnd.randbytes(rnd.randrange(1, 3000))]),
        "mutated request": lambda: (False, [mutate(good_rq, rnd.randrange(1, 12))]),
        "cut request": lambda: (False, [good_rq[:rnd.randrange(1, len(good_rq))]]),
        "huge length claim": lambda: (rnd.random() < 0.5, [struct.pack(
            ">BBL", rnd.choice((1, 2, 4, 5, 7)), 0, rnd.randrange(1 << 20, 1 << 32))
            + rnd.randbytes(100)]),
        "bad PDVs": lambda: (True, [struct.pack(">BBL", 4, 0, 12) + struct.pack(
            ">IBB", rnd.choice((0, 1, 500, 1 << 31)), rnd.randrange(256), rnd.randrange(256))
            + rnd.randbytes(6)]),
        "garbage command set": lambda: (True, [p_data_pdu([pdv_item(
            rnd.choice((1, 3, 7, 9)), 0x03, rnd.randbytes(rnd.randrange(0, 400)))])]),
        "mutated command set": lambda: (True, [p_data_pdu([pdv_item(1, 0x03, mutate(
            store_command(ct_class, "1.2.3"), rnd.randrange(1, 6)))])]),
        "bad VRs": lambda: (True, store(1, ct_class, mutate(ct[:400], 20) + ct[400:])),
        "length past the data set": lambda: (True, store(
            3, rdsr_class, rdsr[:-rnd.randrange(1, 200)])),
        "mutated data set": lambda: (True, store(3, rdsr_class, mutate(rdsr, 30))),
        "random data set": lambda: (True, store(1, ct_class, rnd.randbytes(2000))),
        "deflate bomb": lambda: (True, store(5, sc_class, bombs)),
        "over-long UID": lambda: (True, store(
            1, ct_class, ct, "1." + "9" * rnd.choice((63, 70, 1000, 70_000)))),
        "non-ASCII AE title": lambda: (False, [associate_rq(called, "FÜZZ")]),
    }
    kinds = list(makers)
    cases = []
    for n in range(count):
        kind = kinds[n % len(kinds)]
        associate, chunks = makers[kind]()
        cases.append((kind, associate, chunks))
    return cases


def send_fuzz_case(port: int, called: str, associate: bool, chunks: list[bytes],
                   wait_s: float = 2.0) -> bytes:
    """Connect, associate when asked, send the chunks, then read what the node says
    until it closes (or `wait_s`). Returns the first bytes of its last answer."""
    import socket
    import struct

    with socket.create_connection(("127.0.0.1", port), timeout=wait_s) as sock:
        if associate:
            try:
                sock.sendall(associate_rq(called))
                head = sock.recv(6, socket.MSG_WAITALL)
                if len(head) < 6 or head[0] != 0x02:
                    return head
                (length,) = struct.unpack(">L", head[2:6])
                sock.recv(length, socket.MSG_WAITALL)
            except OSError:  # refused, or no answer within wait_s
                return b""
        answer = b""
        try:
            for chunk in chunks:
                sock.sendall(chunk)
            sock.shutdown(socket.SHUT_WR)
            while True:
                got = sock.recv(65536)
                if not got:
                    break
                answer = got[:16]
        except OSError:
            pass
        return answer
