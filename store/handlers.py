"""Event handlers of a store node: the C-STORE path, C-ECHO and association bookkeeping.

The C-STORE handler does the minimum, in this order: classify (by SOP class, peeking at
the header only when the class is not enough) -> unmatched objects follow the delete
setting -> durable spool write of the received bytes -> enqueue the import -> answer.
It never touches the Django database: settings it needs are refreshed by the node's
maintenance thread into `NodeContext`.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path
from typing import Any, cast

from pydicom import Dataset
from pydicom.filereader import read_dataset
from pydicom.tag import BaseTag
from pydicom.uid import DeflatedExplicitVRLittleEndian, ExplicitVRBigEndian, ImplicitVRLittleEndian
from pynetdicom import evt

from imports.classify import classify, classify_sop_class
from store import fastpath, wakeup
from store.spool import Spool
from store.wire import (
    CANNOT_UNDERSTAND,
    OUT_OF_RESOURCES,
    PREAMBLE,
    PROCESSING_FAILURE,
    SPOOL_WRITE_FAILED,
    SUCCESS,
    file_meta_bytes,
)

__all__ = [
    "CANNOT_UNDERSTAND", "OUT_OF_RESOURCES", "PROCESSING_FAILURE", "SUCCESS", "NodeContext",
    "handle_store", "handlers_for",
]

logger = logging.getLogger(__name__)

# The header peek of an image stops before the SR content tree position (nothing an
# image classifier reads comes later) and so before the pixel data. A structured report
# is read up to the pixel data position: its classifier may look into the content tree.
PEEK_STOP = 0x0040A730
PEEK_STOP_SR = 0x7FE00000
SR_PREFIX = "1.2.840.10008.5.1.4.1.1.88."
MAX_READ = 64 * 1024 * 1024


def _enqueue_import(path: Path, node_id: int) -> None:
    from imports.tasks import import_file_task

    import_file_task(str(path), "store", node_id)


def enqueue_import_batch(paths: list[Path], node_id: int) -> None:
    """One import task for several spooled objects (store.dispatch)."""
    from imports.tasks import import_file_task, import_files_task

    if len(paths) == 1:
        import_file_task(str(paths[0]), "store", node_id)
    else:
        import_files_task([str(p) for p in paths], "store", node_id)


@dataclass
class Counters:
    associations_open: int = 0
    associations_total: int = 0
    associations_rejected: int = 0
    objects_received: int = 0
    objects_discarded: int = 0
    objects_failed: int = 0
    bytes_received: int = 0
    last_object_at: float | None = None
    last_error: str = ""
    last_error_at: float | None = None


@dataclass
class AssocInfo:
    calling_aet: str
    peer: str
    started: float
    objects: int = 0
    failed: int = 0
    aborted: bool = False


@dataclass
class NodeContext:
    """What the handlers of one node need; shared by all association threads."""

    node_id: int
    spool: Spool
    del_no_match: bool = False
    network_timeout: float = 60.0
    event_driven: bool = False
    fast_lane: bool = False
    enqueue: Callable[[Path, int], None] = _enqueue_import
    counters: Counters = field(default_factory=Counters)
    lock: threading.Lock = field(default_factory=threading.Lock)
    assocs: dict[int, AssocInfo] = field(default_factory=dict)

    def error(self, message: str) -> None:
        with self.lock:
            self.counters.last_error = message
            self.counters.last_error_at = time.time()

    def snapshot(self) -> Counters:
        with self.lock:
            return Counters(**vars(self.counters))

    def stored(self, info: AssocInfo | None, size: int) -> None:
        with self.lock:
            self.counters.objects_received += 1
            self.counters.bytes_received += size
            self.counters.last_object_at = time.time()
        if info is not None:
            info.objects += 1

    def discarded(self, info: AssocInfo | None) -> None:
        with self.lock:
            self.counters.objects_discarded += 1
        if info is not None:
            info.objects += 1

    def failed(self, info: AssocInfo | None, message: str) -> None:
        with self.lock:
            self.counters.objects_failed += 1
            self.counters.last_error = message
            self.counters.last_error_at = time.time()
        if info is not None:
            info.failed += 1

    def enqueue_import(self, path: Path) -> None:
        """Hand a spooled object to the import queue; a failure only leaves it for the
        recovery sweep (the object is already durable)."""
        try:
            self.enqueue(path, self.node_id)
        except Exception as exc:
            logger.error("node %s: enqueue of %s failed: %s", self.node_id, path.name, exc)
            self.error(f"import queue unavailable: {exc}")


def _status(code: int, comment: str) -> Dataset:
    ds = Dataset()
    ds.Status = code
    ds.ErrorComment = comment[:64]
    return ds


class TruncatedDataset(ValueError):
    """Not an EOFError on purpose: pydicom turns those into a warning and a partial result."""


class _StrictReader(BytesIO):
    """A stream that raises when an element's declared length runs past the end.

    pydicom would silently return the shorter value; only a clean end at an element
    boundary (an empty read of the next tag) is a normal end of the dataset.
    """

    def read(self, size: int | None = -1, /) -> bytes:
        data = super().read(size)
        if size is not None and 0 <= len(data) < size and (data or size != 8):
            raise TruncatedDataset(f"dataset ends inside an element ({len(data)} of {size} bytes)")
        return data


def peek_header(event: evt.Event) -> Dataset:
    """Parse the elements a classifier needs (never the pixel data) from the raw bytes."""
    request: Any = event.request
    raw = cast(BytesIO, request.DataSet).getvalue()
    syntax = event.context.transfer_syntax
    if syntax == DeflatedExplicitVRLittleEndian:
        raw = zlib.decompressobj(-zlib.MAX_WBITS).decompress(raw)
    limit = PEEK_STOP_SR if str(request.AffectedSOPClassUID).startswith(SR_PREFIX) else PEEK_STOP

    def stop(tag: BaseTag, vr: str | None, length: int) -> bool:
        return int(tag) >= limit

    ds = read_dataset(
        _StrictReader(raw),
        is_implicit_VR=syntax == ImplicitVRLittleEndian,
        is_little_endian=syntax != ExplicitVRBigEndian,
        stop_when=stop,
    )
    if not ds:
        raise ValueError("no data elements")
    return ds


def is_unmatched(event: evt.Event, sop_class: str) -> bool | Dataset:
    """True when no importer wants the object; a Dataset status when it cannot be read."""
    verdict = classify_sop_class(sop_class)
    if verdict != "needs_header":
        return verdict == "not_importable"
    try:
        ds = peek_header(event)
        if "SOPClassUID" not in ds:
            ds.SOPClassUID = sop_class
        # pydicom decodes values lazily: a broken element raises inside classify().
        return not classify(ds).importable
    except Exception as exc:
        return _status(CANNOT_UNDERSTAND, f"cannot parse dataset: {type(exc).__name__}")


def handle_store(event: evt.Event, ctx: NodeContext) -> int | Dataset:
    """EVT_C_STORE: classify -> delete policy -> durable spool write -> enqueue -> answer."""
    started = time.perf_counter()
    try:
        request: Any = event.request
        sop_class = str(request.AffectedSOPClassUID)
        sop_uid = str(request.AffectedSOPInstanceUID)
        info = ctx.assocs.get(id(event.assoc))
        unmatched = is_unmatched(event, sop_class)
        if isinstance(unmatched, Dataset):
            logger.warning("node %s: %s for %s", ctx.node_id, unmatched.ErrorComment, sop_uid)
            ctx.failed(info, f"unreadable object {sop_uid}")
            return unmatched
        if unmatched and ctx.del_no_match:
            ctx.discarded(info)
            return SUCCESS
        stream = cast(BytesIO, request.DataSet).getbuffer()
        header = PREAMBLE + file_meta_bytes(
            sop_class, sop_uid, str(event.context.transfer_syntax),
            str(event.assoc.requestor.ae_title).strip(),
        )
        try:
            path = ctx.spool.write((header, stream), sop_uid)
        except OSError as exc:
            logger.error("node %s: cannot spool %s: %s", ctx.node_id, sop_uid, exc)
            ctx.failed(info, f"cannot write to the spool: {exc}")
            return _status(OUT_OF_RESOURCES, SPOOL_WRITE_FAILED)
        size = len(stream)
        stream.release()
        ctx.enqueue_import(path)
        ctx.stored(info, size)
        logger.debug(
            "node %s: stored %s in %.1f ms", ctx.node_id, sop_uid,
            (time.perf_counter() - started) * 1000,
        )
        return SUCCESS
    except Exception as exc:  # never let pynetdicom answer without our accounting
        logger.exception("node %s: C-STORE handler failed", ctx.node_id)
        ctx.error(f"C-STORE handler failed: {exc}")
        return _status(PROCESSING_FAILURE, f"internal error: {type(exc).__name__}")


def handle_echo(event: evt.Event, ctx: NodeContext) -> int:
    return SUCCESS


def _peer_of(event: evt.Event) -> str:
    requestor = event.assoc.requestor
    return f"{requestor.address}:{requestor.port}"


def handle_accepted(event: evt.Event, ctx: NodeContext) -> None:
    info = AssocInfo(
        calling_aet=str(event.assoc.requestor.ae_title).strip(),
        peer=_peer_of(event),
        started=time.monotonic(),
    )
    with ctx.lock:
        ctx.assocs[id(event.assoc)] = info
        ctx.counters.associations_open += 1
        ctx.counters.associations_total += 1


def handle_rejected(event: evt.Event, ctx: NodeContext) -> None:
    primitive: Any = event.assoc.acceptor.primitive
    reason = getattr(primitive, "reason_str", "rejected") if primitive else "rejected"
    calling = str(event.assoc.requestor.ae_title).strip()
    called = str(getattr(event.assoc.requestor.primitive, "called_ae_title", "")).strip()
    message = (
        f"rejected association from {calling!r} at {_peer_of(event)} "
        f"(called {called!r}): {reason}"
    )
    logger.warning("node %s: %s", ctx.node_id, message)
    with ctx.lock:
        ctx.counters.associations_rejected += 1
        ctx.counters.last_error = message
        ctx.counters.last_error_at = time.time()


def handle_aborted(event: evt.Event, ctx: NodeContext) -> None:
    info = ctx.assocs.get(id(event.assoc))
    if info is not None:
        info.aborted = True


def handle_closed(event: evt.Event, ctx: NodeContext) -> None:
    with ctx.lock:
        info = ctx.assocs.pop(id(event.assoc), None)
        if info is not None:
            ctx.counters.associations_open -= 1
    if info is None:
        return
    logger.info(
        "node %s: association from %s at %s %s: %d objects stored, %d failed, %.2f s",
        ctx.node_id, info.calling_aet, info.peer, "aborted" if info.aborted else "ended",
        info.objects, info.failed, time.monotonic() - info.started,
    )


def _fast_recv(sock: Any, assoc: Any, quickack: bool) -> Callable[[int], bytearray]:
    """Replacement for AssociationSocket.recv: large reads into one buffer.

    pynetdicom reads in 4 KiB pieces; a 512 KiB CT image costs 128 calls. TCP_QUICKACK
    (Linux, not sticky) is re-armed before each read so that a sender that leaves Nagle
    on does not wait for our delayed ACK between the two halves of each PDU. A peer that
    disconnects before its association request would otherwise hold one of the node's
    association slots until the ACSE timeout: we wake the waiting acceptor at once.
    """
    raw: socket.socket = sock.socket

    def gone() -> None:
        if assoc.requestor.primitive is None and not getattr(assoc, "_doseport_gone", False):
            assoc._doseport_gone = True
            assoc.dul.to_user_queue.put(None)  # read by the acceptor as "no request"

    def recv(nr_bytes: int) -> bytearray:
        if nr_bytes > MAX_READ:
            # Far above the PDU size we accept: answering with a short read makes
            # pynetdicom close the connection instead of us allocating the claim.
            logger.warning("peer announced a %d byte PDU; closing the connection", nr_bytes)
            return bytearray()
        buffer = bytearray(nr_bytes)
        view = memoryview(buffer)
        read = 0
        try:
            while read < nr_bytes:
                if quickack:
                    raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
                got = raw.recv_into(view[read:], min(nr_bytes - read, 1 << 20))
                if not got:
                    break
                read += got
        except OSError:
            gone()
            raise
        finally:
            view.release()
        if read < nr_bytes:
            gone()
            del buffer[read:]
        return buffer

    return recv


def handle_conn_open(event: evt.Event, ctx: NodeContext) -> None:
    sock: Any = event.assoc.dul.socket
    if sock is None or sock.socket is None:
        return
    raw: socket.socket = sock.socket
    raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    raw.settimeout(ctx.network_timeout)
    quickack = hasattr(socket, "TCP_QUICKACK")
    sock.recv = _fast_recv(sock, event.assoc, quickack)
    if ctx.event_driven:
        wakeup.attach(event.assoc)
    if ctx.fast_lane:
        fastpath.attach(event.assoc, ctx)


def handlers_for(ctx: NodeContext) -> list[tuple[Any, Callable[..., Any], list[Any]]]:
    return [
        (evt.EVT_CONN_OPEN, handle_conn_open, [ctx]),
        (evt.EVT_ACCEPTED, handle_accepted, [ctx]),
        (evt.EVT_REJECTED, handle_rejected, [ctx]),
        (evt.EVT_ABORTED, handle_aborted, [ctx]),
        (evt.EVT_CONN_CLOSE, handle_closed, [ctx]),
        (evt.EVT_C_STORE, handle_store, [ctx]),
        (evt.EVT_C_ECHO, handle_echo, [ctx]),
    ]
