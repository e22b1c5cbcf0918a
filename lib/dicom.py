"""The one seam for outgoing DICOM: every association we open goes through here.

Functions return small result objects, never free strings. Unit tests patch these
functions; integration tests point them at a real peer on a loopback port.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pynetdicom import AE, evt
from pynetdicom.association import Association
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]
from pynetdicom.transport import AddressInformation, AssociationSocket

from lib import aeconfig
from lib.aeconfig import AEConfig
from lib.tls import TLSNotConfigured

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Peer:
    """Where and how to reach a remote AE. Timeouts in seconds."""

    ae_title: str
    host: str
    port: int
    calling_ae_title: str
    connect_timeout: float = 5.0
    acse_timeout: float = 10.0
    dimse_timeout: float = 30.0
    network_timeout: float = 60.0
    tls: bool = False  # DICOM TLS, peer verified against DOSEPORT_TLS_CA (lib/tls.py)

    def ae_config(self) -> AEConfig:
        return aeconfig.outgoing_config(
            self.calling_ae_title, self.connect_timeout, self.acse_timeout,
            self.dimse_timeout, self.network_timeout, use_tls=self.tls,
        )


@dataclass(frozen=True)
class EchoResult:
    ok: bool
    rtt_ms: float | None = None
    reason: str = ""
    status: int | None = None


@dataclass
class AssocFailure:
    """Why an association could not be made, in words a PACS administrator can act on."""

    reason: str
    connected: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


class QuickAckSocket(AssociationSocket):
    """An outgoing association's socket that re-arms Linux TCP_QUICKACK before every read.

    Peers built on DCMTK (Orthanc, most PACS) keep Nagle on and write each PDU in two
    pieces: the second waits for our ACK of the first, which Linux delays ~40 ms. Measured
    against Orthanc as shipped: 20-study query + retrieve 4.4 s without this, see
    docs/PERFORMANCE.md. `quickack` is set from the AE's config when the connection opens
    (_tcp_options); `recv` is AssociationSocket's public method."""

    quickack = False

    def recv(self, nr_bytes: int) -> bytearray:
        raw = self.socket
        if self.quickack and raw is not None:
            try:
                raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
            except OSError:
                pass
        return super().recv(nr_bytes)


class RequestorAE(AE):
    """The AE of outgoing associations: its associations get a QuickAckSocket.

    pynetdicom makes a requestor's socket in `AE._create_socket(assoc, address,
    tls_args)`, meant to be overridden; `outgoing_capabilities()` checks that it is still
    there. Without it pynetdicom's own socket is used (correct, without the re-armed ACK)."""

    def _create_socket(self, assoc: Association, address: AddressInformation,
                       tls_args: Any) -> AssociationSocket:
        sock = QuickAckSocket(assoc, address=address)
        sock.tls_args = tls_args
        return sock


def outgoing_capabilities() -> tuple[str, ...]:
    """The private pynetdicom names RequestorAE needs that are missing (none: all there)."""
    import inspect

    create = getattr(AE, "_create_socket", None)
    if create is None:
        return ("AE._create_socket",)
    if list(inspect.signature(create).parameters) != ["self", "assoc", "address", "tls_args"]:
        return ("AE._create_socket(assoc, address, tls_args)",)
    return ()


def _tcp_options(config: AEConfig) -> Any:
    """EVT_CONN_OPEN handler: TCP options of `config` (pynetdicom never sets TCP_NODELAY),
    and whether the socket re-arms TCP_QUICKACK per read (QuickAckSocket)."""
    def handler(event: evt.Event) -> None:
        sock = event.assoc.dul.socket
        if sock is not None and sock.socket is not None:
            quickack = aeconfig.tune_socket(sock.socket, config)
            if isinstance(sock, QuickAckSocket):
                sock.quickack = quickack
    return handler


def make_scu_ae(peer: Peer, contexts: list[str]) -> AE:
    """Build the requesting AE for `peer` with every value explicit (lib/aeconfig.py)."""
    ae = aeconfig.apply(RequestorAE(ae_title=peer.ae_config().ae_title), peer.ae_config())
    for uid in contexts:
        ae.add_requested_context(uid)
    return ae


