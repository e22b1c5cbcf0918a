"""The listening side of a store node, plugged into pynetdicom through its server hooks.

`make_server()` builds an `AE.make_server()` server of class `StoreServer` (a
`ThreadedAssociationServer`) whose `RequestHandler` creates, per connection:

- a `GuardedSocket` (store.acceptor.guard): whole PDUs, bounded and checked;
- a `FastAssociation` with event-driven loops and the C-STORE fast lane
  (store.acceptor.loops, store.acceptor.lane), or with the lane off / when this
  pynetdicom lacks an internal they need, a `GuardedAssociation`: stock pynetdicom
  loops and C-STORE path behind the same socket.

The server caps open connections per process and per peer address (socketserver's
`verify_request`). This package is the only code that touches pynetdicom internals;
`capabilities()` lists every private name it uses and says which are missing.
"""

from __future__ import annotations

import logging
import socket
import ssl
import threading
import time
from collections import Counter
from copy import deepcopy
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pynetdicom
from pynetdicom import AE, evt
from pynetdicom._globals import MODE_ACCEPTOR
from pynetdicom.association import Association
from pynetdicom.dul import DULServiceProvider
from pynetdicom.presentation import PresentationContext
from pynetdicom.transport import RequestHandler, ThreadedAssociationServer

from lib import tls
from store.acceptor.guard import GuardedSocket
from store.acceptor.limits import Limits
from store.acceptor.loops import FastAssociation, GuardedAssociation

logger = logging.getLogger(__name__)

# Processes sharing a node's port: the more associations one serves, the longer it lets
# the others take a new connection first.
ACCEPT_DEFER_S = 0.01
ACCEPT_DEFER_MAX_S = 0.05
# The loops of store.acceptor.loops follow these pynetdicom versions' loop bodies.
LOOPS_FOLLOW = ("3.0.",)

# Private pynetdicom names, by what needs them. Instance attributes are looked up on a
# probe association (never started).
HANDLER_NAMES = ("Association._server", "AssociationServer._handlers", "AE._servers")
LANE_NAMES = (
    "Association._run_reactor", "Association._kill", "Association._is_paused",
    "Association._reactor_checkpoint", "Association._serve_request",
    "Association._dul_ready", "Association._accepted_cx", "DIMSE.msg_queue",
    "DUL._read_pdu_data", "DUL._decode_pdu", "DUL._recv_pdu",
    "DUL._process_recv_primitive", "DUL._is_transport_event", "DUL._kill_thread",
    "DUL._idle_timer", "DUL.artim_timer", "DUL.event_queue", "DUL.to_provider_queue",
    "DUL.to_user_queue", "DUL.state_machine",
)


@dataclass(frozen=True)
class Capabilities:
    missing_handler: tuple[str, ...]
    missing_lane: tuple[str, ...]

    @property
    def handler(self) -> bool:
        return not self.missing_handler

    @property
    def lane(self) -> bool:
        return self.handler and not self.missing_lane

    def describe(self) -> str:
        missing = (*self.missing_handler, *self.missing_lane)
        if not missing:
            return ""
        return (f"pynetdicom {pynetdicom.__version__} lacks {', '.join(missing)}: "
                "running on stock pynetdicom (no fast lane" +
                (", no input bounds)" if self.missing_handler else ")"))


def capabilities() -> Capabilities:
    """Which private pynetdicom names the acceptor needs are missing (none: all there)."""
    ae = AE()
    probe = Association(ae, MODE_ACCEPTOR)
    owners: dict[str, Any] = {
        "Association": probe, "DUL": probe.dul, "DIMSE": probe.dimse,
        "AssociationServer": ThreadedAssociationServer, "AE": ae,
    }

    def lacks(qualified: str) -> bool:
        owner, name = qualified.split(".")
        if owner == "AssociationServer":  # an instance attribute set in __init__
            return name not in ThreadedAssociationServer.__init__.__code__.co_names
        return not hasattr(owners[owner], name)

    missing_handler = tuple(n for n in HANDLER_NAMES if lacks(n))
    missing_lane = tuple(n for n in LANE_NAMES if lacks(n))
    if not pynetdicom.__version__.startswith(LOOPS_FOLLOW):
        missing_lane += (f"the loops of pynetdicom {'/'.join(LOOPS_FOLLOW)}x",)
    if not issubclass(type(probe.dul), DULServiceProvider):
        missing_lane += ("DULServiceProvider",)
    return Capabilities(missing_handler, missing_lane)


