"""Node domain functions shared by views, tasks and commands."""

from __future__ import annotations

import socket
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import F, Q
from django.shortcuts import get_object_or_404
from django.utils import timezone

from lib import dicom
from nodes.models import EchoStatus, RemoteNode, StoreNode

STORE = "store"
REMOTE = "remote"
KINDS: dict[str, type[StoreNode] | type[RemoteNode]] = {STORE: StoreNode, REMOTE: RemoteNode}
# The periodic task runs once a minute; a node checked a little less than the interval ago
# is due anyway, otherwise a 60 s interval would become 120 s.
DUE_SLACK_S = 15
# A queued check that never reported (worker died) is queued again after this long.
STALE_REQUEST_S = 300


def kind_of(node: EchoStatus) -> str:
    return STORE if isinstance(node, StoreNode) else REMOTE


def get_node_or_404(kind: str, pk: int) -> StoreNode | RemoteNode:
    if kind == STORE:
        return get_object_or_404(StoreNode, pk=pk)
    return get_object_or_404(RemoteNode, pk=pk)


def echo_node(node: StoreNode | RemoteNode) -> dicom.EchoResult:
    """C-ECHO the node with short timeouts and store the result on it."""
    result = dicom.echo(node.peer(short=True))
    node.record_echo(result)
    return result


def due_nodes(now: datetime | None = None) -> list[StoreNode | RemoteNode]:
    """Nodes whose last check is older than ECHO_INTERVAL_S and that have no check queued."""
    now = now or timezone.now()
    checked_before = now - timedelta(seconds=max(settings.ECHO_INTERVAL_S - DUE_SLACK_S, 0))
    due = Q(echo_checked_at__isnull=True) | Q(echo_checked_at__lte=checked_before)
    not_queued = (
        Q(echo_requested_at__isnull=True)
        | Q(echo_checked_at__gte=F("echo_requested_at"))
        | Q(echo_requested_at__lte=now - timedelta(seconds=STALE_REQUEST_S))
    )
    nodes: list[StoreNode | RemoteNode] = []
    for model in KINDS.values():
        nodes.extend(model.objects.filter(due & not_queued))
    return nodes


def this_host_name() -> str:
    """This machine's name as the OS knows it (no DNS lookup: no network I/O in a request)."""
    return socket.gethostname()
