"""The privileged-port warning on the store node form shows while the port is typed."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from doseport.auth import ADMIN, set_role
from nodes.models import StoreNode
from tests.conftest import fill

HX = {"HX-Request": "true"}


@pytest.fixture
def admin_client(admin_user: Any) -> Client:
    client = Client()
    client.force_login(admin_user)
    return client


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("typed", "warned"),
    [("104", True), (" 1023 ", True), ("1024", False), ("11112", False), ("", False),
     ("eleven", False), ("0", False), pytest.param("9" * 5000, False, id="5000-digits")],
)
def test_it_answers_the_port_field_with_the_warning_partial(
    admin_client: Client, typed: str, warned: bool
) -> None:
    response = admin_client.get("/config/dicom/store/add/", {"port": typed}, headers=HX)
    assert response.status_code == 200
    body = response.content.decode()
    assert "<form" not in body  # the partial, not the page
    assert ('id="port-warning"' in body) is warned
    assert ("CAP_NET_BIND_SERVICE" in body) is warned
    assert not StoreNode.objects.exists()


@pytest.mark.django_db
def test_it_wires_the_port_field_to_the_form_url_on_add_and_edit(admin_client: Client) -> None:
    page = admin_client.get("/config/dicom/store/add/").content.decode()
    assert 'hx-get="/config/dicom/store/add/"' in page and "from:#id_port" in page
    assert 'id="port-warning"' not in page  # default port 11112
    node = StoreNode.objects.create(name="Low", ae_title="LOW", port=104)
    edit = f"/config/dicom/store/{node.pk}/edit/"
    page = admin_client.get(edit).content.decode()
    assert f'hx-get="{edit}"' in page
    assert 'id="port-warning"' in page and "Port 104 is below 1024" in page
    partial = admin_client.get(edit, {"port": "11112"}, headers=HX).content.decode()
    assert partial.strip() == ""


@pytest.mark.django_db
def test_it_keeps_the_warning_when_a_submitted_form_comes_back(admin_client: Client) -> None:
    page = admin_client.post(
        "/config/dicom/store/add/", {"name": "Low", "ae_title": "BAD AET", "port": 104}
    ).content.decode()
    assert "AE title may contain only" in page and "Port 104 is below 1024" in page


@pytest.mark.django_db
def test_it_leaves_the_remote_form_alone(admin_client: Client) -> None:
    response = admin_client.get("/config/dicom/remote/add/", {"port": "104"}, headers=HX)
    page = response.content.decode()
    assert "<form" in page and "port-warning" not in page


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_it_shows_and_hides_the_warning_while_typing_in_chromium(
    driver: Any, live_server: Any, django_user_model: Any
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    admin = django_user_model.objects.create_user("boss", password="pw-boss-123")
    set_role(admin, ADMIN)
    wait = WebDriverWait(driver, 15, poll_frequency=0.1)
    driver.get(live_server.url + "/login/")
    fill(driver, {"username": "boss", "password": "pw-boss-123"})
    driver.find_element(By.ID, "login-submit").click()
    wait.until(lambda d: d.find_elements(By.ID, "nav-dicom"))
    driver.get(live_server.url + "/config/dicom/store/add/")
    wait.until(lambda d: d.find_elements(By.ID, "node-form"))

    def warning(d: Any) -> str:
        found = d.find_elements(By.ID, "port-warning")
        return str(found[0].text) if found else ""

    assert warning(driver) == ""
    fill(driver, {"port": "104"})
    wait.until(lambda d: "Port 104 is below 1024" in warning(d))
    fill(driver, {"port": "11112"})
    wait.until(lambda d: warning(d) == "")
    assert not StoreNode.objects.exists()  # nothing was saved
