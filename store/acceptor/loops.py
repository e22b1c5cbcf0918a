"""Event-driven loops for a node's associations, and the fast lane's entry.

pynetdicom's association and DUL threads poll with `time.sleep(0.001)`: every C-STORE
waits up to three polling periods (data in, data set to the handler, response out) and
each idle association wakes 2,000 times a second. `FastAssociation` and `FastDUL` run
the same loops as pynetdicom 3.0 (their bodies follow `Association._run_reactor` and
`DULServiceProvider.run_reactor`) but wait on events: the DUL thread in `select()` on
the socket plus a wake-up pipe (written when another thread queues something for it),
the association thread on an Event (set when a message or primitive is queued for it).
Both still wake at least every `MAX_WAIT_S`, so every check of the loops (timeouts,
aborts, a dead thread) still runs. The DUL hands PDUs of an established association to
the fast lane (store.acceptor.lane).

Every private pynetdicom name used here is listed in store.acceptor.server.LANE_NAMES,
checked at node start.
"""

from __future__ import annotations

import logging
import os
import queue
import select
import ssl
import threading
import time
from typing import TYPE_CHECKING, Any

from pynetdicom import evt
from pynetdicom.association import Association
from pynetdicom.dul import DULServiceProvider
from pynetdicom.pdu import A_ABORT_RQ

from store.acceptor.lane import FastLane

if TYPE_CHECKING:
    from store.acceptor.limits import Limits
    from store.handlers import NodeContext

logger = logging.getLogger(__name__)

MAX_WAIT_S = 0.05
ESTABLISHED = "Sta6"


class WakingQueue(queue.Queue[Any]):
    """A queue that calls `wake` after every put."""

    def __init__(self, wake: Any) -> None:
        super().__init__()
        self.wake = wake

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        super().put(item, block, timeout)
        self.wake()


class GuardedAssociation(Association):
    """An acceptor association that tells its server when it ends (public names only)."""

    on_end: Any = None  # set by the request handler: called once when the thread ends
    gone = False  # set by the guard: no association request will come

    def run_reactor(self) -> None:
        try:
            super().run_reactor()
        finally:
            done, self.on_end = self.on_end, None
            if done is not None:
                done()


class FastAssociation(GuardedAssociation):
    """Event-driven association loop plus a FastDUL with the fast lane."""

    def __init__(self, ae: Any, mode: str, ctx: NodeContext, limits: Limits,
                 lane: bool) -> None:
        super().__init__(ae, mode)
        self.wake_event = threading.Event()
        self.dul = FastDUL(self, ctx, limits, lane)
        # The timeouts live on the DUL's timers: set them again on ours.
        self.acse_timeout = self.acse_timeout
        self.network_timeout = self.network_timeout
        self.dimse.msg_queue = WakingQueue(self.wake_event.set)

    def _run_reactor(self) -> None:
        """pynetdicom 3.0's acceptor loop with an Event wait for the 1 ms sleep."""
        self._is_paused = False
        wake = self.wake_event
        while not self._kill:
            wake.wait(MAX_WAIT_S)
            wake.clear()  # before the queues are looked at, so no wake-up is lost
            self._is_paused = True
            self._reactor_checkpoint.wait()
            self._is_paused = False
            context_id, msg = self.dimse.get_msg(block=False)
            if msg and context_id is not None:
                self._serve_request(msg, context_id)
            if self.is_established and self.acse.is_release_requested():
                self.acse.send_release(is_response=True)
                self.is_released = True
                self.is_established = False
                evt.trigger(self, evt.EVT_RELEASED, {})
                self.kill()
                return
            if self.acse.is_aborted():
                self.dul.receive_pdu(wait=False)
                self.is_aborted = True
                self.is_established = False
                evt.trigger(self, evt.EVT_ABORTED, {})
                self.kill()
                return
            if not self.dul.is_alive():
                self.kill()
                return
            if self.dul.idle_timer_expired():
                logger.warning("association from %s:%s idle for the network timeout; "
                               "aborting", self.requestor.address, self.requestor.port)
                self.abort()
                self.kill()
                return


