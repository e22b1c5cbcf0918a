"""One running store node: the pynetdicom server plus its maintenance loop.

`doseport store run N` runs a NodeProcess in the foreground. The association threads
only touch the spool and the queue; this loop owns the database: it refreshes the
settings the handlers need, writes the heartbeat and runs the recovery sweep.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType

from django.conf import settings as django_settings
from django.db import close_old_connections
from django.utils import timezone
from pynetdicom import AE

from doseport.processes import (
    Child,
    Exit,
    die_with_parent,
    doseport_argv,
    notify_ready,
    stop_children,
)
from lib import aeconfig, malloc
from nodes.models import DeleteSettings, StoreNode
from store import acceptor, recovery
from store.ae import AESettings, make_store_ae, store_run_overrides
from store.dispatch import ImportDispatcher
from store.handlers import Counters, NodeContext, enqueue_import_batch, handlers_for
from store.models import HEARTBEAT_S, State, StoreRuntime
from store.spool import Spool

logger = logging.getLogger(__name__)

TRIM_EVERY_S = 30.0  # store.malloc
# At SIGTERM associations in flight may finish this long before they are aborted (their
# unanswered objects are the sender's to send again); the whole stop stays under 10 s.
FINISH_GRACE_S = 5.0
DISPATCH_DRAIN_S = 2.0


def _aware(ts: float | None) -> datetime | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC)


def _merge(total: Counters, part: Counters) -> None:
    for name in (
        "associations_open", "associations_total", "associations_rejected",
        "objects_received", "objects_discarded", "objects_failed", "bytes_received",
    ):
        setattr(total, name, getattr(total, name) + getattr(part, name))
    if part.last_object_at and (total.last_object_at or 0) < part.last_object_at:
        total.last_object_at = part.last_object_at
    if part.last_error_at and (total.last_error_at or 0) < part.last_error_at:
        total.last_error, total.last_error_at = part.last_error, part.last_error_at


class Helper(Child):
    """A helper listener of a node, restarted when it dies (with backoff only when it
    dies before it listens); its counters file goes with it."""

    def __init__(self, name: str, argv: list[str], listen_fd: int, stats: Path) -> None:
        super().__init__(name, argv, preexec=die_with_parent, pass_fds=(listen_fd,),
                         notify_ready=True)
        self.stats_dir = stats

    def on_exit(self, ended: Exit) -> None:
        super().on_exit(ended)
        if self.proc is not None:
            (self.stats_dir / f"stats-{self.proc.pid}.json").unlink(missing_ok=True)


class NodeProcess:
    """One listening process of a node.

    With `processes` > 1 the main process starts `processes - 1` helpers
    (`doseport store run N --helper --listen-fd FD`) that accept connections from its
    listening socket, so that parallel associations use more than one core: every
    process waits on the socket and the first one free takes the next association.
    Helpers write their counters to a file in the spool folder; only the main process
    writes the heartbeat and runs the recovery sweep.
    """

    def __init__(self, node: StoreNode, processes: int = 1, helper: bool = False,
                 listen_fd: int | None = None, ae_options: list[str] | None = None) -> None:
        self.node_id = node.pk
        self.processes = processes
        self.helper = helper
        self.listen_fd = listen_fd
        self.helpers: list[Helper] = []
        # `doseport store run` AE options (--max-pdu ...), passed on to helpers as given.
        self.ae_options = list(ae_options or [])
        self.settings = AESettings.for_node(node, **store_run_overrides(self.ae_options))
        self.spool = Spool.for_node(node.pk)
        self.ctx = NodeContext(
            node_id=node.pk, spool=self.spool, network_timeout=self.settings.network_timeout,
            fast_lane=django_settings.STORE_FAST_LANE, ae_config=self.settings.ae,
        )
        self.limits = acceptor.Limits.from_settings()
        # Associations hand spooled paths to this thread, which queues them in batches.
        self.dispatcher = ImportDispatcher(node.pk, enqueue_import_batch, self.ctx.error)
        self.ctx.enqueue = self.dispatcher.submit
        self.ae: AE | None = None
        self.server: acceptor.StoreServer | None = None
        self.stopping = threading.Event()
        self.started_at = timezone.now()
        self.next_trim = time.monotonic() + TRIM_EVERY_S
        self.swept_once = False
        self.degraded = ""

    def start(self) -> None:
        """Bind and serve in a background thread. Raises OSError when the port is taken."""
        malloc.use_one_arena()  # before the first thread (store.malloc says why)
        self.refresh_settings()
        self.dispatcher.start()
        self.ae = make_store_ae(self.settings)
        server, caps = acceptor.make_server(
            self.ae, self.settings.address, handlers_for(self.ctx, self.limits), self.ctx,
            self.limits, lane=self.ctx.fast_lane,
            shared=self.processes > 1 or self.listen_fd is not None, listen_fd=self.listen_fd,
            tls_context=aeconfig.server_tls(self.settings.ae), node_label=f"node {self.node_id}",
        )
        self.server = server
        acceptor.serve(self.ae, server, f"store-node-{self.node_id}")
        self.degraded = caps.describe()
        if self.degraded:  # still correct, slower: shown on the node's status
            logger.warning("node %s: %s", self.node_id, self.degraded)
            self.ctx.error(self.degraded)
        logger.info(
            "node %s: %s listening on %s:%d (pid %d%s)", self.node_id, self.settings.ae_title,
            *self.settings.address, os.getpid(), ", helper" if self.helper else "",
        )
        notify_ready()  # a supervisor restarts a process that was listening at once
        if not self.helper:
            self.tend_helpers()
            self.write_heartbeat(state=State.RUNNING, clear_error=True)
            self.request_echo()

    def request_echo(self) -> None:
        """Ask the worker for a C-ECHO now, so the panel's "Alive" follows the start."""
        from nodes.tasks import queue_echo

        try:
            queue_echo(StoreNode.objects.get(pk=self.node_id))
        except Exception as exc:  # no queue: the periodic check will do it
            logger.warning("node %s: cannot queue an echo: %s", self.node_id, exc)

    def refresh_settings(self) -> None:
        self.ctx.del_no_match = DeleteSettings.get().del_no_match

    def counters(self) -> Counters:
        total = self.ctx.snapshot()
        for helper in self.helpers:
            if helper.proc is None:
                continue
            try:
                data = json.loads(self._stats_path(helper.proc.pid).read_text())
            except (OSError, ValueError):
                continue
            _merge(total, Counters(**data))
        return total

    def _stats_path(self, pid: int) -> Path:
        return self.spool.root / f"stats-{pid}.json"

    def write_stats(self) -> None:
        """Helper: publish counters for the main process (atomic replace)."""
        path = self._stats_path(os.getpid())
        tmp = path.with_suffix(".tmp")
        path.parent.mkdir(parents=True, exist_ok=True)  # before the first object
        tmp.write_text(json.dumps(vars(self.ctx.snapshot())))
        os.replace(tmp, path)

    def tend_helpers(self) -> None:
        """Main process: keep `processes - 1` helpers running, restarting a dead one with
        backoff (doseport.processes.Child)."""
        if self.processes < 2 or self.server is None or self.server.socket is None:
            return
        if not self.helpers:
            fd = self.server.socket.fileno()
            argv = doseport_argv("store", "run", str(self.node_id), "--helper",
                                 "--listen-fd", str(fd), *self.ae_options)
            self.helpers = [
                Helper(f"node {self.node_id} helper {n}", argv, fd, self.spool.root)
                for n in range(1, self.processes)
            ]
        now = time.monotonic()
        for helper in self.helpers:
            helper.tend(now)

    def write_heartbeat(self, state: str | None = None, clear_error: bool = False) -> bool:
        """Write counters and heartbeat; False when the node no longer exists."""
        c = self.counters()
        fields: dict[str, object] = {
            "pid": os.getpid(),
            "started_at": self.started_at,
            "last_heartbeat": timezone.now(),
            "associations_open": max(c.associations_open, 0),
            "associations_total": c.associations_total,
            "associations_rejected": c.associations_rejected,
            "objects_received": c.objects_received,
            "objects_discarded": c.objects_discarded,
            "objects_failed": c.objects_failed,
            "bytes_received": c.bytes_received,
            "last_object_at": _aware(c.last_object_at),
        }
        if state is not None:
            fields["state"] = state
        if c.last_error:
            fields["last_error"] = c.last_error[:2000]
            fields["last_error_at"] = _aware(c.last_error_at)
        elif clear_error:
            fields["last_error"] = ""
            fields["last_error_at"] = None
        if not StoreNode.objects.filter(pk=self.node_id).exists():
            return False
        StoreRuntime.for_node(self.node_id)
        StoreRuntime.objects.filter(node_id=self.node_id).update(**fields)
        return True

    def maintain_once(self) -> bool:
        """Refresh settings, heartbeat, sweep when due. True when the sweep found work."""
        close_old_connections()
        found = False
        now = time.monotonic()
        if now >= self.next_trim:
            self.next_trim = now + TRIM_EVERY_S
            malloc.trim()
        try:
            self.refresh_settings()
            if self.helper:
                self.write_stats()
                return False
            self.tend_helpers()
            if not self.write_heartbeat():
                logger.warning("node %s was deleted; stopping", self.node_id)
                self.stopping.set()
                return False
            if not self.swept_once:
                # Once, at start: what an earlier process of this node received and did
                # not queue. Everything this process receives it queues itself; files
                # whose task was lost later (a worker killed mid-task) are the worker's
                # periodic sweep's (store/sweep.py), which leaves out what is queued. A
                # sweep here every minute queued a lagging worker's whole backlog again
                # each time, and its paths made the node's memory follow the backlog.
                found = bool(recovery.sweep_at_start(self.node_id, self.spool,
                                                     self.ctx.enqueue))
                self.swept_once = True
        except Exception as exc:  # the database may be briefly unavailable; keep serving
            logger.exception("node %s: maintenance failed", self.node_id)
            self.ctx.error(f"maintenance failed: {exc}")
        return found

    def request_stop(self, signum: int = 0, frame: FrameType | None = None) -> None:
        self.stopping.set()

    @staticmethod
    def finish_associations(ae: AE, grace_s: float) -> None:
        deadline = time.monotonic() + grace_s
        while ae.active_associations and time.monotonic() < deadline:
            time.sleep(0.05)
        if ae.active_associations:
            logger.warning("%d associations still open after %.0f s; aborting them",
                           len(ae.active_associations), grace_s)

    def run(self) -> None:
        signal.signal(signal.SIGTERM, self.request_stop)
        signal.signal(signal.SIGINT, self.request_stop)
        self.start()
        while not self.stopping.is_set():
            self.maintain_once()
            self.stopping.wait(HEARTBEAT_S)
        self.stop()

    def stop(self) -> None:
        """Stop accepting, let associations in flight finish (FINISH_GRACE_S), abort the
        rest, and queue the imports of everything answered."""
        helper_pids = [h.proc.pid for h in self.helpers if h.proc is not None]
        stop_children(self.helpers, grace_s=FINISH_GRACE_S + DISPATCH_DRAIN_S + 1)
        for pid in helper_pids:
            self._stats_path(pid).unlink(missing_ok=True)
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
        if self.ae is not None:
            self.finish_associations(self.ae, FINISH_GRACE_S)
            self.ae.shutdown()
        self.dispatcher.stop(timeout=DISPATCH_DRAIN_S)
        if self.helper:
            self._stats_path(os.getpid()).unlink(missing_ok=True)
            return
        close_old_connections()
        try:
            self.write_heartbeat(state=State.STOPPED)
            StoreRuntime.objects.filter(node_id=self.node_id).update(
                pid=None, associations_open=0
            )
        except Exception:
            logger.exception("node %s: could not record the stop", self.node_id)
        logger.info("node %s stopped", self.node_id)
