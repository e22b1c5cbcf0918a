"""`doseport stores`: one `doseport store run N` child per store node that should run.

A node should run when it is controlled and either auto-start or started by a user
(`run_requested`). A node process that was listening and dies is started again at once,
however often; one that dies before it listens backs off, and its status says so (the
bookkeeping is doseport.processes.Child, shared with `doseport run`). Children of nodes
that were stopped or deleted are stopped, and those whose AE title, port, address or
allowed callers changed are restarted.
"""

from __future__ import annotations

import logging
import re
import signal
import threading
import time
from types import FrameType

from django.conf import settings
from django.db import close_old_connections
from django.utils import timezone

from doseport.processes import Child, Exit, die_with_parent, doseport_argv, stop_children
from lib import ports
from nodes.models import StoreNode
from store.control import should_run
from store.models import State, StoreRuntime

logger = logging.getLogger(__name__)

MARK_EVERY_S = 2.0
# The supervisor's own notes in last_error: "node process <how it ended>; <what next>".
NOTE_PREFIX = "node process "
_PLAN = re.compile(r"; (restarting at once|it never became ready .*?next start in [0-9.]+ s)")


def stopped_note(message: str) -> str:
    """A supervisor note rewritten for a node stopped on purpose: no restart is coming."""
    if NOTE_PREFIX not in message:
        return message
    return _PLAN.sub("; then stopped on request", message, count=1)


def config_of(node: StoreNode) -> tuple[object, ...]:
    """What the node process was started with; a change restarts it (a rename does not)."""
    return (node.ae_title, node.port, node.bind_address, node.allowed_calling_aets,
            node.controlled)


class NodeChild(Child):
    """The process of one store node; its deaths and starts are written to StoreRuntime."""

    def __init__(self, node_id: int, config: tuple[object, ...],
                 extra: list[str] | None = None) -> None:
        super().__init__(
            name=f"store node {node_id}",
            argv=doseport_argv("store", "run", str(node_id), *(extra or [])),
            preexec=die_with_parent,
            notify_ready=True,  # once it listens (store.node.NodeProcess.start)
        )
        self.node_id = node_id
        self.config = config

    def on_exit(self, ended: Exit) -> None:
        super().on_exit(ended)
        runtime = StoreRuntime.for_node(self.node_id)
        note = f"{NOTE_PREFIX}{ended.reason}; {ended.plan}"
        # The node's own last words come first: they are the reason (e.g. "port 11112 is
        # in use by another program: orthanc (pid 812)"); the supervisor's note follows.
        recent = runtime.last_error_at is not None and (
            timezone.now() - runtime.last_error_at
        ).total_seconds() < 10
        words = runtime.last_error if recent and NOTE_PREFIX not in runtime.last_error else ""
        if not words and not ended.was_ready:
            words = port_taken_note(self.port)  # it may have died before it could say
        message = f"{words} ({note})" if words else note
        runtime.state = State.CRASHED
        runtime.pid = None
        runtime.associations_open = 0
        runtime.restarts += 1
        runtime.record_error(message)
        runtime.save()

    def on_start(self) -> None:
        """"starting" before the process is ready (the echo task leaves such nodes alone);
        a retry after failed starts keeps "crashed" and its reason until it listens."""
        StoreRuntime.for_node(self.node_id)
        rows = StoreRuntime.objects.filter(node_id=self.node_id)
        if self.failures:
            rows.update(server_name=settings.SERVER_NAME)
        else:
            rows.update(state=State.STARTING, server_name=settings.SERVER_NAME)

    @property
    def port(self) -> int:
        return int(str(self.config[1]))


def port_taken_note(port: int) -> str:
    """"port N is in use by another program ..." when something else listens on it."""
    holder = ports.holder_of(port)
    if holder is None:
        return ""
    return f"port {port} is in use by another program: {holder}"


def claim_unassigned() -> int:
    """Nodes with an empty `runs_on` (made before servers had names, or by a tool that left
    it out) become this server's: the first supervisor to look claims them, in one
    conditional UPDATE, so two servers never both run one. Move a node to another server
    on its page or with `doseport nodes edit` (docs/deploy.md)."""
    unassigned = StoreNode.objects.filter(controlled=True, runs_on="")
    if not unassigned.exists():  # a read: no write lock on SQLite at every pass
        return 0
    claimed = unassigned.update(runs_on=settings.SERVER_NAME)
    if claimed:
        logger.info("%d store nodes without a server now run on %s", claimed,
                    settings.SERVER_NAME)
    return claimed


def mark_stopped(node_id: int) -> None:
    """A node stopped on purpose shows "stopped", with no restart promised."""
    runtime = StoreRuntime.objects.filter(node_id=node_id).first()
    if runtime is None:
        return
    runtime.state, runtime.pid, runtime.associations_open = State.STOPPED, None, 0
    runtime.last_error = stopped_note(runtime.last_error)
    runtime.save(update_fields=["state", "pid", "associations_open", "last_error"])


class StoreSupervisor:
    def __init__(self, extra_args: list[str] | None = None) -> None:
        self.children: dict[int, NodeChild] = {}
        self.stopping = False
        self.wake = threading.Event()
        self.extra_args = extra_args or []
        self.last_mark = 0.0

    def wanted(self) -> dict[int, StoreNode]:
        """This server's nodes that should run (a node runs on one server: `runs_on`)."""
        claim_unassigned()
        nodes = StoreNode.objects.filter(
            controlled=True, runs_on=settings.SERVER_NAME
        ).select_related("runtime")
        wanted: dict[int, StoreNode] = {}
        for node in nodes:
            runtime = getattr(node, "runtime", None)
            if should_run(node, runtime):  # a user's Stop holds over auto-start
                wanted[node.pk] = node
        return wanted

    def supervise_once(self) -> bool:
        """One pass: start, restart and stop children. True when anything was done."""
        acted = False
        now = time.monotonic()
        wanted = self.wanted()
        for node_id, child in list(self.children.items()):
            node = wanted.get(node_id)
            if node is None or config_of(node) != child.config:
                why = "stopped or deleted" if node is None else "configuration changed"
                logger.info("store node %s: %s; stopping its process", node_id, why)
                child.stop()
                del self.children[node_id]
                if node is None:
                    mark_stopped(node_id)
                acted = True
        for node_id, node in wanted.items():
            if node_id not in self.children:
                self.children[node_id] = NodeChild(
                    node_id, config_of(node), extra=list(self.extra_args)
                )
            acted = self.children[node_id].tend(now) or acted
        if acted or now - self.last_mark >= MARK_EVERY_S:
            self.last_mark = now
            StoreRuntime.objects.filter(node_id__in=list(wanted)).update(
                supervised_at=timezone.now()
            )
        return acted

    def request_stop(self, signum: int = 0, frame: FrameType | None = None) -> None:
        self.stopping = True
        self.wake.set()

    def run(self, interval_s: float = 0.5) -> None:
        signal.signal(signal.SIGTERM, self.request_stop)
        signal.signal(signal.SIGINT, self.request_stop)
        # A child's death wakes the loop: it is restarted now, not at the next pass.
        signal.signal(signal.SIGCHLD, lambda signum, frame: self.wake.set())
        while not self.stopping:
            self.wake.clear()
            close_old_connections()
            try:
                self.supervise_once()
            except Exception:
                logger.exception("store supervisor pass failed")
            self.wake.wait(interval_s)
        self.stop_all()

    def stop_all(self) -> None:
        stop_children(self.children.values())
        for node_id in self.children:
            mark_stopped(node_id)  # also those that had to be killed, or were backing off
        self.children.clear()
        logger.info("store supervisor stopped")