def open_association(peer: Peer, contexts: list[str]) -> Association | AssocFailure:
    """Associate with `peer`; on failure say why (refused, timed out, rejected...)."""
    ae = make_scu_ae(peer, contexts)
    opened: list[bool] = []
    handlers = [
        (evt.EVT_CONN_OPEN, _tcp_options(peer.ae_config())),
        (evt.EVT_CONN_OPEN, lambda event: opened.append(True)),
    ]
    started = time.monotonic()
    try:
        tls_args = aeconfig.client_tls(peer.ae_config(), peer.host)
    except TLSNotConfigured as exc:
        return AssocFailure(str(exc))
    assoc = ae.associate(
        peer.host, peer.port, ae_title=peer.ae_title, tls_args=tls_args,
        evt_handlers=handlers,  # type: ignore[arg-type]
    )
    elapsed = time.monotonic() - started
    if assoc.is_established:
        return assoc
    if assoc.is_rejected:
        rsp = assoc.acceptor.primitive
        if rsp is not None:
            reason = f"association rejected ({rsp.result_str}): {rsp.reason_str}"
        else:
            reason = "association rejected"
        return AssocFailure(reason, connected=True)
    if not opened:
        return AssocFailure(_why_no_connection(peer, tls_args is not None))
    if assoc.is_aborted and elapsed < peer.acse_timeout:
        # pynetdicom also marks an ACSE timeout as "aborted"; only a quick abort is the peer's.
        return AssocFailure(
            "association aborted by the peer (it may not accept our calling AE title "
            f"{peer.calling_ae_title!r} or the proposed services)",
            connected=True,
        )
    return AssocFailure(
        f"no association response within {peer.acse_timeout:g} s (ACSE timeout)", connected=True
    )


def _why_no_connection(peer: Peer, tls: bool = False) -> str:
    """Re-try the TCP connect alone to name the reason pynetdicom only logs."""
    try:
        infos = socket.getaddrinfo(peer.host, peer.port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        return f"host {peer.host!r} not found ({exc.strerror})"
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    sock.settimeout(peer.connect_timeout)
    try:
        sock.connect(address)
    except ConnectionRefusedError:
        return f"connection refused by {peer.host}:{peer.port} (nothing listening on that port)"
    except TimeoutError:
        return f"no answer from {peer.host}:{peer.port} within {peer.connect_timeout:g} s"
    except OSError as exc:
        return f"cannot connect to {peer.host}:{peer.port}: {exc.strerror or exc}"
    finally:
        sock.close()
    if tls:
        return _why_no_tls(peer)
    return f"connection to {peer.host}:{peer.port} closed before the association"


def _why_no_tls(peer: Peer) -> str:
    """The TLS handshake alone, to name why it failed (certificate, name, protocol)."""
    import ssl

    try:
        context = aeconfig.client_tls(peer.ae_config(), peer.host)
        assert context is not None
        with socket.create_connection((peer.host, peer.port), peer.connect_timeout) as raw, \
                context[0].wrap_socket(raw, server_hostname=peer.host):
            pass
    except ssl.SSLCertVerificationError as exc:
        return (f"TLS: the certificate of {peer.host}:{peer.port} was not accepted "
                f"({exc.verify_message}; check DOSEPORT_TLS_CA and the host name)")
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc
        return f"TLS handshake with {peer.host}:{peer.port} failed ({reason})"
    return f"connection to {peer.host}:{peer.port} closed after the TLS handshake"


def echo(peer: Peer) -> EchoResult:
    """C-ECHO `peer` once; never raises for network trouble."""
    started = time.perf_counter()
    try:
        assoc = open_association(peer, [Verification])
    except Exception as exc:  # pynetdicom raises on e.g. malformed addresses
        return EchoResult(False, reason=f"cannot associate: {exc}")
    if isinstance(assoc, AssocFailure):
        return EchoResult(False, reason=assoc.reason)
    try:
        rsp = assoc.send_c_echo()
    finally:
        close(assoc)
    rtt_ms = (time.perf_counter() - started) * 1000
    status = getattr(rsp, "Status", None)
    if status is None:
        return EchoResult(False, rtt_ms, "no C-ECHO response within the DIMSE timeout")
    if status != 0x0000:
        return EchoResult(False, rtt_ms, f"C-ECHO answered status 0x{status:04X}", status)
    return EchoResult(True, round(rtt_ms, 1), "", status)


# --- Query/retrieve: C-FIND, C-MOVE, C-GET on an open association -----------------------

STUDY_ROOT_FIND = "1.2.840.10008.5.1.4.1.2.2.1"
STUDY_ROOT_MOVE = "1.2.840.10008.5.1.4.1.2.2.2"
STUDY_ROOT_GET = "1.2.840.10008.5.1.4.1.2.2.3"
MOVE_DESTINATION_UNKNOWN = 0xA801
CANCEL = 0xFE00


@dataclass
class FindResult:
    """Matches of one C-FIND; `ok` only when the final status was Success."""

    ok: bool
    matches: list[Any] = field(default_factory=list)
    status: int | None = None
    reason: str = ""
    cancelled: bool = False
    association_lost: bool = False


@dataclass
class MoveProgress:
    remaining: int = 0
    completed: int = 0
    failed: int = 0
    warning: int = 0


@dataclass
class MoveResult:
    """Outcome of one C-MOVE or C-GET. `ok`: Success or Warning (partial success)."""

    ok: bool
    status: int | None = None
    progress: MoveProgress = field(default_factory=MoveProgress)
    reason: str = ""
    failed_sop_uids: list[str] = field(default_factory=list)
    cancelled: bool = False
    association_lost: bool = False

    @property
    def destination_unknown(self) -> bool:
        return self.status == MOVE_DESTINATION_UNKNOWN


def _counts(rsp: Any, into: MoveProgress) -> None:
    for name, attr in (
        ("remaining", "NumberOfRemainingSuboperations"),
        ("completed", "NumberOfCompletedSuboperations"),
        ("failed", "NumberOfFailedSuboperations"),
        ("warning", "NumberOfWarningSuboperations"),
    ):
        value = rsp.get(attr)
        if value is not None:
            setattr(into, name, int(value))


class _Exchange:
    """The response loop of one C-FIND, C-MOVE or C-GET request.

    `pending()` sends C-CANCEL once when `should_cancel()` says so; what pynetdicom raises
    mid-exchange (peer gone, malformed reply) ends the loop as `result.reason` instead.
    """

    def __init__(
        self, assoc: Association, result: FindResult | MoveResult, what: str, model: str,
        msg_id: int, should_cancel: Any,
    ) -> None:
        self.assoc = assoc
        self.result = result
        self.what = what
        self.model = model
        self.msg_id = msg_id
        self.should_cancel = should_cancel
        self.cancel_sent = False

    def __enter__(self) -> _Exchange:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: Any) -> bool:
        if not isinstance(exc, RuntimeError | ValueError | AttributeError):
            return False
        self.result.reason = f"{self.what} failed: {exc}"
        self.result.association_lost = not self.assoc.is_established
        return True

    def pending(self) -> None:
        if self.should_cancel is not None and not self.cancel_sent and self.should_cancel():
            self.assoc.send_c_cancel(self.msg_id, query_model=self.model)
            self.cancel_sent = True


