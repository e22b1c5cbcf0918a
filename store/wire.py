"""Bytes on the wire and in the spool file, encoded and decoded by hand.

The C-STORE fast lane (store/acceptor/lane.py) and the handlers (store/handlers.py) need a few
encodings on every object: the file meta header of a spool file, the command set of a
C-STORE request and response (group 0000, implicit VR little endian, PS3.7 9.3.1 and
9.3.1.2) and P-DATA-TF PDUs (PS3.8 9.3.5). Building them with pydicom and pynetdicom
objects costs more than the rest of the work per object, and the formats are fixed.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

from pynetdicom import PYNETDICOM_IMPLEMENTATION_UID

SUCCESS = 0x0000
OUT_OF_RESOURCES = 0xA700
CANNOT_UNDERSTAND = 0xC000
PROCESSING_FAILURE = 0x0110
SPOOL_WRITE_FAILED = "cannot write the object to disk"  # Error Comment with 0xA700

PREAMBLE = b"\x00" * 128 + b"DICM"
IMPLEMENTATION_CLASS_UID = PYNETDICOM_IMPLEMENTATION_UID
IMPLEMENTATION_VERSION = "DOSEPORT"

P_DATA_TF = 0x04
C_STORE_RQ = 0x0001
C_STORE_RSP = 0x8001
NO_DATASET = 0x0101

# Command set elements (group 0000) used by C-STORE.
AFFECTED_SOP_CLASS = 0x00000002
COMMAND_FIELD = 0x00000100
MESSAGE_ID = 0x00000110
MESSAGE_ID_RESPONDED_TO = 0x00000120
DATASET_TYPE = 0x00000800
STATUS = 0x00000900
ERROR_COMMENT = 0x00000902
AFFECTED_SOP_INSTANCE = 0x00001000


# -- file meta ---------------------------------------------------------------------------
def _explicit(tag: int, vr: bytes, value: bytes) -> bytes:
    group, elem = tag >> 16, tag & 0xFFFF
    if vr == b"OB":
        return struct.pack("<HH2sHI", group, elem, vr, 0, len(value)) + value
    return struct.pack("<HH2sH", group, elem, vr, len(value)) + value


def padded(text: str, pad: bytes) -> bytes:
    raw = text.encode("ascii", "replace")
    return raw + pad if len(raw) % 2 else raw


def file_meta_bytes(sop_class: str, sop_uid: str, transfer_syntax: str, source_aet: str) -> bytes:
    """File meta information (group 0002, explicit VR little endian) for a received object."""
    body = b"".join((
        _explicit(0x00020001, b"OB", b"\x00\x01"),
        _explicit(0x00020002, b"UI", padded(sop_class, b"\x00")),
        _explicit(0x00020003, b"UI", padded(sop_uid, b"\x00")),
        _explicit(0x00020010, b"UI", padded(transfer_syntax, b"\x00")),
        _explicit(0x00020012, b"UI", padded(IMPLEMENTATION_CLASS_UID, b"\x00")),
        _explicit(0x00020013, b"SH", padded(IMPLEMENTATION_VERSION, b" ")),
        _explicit(0x00020016, b"AE", padded(source_aet[:16], b" ")) if source_aet else b"",
    ))
    return _explicit(0x00020000, b"UL", struct.pack("<I", len(body))) + body


# -- command sets ------------------------------------------------------------------------
class Command(dict[int, bytes]):
    """A decoded command set: tag -> raw value."""

    def text(self, tag: int) -> str:
        return self.get(tag, b"").rstrip(b"\x00 ").decode("ascii", "replace")

    def us(self, tag: int) -> int | None:
        value = self.get(tag)
        return struct.unpack("<H", value)[0] if value is not None and len(value) == 2 else None


def parse_command(raw: bytes | bytearray) -> Command | None:
    """Decode an implicit VR little endian command set; None when it is malformed."""
    found = Command()
    pos, end = 0, len(raw)
    while pos < end:
        if pos + 8 > end:
            return None
        group, elem, length = struct.unpack_from("<HHI", raw, pos)
        pos += 8
        if group != 0x0000 or pos + length > end:
            return None
        found[(group << 16) | elem] = bytes(raw[pos:pos + length])
        pos += length
    return found


def _implicit(tag: int, value: bytes) -> bytes:
    return struct.pack("<HHI", tag >> 16, tag & 0xFFFF, len(value)) + value


def store_response(sop_class: str, sop_uid: str, message_id: int, status: int,
                   comment: str = "") -> bytes:
    """The command set of a C-STORE-RSP (no data set)."""
    body = b"".join((
        _implicit(AFFECTED_SOP_CLASS, padded(sop_class, b"\x00")),
        _implicit(COMMAND_FIELD, struct.pack("<H", C_STORE_RSP)),
        _implicit(MESSAGE_ID_RESPONDED_TO, struct.pack("<H", message_id)),
        _implicit(DATASET_TYPE, struct.pack("<H", NO_DATASET)),
        _implicit(STATUS, struct.pack("<H", status)),
        _implicit(ERROR_COMMENT, padded(comment[:64], b" ")) if comment else b"",
        _implicit(AFFECTED_SOP_INSTANCE, padded(sop_uid, b"\x00")),
    ))
    return _implicit(0x00000000, struct.pack("<I", len(body))) + body


# -- P-DATA-TF ---------------------------------------------------------------------------
def iter_pdvs(body: memoryview) -> Iterator[tuple[int, int, memoryview]]:
    """(context id, message control header, fragment) of each PDV item in a P-DATA-TF
    PDU body (the bytes after the 6-byte PDU header). Raises ValueError when an item's
    length does not fit."""
    pos, end = 0, len(body)
    if end == 0:
        raise ValueError("P-DATA-TF without PDV items")
    while pos < end:
        if pos + 6 > end:
            raise ValueError("truncated PDV item")
        (length,) = struct.unpack_from(">I", body, pos)
        if length < 2 or pos + 4 + length > end:
            raise ValueError(f"PDV item length {length} does not fit the PDU")
        yield body[pos + 4], body[pos + 5], body[pos + 6:pos + 4 + length]
        pos += 4 + length


def pdv_item(context_id: int, header: int, fragment: bytes | memoryview) -> bytes:
    return struct.pack(">IBB", len(fragment) + 2, context_id, header) + bytes(fragment)


def p_data_pdu(items: list[bytes]) -> bytes:
    body = b"".join(items)
    return struct.pack(">BBI", P_DATA_TF, 0, len(body)) + body


def command_pdus(context_id: int, command: bytes, peer_max_pdu: int | None) -> bytes:
    """A command set as P-DATA-TF PDUs no larger than the peer's maximum (0: no limit)."""
    step = max(1, peer_max_pdu - 6) if peer_max_pdu else max(1, len(command))
    pdus = []
    for start in range(0, len(command), step):
        last = start + step >= len(command)
        fragment = command[start:start + step]
        pdus.append(p_data_pdu([pdv_item(context_id, 0x01 | (0x02 if last else 0), fragment)]))
    return b"".join(pdus)
