"""Event-driven wake-ups for pynetdicom's acceptor loops.

pynetdicom's association and DUL threads poll with `time.sleep(0.001)`: every C-STORE
waits up to three polling periods (data in, dataset to the handler, response out) and
each idle association burns 2,000 wake-ups a second. For the associations of a store
node we make those two sleeps wait on real events instead: the DUL thread waits in
`select()` on the socket plus a wake-up pipe (written when the association queues a
PDU), the association thread waits on an Event (set when a message or primitive is
queued for it). Both still wake at least every `MAX_WAIT_S`, so every check pynetdicom
makes in its loops (timeouts, aborts, a dead thread) still runs.
"""

from __future__ import annotations

import os
import queue
import select
import sys
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any

MAX_WAIT_S = 0.05
POLL_S = 0.001  # the delay pynetdicom's loops use


class Waker:
    def __init__(self, assoc: Any) -> None:
        # Weak: the finalizer below holds this Waker, and must not keep the association.
        self._assoc = weakref.ref(assoc)
        self.event = threading.Event()
        self.read_fd, self.write_fd = os.pipe()
        os.set_blocking(self.read_fd, False)
        os.set_blocking(self.write_fd, False)
        self.lock = threading.Lock()
        self.closed = False

    def wake_assoc(self) -> None:
        self.event.set()

    def wake_dul(self) -> None:
        with self.lock:
            if self.closed:
                return
            try:
                os.write(self.write_fd, b"\0")
            except (BlockingIOError, OSError):
                pass  # pipe full: a wake-up is already pending

    def wait_assoc(self) -> None:
        self.event.wait(MAX_WAIT_S)
        self.event.clear()  # before the loop looks at its queues, so no wake-up is lost

    @property
    def assoc(self) -> Any:
        return self._assoc()

    def wait_dul(self) -> None:
        assoc = self.assoc
        sock = getattr(assoc.dul.socket, "socket", None) if assoc is not None else None
        if sock is None or self.closed:
            time.sleep(POLL_S)
            return
        try:
            ready, _, _ = select.select([sock, self.read_fd], [], [], MAX_WAIT_S)
        except (OSError, ValueError):
            time.sleep(POLL_S)
            return
        if self.read_fd in ready:
            try:
                os.read(self.read_fd, 4096)
            except (BlockingIOError, OSError):
                pass

    def close(self) -> None:
        with self.lock:
            if not self.closed:
                self.closed = True
                os.close(self.read_fd)
                os.close(self.write_fd)


class _Clock:
    """Stands in for the `time` module inside pynetdicom's association and DUL modules."""

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)

    def sleep(self, seconds: float) -> None:
        thread = threading.current_thread()
        waker: Waker | None = getattr(thread, "_doseport_waker", None)
        if waker is not None and seconds <= POLL_S:
            caller = sys._getframe(1).f_code.co_name
            assoc = waker.assoc
            if caller == "_run_reactor" and thread is assoc:
                waker.wait_assoc()
                return
            if caller == "run_reactor" and assoc is not None and thread is assoc.dul:
                waker.wait_dul()
                return
        time.sleep(seconds)


def _wrap_put(q: queue.Queue[Any], wake: Any) -> None:
    put = q.put

    def put_and_wake(item: Any, block: bool = True, timeout: float | None = None) -> None:
        put(item, block, timeout)
        wake()

    q.put = put_and_wake  # type: ignore[method-assign]


def install() -> None:
    """Swap in the clock once per process (threads without a waker keep plain sleeps)."""
    from pynetdicom import association, dul

    if not isinstance(dul.time, _Clock):
        dul.time = _Clock()  # type: ignore[assignment]
        association.time = _Clock()  # type: ignore[assignment]


def when_dul_ends(dul: Any, cleanup: Callable[[], None]) -> None:
    """Run `cleanup` in the DUL thread when its loop ends, however it ends; call before
    the thread starts."""
    target = dul._target

    def run_then_clean_up() -> None:
        try:
            target()
        finally:
            cleanup()

    dul._target = run_then_clean_up


def attach(assoc: Any) -> None:
    """Give one accepted association event-driven loops; call before its threads start."""
    waker = Waker(assoc)
    dul = assoc.dul
    _wrap_put(assoc.dimse.msg_queue, waker.wake_assoc)
    _wrap_put(dul.to_user_queue, waker.wake_assoc)
    _wrap_put(dul.to_provider_queue, waker.wake_dul)
    _wrap_put(dul.event_queue, waker.wake_dul)
    when_dul_ends(dul, waker.close)
    weakref.finalize(assoc, waker.close)  # a DUL thread that never ran closes nothing
    assoc._doseport_waker = waker
    dul._doseport_waker = waker
