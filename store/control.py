"""Start/stop requests and status for store nodes (CLI and web share these)."""

from __future__ import annotations

import getpass
import logging
import sys
from collections.abc import Iterator
from dataclasses import dataclass

from django.utils import timezone

from lib import format, ports
from nodes.models import StoreNode
from store.models import State, StoreRuntime

logger = logging.getLogger(__name__)


class ControlError(Exception):
    pass


def should_run(node: StoreNode, runtime: StoreRuntime | None) -> bool:
    """A controlled node runs when a user started it, or when it auto-starts and nobody
    stopped it since (a Stop holds until the next Start, across restarts of Doseport)."""
    if not node.controlled:
        return False
    if runtime is None:
        return node.auto_start
    return runtime.run_requested or (node.auto_start and runtime.stopped_at is None)


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown user"


def start(node: StoreNode) -> str:
    if not node.controlled:
        raise ControlError(f"{node.name} is a third-party store; Doseport does not run it")
    runtime = StoreRuntime.for_node(node)
    runtime.run_requested = True
    runtime.stopped_by, runtime.stopped_at = "", None
    runtime.save(update_fields=["run_requested", "stopped_by", "stopped_at"])
    return f"start requested for store node {node.pk} ({node.name})"


def stop(node: StoreNode, by: str = "") -> str:
    """Stop a node until someone starts it again (auto-start nodes too); `by` names who."""
    if not node.controlled:
        raise ControlError(f"{node.name} is a third-party store; Doseport does not run it")
    runtime = StoreRuntime.for_node(node)
    runtime.run_requested = False
    runtime.stopped_by = (by or f"{_os_user()} (command line)")[:150]
    runtime.stopped_at = timezone.now()
    runtime.save(update_fields=["run_requested", "stopped_by", "stopped_at"])
    # The last echo said "Alive"; a node stopped on purpose is not an alarm either way.
    type(node).objects.filter(pk=node.pk).update(
        echo_alive=None, echo_reason="", echo_rtt_ms=None
    )
    return f"stop requested for store node {node.pk} ({node.name})"


def clear_stop(node: StoreNode) -> None:
    """Auto-start was ticked: it applies now, even if a user had stopped the node."""
    StoreRuntime.objects.filter(node=node, run_requested=False).update(
        stopped_by="", stopped_at=None
    )


def stops_on_untick(node: StoreNode) -> bool:
    """Whether unticking auto-start would stop this node now (so the page asks first)."""
    runtime = StoreRuntime.objects.filter(node=node).first()
    return node.controlled and node.auto_start and should_run(node, runtime) and not (
        runtime is not None and runtime.run_requested
    )


@dataclass(frozen=True)
class Shown:
    """What the node panel and `store status` say about a controlled node."""

    label: str  # Stopped, Stopping, Starting, Listening, Restarting, Crashed, Not responding
    tone: str  # css class: stopped (grey), ok, busy, bad
    detail: str = ""


def shown(node: StoreNode, runtime: StoreRuntime) -> Shown:
    if not should_run(node, runtime):
        if runtime.is_running:
            return Shown("Stopping", "busy", "stop requested; the supervisor stops it")
        if runtime.stopped_at is not None:
            who = runtime.stopped_by or "a user"
            at = timezone.localtime(runtime.stopped_at)
            return Shown("Stopped", "stopped", f"stopped by {who} at {format.datetime_text(at)}")
        return Shown("Stopped", "stopped", "not started")
    if runtime.is_running:
        return Shown("Listening", "ok", f"on port {node.port}")
    if runtime.state == State.RUNNING:
        return Shown("Not responding", "bad", "no heartbeat from the node process")
    if runtime.state == State.CRASHED:
        if runtime.last_error.endswith("restarting at once") or (
            "restarting at once" in runtime.last_error and "never became ready" not in
            runtime.last_error
        ):
            return Shown("Restarting", "busy", runtime.last_error)
        return Shown("Crashed", "bad", runtime.last_error or "the node process ended")
    return Shown("Starting", "busy", "")


def status_fields(node: StoreNode, runtime: StoreRuntime) -> Iterator[tuple[str, object]]:
    def when(value: object) -> object:
        return value.isoformat() if hasattr(value, "isoformat") else (value or "-")

    uptime = runtime.uptime
    yield "node", f"{node.pk} {node.name} {node.ae_title}:{node.port}"
    state = shown(node, runtime)
    yield "state", runtime.shown_state
    yield "status", f"{state.label}{f' ({state.detail})' if state.detail else ''}"
    yield "should run", should_run(node, runtime)
    if runtime.stopped_at is not None:
        yield "stopped by", f"{runtime.stopped_by or '-'} at {when(runtime.stopped_at)}"
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
                   listen_fd: int | None = None, ae_options: list[str] | None = None) -> None:
    """`doseport store run N`: serve until SIGTERM/SIGINT; exit 2 if it cannot listen."""
    from lib.tls import TLSNotConfigured
    from store.node import NodeProcess

    process = NodeProcess(node, processes=processes, helper=helper, listen_fd=listen_fd,
                          ae_options=ae_options)
    try:
        process.run()
    except (OSError, TLSNotConfigured) as exc:
        message = str(exc) if isinstance(exc, TLSNotConfigured) else (
            ports.in_use_message(node.port, exc)
            or f"cannot listen on {process.settings.address[0]}:{node.port}: {exc}"
        )
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