class SharedContexts(list[PresentationContext]):
    """Supported contexts that associations share instead of deep-copying.

    pynetdicom deep-copies the server's contexts for every association; with every
    storage class times every transfer syntax that costs ~40 ms per association. The
    acceptor only reads them during negotiation, so one shared copy is safe.
    """

    def __deepcopy__(self, memo: dict[int, Any]) -> list[PresentationContext]:
        return list(self)


class StoreServer(ThreadedAssociationServer):
    """pynetdicom's threaded server with shared contexts and connection caps, optionally
    sharing its listening socket with other processes of the same node.

    `shared` (set in every process of such a node): the socket is accepted from by several
    processes. Each waits in select(); a process that already serves associations waits
    `ACCEPT_DEFER_S` per open association before it accepts, so the least busy process
    takes the connection. The socket is non-blocking: the others find nothing to accept
    and go back to waiting.
    `listen_fd`: a helper process adopts the main process's listening socket instead of
    binding its own.
    """

    shared = False
    listen_fd: int | None = None
    # TLS nodes: accepted sockets are wrapped here and handshake in their own thread
    # (pynetdicom's `ssl_context` would handshake in the accepting thread, so one silent
    # caller would hold up every other connection).
    tls_context: ssl.SSLContext | None = None
    limits = Limits()
    node_label = "node"
    counting = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.open_lock = threading.Lock()
        self.open_by_peer: Counter[str] = Counter()
        super().__init__(*args, **kwargs)
        self.contexts = SharedContexts(self.contexts)

    # -- connection caps ---------------------------------------------------------------
    def verify_request(self, request: Any, client_address: Any) -> bool:
        if not self.counting:
            return True
        peer = str(client_address[0])
        limits = self.limits
        with self.open_lock:
            total = sum(self.open_by_peer.values())
            if total >= limits.max_connections:
                reason = f"{total} connections open, the most this node takes"
            elif self.open_by_peer[peer] >= limits.max_connections_per_peer:
                reason = f"{self.open_by_peer[peer]} connections open from this address"
            else:
                self.open_by_peer[peer] += 1
                return True
        logger.warning("%s: peer %s:%s: connection refused (%s)", self.node_label, peer,
                       client_address[1], reason)
        return False

    def release(self, peer: str) -> None:
        with self.open_lock:
            self.open_by_peer[peer] -= 1
            if self.open_by_peer[peer] <= 0:
                del self.open_by_peer[peer]

    def open_connections(self) -> int:
        with self.open_lock:
            return sum(self.open_by_peer.values())

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            self.finish_request(request, client_address)
        except Exception as exc:  # the association never started: nothing else frees it
            logger.warning("%s: peer %s:%s: connection dropped: %s: %s", self.node_label,
                           client_address[0], client_address[1], type(exc).__name__, exc)
            if self.counting:
                self.release(str(client_address[0]))
            self.shutdown_request(request)

    # -- shared listening socket -------------------------------------------------------
    def server_bind(self) -> None:
        if self.listen_fd is None:
            super().server_bind()
            return
        if self.socket is not None:
            self.socket.close()
        self.socket = socket.socket(fileno=self.listen_fd)
        self.server_address = self.socket.getsockname()

    def get_request(self) -> tuple[socket.socket, tuple[str, int]]:
        if self.shared:
            busy = len(self.ae.active_associations)
            if busy:
                time.sleep(min(busy * ACCEPT_DEFER_S, ACCEPT_DEFER_MAX_S))
        sock, address = super().get_request()
        if self.tls_context is not None:
            sock = tls.wrap_accepted(self.tls_context, sock)
        return sock, address

    def finish_request(self, request: Any, client_address: Any) -> None:
        if isinstance(request, ssl.SSLSocket) and not tls.handshake(request, client_address):
            if self.counting:
                self.release(str(client_address[0]))
            return  # socketserver closes the connection
        super().finish_request(request, client_address)

    def server_activate(self) -> None:
        if self.listen_fd is None:
            super().server_activate()  # listen()
        if self.shared:
            assert self.socket is not None
            self.socket.setblocking(False)


