"""The C-STORE fast lane of a store node's associations.

pynetdicom turns every P-DATA-TF PDU into PDU and primitive objects, runs them through
its state machine, reassembles the data set in the DIMSE layer, hands the message to the
association thread, decodes the command set with pydicom, calls our handler and encodes
the response the same way: about 2 ms of CPU per object on this project's machines, twice
what DCMTK needs for the whole object. For the common case we do that work in the DUL
thread that reads the socket:

- a C-STORE-RQ on an accepted context whose SOP class decides the import question by
  itself (imports.classify.classify_sop_class is not "needs_header") goes through the
  lane: its data set fragments are written straight from the receive buffer into a
  spool part, and at the last fragment the part is committed (fsync, rename, fsync of
  the folder), the import is enqueued and the C-STORE-RSP is written to the socket;
- everything else (association set-up and release, aborts, C-ECHO, a C-STORE whose
  class needs a header peek, anything malformed) goes to pynetdicom unchanged, through
  the handlers in store/handlers.py.

The order of the steps, the statuses and the counters are those of
`store.handlers.handle_store`. The lane only runs while the association is established
(state Sta6, where P-DATA leaves the state unchanged), so the state machine never misses
a transition. A partial object is removed when the association ends without it.
"""

from __future__ import annotations

import logging
import struct
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from imports.classify import classify_sop_class
from store import wakeup
from store.spool import SpoolPart
from store.wire import (
    AFFECTED_SOP_CLASS,
    AFFECTED_SOP_INSTANCE,
    C_STORE_RQ,
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
    from store.handlers import NodeContext

logger = logging.getLogger(__name__)

ESTABLISHED = "Sta6"
# A spool part opened ahead for the next object is used only while this young: the
# spool's clean-up removes our own temporary files after an hour.
SPARE_MAX_AGE_S = 60.0
STORAGE_PREFIX = "1.2.840.10008.5.1.4.1.1."
PDU_TYPES = (0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07)


@dataclass
class Incoming:
    """A C-STORE whose data set is arriving through the lane."""

    context_id: int
    message_id: int
    sop_class: str
    sop_uid: str
    part: SpoolPart | None
    discard: bool
    error: str = ""
    size: int = 0
    started: float = 0.0


class FastLane:
    """Replaces `DULServiceProvider._read_pdu_data` for one accepted association."""

    def __init__(self, assoc: Any, ctx: NodeContext) -> None:
        self.assoc = assoc
        self.dul = assoc.dul
        self.ctx = ctx
        self.pynetdicom_read = self.dul._read_pdu_data
        self.command: list[tuple[int, int, bytes]] = []  # fragments of a command set
        self.passing = False  # pynetdicom owns the data set now arriving
        self.incoming: Incoming | None = None
        self.spare: tuple[SpoolPart, float] | None = None

    # -- reading -----------------------------------------------------------------------
    def read_pdu(self) -> None:
        dul = self.dul
        if dul.state_machine.current_state != ESTABLISHED:
            self.pynetdicom_read()
            return
        try:
            head = dul.socket.recv(6)
            pdu_type, _, length = struct.unpack(">BBL", head)
        except (OSError, struct.error):
            dul.event_queue.put("Evt17")  # transport connection closed
            return
        if pdu_type not in PDU_TYPES:
            logger.error("node %s: unknown PDU type 0x%02X", self.ctx.node_id, pdu_type)
            dul.event_queue.put("Evt19")
            return
        try:
            body = dul.socket.recv(length)
        except OSError:
            dul.event_queue.put("Evt17")
            return
        if len(body) != length:
            dul.event_queue.put("Evt17")
            return
        if pdu_type != P_DATA_TF:
            self.drop_incoming()  # an abort or release inside an object ends the object
            self.to_pynetdicom(bytes(head) + body)
            return
        try:
            self.on_p_data(head, body)
        except ValueError as exc:  # malformed PDV items: pynetdicom's answer is an abort
            logger.warning("node %s: invalid P-DATA-TF PDU: %s", self.ctx.node_id, exc)
            self.drop_incoming()
            dul.event_queue.put("Evt19")

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

    def on_p_data(self, head: bytes, body: bytearray) -> None:
        view = memoryview(body)
        items = list(iter_pdvs(view))  # validates the whole PDU before acting on any of it
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
                self.to_pynetdicom(bytes(head) + bytes(body))
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
        if verdict == "needs_header":
            return False
        ctx = self.ctx
        incoming = Incoming(context_id, message_id, sop_class, sop_uid, None,
                            discard=verdict == "not_importable" and ctx.del_no_match,
                            started=time.perf_counter())
        if not incoming.discard:
            try:
                part = self.take_part()
                part.write(PREAMBLE + file_meta_bytes(
                    sop_class, sop_uid, str(context.transfer_syntax[0]),
                    str(self.assoc.requestor.ae_title).strip(),
                ))  # a failed write has discarded the part
                incoming.part = part
            except OSError as exc:
                incoming.error = str(exc)
        self.incoming = incoming
        return True

    def receive(self, incoming: Incoming, fragment: memoryview) -> None:
        incoming.size += len(fragment)
        if incoming.part is None:
            return
        try:
            incoming.part.write(fragment)
        except OSError as exc:  # keep reading the rest of the object, answer A700 at the end
            incoming.part, incoming.error = None, str(exc)

    def finish(self, incoming: Incoming) -> None:
        ctx = self.ctx
        info = ctx.assocs.get(id(self.assoc))
        status, comment = SUCCESS, ""
        if incoming.discard:
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


# The pynetdicom internals the lane relies on (pynetdicom 3.0; pyproject.toml pins it).
DUL_INTERNALS = ("_read_pdu_data", "_decode_pdu", "_recv_pdu", "event_queue",
                 "state_machine", "socket", "_target")


def attach(assoc: Any, ctx: NodeContext) -> FastLane | None:
    """Route the association's P-DATA through a FastLane; call before its threads start.

    Returns None (pynetdicom's own path serves the association) when this pynetdicom
    lacks an internal the lane needs."""
    dul = assoc.dul
    missing = [name for name in DUL_INTERNALS if not hasattr(dul, name)]
    if missing or not hasattr(assoc, "_accepted_cx"):
        logger.warning("node %s: fast lane off for this pynetdicom (missing %s)",
                       ctx.node_id, ", ".join(missing) or "_accepted_cx")
        return None
    lane = FastLane(assoc, ctx)
    dul._read_pdu_data = lane.read_pdu
    wakeup.when_dul_ends(dul, lane.drop_incoming)
    assoc._doseport_lane = lane
    return lane
