"""Event handlers of a store node: the C-STORE path, C-ECHO and association bookkeeping.

The C-STORE handler does the minimum, in this order: classify (by SOP class, peeking at
the header only when the class is not enough) -> unmatched objects follow the delete
setting -> durable spool write of the received bytes -> enqueue the import -> answer.
It never touches the Django database: settings it needs are refreshed by the node's
maintenance thread into `NodeContext`.
"""

from __future__ import annotations

import ipaddress
import logging
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
from lib import aeconfig
from lib.aeconfig import AEConfig
from store.acceptor.framing import Framing
from store.acceptor.framing import check as check_framing
from store.acceptor.limits import Limits
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
HEADER_INFLATE_MAX = Limits.header_inflate_max


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
    assoc: Any = field(default=None, repr=False)  # its thread, to notice it ended


@dataclass
class NodeContext:
    """What the handlers of one node need; shared by all association threads."""

    node_id: int
    spool: Spool
    del_no_match: bool = False
    network_timeout: float = 60.0
    fast_lane: bool = False
    # The node's AE values (lib/aeconfig.py): TCP options of each connection come from here.
    ae_config: AEConfig | None = None
    enqueue: Callable[[Path, int], None] = _enqueue_import
    counters: Counters = field(default_factory=Counters)
    lock: threading.Lock = field(default_factory=threading.Lock)
    assocs: dict[int, AssocInfo] = field(default_factory=dict)

    def error(self, message: str) -> None:
        with self.lock:
            self.counters.last_error = message
            self.counters.last_error_at = time.time()

    def snapshot(self) -> Counters:
        self.prune_ended()
        with self.lock:
            return Counters(**vars(self.counters))

    def prune_ended(self) -> None:
        """Forget associations whose thread ended without a connection-closed event (a peer
        that resets the connection right after the A-ASSOCIATE-AC): they are not open."""
        with self.lock:
            ended = [key for key, info in self.assocs.items()
                     if info.assoc is not None and not info.assoc.is_alive()]
            for key in ended:
                del self.assocs[key]
                self.counters.associations_open -= 1

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


def peek_bytes(raw: bytes, syntax: str, sop_class: str, inflated: bool = False) -> Dataset:
    """Parse the elements a classifier needs (never the pixel data) from a data set's
    bytes. A deflated data set is inflated no further than HEADER_INFLATE_MAX
    (`inflated`: `raw` is that inflated prefix already)."""
    if syntax == DeflatedExplicitVRLittleEndian and not inflated:
        raw = zlib.decompressobj(-zlib.MAX_WBITS).decompress(raw, HEADER_INFLATE_MAX)
    limit = PEEK_STOP_SR if sop_class.startswith(SR_PREFIX) else PEEK_STOP

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


def peek_header(event: evt.Event) -> Dataset:
    request: Any = event.request
    raw = cast(BytesIO, request.DataSet).getvalue()
    return peek_bytes(raw, str(event.context.transfer_syntax), str(request.AffectedSOPClassUID))


def unmatched_from_bytes(raw: bytes, syntax: str, sop_class: str,
                         inflated: bool = False) -> bool | str:
    """For a class that needs the header look: True when no importer wants the object;
    an Error Comment when its header cannot be read."""
    try:
        ds = peek_bytes(raw, syntax, sop_class, inflated)
        if "SOPClassUID" not in ds:
            ds.SOPClassUID = sop_class
        # pydicom decodes values lazily: a broken element raises inside classify().
        return not classify(ds).importable
    except Exception as exc:
        return f"cannot parse dataset: {type(exc).__name__}"


def framing_problem(raw: bytes | memoryview, syntax: str) -> tuple[str, bytes | None]:
    """('' or what is wrong with the data set's framing, the inflated prefix of a
    deflated data set (inflated once, at most HEADER_INFLATE_MAX) or None)."""
    inflated = None
    try:
        if syntax == DeflatedExplicitVRLittleEndian:
            inflater = zlib.decompressobj(-zlib.MAX_WBITS)
            inflated = inflater.decompress(raw, HEADER_INFLATE_MAX)
            framing = Framing(implicit=False)
            framing.feed(inflated)
            capped = len(inflated) >= HEADER_INFLATE_MAX or bool(inflater.unconsumed_tail)
            problem = framing.finish(complete=not capped)
        else:
            problem = check_framing(raw, implicit=syntax == ImplicitVRLittleEndian,
                                    little=syntax != ExplicitVRBigEndian)
    except zlib.error as exc:
        problem = f"deflated data set does not inflate: {exc}"
    return (f"not a data set: {problem}" if problem else ""), inflated


