"""The C-STORE fast lane of a store node's associations.

pynetdicom turns every P-DATA-TF PDU into PDU and primitive objects, runs them through
its state machine, reassembles the data set in the DIMSE layer, hands the message to the
association thread, decodes the command set with pydicom, calls our handler and encodes
the response the same way: about 2 ms of CPU per object on this project's machines, twice
what DCMTK needs for the whole object. For the common case we do that work in the DUL
thread that reads the socket:

- a C-STORE-RQ on an accepted storage context goes through the lane: its data set
  fragments are written straight from the receive buffer into a spool part while
  `Framing` follows the element headers (and a class that needs a header look keeps a
  bounded prefix for it); at the last fragment a data set that is not one is answered
  0xC000 and removed, else the part is committed (fsync, rename, fsync of the folder),
  the import is enqueued and the C-STORE-RSP is written to the socket;
- everything else (association set-up and release, aborts, C-ECHO) goes to pynetdicom
  unchanged, through the handlers in store/handlers.py.

The PDUs arrive whole and already checked by store.acceptor.guard (sizes, command sets,
UIDs), as views of the connection's receive buffer with their PDV items walked once.

The statuses and the counters are those of `store.handlers.handle_store`. The lane only
runs while the association is established (state Sta6, where P-DATA leaves the state
unchanged), so the state machine never misses a transition. A partial object is removed
when the association ends without it.
"""

from __future__ import annotations

import logging
import time
import zlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydicom.uid import DeflatedExplicitVRLittleEndian, ExplicitVRBigEndian, ImplicitVRLittleEndian

from imports.classify import classify_sop_class
from store.acceptor.framing import Framing
from store.spool import SpoolPart
from store.wire import (
    AFFECTED_SOP_CLASS,
    AFFECTED_SOP_INSTANCE,
    C_STORE_RQ,
    CANNOT_UNDERSTAND,
    COMMAND_FIELD,
    DATASET_TYPE,
    MESSAGE_ID,
    NO_DATASET,
    OUT_OF_RESOURCES,
    P_DATA_TF,
    PREAMBLE,
    SPOOL_WRITE_FAILED,
    SUCCESS,
    Command,
    command_pdus,
    file_meta_bytes,
    iter_pdvs,
    p_data_pdu,
    parse_command,
    pdv_item,
    store_response,
)

if TYPE_CHECKING:
    from store.acceptor.limits import Limits
    from store.handlers import NodeContext

logger = logging.getLogger(__name__)

ESTABLISHED = "Sta6"
# A spool part opened ahead for the next object is used only while this young: the
# spool's clean-up removes our own temporary files after an hour.
SPARE_MAX_AGE_S = 60.0
STORAGE_PREFIX = "1.2.840.10008.5.1.4.1.1."


@dataclass
class Incoming:
    """A C-STORE whose data set is arriving through the lane."""

    context_id: int
    message_id: int
    sop_class: str
    sop_uid: str
    part: SpoolPart | None
    discard: bool
    framing: Framing
    error: str = ""
    size: int = 0
    started: float = 0.0
    syntax: str = ""
    needs_header: bool = False
    prefix: bytearray = field(default_factory=bytearray)  # for the header look
    inflater: Any = None  # a zlib decompressor for a deflated data set
    inflated: int = 0
    capped: bool = False  # the inflation stopped at the cap: the framing saw a prefix


