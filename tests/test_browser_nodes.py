"""Headless Chromium: log in as admin, add a store and a remote node, press "Echo now" on
each and watch the panels turn "Alive" (the echo runs in a real `doseport worker`)."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone
from pynetdicom import AE
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from doseport.auth import ADMIN, set_role
from nodes.models import RemoteNode, StoreNode
from store.models import StoreRuntime
from tests.conftest import fill, free_port

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
WAIT_S = 15
ECHO_WAIT_S = 45  # includes the worker's start-up on a busy machine


@pytest.fixture
def peers() -> Iterator[tuple[int, int]]:
    """Two Verification SCPs: one stands in for a third-party store, one for a PACS."""
    servers = []
    ports = []
    for aet in ("THIRDPARTY", "PACS"):
        ae = AE(aet)
        ae.require_called_aet = True
        ae.add_supported_context(Verification)
        port = free_port()
        server = ae.start_server(("127.0.0.1", port), block=False)
        assert server is not None
        servers.append(server)
        ports.append(port)
    yield ports[0], ports[1]
    for server in servers:
        server.shutdown()


def status_of(driver: WebDriver, panel_id: str) -> str:
    return driver.find_element(By.CSS_SELECTOR, f"#{panel_id} [data-testid=status]").text


def polling_panel(selector: str) -> Callable[[WebDriver], bool]:
    return lambda d: bool(d.find_elements(By.CSS_SELECTOR, selector))


def wait_status(driver: WebDriver, panel_id: str, expected: str) -> None:
    WebDriverWait(
        driver, ECHO_WAIT_S, poll_frequency=0.25,
        ignored_exceptions=(StaleElementReferenceException, NoSuchElementException),
    ).until(lambda d: status_of(d, panel_id) == expected)


def test_it_adds_nodes_and_sees_them_alive_after_echo_now(
    driver: WebDriver, live_server: Any, django_user_model: Any, peers: tuple[int, int],
    worker: None, artifacts: Path,
) -> None:
    store_port, pacs_port = peers
    admin = django_user_model.objects.create_user("boss", password="pw-boss-123")
    set_role(admin, ADMIN)
    wait = WebDriverWait(driver, WAIT_S)

    driver.get(live_server.url + "/login/")
    fill(driver, {"username": "boss", "password": "pw-boss-123"})
    driver.find_element(By.ID, "login-submit").click()
    wait.until(lambda d: d.find_elements(By.ID, "nav-dicom"))
    driver.find_element(By.ID, "nav-dicom").click()
    wait.until(lambda d: d.find_element(By.TAG_NAME, "h1").text == "DICOM network configuration")

    driver.find_element(By.ID, "add-store").click()
    wait.until(lambda d: d.find_elements(By.ID, "node-form"))
    fill(driver, {"name": "Third-party store", "ae_title": "THIRDPARTY", "port": str(store_port)})
    driver.find_element(By.CSS_SELECTOR, "main details summary").click()  # "Advanced"
    controlled = driver.find_element(By.ID, "id_controlled")
    if controlled.is_selected():
        controlled.click()
    fill(driver, {"host": "127.0.0.1"})
    driver.find_element(By.ID, "save-node").click()
    wait.until(lambda d: "Added store node" in d.find_element(By.CLASS_NAME, "messages").text)

    driver.find_element(By.ID, "add-remote").click()
    wait.until(lambda d: d.find_elements(By.ID, "node-form"))
    assert driver.find_element(By.ID, "id_calling_ae_title").get_attribute("value") == "DOSEPORT"
    fill(driver, {"name": "PACS", "ae_title": "PACS", "host": "127.0.0.1", "port": str(pacs_port)})
    driver.find_element(By.ID, "save-node").click()
    wait.until(lambda d: "Added remote node" in d.find_element(By.CLASS_NAME, "messages").text)

    store = StoreNode.objects.get(name="Third-party store")
    remote = RemoteNode.objects.get(name="PACS")
    assert store.controlled is False and store.host == "127.0.0.1"
    store_panel, remote_panel = f"store-{store.pk}", f"remote-{remote.pk}"
    assert status_of(driver, store_panel) == "Unknown"
    assert status_of(driver, remote_panel) == "Unknown"

    for panel in (store_panel, remote_panel):
        driver.find_element(By.CSS_SELECTOR, f"#{panel} button.echo-now").click()
        # The button answers at once with a "checking" panel; the worker does the echo.
        wait.until(polling_panel(f"#{panel}[hx-trigger]"))
    wait_status(driver, store_panel, "Alive")
    wait_status(driver, remote_panel, "Alive")

    # Polling stops once the result is in.
    wait.until(lambda d: not d.find_elements(By.CSS_SELECTOR, "[hx-trigger]"))
    panel_text = driver.find_element(By.ID, remote_panel).text
    assert " ms" in panel_text and "checked" in panel_text
    assert f"Database id\n{remote.pk}" in panel_text or f"Database id {remote.pk}" in panel_text
    driver.save_screenshot(str(artifacts / "dicom_network_configuration.png"))
    remote.refresh_from_db()
    assert remote.status_text == "Alive" and remote.echo_rtt_ms is not None


def panel_state(driver: WebDriver, node_id: int) -> str:
    return driver.find_element(
        By.CSS_SELECTOR, f"#store-{node_id} [data-testid=runtime-state]"
    ).text


def wait_state(driver: WebDriver, node_id: int, expected: str) -> None:
    WebDriverWait(
        driver, ECHO_WAIT_S, poll_frequency=0.25,
        ignored_exceptions=(StaleElementReferenceException, NoSuchElementException),
    ).until(lambda d: panel_state(d, node_id) == expected)


def retrying(driver: WebDriver, action: Callable[[WebDriver], Any]) -> Any:
    """Run `action` again when the panel it touches is swapped by its polling meanwhile."""
    result: list[Any] = []

    def attempt(d: WebDriver) -> bool:
        result.append(action(d))
        return True

    WebDriverWait(driver, WAIT_S, poll_frequency=0.1, ignored_exceptions=(
        StaleElementReferenceException, NoSuchElementException)).until(attempt)
    return result[-1]


def panel_text(driver: WebDriver, node_id: int) -> str:
    return str(retrying(driver, lambda d: d.find_element(By.ID, f"store-{node_id}").text))


def click(driver: WebDriver, selector: str) -> None:
    retrying(driver, lambda d: d.find_element(By.CSS_SELECTOR, selector).click())


def shoot_panel(driver: WebDriver, node_id: int, path: Path) -> None:
    def shoot(d: WebDriver) -> None:
        panel = d.find_element(By.ID, f"store-{node_id}")
        d.execute_script("arguments[0].scrollIntoView(true);", panel)
        panel.screenshot(str(path))

    retrying(driver, shoot)


def test_it_starts_stops_and_explains_a_node_in_each_state(
    driver: WebDriver, live_server: Any, django_user_model: Any,
    spawn: Callable[..., Any], artifacts: Path,
) -> None:
    """Stopped -> Starting (no supervisor yet) -> Listening -> Stopped by boss; a second node
    whose port a plain Python socket holds shows Crashed and names the holder."""
    admin = django_user_model.objects.create_user("boss", password="pw-boss-123")
    set_role(admin, ADMIN)
    node = StoreNode.objects.create(
        name="CT store", ae_title="CTSTORE", port=free_port(), bind_address="127.0.0.1",
        auto_start=True,
    )
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen(1)
    taken = StoreNode.objects.create(
        name="Blocked store", ae_title="BLOCKED", port=holder.getsockname()[1],
        bind_address="127.0.0.1",
    )
    try:
        driver.get(live_server.url + "/login/")
        fill(driver, {"username": "boss", "password": "pw-boss-123"})
        driver.find_element(By.ID, "login-submit").click()
        WebDriverWait(driver, WAIT_S).until(lambda d: d.find_elements(By.ID, "nav-dicom"))
        driver.get(live_server.url + "/config/dicom/")
        # Auto-start, no supervisor yet: it should run and is starting.
        StoreRuntime.objects.create(node=node, supervised_at=timezone.now())
        driver.refresh()
        wait_state(driver, node.pk, "Starting")
        shoot_panel(driver, node.pk, artifacts / "node_panel_starting.png")
        assert panel_state(driver, taken.pk) == "Stopped"
        assert status_of(driver, f"store-{taken.pk}") == "Stopped"

        spawn("stores")
        wait_state(driver, node.pk, "Listening")
        assert f"on port {node.port}" in panel_text(driver, node.pk)
        shoot_panel(driver, node.pk, artifacts / "node_panel_listening.png")

        click(driver, f"#store-{node.pk} button.store-stop")
        alert = WebDriverWait(driver, WAIT_S).until(lambda d: d.switch_to.alert)
        assert "connection refused" in alert.text  # a listening node asks first
        alert.accept()
        wait_state(driver, node.pk, "Stopped")
        text = panel_text(driver, node.pk)
        assert "stopped by boss at" in text and "Not responding" not in text
        assert status_of(driver, f"store-{node.pk}") == "Stopped"
        shoot_panel(driver, node.pk, artifacts / "node_panel_stopped.png")

        click(driver, f"#store-{taken.pk} button.store-start")
        wait_state(driver, taken.pk, "Crashed")
        text = panel_text(driver, taken.pk)
        assert f"port {taken.port} is in use by another program" in text
        shoot_panel(driver, taken.pk, artifacts / "node_panel_crashed_port_held.png")
        driver.save_screenshot(str(artifacts / "node_panels_states.png"))
    finally:
        holder.close()
