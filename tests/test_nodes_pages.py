"""The DICOM network configuration page and home page: forms, panels, hints, polling."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from lib.dicom import EchoResult
from nodes.models import RemoteNode, StoreNode

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(admin_user: Any) -> Client:
    client = Client()
    client.force_login(admin_user)
    return client


def test_it_shows_field_errors_and_keeps_the_input(admin_client: Client) -> None:
    response = admin_client.post(
        "/config/dicom/store/add/",
        {"name": "Bad", "ae_title": "BAD AET", "port": 70000, "allowed_calling_aets": "A\\B"},
    )
    assert response.status_code == 200
    page = response.content.decode()
    assert "AE title may contain only letters A-Z and digits" in page
    assert "Port 70000 is out of range; use 1-65535" in page
    assert "must not contain a backslash" in page
    assert "<details open>" in page  # the Advanced section opens to show its error
    assert 'value="BAD AET"' in page
    assert not StoreNode.objects.exists()


def test_it_accepts_a_privileged_port_and_warns_on_the_page(admin_client: Client) -> None:
    response = admin_client.post(
        "/config/dicom/store/add/",
        {"name": "Low", "ae_title": "LOW", "port": 104, "controlled": "on"}, follow=True,
    )
    page = response.content.decode()
    node = StoreNode.objects.get()
    assert f"Added store node Low (id {node.pk})" in page
    assert page.count("CAP_NET_BIND_SERVICE") == 2  # the message and the panel


def test_it_edits_and_deletes_a_remote_node(admin_client: Client) -> None:
    node = RemoteNode.objects.create(name="PACS", ae_title="PACS", host="pacs", port=104)
    page = admin_client.get(f"/config/dicom/remote/{node.pk}/edit/").content.decode()
    assert 'value="PACS"' in page and f"(id {node.pk})" in page
    data = {
        "name": "PACS", "ae_title": "PACS2", "host": "10.0.0.9", "port": 11112,
        "calling_ae_title": "", "retrieve_method": "get", "connect_timeout": 3,
        "acse_timeout": 5, "dimse_timeout": 30, "network_timeout": 60,
    }
    response = admin_client.post(f"/config/dicom/remote/{node.pk}/edit/", data)
    assert response.status_code == 302
    node.refresh_from_db()
    assert (node.ae_title, node.host, node.retrieve_method, node.calling_ae_title) == (
        "PACS2", "10.0.0.9", "get", ""
    )
    assert admin_client.post(f"/config/dicom/remote/{node.pk}/delete/").status_code == 302
    assert not RemoteNode.objects.exists()
    assert admin_client.get(f"/config/dicom/remote/{node.pk}/edit/").status_code == 404


def test_it_tells_what_to_configure_on_the_other_side(admin_client: Client, settings) -> None:  # type: ignore[no-untyped-def]
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "doseport.example"]  # DOSEPORT_ALLOWED_HOSTS
    store = StoreNode.objects.create(
        name="Main", ae_title="DOSESTORE", port=11112, allowed_calling_aets="CT1, CT2"
    )
    RemoteNode.objects.create(
        name="PACS", ae_title="PACS", host="pacs", port=104, calling_ae_title="DOSEQR"
    )
    response = admin_client.get("/config/dicom/", HTTP_HOST="doseport.example:8000")
    page = " ".join(response.content.decode().split())
    assert "add a DICOM destination: AE title <code>DOSESTORE</code>" in page
    assert "host <code>doseport.example</code>" in page and "port <code>11112</code>" in page
    assert "Its own AE title must be one of: CT1, CT2" in page
    assert "allow queries from AE title <code>DOSEQR</code>" in page
    assert "move destination" in page and f"port <code>{store.port}</code>" in page


def test_it_shows_status_check_time_and_round_trip(admin_client: Client) -> None:
    up = RemoteNode.objects.create(name="Up", ae_title="UP", host="pacs", port=104)
    down = StoreNode.objects.create(name="Down", ae_title="DOWN", port=11112, controlled=False)
    RemoteNode.objects.create(name="New", ae_title="NEW", host="pacs2", port=104)
    up.record_echo(EchoResult(True, rtt_ms=12.34, status=0))
    down.record_echo(EchoResult(False, reason="connection refused by 127.0.0.1:11112"))
    for url in ("/config/dicom/", "/"):
        page = admin_client.get(url).content.decode()
        assert "Alive" in page and "12.3 ms" in page
        assert "Not responding: connection refused by 127.0.0.1:11112" in page
        assert "Unknown" in page


def test_it_polls_only_while_a_check_is_pending(admin_client: Client) -> None:
    node = RemoteNode.objects.create(name="P", ae_title="P", host="pacs", port=104)
    url = f"/config/dicom/remote/{node.pk}/panel/"
    assert "hx-trigger" not in admin_client.get(url).content.decode()
    RemoteNode.objects.filter(pk=node.pk).update(echo_requested_at=timezone.now())
    assert 'hx-trigger="every 1s"' in admin_client.get(url).content.decode()
    node.refresh_from_db()
    node.record_echo(EchoResult(True, rtt_ms=5.0))
    assert "hx-trigger" not in admin_client.get(url).content.decode()
    # A check nobody picked up: stop polling and say why.
    long_ago = timezone.now() - timedelta(minutes=5)
    RemoteNode.objects.filter(pk=node.pk).update(echo_requested_at=long_ago)
    RemoteNode.objects.filter(pk=node.pk).update(echo_checked_at=long_ago - timedelta(minutes=1))
    page = admin_client.get(url).content.decode()
    assert "hx-trigger" not in page and "doseport worker" in page


def test_it_saves_delete_settings_from_the_page(admin_client: Client) -> None:
    page = admin_client.get("/config/dicom/").content.decode()
    assert "Delete dose SRs after import" in page
    assert "Radiation dose structured reports are removed once imported." in page
    response = admin_client.post(
        "/config/dicom/delete-settings/", {"del_rdsr": "on", "del_nm_im": "on"}, follow=True
    )
    assert "Saved delete settings." in response.content.decode()
    from nodes.models import DeleteSettings

    row = DeleteSettings.get()
    assert row.del_rdsr and row.del_nm_im and not row.del_mg_im
