"""The acceptor's socket: every byte a peer sends comes in here, one whole PDU at a time.

pynetdicom reads a PDU as `recv(6)` (the header) then `recv(length)`. `GuardedSocket`
reads and checks the whole PDU at the first call and hands out the body at the second;
the fast lane takes whole checked PDUs from `take_pdu()`. Nothing malformed reaches
pynetdicom or the fast lane:

- before the association is established a PDU may be at most `Limits.first_pdu_max`
  bytes; an A-ASSOCIATE-RQ must be well formed with ASCII AE titles and valid UIDs;
- after it, a PDU may be at most the maximum length we negotiated; bodies are read in
  pieces, so a claimed length is never allocated before the bytes arrive;
- a command set must decode, name a command this node serves, carry valid UIDs, and a
  data set may follow only a command that announces one, at most `Limits.max_object`.

The socket is read in large pieces into one buffer per connection (`RECV_BUFFER`): a
PDU that fits is handed out as a view of it, with no copy, and one read can bring
several PDUs (a C-STORE's command and data set PDUs usually arrive together). A larger
PDU gets its own buffer, grown as its bytes arrive. `ready` says True while bytes are
buffered, which select() on the socket cannot see.

A refused PDU gets one log line naming the peer and the reason, an A-ABORT to the peer
and, for pynetdicom, a closed transport (a short header read, which it handles quietly).
Only public pynetdicom names are used here: the class works with stock pynetdicom too.
"""

from __future__ import annotations

import logging
import re
import socket
import struct
from dataclasses import dataclass
from typing import Any

from pynetdicom.pdu import A_ASSOCIATE_RQ
from pynetdicom.transport import AssociationSocket

from store.acceptor.limits import KIB, MIB, Limits
from store.wire import (
    AFFECTED_SOP_CLASS,
    AFFECTED_SOP_INSTANCE,
    COMMAND_FIELD,
    DATASET_TYPE,
    MESSAGE_ID,
    NO_DATASET,
    P_DATA_TF,
    iter_pdvs,
    parse_command,
)

logger = logging.getLogger(__name__)

UID = re.compile(rb"[0-9.]{1,64}")
AE_CHARS = re.compile(rb"[\x20-\x5b\x5d-\x7e]{16}")  # default repertoire, no backslash
PIECE = 1 * MIB
# Per connection: PDUs up to this size (with their 6-byte header) are read into it and
# handed out without a copy. DCMTK sends 128 KB PDUs (16 KB by default in many others).
RECV_BUFFER = 512 * KIB
FIRST_BUFFER = 16 * KIB  # until the association request is accepted
HARD_MAX_PDU = 64 * MIB  # when the negotiated maximum is 0 ("no limit")
ASSOCIATE_RQ = 0x01
PRE_ASSOCIATION = ("Sta1", "Sta2", "Sta3", "Sta4", "Sta5")
PDU_TYPES = frozenset((0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07))
C_STORE_RQ, C_ECHO_RQ, C_CANCEL_RQ = 0x0001, 0x0030, 0x0FFF
SERVED_COMMANDS = {C_STORE_RQ: "C-STORE-RQ", C_ECHO_RQ: "C-ECHO-RQ", C_CANCEL_RQ: "C-CANCEL-RQ"}
# A-ABORT, source: service provider, reason: invalid PDU parameter value (PS3.8 9.3.8).
ABORT_PDU = bytes((0x07, 0, 0, 0, 0, 4, 0, 0, 2, 6))


class Refused(ValueError):
    """A peer sent something this node does not accept; the message says what."""


def _uid(value: bytes, what: str) -> None:
    if not UID.fullmatch(value.rstrip(b"\x00 ")):
        shown = value[:70].decode("ascii", "backslashreplace")
        raise Refused(f"{what} is not a UID (1-64 digits and dots): {shown!r}")


def _items(body: memoryview, what: str) -> list[tuple[int, memoryview]]:
    """(type, value) of the items of an A-ASSOCIATE-RQ's variable field (PS3.8 9.3.2)."""
    found: list[tuple[int, memoryview]] = []
    pos = 0
    while pos < len(body):
        if pos + 4 > len(body):
            raise Refused(f"{what}: item header cut off")
        kind = body[pos]
        (length,) = struct.unpack_from(">H", body, pos + 2)
        if pos + 4 + length > len(body):
            raise Refused(f"{what}: item 0x{kind:02X} runs past its end")
        found.append((kind, body[pos + 4:pos + 4 + length]))
        pos += 4 + length
    return found