def is_unmatched(event: evt.Event, sop_class: str) -> bool | Dataset:
    """True when no importer wants the object; a Dataset status when it cannot be read."""
    request: Any = event.request
    syntax = str(event.context.transfer_syntax)
    raw = cast(BytesIO, request.DataSet).getvalue()
    problem, inflated = framing_problem(raw, syntax)
    if problem:
        return _status(CANNOT_UNDERSTAND, problem)
    verdict = classify_sop_class(sop_class)
    if verdict != "needs_header":
        return verdict == "not_importable"
    if inflated is not None:
        unmatched = unmatched_from_bytes(inflated, syntax, sop_class, inflated=True)
    else:
        unmatched = unmatched_from_bytes(raw, syntax, sop_class)
    if isinstance(unmatched, str):
        return _status(CANNOT_UNDERSTAND, unmatched)
    return unmatched


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
            logger.warning("node %s: %s from %s: %s", ctx.node_id, sop_uid, _peer_of(event),
                           unmatched.ErrorComment)
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
    try:
        return f"{requestor.address}:{requestor.port}"
    except ValueError:  # no address information (a requestor never connected)
        return "an unknown peer"


def handle_accepted(event: evt.Event, ctx: NodeContext) -> None:
    info = AssocInfo(
        calling_aet=str(event.assoc.requestor.ae_title).strip(),
        peer=_peer_of(event),
        started=time.monotonic(),
        assoc=event.assoc,
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


def handle_conn_open(event: evt.Event, ctx: NodeContext) -> None:
    """TCP options of the connection, from the node's AEConfig (lib/aeconfig.tune_socket);
    the acceptor's socket re-arms TCP_QUICKACK per read only when the config asks."""
    sock: Any = event.assoc.dul.socket
    if sock is None or sock.socket is None or ctx.ae_config is None:
        return
    quickack = aeconfig.tune_socket(sock.socket, ctx.ae_config)
    if hasattr(sock, "quickack"):
        sock.quickack = quickack


def is_this_host(event: evt.Event) -> bool:
    """The peer is this machine: a loopback address, or the address it called us on."""
    peer = str(event.assoc.requestor.address)
    try:
        if ipaddress.ip_address(peer).is_loopback:
            return True
    except ValueError:
        return False
    return peer == str(event.assoc.acceptor.address)


def handle_requested(event: evt.Event, ctx: NodeContext, health_ae: str) -> None:
    """Doseport's health-check AE title is admitted from this host only."""
    primitive: Any = event.assoc.requestor.primitive
    calling = str(getattr(primitive, "calling_ae_title", "")).strip()
    if calling != health_ae or is_this_host(event):
        return
    event.assoc.acse.send_reject(0x01, 0x01, 0x03)  # calling AE title not recognised
    message = (f"rejected association from {calling!r} at {_peer_of(event)}: the health "
               "check AE title is only accepted from this host")
    logger.warning("node %s: %s", ctx.node_id, message)
    with ctx.lock:
        ctx.counters.associations_rejected += 1
        ctx.counters.last_error = message
        ctx.counters.last_error_at = time.time()


def handlers_for(
    ctx: NodeContext, limits: Limits | None = None
) -> list[tuple[Any, Callable[..., Any], list[Any]]]:
    health_ae = (limits or Limits.from_settings()).health_ae
    return [
        (evt.EVT_CONN_OPEN, handle_conn_open, [ctx]),
        (evt.EVT_REQUESTED, handle_requested, [ctx, health_ae]),
        (evt.EVT_ACCEPTED, handle_accepted, [ctx]),
        (evt.EVT_REJECTED, handle_rejected, [ctx]),
        (evt.EVT_ABORTED, handle_aborted, [ctx]),
        (evt.EVT_CONN_CLOSE, handle_closed, [ctx]),
        (evt.EVT_C_STORE, handle_store, [ctx]),
        (evt.EVT_C_ECHO, handle_echo, [ctx]),
    ]