def find(
    assoc: Association, identifier: Any, should_cancel: Any = None, msg_id: int = 1
) -> FindResult:
    """One Study Root C-FIND; collects the pending identifiers. Never raises for DICOM trouble."""
    result = FindResult(ok=False)
    heard = time.monotonic()
    with _Exchange(assoc, result, "C-FIND", STUDY_ROOT_FIND, msg_id, should_cancel) as exchange:
        for status, match in assoc.send_c_find(identifier, STUDY_ROOT_FIND, msg_id=msg_id):
            code = getattr(status, "Status", None)
            if code is None:
                result.association_lost, result.reason = _silence(
                    assoc, "C-FIND", time.monotonic() - heard
                )
                return result
            heard = time.monotonic()
            if code in (0xFF00, 0xFF01):
                if match is not None:
                    result.matches.append(match)
                exchange.pending()
                continue
            result.status = code
            result.cancelled = code == CANCEL
            result.ok = code == 0x0000
            if not result.ok and not result.cancelled:
                result.reason = f"C-FIND answered status 0x{code:04X}"
    return result


def move(
    assoc: Association,
    identifier: Any,
    destination: str,
    on_pending: Any = None,
    should_cancel: Any = None,
    msg_id: int = 1,
) -> MoveResult:
    """One Study Root C-MOVE to `destination`; `on_pending(MoveProgress)` per pending reply.
    Never raises for DICOM trouble."""
    return _retrieve_loop(
        assoc, lambda: assoc.send_c_move(identifier, destination, STUDY_ROOT_MOVE, msg_id=msg_id),
        STUDY_ROOT_MOVE, msg_id, on_pending, should_cancel,
    )


def get(
    assoc: Association,
    identifier: Any,
    on_pending: Any = None,
    should_cancel: Any = None,
    msg_id: int = 1,
) -> MoveResult:
    """One Study Root C-GET on an association opened by `open_get_association`.
    Never raises for DICOM trouble."""
    return _retrieve_loop(
        assoc, lambda: assoc.send_c_get(identifier, STUDY_ROOT_GET, msg_id=msg_id),
        STUDY_ROOT_GET, msg_id, on_pending, should_cancel,
    )


