"""Background echoes: a periodic sweep and one-off checks queued by "Echo now"."""

from __future__ import annotations

import logging

from django.conf import settings
from django.utils import timezone
from huey import crontab
from huey.contrib.djhuey import db_periodic_task, db_task

from doseport.queue import server_task
from nodes import services
from nodes.models import RemoteNode, StoreNode

logger = logging.getLogger(__name__)


@db_task()
def echo_node_task(kind: str, pk: int) -> bool | None:
    """Echo one node and store the result; returns whether it is alive (None: node gone)."""
    model = services.KINDS[kind]
    node = model.objects.filter(pk=pk).first()
    if node is None:
        return None
    not_up = not_listening(node)
    if not_up:
        # A node stopped on purpose or still starting is not an alarm: say so, no C-ECHO.
        model.objects.filter(pk=pk).update(
            echo_alive=None, echo_reason=not_up, echo_rtt_ms=None, echo_checked_at=timezone.now()
        )
        logger.info("echo %s node %d: skipped (%s)", kind, pk, not_up)
        return None
    result = services.echo_node(node)
    logger.info("echo %s node %d: %s", kind, pk, "alive" if result.ok else result.reason)
    return result.ok


@db_periodic_task(crontab(minute="*"))
def echo_due_nodes_task() -> int:
    """Queue a check for every node whose last check is older than ECHO_INTERVAL_S."""
    nodes = [node for node in services.due_nodes() if not not_listening(node)]
    for node in nodes:
        queue_echo(node)
    return len(nodes)


def not_listening(node: StoreNode | RemoteNode) -> str:
    """Why a store node Doseport runs is not echoed ('stopped', 'starting', 'crashed'...);
    '' when it should answer (listening, or silent while it should be listening)."""
    if not isinstance(node, StoreNode) or not node.controlled:
        return ""
    from store.control import shown  # store imports nodes: import when needed
    from store.models import StoreRuntime

    runtime = StoreRuntime.objects.filter(node=node).first() or StoreRuntime(node=node)
    label = shown(node, runtime).label
    return "" if label in ("Listening", "Not responding") else label.lower()


def queue_echo(node: StoreNode | RemoteNode) -> None:
    """Mark a check as requested and queue it; the worker does the DICOM I/O. A store node
    that runs on another server is echoed by that server's worker (docs/deploy.md): its
    address (often 127.0.0.1) is right only there."""
    node.request_echo()
    server = node.runs_on if isinstance(node, StoreNode) and node.controlled else ""
    if server and server != settings.SERVER_NAME:
        echo_store_node_task.on(server)(node.pk)
        return
    echo_node_task(services.kind_of(node), node.pk)


@server_task()
def echo_store_node_task(pk: int) -> bool | None:
    """`echo_node_task` of a store node, on the import queue of the server that runs it."""
    return echo_node_task.call_local(services.STORE, pk)
