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

from django.db import close_old_connections
from django.utils import timezone

from doseport.processes import Child, Exit, die_with_parent, doseport_argv, stop_children
from nodes.models import StoreNode
from store.models import State, StoreRuntime

logger = logging.getLogger(__name__)

MARK_EVERY_S = 2.0
# The supervisor's own notes in last_error: "node process <how it ended>; <what next>".
NOTE_PREFIX = "node process "
_PLAN = re.compile(r"; (restarting at once|it never became ready .*?next start in [0-9.]+ s)")


def stopped_note(message: str) -> str:
    """A supervisor note rewritten for a node stopped on purpose: no restart is coming."""
    if not message.startswith(NOTE_PREFIX):
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
        message = f"{NOTE_PREFIX}{ended.reason}; {ended.plan}"
        # Keep the node's own last words (e.g. "cannot listen on ...: address in use").
        recent = runtime.last_error_at is not None and (
            timezone.now() - runtime.last_error_at
        ).total_seconds() < 10
        if recent and runtime.last_error and not runtime.last_error.startswith(NOTE_PREFIX):
            message += f": {runtime.last_error}"
        runtime.state = State.CRASHED
        runtime.pid = None
        runtime.associations_open = 0
        runtime.restarts += 1
        runtime.record_error(message)
        runtime.save()

    def on_start(self) -> None:
        StoreRuntime.for_node(self.node_id)
        StoreRuntime.objects.filter(node_id=self.node_id).exclude(state=State.CRASHED).update(
            state=State.STARTING
        )


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
        nodes = StoreNode.objects.filter(controlled=True).select_related("runtime")
        wanted: dict[int, StoreNode] = {}
        for node in nodes:
            runtime = getattr(node, "runtime", None)
            if node.auto_start or (runtime is not None and runtime.run_requested):
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