def _silence(assoc: Association, what: str, silent_s: float) -> tuple[bool, str]:
    """Why pynetdicom gave no response: (association lost?, reason). It says None alike
    for a closed connection, an A-ABORT and the DIMSE timeout; only the timeout takes the
    whole DIMSE timeout, so a quicker None is the connection (a killed PACS closes it)."""
    if assoc.acse.is_aborted("a-abort"):
        return True, f"the remote aborted the association during the {what}"
    timeout = assoc.dimse_timeout
    if (assoc.acse.is_aborted("a-p-abort") or not assoc.is_established
            or timeout is None or silent_s < timeout - 0.5):
        return True, f"connection to the remote lost during the {what}"
    return False, f"no {what} response within the DIMSE timeout ({timeout:g} s)"


def _retrieve_loop(
    assoc: Association, send: Any, model: str, msg_id: int,
    on_pending: Any, should_cancel: Any,
) -> MoveResult:
    """`send()` sends the request (pynetdicom sends at once and raises when it cannot)
    and returns the responses; both happen inside the exchange's error handling."""
    result = MoveResult(ok=False)
    heard = time.monotonic()
    with _Exchange(assoc, result, "retrieve", model, msg_id, should_cancel) as exchange:
        for status, ident in send():
            code = getattr(status, "Status", None)
            if code is None:
                result.association_lost, result.reason = _silence(
                    assoc, "retrieve", time.monotonic() - heard
                )
                return result
            heard = time.monotonic()
            _counts(status, result.progress)
            if code == 0xFF00:
                if on_pending is not None:
                    on_pending(result.progress)
                exchange.pending()
                continue
            result.status = code
            result.cancelled = code == CANCEL
            result.ok = code == 0x0000 or (code & 0xF000) == 0xB000
            if ident is not None and "FailedSOPInstanceUIDList" in ident:
                value = ident.FailedSOPInstanceUIDList
                result.failed_sop_uids = [str(v) for v in value] if value else []
            if code == MOVE_DESTINATION_UNKNOWN:
                result.reason = "move destination unknown to the remote (0xA801)"
            elif (code & 0xF000) == 0xB000:
                result.reason = f"partial success (0x{code:04X}): some sub-operations failed"
            elif not result.ok and not result.cancelled:
                result.reason = f"retrieve answered status 0x{code:04X}"
    return result


def open_get_association(
    peer: Peer, storage_classes: list[str], handle_store: Any
) -> Association | AssocFailure:
    """Associate for C-GET: Study Root GET plus SCP-role storage contexts for the sub-operations."""
    from pynetdicom import build_role

    ae = make_scu_ae(peer, [STUDY_ROOT_GET])
    roles: list[Any] = []
    for uid in storage_classes[:120]:
        ae.add_requested_context(uid)
        roles.append(build_role(uid, scp_role=True))
    handlers = [(evt.EVT_CONN_OPEN, _tcp_options(peer.ae_config())),
                (evt.EVT_C_STORE, handle_store)]
    try:
        tls_args = aeconfig.client_tls(peer.ae_config(), peer.host)
    except TLSNotConfigured as exc:
        return AssocFailure(str(exc))
    assoc = ae.associate(
        peer.host, peer.port, ae_title=peer.ae_title, ext_neg=roles, tls_args=tls_args,
        evt_handlers=handlers,  # type: ignore[arg-type]
    )
    if assoc.is_established:
        return assoc
    return AssocFailure(f"C-GET association with {peer.host}:{peer.port} failed", connected=False)


def close(assoc: Association) -> None:
    """Release if still established, else make sure the socket is gone."""
    if assoc.is_established:
        assoc.release()
    if not assoc.is_released and not assoc.is_aborted:
        assoc.abort()


# --- The operation-level seam: a session that never hands out its association -------------

@dataclass(frozen=True)
class Received:
    """One C-STORE sub-operation of a C-GET, as the session's `on_store` sees it.
    `data` is the data set as sent (valid only during the call)."""

    sop_class_uid: str
    sop_instance_uid: str
    transfer_syntax: str
    source_ae: str
    data: memoryview | bytes


Result = TypeVar("Result", FindResult, MoveResult)


