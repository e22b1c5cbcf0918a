"""The one seam for outgoing DICOM: every association we open goes through here.

Functions return small result objects, never free strings. Unit tests patch these
functions; integration tests point them at a real peer on a loopback port.
"""

from __future__ import annotations

import logging
import socket
import time
from dataclasses import dataclass, field
from typing import Any

from pynetdicom import AE, evt
from pynetdicom.association import Association
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]

logger = logging.getLogger(__name__)

MAX_PDU = 262_144


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


def _set_nodelay(event: evt.Event) -> None:
    # pynetdicom never sets TCP_NODELAY; without it each request waits ~40 ms for a
    # delayed ACK (PEER_NOTES.md).
    sock = event.assoc.dul.socket
    if sock is not None and sock.socket is not None:
        sock.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def make_scu_ae(peer: Peer, contexts: list[str]) -> AE:
    """Build the requesting AE for `peer` with every value explicit."""
    ae = AE(ae_title=peer.calling_ae_title)
    ae.connection_timeout = peer.connect_timeout
    ae.acse_timeout = peer.acse_timeout
    ae.dimse_timeout = peer.dimse_timeout
    ae.network_timeout = peer.network_timeout
    ae.maximum_pdu_size = MAX_PDU
    for uid in contexts:
        ae.add_requested_context(uid)
    return ae


def open_association(peer: Peer, contexts: list[str]) -> Association | AssocFailure:
    """Associate with `peer`; on failure say why (refused, timed out, rejected...)."""
    ae = make_scu_ae(peer, contexts)
    opened: list[bool] = []
    handlers = [
        (evt.EVT_CONN_OPEN, _set_nodelay),
        (evt.EVT_CONN_OPEN, lambda event: opened.append(True)),
    ]
    started = time.monotonic()
    assoc = ae.associate(
        peer.host, peer.port, ae_title=peer.ae_title, evt_handlers=handlers  # type: ignore[arg-type]
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
        return AssocFailure(_why_no_connection(peer))
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


def _why_no_connection(peer: Peer) -> str:
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
    return f"connection to {peer.host}:{peer.port} closed before the association"


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
        if assoc.is_established:
            assoc.release()
        else:
            assoc.abort()
    rtt_ms = (time.perf_counter() - started) * 1000
    status = getattr(rsp, "Status", None)
    if status is None:
        return EchoResult(False, rtt_ms, "no C-ECHO response within the DIMSE timeout")
    if status != 0x0000:
        return EchoResult(False, rtt_ms, f"C-ECHO answered status 0x{status:04X}", status)
    return EchoResult(True, round(rtt_ms, 1), "", status)
