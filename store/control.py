"""Start/stop requests and status for store nodes (CLI and web share these)."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator

from django.utils import timezone

from nodes.models import StoreNode
from store.models import State, StoreRuntime

logger = logging.getLogger(__name__)


class ControlError(Exception):
    pass


def start(node: StoreNode) -> str:
    if not node.controlled:
        raise ControlError(f"{node.name} is a third-party store; Doseport does not run it")
    runtime = StoreRuntime.for_node(node)
    runtime.run_requested = True
    runtime.save(update_fields=["run_requested"])
    return f"start requested for store node {node.pk} ({node.name})"


def stop(node: StoreNode) -> str:
    if not node.controlled:
        raise ControlError(f"{node.name} is a third-party store; Doseport does not run it")
    if node.auto_start:
        raise ControlError(
            f"{node.name} is set to auto-start, so it always runs; untick auto-start first"
        )
    runtime = StoreRuntime.for_node(node)
    runtime.run_requested = False
    runtime.save(update_fields=["run_requested"])
    return f"stop requested for store node {node.pk} ({node.name})"


def status_fields(node: StoreNode, runtime: StoreRuntime) -> Iterator[tuple[str, object]]:
    def when(value: object) -> object:
        return value.isoformat() if hasattr(value, "isoformat") else (value or "-")

    uptime = runtime.uptime
    yield "node", f"{node.pk} {node.name} {node.ae_title}:{node.port}"
    yield "state", runtime.shown_state
    yield "should run", node.controlled and (node.auto_start or runtime.run_requested)
    yield "pid", runtime.pid or "-"
    yield "started at", when(runtime.started_at)
    yield "uptime", f"{uptime.total_seconds():.0f} s" if uptime is not None else "-"
    yield "last heartbeat", when(runtime.last_heartbeat)
    yield "associations open", runtime.associations_open
    yield "associations total", runtime.associations_total
    yield "associations rejected", runtime.associations_rejected
    yield "objects received", runtime.objects_received
    yield "objects discarded", runtime.objects_discarded
    yield "objects failed", runtime.objects_failed
    yield "bytes received", runtime.bytes_received
    yield "last object at", when(runtime.last_object_at)
    yield "restarts", runtime.restarts
    yield "last error", runtime.last_error or "-"


def run_foreground(node: StoreNode, processes: int = 1, helper: bool = False,
                   listen_fd: int | None = None) -> None:
    """`doseport store run N`: serve until SIGTERM/SIGINT; exit 2 if it cannot listen."""
    from store.node import NodeProcess

    process = NodeProcess(node, processes=processes, helper=helper, listen_fd=listen_fd)
    try:
        process.run()
    except OSError as exc:
        message = f"cannot listen on {process.settings.address[0]}:{node.port}: {exc}"
        logger.error("node %s: %s", node.pk, message)
        if helper:
            raise SystemExit(2) from None
        runtime = StoreRuntime.for_node(node)
        runtime.state = State.CRASHED
        runtime.record_error(message)
        runtime.last_heartbeat = timezone.now()
        runtime.save()
        sys.stderr.write(f"doseport: {message}\n")
        raise SystemExit(2) from None