def _user_item(kind: int, value: memoryview) -> None:
    if kind == 0x52:
        _uid(bytes(value), "Implementation Class UID")
    elif kind == 0x55 and (len(value) > 16 or not bytes(value).isascii()):
        raise Refused("Implementation Version Name is not 1-16 ASCII characters")
    elif kind in (0x54, 0x56, 0x57):  # role selection, SOP class (common) extended
        if len(value) < 2:
            raise Refused(f"user information item 0x{kind:02X} cut off")
        (uid_length,) = struct.unpack_from(">H", value, 0)
        if 2 + uid_length > len(value):
            raise Refused(f"user information item 0x{kind:02X}: UID runs past its end")
        _uid(bytes(value[2:2 + uid_length]), "SOP Class UID")


def check_associate_rq(body: bytes | bytearray) -> str:
    """Raise Refused unless `body` (after the 6-byte header) is a well-formed
    A-ASSOCIATE-RQ with ASCII AE titles and valid UIDs; returns the calling AE title."""
    view = memoryview(body)
    if len(view) < 68:
        raise Refused(f"A-ASSOCIATE-RQ of {len(view)} bytes is shorter than its fixed part")
    called, calling = bytes(view[4:20]), bytes(view[20:36])
    for name, title in (("called", called), ("calling", calling)):
        if not AE_CHARS.fullmatch(title) or not title.strip():
            shown = title.decode("ascii", "backslashreplace")
            raise Refused(f"{name} AE title {shown!r} is not 1-16 ASCII characters")
    contexts = 0
    for kind, value in _items(view[68:], "A-ASSOCIATE-RQ"):
        if kind not in (0x10, 0x20, 0x50):
            raise Refused(f"item type 0x{kind:02X} in an A-ASSOCIATE-RQ")
        if kind == 0x10:
            _uid(bytes(value), "Application Context Name")
        elif kind == 0x20:
            contexts += 1
            if len(value) < 4:
                raise Refused("presentation context item cut off")
            for sub, text in _items(value[4:], "presentation context"):
                if sub not in (0x30, 0x40):
                    raise Refused(f"sub-item type 0x{sub:02X} in a presentation context")
                if sub in (0x30, 0x40):
                    _uid(bytes(text), "abstract syntax" if sub == 0x30 else "transfer syntax")
        elif kind == 0x50:
            for sub, text in _items(value, "user information"):
                if not 0x51 <= sub <= 0x58:
                    raise Refused(f"sub-item type 0x{sub:02X} in user information")
                _user_item(sub, text)
    if not contexts:
        raise Refused("A-ASSOCIATE-RQ proposes no presentation context")
    try:  # what pynetdicom will do with it next, so that it cannot fail there
        pdu = A_ASSOCIATE_RQ()
        pdu.decode(struct.pack(">BBL", ASSOCIATE_RQ, 0, len(body)) + bytes(body))
        pdu.to_primitive()
    except Exception as exc:
        raise Refused(f"A-ASSOCIATE-RQ does not decode: {type(exc).__name__}: {exc}") from None
    return calling.decode("ascii").strip()


PDV = tuple[int, int, memoryview]  # (context id, message control header, fragment)


@dataclass
class Pdu:
    """A whole, checked PDU. `body` is a view of the connection's receive buffer, valid
    until the next read; `items` are the PDV items of a P-DATA-TF PDU of an established
    association (None otherwise)."""

    type: int
    head: bytes
    body: memoryview
    items: list[PDV] | None = None


