"""The hand-off from a store node's associations to the import queue.

Putting a task on the Huey queue is a database transaction (SQLite by default). Done by
each association thread, one object at a time, it costs the node's processes CPU and
lock waits on the queue's database while the sender waits for its answer: with four
associations over two processes, about 7 % of the objects per second (docs/PERFORMANCE.md).

So an association hands the spooled path to its process's dispatcher (an in-memory
queue, microseconds) and answers; the dispatcher thread puts the paths on the task queue
in batches: whatever has arrived since its last put, at most `MAX_BATCH` per task. The
first object after a quiet spell goes out at once; while objects keep coming, the
dispatcher puts at most once per `PUT_INTERVAL_S` and gathers what arrives in between, so
a steady stream costs one transaction per batch instead of one per object (at 200 CT
images/s per process, a put per object was a quarter of the node's Python time).

Nothing can be lost in between: the object is already durable in the spool, and the
node's recovery sweep queues every spooled file that has no import record (after a crash,
a failed put, or a full dispatcher).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from pathlib import Path

logger = logging.getLogger(__name__)

MAX_BATCH = 32
# While objects keep arriving, at most one put per this long (the first object after a
# quiet spell is put at once): the worker sees a busy stream's objects this much later.
PUT_INTERVAL_S = 0.05
# Far more than any sender can deliver while the queue is reachable; past this the paths
# are left to the recovery sweep instead of growing the process without bound.
MAX_PENDING = 100_000


class ImportDispatcher:
    """Batches spooled paths onto the import queue from one background thread.

    `submit` has the signature of `NodeContext.enqueue`. `put_batch(paths, node_id)` puts
    one batch on the queue; `on_error(message)` records a failed put (the paths stay in
    the spool for the recovery sweep).
    """

    def __init__(
        self,
        node_id: int,
        put_batch: Callable[[list[Path], int], None],
        on_error: Callable[[str], None],
        max_batch: int = MAX_BATCH,
        max_pending: int = MAX_PENDING,
        put_interval: float = PUT_INTERVAL_S,
    ) -> None:
        self.node_id = node_id
        self.put_batch = put_batch
        self.on_error = on_error
        self.max_batch = max_batch
        self.max_pending = max_pending
        self.put_interval = put_interval
        self.pending: queue.SimpleQueue[Path | None] = queue.SimpleQueue()
        self.dropped = 0
        self.thread = threading.Thread(
            target=self._run, name=f"store-node-{node_id}-imports", daemon=True
        )

    def start(self) -> None:
        if self.thread.ident is None:  # once: a node start retried after an error
            self.thread.start()

    def submit(self, path: Path, node_id: int) -> None:
        if self.pending.qsize() >= self.max_pending:
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 1000 == 0:
                self.on_error(
                    f"import hand-off full ({self.max_pending} objects waiting for the "
                    "task queue); the recovery sweep will queue the rest"
                )
            return
        self.pending.put(path)

    def stop(self, timeout: float = 10.0) -> None:
        """Put what is waiting on the queue, then end the thread."""
        if not self.thread.is_alive():
            return
        self.pending.put(None)  # the stop mark
        self.thread.join(timeout)

    def _run(self) -> None:
        """Put batches until the stop mark; after it, whatever is left, then end."""
        stopping = False
        last_put = float("-inf")
        while True:
            try:
                item = self.pending.get_nowait() if stopping else self.pending.get()
            except queue.Empty:
                return  # stopped and drained
            # Busy (the last put was recent): let the rest of the interval's objects come.
            # A sleep, not a wait on the queue, so that they do not wake this thread.
            wait = last_put + self.put_interval - time.monotonic()
            if wait > 0 and not stopping and item is not None:
                time.sleep(wait)
            waiting: list[Path] = []
            while True:
                if item is None:
                    stopping = True
                else:
                    waiting.append(item)
                try:
                    item = self.pending.get_nowait()
                except queue.Empty:
                    break
            if waiting:
                last_put = time.monotonic()
            for start in range(0, len(waiting), self.max_batch):
                self._put(waiting[start:start + self.max_batch])

    def _put(self, batch: list[Path]) -> None:
        try:
            self.put_batch(batch, self.node_id)
        except Exception as exc:
            logger.error("node %s: cannot queue %d imports: %s (the recovery sweep will)",
                         self.node_id, len(batch), exc)
            self.on_error(f"cannot queue imports: {exc}")
