"""C-ECHO against real loopback peers: alive, refused, wrong AE title, no answer; and the
background flows (periodic sweep, "Echo now") that store the result on the node."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone
from huey.contrib.djhuey import HUEY
from pynetdicom import AE
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]

from nodes import services
from nodes.models import RemoteNode, StoreNode
from nodes.tasks import echo_due_nodes_task
from tests.conftest import free_port, require_tool, wait_port

pytestmark = pytest.mark.django_db

PEER_AET = "PEERAE"


@pytest.fixture
def scp() -> Iterator[int]:
    """A pynetdicom Verification SCP that rejects any other called AE title."""
    ae = AE(PEER_AET)
    ae.require_called_aet = True
    ae.add_supported_context(Verification)
    port = free_port()
    server = ae.start_server(("127.0.0.1", port), block=False)
    assert server is not None
    yield port
    server.shutdown()


@pytest.fixture
def storescp() -> Iterator[int]:
    exe = require_tool("storescp")
    port = free_port()
    proc = subprocess.Popen(
        [exe, "--aetitle", PEER_AET, str(port)], env={**os.environ, "TCP_NODELAY": "1"},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        wait_port(port)
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture
def silent_port() -> Iterator[int]:
    """Accepts TCP (the kernel completes the handshake) but never answers the association."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    yield int(sock.getsockname()[1])
    sock.close()


def remote(port: int, **fields: Any) -> RemoteNode:
    values: dict[str, Any] = {"name": "Peer", "ae_title": PEER_AET, "host": "127.0.0.1"}
    values.update(fields)
    return RemoteNode.objects.create(port=port, **values)


def test_it_finds_dcmtk_storescp_alive(storescp: int) -> None:
    node = remote(storescp)
    result = services.echo_node(node)
    assert result.ok, result.reason
    node.refresh_from_db()
    assert node.status_text == "Alive"
    assert node.echo_rtt_ms is not None and 0 < node.echo_rtt_ms < 3000
    assert node.echo_checked_at is not None


def test_it_finds_a_pynetdicom_scp_alive_and_shows_the_round_trip(
    scp: int, admin_user: Any
) -> None:
    node = remote(scp)
    assert services.echo_node(node).ok
    node.refresh_from_db()
    client = Client()
    client.force_login(admin_user)
    page = client.get("/config/dicom/").content.decode()
    assert "Alive" in page and f"{node.echo_rtt_ms:.1f} ms" in page


def test_it_reports_a_refused_connection() -> None:
    node = remote(free_port())
    result = services.echo_node(node)
    assert not result.ok
    node.refresh_from_db()
    assert node.echo_alive is False
    assert node.status_text.startswith("Not responding: connection refused")


def test_it_reports_a_rejected_association_for_a_wrong_ae_title(scp: int) -> None:
    node = remote(scp, ae_title="WRONGAE")
    services.echo_node(node)
    node.refresh_from_db()
    assert node.echo_alive is False
    assert "association rejected" in node.echo_reason
    assert "Called AE title not recognised" in node.status_text


def test_it_gives_up_within_the_configured_association_timeout(silent_port: int) -> None:
    node = remote(silent_port, acse_timeout=2)
    started = time.monotonic()
    result = services.echo_node(node)
    elapsed = time.monotonic() - started
    assert not result.ok
    assert "no association response within 2 s" in result.reason
    assert elapsed < 2 + 2


def test_it_caps_long_timeouts_for_health_checks(silent_port: int) -> None:
    node = remote(silent_port, acse_timeout=300)
    assert node.peer(short=True).acse_timeout == 5
    assert node.peer().acse_timeout == 300
    store = StoreNode(name="S", ae_title="S", port=silent_port)
    assert store.peer(short=True).acse_timeout <= 5


def test_it_echoes_a_local_store_node_on_loopback(scp: int) -> None:
    store = StoreNode.objects.create(name="Local", ae_title=PEER_AET, port=scp)
    assert services.echo_node(store).ok
    store.refresh_from_db()
    assert store.status_text == "Alive"


def test_it_echoes_due_nodes_from_the_periodic_task(scp: int) -> None:
    never = remote(scp, name="Never checked")
    old = remote(scp, name="Checked long ago")
    fresh = remote(scp, name="Checked just now")
    long_ago = timezone.now() - timedelta(hours=1)
    RemoteNode.objects.filter(pk=old.pk).update(echo_checked_at=long_ago, echo_alive=False)
    RemoteNode.objects.filter(pk=fresh.pk).update(echo_checked_at=timezone.now(), echo_alive=False)
    assert echo_due_nodes_task.call_local() == 2
    never.refresh_from_db()
    old.refresh_from_db()
    fresh.refresh_from_db()
    assert never.status_text == "Alive" and old.status_text == "Alive"
    assert fresh.echo_alive is False  # not due yet: left alone
    assert echo_due_nodes_task.call_local() == 0


def test_it_does_not_queue_a_node_twice_while_a_check_is_pending(scp: int) -> None:
    node = remote(scp)
    RemoteNode.objects.filter(pk=node.pk).update(echo_requested_at=timezone.now())
    assert services.due_nodes() == []
    stale = timezone.now() - timedelta(seconds=services.STALE_REQUEST_S + 1)
    RemoteNode.objects.filter(pk=node.pk).update(echo_requested_at=stale)
    assert [n.pk for n in services.due_nodes()] == [node.pk]


@pytest.fixture
def real_queue() -> Iterator[None]:
    """Queue tasks instead of running them inline, as in production."""
    HUEY.immediate = False
    HUEY.flush()
    try:
        yield
    finally:
        HUEY.flush()
        HUEY.immediate = True


def test_it_queues_echo_now_without_dicom_in_the_request(
    scp: int, importer: Any, real_queue: None
) -> None:
    node = remote(scp)
    client = Client()
    client.force_login(importer)
    response = client.post(f"/config/dicom/remote/{node.pk}/echo/", HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    panel = response.content.decode()
    assert 'hx-trigger="every 1s"' in panel and "checking" in panel
    node.refresh_from_db()
    assert node.echo_pending and node.echo_checked_at is None
    assert HUEY.pending_count() == 1

    task = HUEY.dequeue()
    assert task is not None
    # What the worker does; inline, because closing connections (as a worker does between
    # tasks) would close this test's transaction.
    HUEY.immediate = True
    HUEY.execute(task)

    node.refresh_from_db()
    assert not node.echo_pending and node.status_text == "Alive"
    panel = client.get(f"/config/dicom/remote/{node.pk}/panel/").content.decode()
    assert "Alive" in panel and "hx-trigger" not in panel  # polling stops


def test_it_updates_the_node_when_echo_now_runs_inline(scp: int, importer: Any) -> None:
    node = remote(scp)
    client = Client()
    response = client.post(f"/config/dicom/remote/{node.pk}/echo/")
    assert response.status_code == 302 and response["Location"].startswith("/login/")
    client.force_login(importer)
    response = client.post(f"/config/dicom/remote/{node.pk}/echo/")
    assert response.status_code == 302 and response["Location"] == "/config/dicom/"
    node.refresh_from_db()
    assert node.status_text == "Alive" and not node.echo_pending


def test_it_skips_a_node_deleted_before_its_check_ran() -> None:
    from nodes.tasks import echo_node_task

    node = remote(free_port())
    pk = node.pk
    node.delete()
    assert echo_node_task.call_local("remote", pk) is None