class MessageCheck:
    """Follows the DIMSE messages in P-DATA-TF PDVs: whole command sets are checked
    before pynetdicom or the lane sees them; data sets only where announced."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.command = bytearray()
        self.expect_dataset = False
        self.dataset_bytes = 0

    def pdvs(self, body: memoryview, contexts: set[int]) -> list[PDV]:
        """Check a P-DATA-TF body; returns its PDV items (the lane's walk too)."""
        items = self._items(body)
        for context_id, header, fragment in items:
            if context_id not in contexts:
                raise Refused(f"PDV on presentation context {context_id}, not accepted")
            if header & 0x01:
                self.on_command(fragment, last=bool(header & 0x02))
            else:
                self.on_dataset(len(fragment), last=bool(header & 0x02))
        return items

    @staticmethod
    def _items(body: memoryview) -> list[PDV]:
        try:
            return list(iter_pdvs(body))
        except ValueError as exc:
            raise Refused(f"invalid P-DATA-TF PDU: {exc}") from None

    def on_command(self, fragment: memoryview, last: bool) -> None:
        if self.expect_dataset:
            raise Refused("a command fragment arrived inside a data set")
        if len(self.command) + len(fragment) > self.limits.command_max:
            raise Refused(f"command set larger than {self.limits.command_max} bytes")
        self.command += fragment
        if last:
            raw, self.command = self.command, bytearray()
            self.expect_dataset = check_command(raw)
            self.dataset_bytes = 0

    def on_dataset(self, size: int, last: bool) -> None:
        if not self.expect_dataset or self.command:
            raise Refused("a data set fragment arrived without a command announcing one")
        self.dataset_bytes += size
        if self.dataset_bytes > self.limits.max_object:
            raise Refused(f"data set larger than the node's maximum of "
                          f"{self.limits.max_object} bytes")
        if last:
            self.expect_dataset = False


def check_command(raw: bytes | bytearray) -> bool:
    """Raise Refused unless `raw` is a command set this node serves; True when a data
    set follows."""
    command = parse_command(raw)
    if command is None:
        raise Refused("command set is not a valid group 0000 encoding")
    field = command.us(COMMAND_FIELD)
    if field not in SERVED_COMMANDS:
        shown = "missing" if field is None else f"0x{field:04X}"
        raise Refused(f"command field {shown} is not a command this node serves")
    dataset_type = command.us(DATASET_TYPE)
    if dataset_type is None or (field != C_CANCEL_RQ and command.us(MESSAGE_ID) is None):
        raise Refused(f"{SERVED_COMMANDS[field]} lacks its Message ID or Data Set Type")
    if field != C_CANCEL_RQ:
        _uid(command.get(AFFECTED_SOP_CLASS, b""), "Affected SOP Class UID")
    if field == C_STORE_RQ:
        _uid(command.get(AFFECTED_SOP_INSTANCE, b""), "Affected SOP Instance UID")
        if command.us(0x00000700) is None:
            raise Refused("C-STORE-RQ lacks its Priority")
        if dataset_type == NO_DATASET:
            raise Refused("C-STORE-RQ announces no data set")
    elif dataset_type != NO_DATASET:
        raise Refused(f"{SERVED_COMMANDS[field]} announces a data set")
    return dataset_type != NO_DATASET


class GuardedSocket(AssociationSocket):
    """An AssociationSocket that reads and checks whole PDUs (see the module text)."""

    def __init__(self, assoc: Any, client_socket: socket.socket, limits: Limits,
                 label: str) -> None:
        super().__init__(assoc, client_socket=client_socket)
        self.limits = limits
        self.label = label  # "node N: peer host:port" for log lines
        self.body: bytearray | None = None
        self.messages = MessageCheck(limits)
        self.contexts: set[int] | None = None
        self.refused = ""
        # Re-arm TCP_QUICKACK per read: set from the node's AEConfig when the connection
        # opens (store.handlers.handle_conn_open -> lib.aeconfig.tune_socket).
        self.quickack = False
        # The receive buffer: bytes [start, end) are read and not yet handed out.
        self.inbuf = bytearray(FIRST_BUFFER)  # RECV_BUFFER once associated
        self.inview = memoryview(self.inbuf)
        self.start = self.end = 0
        client_socket.settimeout(limits.first_pdu_wait_s)

    def recv(self, nr_bytes: int) -> bytearray:
        """pynetdicom's reads: the header of a whole checked PDU, then its body."""
        body, self.body = self.body, None
        if body is not None:
            return body
        if nr_bytes != 6:  # not pynetdicom's pattern: refuse rather than guess
            self.refuse(f"unexpected read of {nr_bytes} bytes")
            return bytearray()
        pdu = self.take_pdu()
        if pdu is None:
            return bytearray()
        self.body = bytearray(pdu.body)  # pynetdicom's own copy: the buffer moves on
        return bytearray(pdu.head)

    def take_pdu(self) -> Pdu | None:
        """The next whole PDU, checked; None when the connection closed or the PDU was
        refused (then the peer has its A-ABORT)."""
        if self.refused:
            return None  # nothing more is read from a peer we aborted
        try:
            if not self.fill(6):
                self.closed()
                return None
            start = self.start
            head = bytes(self.inview[start:start + 6])
            pdu_type, _, length = struct.unpack(">BBL", head)
            self.check_head(pdu_type, length)
            if 6 + length <= len(self.inbuf):
                if not self.fill(6 + length):
                    self.closed()
                    return None
                start = self.start  # fill() may have moved the bytes to the front
                self.start = start + 6 + length
                body = self.inview[start + 6:self.start]
            else:
                self.start += 6
                body = memoryview(self.read_large(length))
                if len(body) < length:
                    self.closed(partial=True)
                    return None
            items = self.check_body(pdu_type, body)
        except Refused as exc:
            self.refuse(str(exc))
            return None
        except TimeoutError:
            self.refuse("no complete PDU within the time allowed")
            return None
        except OSError as exc:
            logger.info("%s: connection lost (%s)", self.label, exc.strerror or exc)
            return None
        return Pdu(pdu_type, head, body, items)

    @property
    def buffered(self) -> int:
        """Bytes read from the socket and not yet handed out."""
        return self.end - self.start

    @property
    def ready(self) -> bool:
        """pynetdicom's check for incoming data, which select() alone would miss when
        the bytes are already in our buffer."""
        if self.socket is None:
            return False
        return self.end > self.start or bool(super().ready)

    def close(self) -> None:
        self.start = self.end = 0
        super().close()

    def fill(self, need: int) -> bool:
        """Read until `need` (at most the buffer's size) bytes are buffered; False when
        the peer closed first."""
        while self.end - self.start < need:
            if len(self.inbuf) - self.start < need:  # no room behind: to the front
                kept = self.end - self.start
                self.inview[:kept] = self.inview[self.start:self.end]
                self.start, self.end = 0, kept
            n = self.recv_some(self.inview[self.end:])
            if not n:
                return False
            self.end += n
        return True

    def grow_buffer(self) -> None:
        """The full receive buffer, for an association that passed its request (a
        connection that never gets that far holds only the small one)."""
        kept = self.end - self.start
        grown = bytearray(RECV_BUFFER)
        grown[:kept] = self.inview[self.start:self.end]
        self.inbuf, self.inview = grown, memoryview(grown)
        self.start, self.end = 0, kept

    def recv_some(self, into: memoryview) -> int:
        """One read from the socket into `into` (0: the peer closed)."""
        raw = self.socket
        assert raw is not None
        if self.quickack:
            raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
        return raw.recv_into(into, len(into))

    def read_large(self, count: int) -> bytearray:
        """A body larger than the receive buffer: what is buffered, then the rest read in
        pieces into a buffer grown as they arrive (a claimed length is never allocated
        before its bytes are here). Shorter than `count` only when the peer closed."""
        kept = min(self.end - self.start, count)
        buffer = bytearray(self.inview[self.start:self.start + kept])
        self.start += kept
        if self.start == self.end:
            self.start = self.end = 0
        got = kept
        while got < count:
            if got == len(buffer):
                buffer.extend(bytes(min(count - got, max(len(buffer), PIECE), PIECE * 4)))
            with memoryview(buffer) as view:
                n = self.recv_some(view[got:])
            if not n:
                break
            got += n
        if got < len(buffer):
            del buffer[got:]
        return buffer

    def check_head(self, pdu_type: int, length: int) -> None:
        if pdu_type not in PDU_TYPES:
            raise Refused(f"unknown PDU type 0x{pdu_type:02X}")
        if not self.associated():
            if length > self.limits.first_pdu_max:
                raise Refused(f"PDU of {length} bytes before the association (at most "
                              f"{self.limits.first_pdu_max})")
            return
        if pdu_type != P_DATA_TF:
            if length > self.limits.first_pdu_max:
                raise Refused(f"PDU type 0x{pdu_type:02X} of {length} bytes")
            return
        most = self.assoc.acceptor.maximum_length or HARD_MAX_PDU
        if length > most:
            raise Refused(f"P-DATA-TF PDU of {length} bytes, more than the {most} negotiated")

    def check_body(self, pdu_type: int, body: memoryview) -> list[PDV] | None:
        """Raise Refused unless the body is acceptable; the PDV items of a P-DATA-TF
        PDU of an established association."""
        if pdu_type == ASSOCIATE_RQ:
            calling = check_associate_rq(bytes(body))
            self.label = f"{self.label} ({calling})"
            self.grow_buffer()
            # Association set up: from now on reads wait as long as the network timeout.
            assert self.socket is not None
            self.socket.settimeout(self.assoc.network_timeout)
        elif pdu_type == P_DATA_TF and self.associated():
            if self.contexts is None:
                self.contexts = {cx.context_id or 0 for cx in self.assoc.accepted_contexts}
            return self.messages.pdvs(body, self.contexts)
        return None

    def associated(self) -> bool:
        """Established (or releasing): the DUL's own state, which its thread (the one
        reading here) moves to Sta6 when it sends the A-ASSOCIATE-AC."""
        return self.assoc.dul.state_machine.current_state not in PRE_ASSOCIATION

    def refuse(self, reason: str) -> None:
        """One log line, an A-ABORT to the peer, and the connection closed."""
        if not self.refused:
            logger.warning("%s: %s; connection aborted", self.label, reason)
        self.refused = reason
        self.start = self.end = 0
        raw = self.socket
        if raw is not None:
            try:
                raw.settimeout(1.0)
                raw.sendall(ABORT_PDU)
            except OSError:
                pass
        self.wake_acceptor()

    def closed(self, partial: bool = False) -> None:
        if partial or self.end > self.start:
            logger.info("%s: connection closed inside a PDU", self.label)
        self.start = self.end = 0
        self.wake_acceptor()

    def wake_acceptor(self) -> None:
        """Before a request arrived the association thread waits for one (up to the ACSE
        timeout): tell it now that none will come, so the connection slot frees at once."""
        assoc: Any = self.assoc
        if assoc.requestor.primitive is None and not getattr(assoc, "gone", False):
            assoc.gone = True
            assoc.dul.to_user_queue.put(None)
