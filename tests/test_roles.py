"""Roles on every node view: anonymous -> login, wrong role -> 403 (also for direct POSTs)."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from nodes.models import DeleteSettings, RemoteNode, StoreNode
from tests.conftest import free_port

pytestmark = pytest.mark.django_db

ROLE_RANK = {None: 0, "viewer": 1, "importer": 2, "admin": 3}


@pytest.fixture
def nodes() -> tuple[StoreNode, RemoteNode]:
    # Free ports with nothing listening: an echo queued by a test fails fast (refused).
    store = StoreNode.objects.create(name="S", ae_title="STORE", port=free_port())
    remote = RemoteNode.objects.create(
        name="R", ae_title="PACS", host="127.0.0.1", port=free_port()
    )
    return store, remote


def store_post() -> dict[str, Any]:
    return {"name": "New store", "ae_title": "NEWSTORE", "port": free_port(), "controlled": "on"}


def remote_post() -> dict[str, Any]:
    return {
        "name": "New PACS", "ae_title": "NEWPACS", "host": "127.0.0.1", "port": 104,
        "calling_ae_title": "DOSEPORT", "retrieve_method": "move", "connect_timeout": 5,
        "acse_timeout": 10, "dimse_timeout": 60, "network_timeout": 120,
    }


def requests(store: StoreNode, remote: RemoteNode) -> list[tuple[str, str, str, Any]]:
    """(method, url, least role, POST data) for every view of the nodes app and home."""
    s, r = store.pk, remote.pk
    return [
        ("get", "/", "viewer", None),
        ("get", "/config/dicom/", "viewer", None),
        ("get", f"/config/dicom/store/{s}/panel/", "viewer", None),
        ("get", f"/config/dicom/remote/{r}/panel/", "viewer", None),
        ("post", f"/config/dicom/store/{s}/echo/", "importer", {}),
        ("post", f"/config/dicom/remote/{r}/echo/", "importer", {}),
        ("get", "/config/dicom/store/add/", "admin", None),
        ("get", "/config/dicom/remote/add/", "admin", None),
        ("post", "/config/dicom/store/add/", "admin", store_post()),
        ("post", "/config/dicom/remote/add/", "admin", remote_post()),
        ("get", f"/config/dicom/store/{s}/edit/", "admin", None),
        ("get", f"/config/dicom/remote/{r}/edit/", "admin", None),
        ("post", f"/config/dicom/store/{s}/edit/", "admin", {**store_post(), "name": "S2"}),
        ("post", f"/config/dicom/remote/{r}/edit/", "admin", {**remote_post(), "name": "R2"}),
        ("post", "/config/dicom/delete-settings/", "admin", {"del_rdsr": "on"}),
        ("post", f"/config/dicom/store/{s}/delete/", "admin", {}),
        ("post", f"/config/dicom/remote/{r}/delete/", "admin", {}),
    ]


def call(client: Client, method: str, url: str, data: Any) -> Any:
    return client.get(url) if method == "get" else client.post(url, data)


def test_it_sends_anonymous_users_to_the_login_page(nodes: tuple[StoreNode, RemoteNode]) -> None:
    client = Client()
    for method, url, _, data in requests(*nodes):
        response = call(client, method, url, data)
        assert response.status_code == 302, (method, url)
        assert response["Location"].startswith("/login/?next="), (method, url)
    assert StoreNode.objects.count() == 1 and RemoteNode.objects.count() == 1


@pytest.mark.parametrize("role", [None, "viewer", "importer", "admin"])
def test_it_enforces_each_role_on_every_view(
    role: str | None, nodes: tuple[StoreNode, RemoteNode], django_user_model: Any
) -> None:
    from doseport.auth import set_role

    user = django_user_model.objects.create_user(f"user-{role}", password="pw")
    if role:
        set_role(user, role)
    client = Client()
    client.force_login(user)
    for method, url, needed, data in requests(*nodes):
        response = call(client, method, url, data)
        if ROLE_RANK[role] >= ROLE_RANK[needed]:
            assert response.status_code in (200, 302), (role, method, url, response.status_code)
        else:
            assert response.status_code == 403, (role, method, url, response.status_code)


def test_it_refuses_direct_posts_without_the_role(
    nodes: tuple[StoreNode, RemoteNode], viewer: Any, importer: Any
) -> None:
    store, remote = nodes
    client = Client()
    client.force_login(importer)
    assert client.post("/config/dicom/store/add/", store_post()).status_code == 403
    assert client.post(f"/config/dicom/store/{store.pk}/delete/").status_code == 403
    assert client.post(f"/config/dicom/remote/{remote.pk}/edit/", remote_post()).status_code == 403
    assert client.post("/config/dicom/delete-settings/", {"del_rdsr": "on"}).status_code == 403
    client.force_login(viewer)
    assert client.post(f"/config/dicom/remote/{remote.pk}/echo/").status_code == 403
    assert StoreNode.objects.get().name == "S"
    assert RemoteNode.objects.get().name == "R" and RemoteNode.objects.get().echo_alive is None
    assert DeleteSettings.get().del_rdsr is False


def test_it_changes_things_for_the_admin(nodes: tuple[StoreNode, RemoteNode], admin_user: Any):
    store, remote = nodes
    client = Client()
    client.force_login(admin_user)
    assert client.post("/config/dicom/store/add/", store_post()).status_code == 302
    assert client.post("/config/dicom/remote/add/", remote_post()).status_code == 302
    assert client.post(f"/config/dicom/store/{store.pk}/delete/").status_code == 302
    assert client.post("/config/dicom/delete-settings/", {"del_rdsr": "on"}).status_code == 302
    assert sorted(StoreNode.objects.values_list("name", flat=True)) == ["New store"]
    assert RemoteNode.objects.count() == 2
    assert DeleteSettings.get().del_rdsr is True


def test_it_hides_buttons_a_role_cannot_use(
    nodes: tuple[StoreNode, RemoteNode], viewer: Any, importer: Any, admin_user: Any
) -> None:
    client = Client()
    client.force_login(viewer)
    page = client.get("/config/dicom/").content.decode()
    assert "Echo now" not in page and "Add store node" not in page
    assert 'class="delete"' not in page and "Save delete settings" not in page
    client.force_login(importer)
    page = client.get("/config/dicom/").content.decode()
    assert "Echo now" in page and "Add store node" not in page and 'class="delete"' not in page
    client.force_login(admin_user)
    page = client.get("/config/dicom/").content.decode()
    assert "Echo now" in page and "Add store node" in page and "Save delete settings" in page


def test_it_refuses_get_on_post_only_views(nodes: tuple[StoreNode, RemoteNode], admin_user: Any):
    store, _ = nodes
    client = Client()
    client.force_login(admin_user)
    assert client.get(f"/config/dicom/store/{store.pk}/delete/").status_code == 405
    assert client.get(f"/config/dicom/store/{store.pk}/echo/").status_code == 405
    assert StoreNode.objects.filter(pk=store.pk).exists()


def test_it_enforces_csrf_on_every_change(nodes: tuple[StoreNode, RemoteNode], admin_user: Any):
    store, remote = nodes
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin_user)
    for url, data in [
        ("/config/dicom/store/add/", store_post()),
        (f"/config/dicom/store/{store.pk}/delete/", {}),
        (f"/config/dicom/remote/{remote.pk}/echo/", {}),
        ("/config/dicom/delete-settings/", {"del_rdsr": "on"}),
    ]:
        assert client.post(url, data).status_code == 403, url
    assert StoreNode.objects.count() == 1 and DeleteSettings.get().del_rdsr is False
    client.get("/config/dicom/")
    token = client.cookies["csrftoken"].value
    data = {**store_post(), "csrfmiddlewaretoken": token}
    response = client.post("/config/dicom/store/add/", data)
    assert response.status_code == 302
    response = client.post(
        f"/config/dicom/remote/{remote.pk}/echo/", HTTP_X_CSRFTOKEN=token, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 200 and f'id="remote-{remote.pk}"' in response.content.decode()