class FastLane:
    """Reads the PDUs of one established association in its DUL thread
    (store.acceptor.loops.FastDUL calls `read_pdu`)."""

    def __init__(self, assoc: Any, dul: Any, ctx: NodeContext, limits: Limits) -> None:
        self.assoc = assoc
        self.dul = dul
        self.ctx = ctx
        self.limits = limits
        self.command: list[tuple[int, int, bytes]] = []  # fragments of a command set
        self.passing = False  # pynetdicom owns the data set now arriving
        self.incoming: Incoming | None = None
        self.spare: tuple[SpoolPart, float] | None = None

    # -- reading -----------------------------------------------------------------------
    def read_pdu(self) -> None:
        dul = self.dul
        pdu = dul.socket.take_pdu()  # whole and checked (store.acceptor.guard)
        if pdu is None:
            dul.event_queue.put("Evt17")  # transport connection closed (or aborted by us)
            return
        if pdu.type != P_DATA_TF:
            self.drop_incoming()  # an abort or release inside an object ends the object
            self.to_pynetdicom(pdu.head + bytes(pdu.body))
            return
        try:
            self.on_p_data(pdu.head, pdu.body, pdu.items)
        except Exception as exc:  # pynetdicom's answer to what it cannot take: an abort
            logger.warning("node %s: P-DATA-TF PDU from %s not taken: %s: %s; aborting",
                           self.ctx.node_id, self.peer, type(exc).__name__, exc)
            self.drop_incoming()
            dul.event_queue.put("Evt19")

    @property
    def peer(self) -> str:
        requestor = self.assoc.requestor
        return f"{requestor.address}:{requestor.port}"

    def to_pynetdicom(self, pdu_bytes: bytes) -> None:
        """What pynetdicom's own reader does after reading a PDU."""
        try:
            pdu, event = self.dul._decode_pdu(bytearray(pdu_bytes))
        except Exception as exc:
            logger.error("node %s: cannot decode a PDU: %s", self.ctx.node_id, exc)
            self.dul.event_queue.put("Evt19")
            return
        self.dul.event_queue.put(event)
        self.dul._recv_pdu.put(pdu)

    def on_p_data(self, head: bytes, body: memoryview,
                  items: list[tuple[int, int, memoryview]] | None = None) -> None:
        """`body` may be a view of the socket's buffer: nothing keeps it past this call.
        `items`: its PDV items as the guard walked them (else walked here); the whole PDU
        is valid before any of it is acted on."""
        if items is None:
            items = list(iter_pdvs(body))
        passed: list[bytes] = []
        for context_id, header, fragment in items:
            is_command, last = bool(header & 0x01), bool(header & 0x02)
            incoming = self.incoming
            if incoming is not None:
                if is_command or context_id != incoming.context_id:
                    raise ValueError("a data set fragment was expected")
                self.receive(incoming, fragment)
                if last:
                    self.incoming = None
                    self.finish(incoming)
            elif self.passing or not is_command:
                passed.append(pdv_item(context_id, header, fragment))
                if not is_command and last:
                    self.passing = False
            else:
                self.command.append((context_id, header, bytes(fragment)))
                if last:
                    passed.extend(self.on_command())
        if passed:
            if len(passed) == len(items):
                self.to_pynetdicom(head + bytes(body))
            else:
                self.to_pynetdicom(p_data_pdu(passed))

    def on_command(self) -> list[bytes]:
        """A complete command set: start an incoming object, or return the fragments
        for pynetdicom (and let it have the data set that follows)."""
        fragments, self.command = self.command, []
        context_id = fragments[-1][0]
        raw = b"".join(fragment for _, _, fragment in fragments)
        command = parse_command(raw)
        if command is None or not self.start(context_id, command):
            if command is None or command.us(DATASET_TYPE) != NO_DATASET:
                self.passing = True
            return [pdv_item(cx, header, fragment) for cx, header, fragment in fragments]
        return []

    # -- one object --------------------------------------------------------------------
    def start(self, context_id: int, command: Command) -> bool:
        """Take the C-STORE into the lane; False leaves it to pynetdicom."""
        if command.us(COMMAND_FIELD) != C_STORE_RQ or command.us(DATASET_TYPE) == NO_DATASET:
            return False
        message_id = command.us(MESSAGE_ID)
        sop_class = command.text(AFFECTED_SOP_CLASS)
        sop_uid = command.text(AFFECTED_SOP_INSTANCE)
        context = self.assoc._accepted_cx.get(context_id)
        if (
            message_id is None or not sop_uid or context is None
            or not sop_class.startswith(STORAGE_PREFIX) or context.abstract_syntax != sop_class
        ):
            return False
        verdict = classify_sop_class(sop_class)
        ctx = self.ctx
        syntax = str(context.transfer_syntax[0])
        framing = Framing(implicit=syntax == ImplicitVRLittleEndian,
                          little=syntax != ExplicitVRBigEndian)
        incoming = Incoming(context_id, message_id, sop_class, sop_uid, None,
                            discard=verdict == "not_importable" and ctx.del_no_match,
                            framing=framing, started=time.perf_counter(), syntax=syntax,
                            needs_header=verdict == "needs_header")
        if syntax == DeflatedExplicitVRLittleEndian:
            incoming.inflater = zlib.decompressobj(-zlib.MAX_WBITS)
        if not incoming.discard:
            try:
                part = self.take_part()
                part.write(PREAMBLE + file_meta_bytes(
                    sop_class, sop_uid, syntax, str(self.assoc.requestor.ae_title).strip(),
                ))  # a failed write has discarded the part
                incoming.part = part
            except OSError as exc:
                incoming.error = str(exc)
        self.incoming = incoming
        return True

    def receive(self, incoming: Incoming, fragment: memoryview) -> None:
        incoming.size += len(fragment)
        self.look(incoming, fragment)
        if incoming.part is None:
            return
        try:
            incoming.part.write(fragment)
        except OSError as exc:  # keep reading the rest of the object, answer A700 at the end
            incoming.part, incoming.error = None, str(exc)

    def look(self, incoming: Incoming, fragment: memoryview) -> None:
        """Feed the framing check (through a capped inflation for a deflated data set)
        and keep the prefix a header look needs."""
        data: bytes | memoryview = fragment
        cap = self.limits.header_inflate_max
        if incoming.inflater is not None:
            if incoming.capped:
                return
            try:
                data = incoming.inflater.decompress(fragment, cap - incoming.inflated)
            except zlib.error as exc:
                incoming.framing.error = f"deflated data set does not inflate: {exc}"
                incoming.capped = True
                return
            incoming.inflated += len(data)
            if incoming.inflated >= cap or incoming.inflater.unconsumed_tail:
                incoming.capped = True  # the rest is not looked at, never inflated
        incoming.framing.feed(data)
        if incoming.needs_header and len(incoming.prefix) < cap:
            incoming.prefix += data[:cap - len(incoming.prefix)]

    def verdict(self, incoming: Incoming) -> tuple[int, str]:
        """(status, comment) for a complete data set before it is kept; Success lets it
        through. Decides `discard` for a class that needed the header look."""
        problem = incoming.framing.finish(complete=not incoming.capped)
        if problem:
            return CANNOT_UNDERSTAND, f"not a data set: {problem}"
        if incoming.needs_header:
            from store.handlers import unmatched_from_bytes

            unmatched = unmatched_from_bytes(bytes(incoming.prefix), incoming.syntax,
                                             incoming.sop_class, inflated=True)
            incoming.prefix = bytearray()
            if isinstance(unmatched, str):
                return CANNOT_UNDERSTAND, unmatched
            incoming.discard = unmatched and self.ctx.del_no_match
        return SUCCESS, ""

    def finish(self, incoming: Incoming) -> None:
        ctx = self.ctx
        info = ctx.assocs.get(id(self.assoc))
        status, comment = self.verdict(incoming)
        if status != SUCCESS:
            logger.warning("node %s: %s from %s: %s", ctx.node_id, incoming.sop_uid,
                           self.peer, comment)
            if incoming.part is not None:
                incoming.part.discard()
            ctx.failed(info, f"unreadable object {incoming.sop_uid}: {comment}")
        elif incoming.discard:
            if incoming.part is not None:
                incoming.part.discard()
            ctx.discarded(info)
        else:
            path = None
            if incoming.part is not None:
                try:
                    path = incoming.part.commit(incoming.sop_uid)
                except OSError as exc:
                    incoming.error = str(exc)
            if path is None:
                logger.error("node %s: cannot spool %s: %s", ctx.node_id, incoming.sop_uid,
                             incoming.error)
                ctx.failed(info, f"cannot write to the spool: {incoming.error}")
                status, comment = OUT_OF_RESOURCES, SPOOL_WRITE_FAILED
            else:
                ctx.enqueue_import(path)
                ctx.stored(info, incoming.size)
        self.respond(incoming, status, comment)
        if status == SUCCESS and not incoming.discard:
            self.open_spare()
        if status != SUCCESS or incoming.discard:
            return
        logger.debug("node %s: stored %s in %.1f ms", ctx.node_id, incoming.sop_uid,
                     (time.perf_counter() - incoming.started) * 1000)

    def respond(self, incoming: Incoming, status: int, comment: str) -> None:
        command = store_response(incoming.sop_class, incoming.sop_uid, incoming.message_id,
                                 status, comment)
        peer_max = self.assoc.requestor.maximum_length
        self.dul.socket.send(command_pdus(incoming.context_id, command, peer_max))

    def take_part(self) -> SpoolPart:
        spare, self.spare = self.spare, None
        if spare is not None:
            part, opened = spare
            if time.monotonic() - opened < SPARE_MAX_AGE_S:
                return part
            part.discard()
        return self.ctx.spool.open_part()

    def open_spare(self) -> None:
        """Create the next object's file while the sender prepares it: creating a file
        is the second most expensive step per object after writing its bytes."""
        try:
            self.spare = (self.ctx.spool.open_part(), time.monotonic())
        except OSError:
            self.spare = None  # the next object opens its own part and reports the error

    def drop_incoming(self) -> None:
        """The association ended or broke inside an object: nothing of it stays."""
        spare, self.spare = self.spare, None
        if spare is not None:
            spare[0].discard()
        incoming, self.incoming = self.incoming, None
        if incoming is not None and incoming.part is not None:
            incoming.part.discard()
            logger.info("node %s: partial object %s removed", self.ctx.node_id,
                        incoming.sop_uid)


