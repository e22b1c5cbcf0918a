"""`doseport stores`: one `doseport store run N` child per store node that should run.

A node should run when it is controlled and either auto-start or started by a user
(`run_requested`). Dead children restart with backoff (the first retry within a second);
children of nodes that were stopped or deleted are stopped, and those whose AE title, port,
address or allowed callers changed are restarted.
"""

from __future__ import annotations

import ctypes
import logging
import signal
import subprocess
import time
from dataclasses import dataclass, field
from types import FrameType

from django.db import close_old_connections
from django.utils import timezone

from doseport.processes import doseport_argv
from nodes.models import StoreNode
from store.models import State, StoreRuntime

logger = logging.getLogger(__name__)

MAX_BACKOFF_S = 30.0
STABLE_AFTER_S = 60.0
STOP_GRACE_S = 10.0
MARK_EVERY_S = 2.0
PR_SET_PDEATHSIG = 1


def config_of(node: StoreNode) -> tuple[object, ...]:
    """What the node process was started with; a change restarts it (a rename does not)."""
    return (node.ae_title, node.port, node.bind_address, node.allowed_calling_aets,
            node.controlled)


@dataclass
class NodeChild:
    node_id: int
    config: tuple[object, ...]
    proc: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    failures: int = 0
    next_start: float = 0.0
    extra: list[str] = field(default_factory=list)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            doseport_argv("store", "run", str(self.node_id), *self.extra),
            preexec_fn=die_with_parent,
        )
        self.started_at = time.monotonic()
        logger.info("store node %s: started (pid %d)", self.node_id, self.proc.pid)

    def backoff(self) -> float:
        if time.monotonic() - self.started_at > STABLE_AFTER_S:
            self.failures = 0
        self.failures += 1
        return min(MAX_BACKOFF_S, 0.5 * 2 ** (self.failures - 1))

    def stop(self, grace_s: float = STOP_GRACE_S) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                logger.warning("store node %s did not stop in %.0f s; killing", self.node_id,
                               grace_s)
                self.proc.kill()
                self.proc.wait(timeout=5)
        self.proc = None


def die_with_parent() -> None:
    """Linux: the node gets SIGTERM if the supervisor dies, so no orphan holds the port."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:
        pass


def _exit_reason(code: int) -> str:
    if code < 0:
        try:
            return f"killed by signal {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exited with code {code}"


class StoreSupervisor:
    def __init__(self, extra_args: list[str] | None = None) -> None:
        self.children: dict[int, NodeChild] = {}
        self.stopping = False
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
                    StoreRuntime.objects.filter(node_id=node_id).update(
                        state=State.STOPPED, pid=None, associations_open=0
                    )
                acted = True
        for node_id, node in wanted.items():
            if node_id not in self.children:
                self.children[node_id] = NodeChild(
                    node_id, config_of(node), extra=list(self.extra_args)
                )
            acted = self._tend(self.children[node_id], now) or acted
        if acted or now - self.last_mark >= MARK_EVERY_S:
            self.last_mark = now
            StoreRuntime.objects.filter(node_id__in=list(wanted)).update(
                supervised_at=timezone.now()
            )
        return acted

    def _tend(self, child: NodeChild, now: float) -> bool:
        if child.proc is not None:
            code = child.proc.poll()
            if code is None:
                return False
            delay = child.backoff()
            reason = _exit_reason(code)
            logger.warning("store node %s %s; restarting in %.1f s", child.node_id, reason, delay)
            runtime = StoreRuntime.for_node(child.node_id)
            message = f"node process {reason}; restarting in {delay:.1f} s"
            # Keep the node's own last words (e.g. "cannot listen on ...: address in use").
            recent = runtime.last_error_at is not None and (
                timezone.now() - runtime.last_error_at
            ).total_seconds() < 10
            if recent and runtime.last_error and not runtime.last_error.startswith("node process"):
                message += f": {runtime.last_error}"
            runtime.state = State.CRASHED
            runtime.pid = None
            runtime.associations_open = 0
            runtime.restarts += 1
            runtime.record_error(message)
            runtime.save()
            child.proc = None
            child.next_start = now + delay
            return True
        if now < child.next_start:
            return False
        StoreRuntime.for_node(child.node_id)
        StoreRuntime.objects.filter(node_id=child.node_id).exclude(state=State.CRASHED).update(
            state=State.STARTING
        )
        child.start()
        return True

    def request_stop(self, signum: int = 0, frame: FrameType | None = None) -> None:
        self.stopping = True

    def run(self, interval_s: float = 0.5) -> None:
        signal.signal(signal.SIGTERM, self.request_stop)
        signal.signal(signal.SIGINT, self.request_stop)
        while not self.stopping:
            close_old_connections()
            try:
                self.supervise_once()
            except Exception:
                logger.exception("store supervisor pass failed")
            time.sleep(interval_s)
        self.stop_all()

    def stop_all(self) -> None:
        for child in self.children.values():
            if child.alive():
                assert child.proc is not None
                child.proc.terminate()
        for child in self.children.values():
            child.stop()
        self.children.clear()
        logger.info("store supervisor stopped")