class FastDUL(DULServiceProvider):
    """pynetdicom 3.0's DUL loop waiting in select(); P-DATA of an established
    association goes to the fast lane when `lane` is on."""

    def __init__(self, assoc: FastAssociation, ctx: NodeContext, limits: Limits,
                 lane: bool) -> None:
        super().__init__(assoc)
        self.read_fd, self.write_fd = os.pipe()
        os.set_blocking(self.read_fd, False)
        os.set_blocking(self.write_fd, False)
        self.pipe_lock = threading.Lock()
        self.pipe_closed = False
        self.to_provider_queue = WakingQueue(self.wake)
        self.event_queue = WakingQueue(self.wake_from_elsewhere)
        self.to_user_queue = WakingQueue(assoc.wake_event.set)
        self.lane = FastLane(assoc, self, ctx, limits) if lane else None

    # -- waking --------------------------------------------------------------------------
    def wake(self) -> None:
        with self.pipe_lock:
            if self.pipe_closed:
                return
            try:
                os.write(self.write_fd, b"\0")
            except OSError:
                pass  # pipe full: a wake-up is already pending

    def wake_from_elsewhere(self) -> None:
        if threading.current_thread() is not self:
            self.wake()

    def wait(self) -> None:
        sock = self.socket.socket if self.socket is not None else None
        if sock is None or self.pipe_closed:
            time.sleep(0.001)
            return
        if getattr(self.socket, "buffered", 0):
            return  # bytes read ahead into the guard's buffer: select() cannot see them
        if isinstance(sock, ssl.SSLSocket) and sock.pending():
            return  # decrypted bytes waiting that select() cannot see
        try:
            ready, _, _ = select.select([sock, self.read_fd], [], [], MAX_WAIT_S)
        except (OSError, ValueError):
            time.sleep(0.001)
            return
        if self.read_fd in ready:
            try:
                os.read(self.read_fd, 4096)
            except OSError:
                pass

    def close_pipe(self) -> None:
        with self.pipe_lock:
            if not self.pipe_closed:
                self.pipe_closed = True
                os.close(self.read_fd)
                os.close(self.write_fd)

    # -- reading -------------------------------------------------------------------------
    def _read_pdu_data(self) -> None:
        if self.lane is not None and self.state_machine.current_state == ESTABLISHED:
            self.lane.read_pdu()
        else:
            super()._read_pdu_data()

    # -- the loop ------------------------------------------------------------------------
    def run_reactor(self) -> None:
        try:
            self.loop()
        finally:
            if self.lane is not None:
                self.lane.drop_incoming()
            self.close_pipe()
            assoc: Any = self.assoc
            if assoc.requestor.primitive is None and not getattr(assoc, "gone", False):
                assoc.gone = True
                # The acceptor stops waiting for a request.
                self.to_user_queue.put(None)  # type: ignore[arg-type]

    def loop(self) -> None:
        """pynetdicom 3.0's DUL loop with a select() wait for the 1 ms sleep."""
        self._idle_timer.start()
        sleep = False
        while True:
            if not self.assoc._dul_ready.is_set():
                self.assoc._dul_ready.set()
                sleep = True
            if sleep:
                self.wait()
            if self._kill_thread:
                break
            if self.artim_timer.expired:
                self.event_queue.put("Evt18")
            try:
                if self._process_recv_primitive():
                    pass
                elif self._is_transport_event():
                    self._idle_timer.restart()
            except Exception as exc:
                logger.warning("association from %s:%s: %s: %s; aborting",
                               self.assoc.requestor.address, self.assoc.requestor.port,
                               type(exc).__name__, exc)
                self.abort_now()
                return
            try:
                event = self.event_queue.get(block=False)
            except queue.Empty:
                sleep = True
                continue
            self.state_machine.do_action(event)
            sleep = False

    def abort_now(self) -> None:
        abort_pdu = A_ABORT_RQ()
        abort_pdu.source = 0x02
        abort_pdu.reason_diagnostic = 0x00
        if self.socket is not None and self.socket.socket is not None:
            self.socket.send(abort_pdu.encode())
        self.assoc.is_aborted = True
        self.assoc.is_established = False
        self.assoc._kill = True
        self._kill_thread = True