class StoreRequestHandler(RequestHandler):
    """Creates each connection's association: pynetdicom 3.0's `_create_association`
    with our socket and association classes."""

    server: StoreServer
    ctx: Any = None  # store.handlers.NodeContext, set by make_server
    lane = False
    fast = False

    def _create_association(self) -> Association:
        server = self.server
        ae = self.ae
        peer = str(self.client_address[0])
        assoc: GuardedAssociation
        if self.fast:
            assoc = FastAssociation(ae, MODE_ACCEPTOR, self.ctx, server.limits, self.lane)
        else:
            assoc = GuardedAssociation(ae, MODE_ACCEPTOR)
        assoc.on_end = lambda: server.release(peer)
        assoc._server = server
        assoc.name = f"AcceptorThread@{datetime.now():%Y%m%d%H%M%S}"
        label = f"{server.node_label}: peer {peer}:{self.client_address[1]}"
        assoc.set_socket(GuardedSocket(assoc, self.request, server.limits, label))
        # Until the request arrives the ACSE timeout is the wait for it (ARTIM).
        assoc.acse_timeout = server.limits.first_pdu_wait_s
        assoc.acceptor.maximum_length = ae.maximum_pdu_size
        assoc.acceptor.ae_title = server.ae_title
        assoc.acceptor.address_info = self.local
        assoc.acceptor.implementation_class_uid = ae.implementation_class_uid
        assoc.acceptor.implementation_version_name = ae.implementation_version_name
        assoc.acceptor.supported_contexts = deepcopy(server.contexts)
        assoc.requestor.address_info = self.remote
        bound: dict[Any, Any] = server._handlers
        for event, handlers in bound.items():
            if event.is_intervention and handlers:
                assoc.bind(event, *handlers)
            elif isinstance(event, evt.NotificationEvent):
                for handler in handlers:
                    assoc.bind(event, handler[0], handler[1])
        return assoc


def make_server(
    ae: AE, address: tuple[str, int], handlers: list[Any], ctx: Any, limits: Limits,
    *, lane: bool, shared: bool = False, listen_fd: int | None = None,
    tls_context: ssl.SSLContext | None = None, node_label: str = "node",
) -> tuple[StoreServer, Capabilities]:
    """The node's server (not yet serving). `tls_context`: accept TLS connections only
    (wrapped in `get_request`, handshaken in the connection's thread: lib.tls).

    The returned Capabilities say what runs: the whole acceptor, or stock pynetdicom
    where a private name it needs is missing (then `describe()` says which)."""
    caps = capabilities()
    handler_class = type("NodeRequestHandler", (StoreRequestHandler,), {
        "ctx": ctx, "lane": lane and caps.lane, "fast": caps.lane,
    })
    server_class = type("NodeServer", (StoreServer,), {
        "shared": shared, "listen_fd": listen_fd, "limits": limits,
        "node_label": node_label, "counting": caps.handler, "tls_context": tls_context,
    })
    server = ae.make_server(
        address, evt_handlers=handlers, server_class=server_class,
        request_handler=handler_class if caps.handler else RequestHandler,
    )
    assert isinstance(server, StoreServer)
    return server, caps
