"""Headless Chromium: run a query from the page against the fake remote (jobs in a real
`doseport worker`), watch it finish, retrieve, see the final summary and the history entry."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from doseport.auth import IMPORTER, set_role
from qr.models import Query
from tests.conftest import fill
from tests.fake_remote import RDSR, FakeRemote, StoreSCP, remote_node, series_of, store_node

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
JOB_WAIT_S = 60  # includes the worker's start-up on a busy machine


@pytest.fixture
def peers() -> Iterator[tuple[FakeRemote, StoreSCP]]:
    day = dt.date.today().strftime("%Y%m%d")
    objs = (series_of("1.2.3.1", "CT", 3, series_desc="Chest", date=day)
            + series_of("1.2.3.1", "SR", 1, sop_class=RDSR, date=day)
            + series_of("1.2.3.2", "CT", 2, series_desc="Head", date=day))
    scp = StoreSCP().start()
    fake = FakeRemote(objs, destinations={"DPSTORE": ("127.0.0.1", scp.port)}).start()
    yield fake, scp
    fake.stop()
    scp.stop()


def text_of(d: WebDriver, element_id: str) -> str:
    found = d.find_elements(By.ID, element_id)
    return found[0].text if found else ""


def until(d: WebDriver, check: Any, timeout: float = JOB_WAIT_S) -> None:
    WebDriverWait(d, timeout, poll_frequency=0.25, ignored_exceptions=(
        StaleElementReferenceException, NoSuchElementException)).until(check)


def test_it_queries_retrieves_and_shows_the_outcome(
    driver: WebDriver, live_server: Any, django_user_model: Any,
    peers: tuple[FakeRemote, StoreSCP], worker: None, artifacts: Path,
) -> None:
    fake, scp = peers
    remote_node(fake, name="Fake PACS")
    store_node(scp)
    user = django_user_model.objects.create_user("imp", password="pw-imp-123")
    set_role(user, IMPORTER)

    driver.get(live_server.url + "/login/")
    fill(driver, {"username": "imp", "password": "pw-imp-123"})
    driver.find_element(By.ID, "login-submit").click()
    until(driver, lambda d: d.find_elements(By.LINK_TEXT, "Query remote"), 15)
    driver.find_element(By.LINK_TEXT, "Query remote").click()
    until(driver, lambda d: d.find_elements(By.ID, "echo-now"), 15)

    driver.find_element(By.ID, "echo-now").click()
    until(driver, lambda d: [e.text for e in d.find_elements(
        By.CSS_SELECTOR, "#node-status [data-testid=status]")] == ["Alive", "Alive"])

    driver.find_element(By.CSS_SELECTOR, "input[name=modalities][value=CT]").click()
    driver.find_element(By.ID, "submit-query").click()
    until(driver, lambda d: text_of(d, "query-status") == "complete")
    assert text_of(driver, "to-retrieve") == "1"
    assert "no dose report" in text_of(driver, "excluded")
    # In people's words: a sentence, dates, SOP class names, a hint, the reason on screen.
    sentence = text_of(driver, "query-sentence")
    today = dt.date.today()
    assert sentence.startswith(f"CT studies from {today - dt.timedelta(days=1):%d %b %Y} to "
                               f"{today:%d %b %Y} on Fake PACS")
    assert "Dose SRs only" in text_of(driver, "query-hints")
    tree = text_of(driver, "tree")
    assert "X-Ray Radiation Dose SR" in tree and "1.2.840.10008" not in tree
    assert "CT, SR" in tree
    for width in (1400, 800):
        driver.set_window_size(width, 1000)
        right = driver.execute_script(
            "return document.querySelector('#tree th:last-child').getBoundingClientRect().right")
        inner = driver.execute_script("return document.documentElement.clientWidth")
        assert right <= inner, width
        assert driver.execute_script(
            "return document.documentElement.scrollWidth") <= inner, width  # no sideways scroll
        driver.execute_script("document.getElementById('summary').scrollIntoView(true);")
        driver.save_screenshot(str(artifacts / f"qr_query_result_{width}.png"))
    driver.set_window_size(1400, 1100)

    driver.find_element(By.ID, "retrieve").click()
    until(driver, lambda d: text_of(d, "move-status") == "complete")
    assert text_of(driver, "move-completed") == "1"
    assert len(scp.received) == 1
    until(driver, lambda d: not d.find_elements(By.CSS_SELECTOR, "#live[hx-trigger]"), 5)
    driver.save_screenshot(str(artifacts / "qr_query_retrieved.png"))

    query = Query.objects.get()
    driver.find_element(By.LINK_TEXT, "Query history").click()
    until(driver, lambda d: d.find_elements(By.ID, "history"), 15)
    row = driver.find_element(By.LINK_TEXT, f"Query {query.pk}").find_element(By.XPATH, "../..")
    assert "complete" in row.text and "Fake PACS" in row.text and "1 sent" in row.text
    driver.save_screenshot(str(artifacts / "qr_history.png"))


def test_it_probes_a_remote_from_its_panel(
    driver: WebDriver, live_server: Any, django_user_model: Any,
    peers: tuple[FakeRemote, StoreSCP], worker: None, artifacts: Path,
) -> None:
    fake, _ = peers
    node = remote_node(fake, name="Fake PACS")
    user = django_user_model.objects.create_user("imp", password="pw-imp-123")
    set_role(user, IMPORTER)
    driver.get(live_server.url + "/login/")
    fill(driver, {"username": "imp", "password": "pw-imp-123"})
    driver.find_element(By.ID, "login-submit").click()
    until(driver, lambda d: d.find_elements(By.ID, "nav-dicom"), 15)
    driver.get(live_server.url + "/config/dicom/")
    driver.find_element(By.CSS_SELECTOR, f"#remote-{node.pk} button.probe").click()
    until(driver, lambda d: d.find_elements(By.ID, f"probe-{node.pk}"))
    shot: list[str] = []

    def read_and_shoot(d: WebDriver) -> bool:  # again if polling swaps the panel meanwhile
        panel = d.find_element(By.ID, f"remote-{node.pk}")
        d.execute_script("arguments[0].scrollIntoView(true);", panel)
        text = panel.text
        panel.screenshot(str(artifacts / "probe_result.png"))
        shot.append(text)
        return True

    until(driver, read_and_shoot, 15)
    assert "ModalitiesInStudy matching at study level" in shot[-1]
    assert "Suggested query options" in shot[-1]
    assert not driver.find_elements(By.ID, f"probe-pending-{node.pk}")