class Session:
    """Requests to one remote over one association: echo, find, move, get.

    Opens on first use (or `open()`, which says why it could not), numbers the messages,
    and answers with small result values; the pynetdicom association stays inside this
    module. A lost association is dropped; the next request (or `open()`) starts a new
    one. `connect()` makes sessions: tests replace it with an in-memory fake.
    """

    def __init__(
        self, peer: Peer, contexts: list[str],
        on_store: Callable[[Received], int] | None = None,
        storage_classes: list[str] | None = None,
    ) -> None:
        self.peer = peer
        self.contexts = contexts
        self.on_store = on_store
        self.storage_classes = storage_classes or []
        self._assoc: Association | None = None
        self._msg_id = 0

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def is_open(self) -> bool:
        return self._assoc is not None and self._assoc.is_established

    def open(self) -> AssocFailure | None:
        """Associate unless already associated; None when open, else why not."""
        if self.is_open:
            return None
        self.close()
        try:
            if self.on_store is not None:
                assoc = open_get_association(self.peer, self.storage_classes, self._store)
            else:
                assoc = open_association(self.peer, self.contexts)
        except Exception as exc:  # pynetdicom raises on e.g. malformed addresses
            return AssocFailure(f"cannot associate: {exc}")
        if isinstance(assoc, AssocFailure):
            return assoc
        self._assoc = assoc
        return None

    def close(self) -> None:
        if self._assoc is not None:
            close(self._assoc)
            self._assoc = None

    def accepts(self, abstract_syntax: str) -> bool:
        """Whether the open association accepted this service (SOP class UID)."""
        if self._assoc is None:
            return False
        return any(cx.abstract_syntax == abstract_syntax
                   for cx in self._assoc.accepted_contexts)

    def _next_id(self) -> int:
        self._msg_id = self._msg_id % 65535 + 1
        return self._msg_id

    def _ready(self) -> Association | AssocFailure:
        failure = self.open()
        if failure is not None or self._assoc is None:
            return failure or AssocFailure("not associated")
        return self._assoc

    def echo(self) -> EchoResult:
        assoc = self._ready()
        if isinstance(assoc, AssocFailure):
            return EchoResult(False, reason=assoc.reason)
        started = time.perf_counter()
        try:
            rsp = assoc.send_c_echo(msg_id=self._next_id())
        except (RuntimeError, ValueError, AttributeError) as exc:
            return EchoResult(False, reason=f"C-ECHO failed: {exc}")
        rtt_ms = round((time.perf_counter() - started) * 1000, 1)
        status = getattr(rsp, "Status", None)
        if status is None:
            return EchoResult(False, rtt_ms, _silence(assoc, "C-ECHO", rtt_ms / 1000)[1])
        if status != 0x0000:
            return EchoResult(False, rtt_ms, f"C-ECHO answered status 0x{status:04X}", status)
        return EchoResult(True, rtt_ms, "", status)

    def find(self, identifier: Any, should_cancel: Callable[[], bool] | None = None
             ) -> FindResult:
        assoc = self._ready()
        if isinstance(assoc, AssocFailure):
            return FindResult(False, reason=assoc.reason, association_lost=True)
        return self._checked(find(assoc, identifier, should_cancel, msg_id=self._next_id()))

    def move(self, identifier: Any, destination: str,
             on_pending: Callable[[MoveProgress], None] | None = None,
             should_cancel: Callable[[], bool] | None = None) -> MoveResult:
        assoc = self._ready()
        if isinstance(assoc, AssocFailure):
            return MoveResult(False, reason=assoc.reason, association_lost=True)
        return self._checked(
            move(assoc, identifier, destination, on_pending, should_cancel, self._next_id())
        )

    def get(self, identifier: Any, on_pending: Callable[[MoveProgress], None] | None = None,
            should_cancel: Callable[[], bool] | None = None) -> MoveResult:
        assoc = self._ready()
        if isinstance(assoc, AssocFailure):
            return MoveResult(False, reason=assoc.reason, association_lost=True)
        return self._checked(get(assoc, identifier, on_pending, should_cancel, self._next_id()))

    def _checked(self, result: Result) -> Result:
        """A lost association is gone for good: drop it so the next request re-associates."""
        if result.association_lost:
            self.close()
        return result

    def _store(self, event: evt.Event) -> int:
        assert self.on_store is not None
        request: Any = event.request
        buffer = request.DataSet.getbuffer()
        try:
            return self.on_store(Received(
                str(request.AffectedSOPClassUID), str(request.AffectedSOPInstanceUID),
                str(event.context.transfer_syntax), str(event.assoc.acceptor.ae_title).strip(),
                buffer,
            ))
        finally:
            buffer.release()


def connect(
    peer: Peer, contexts: list[str], on_store: Callable[[Received], int] | None = None,
    storage_classes: list[str] | None = None,
) -> Session:
    """A session with `peer` (not yet associated). The one place tests patch."""
    return Session(peer, contexts, on_store, storage_classes)


def find_once(peer: Peer, identifier: Any) -> FindResult:
    """One Study Root C-FIND on its own association (a probe, a one-off look-up)."""
    with connect(peer, [STUDY_ROOT_FIND]) as session:
        return session.find(identifier)
