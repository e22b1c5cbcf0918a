"""Headless Chromium: log in, open Studies, filter to CT, open a study, see events and totals."""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import Select, WebDriverWait

from dose.models import AccumulatedPlane, IrradiationEvent, Study, XraySource
from doseport.auth import set_role
from tests.conftest import require_tool

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
WAIT_S = 15


@pytest.fixture
def driver(tmp_path: Path) -> Iterator[WebDriver]:
    require_tool("chromium")
    chromedriver = require_tool("chromedriver")
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for arg in (
        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--no-first-run", "--window-size=1400,1000", f"--user-data-dir={tmp_path / 'chrome'}",
    ):
        options.add_argument(arg)
    browser = webdriver.Chrome(service=Service(chromedriver), options=options)
    browser.set_page_load_timeout(WAIT_S)
    try:
        yield browser
    finally:
        browser.quit()


def make_studies() -> Study:
    ct = Study.objects.create(
        study_instance_uid="1.2.826.0.1.3680043.10.3.1", modality_type=Study.CT,
        study_date=dt.date(2024, 4, 2), study_time=dt.time(10, 15), accession_number="CTACC1",
        study_description="CT Chest Abdomen", station_name="CT-NORTH",
        source_sop_instance_uids=["1.2.3.1"], dlp_total_mGycm=812.5,
    )
    for n, (protocol, ctdi, dlp) in enumerate(
        [("Topogram", 0.12, 2.5), ("Chest", 6.5, 310.0), ("Abdomen", 9.75, 500.0)]
    ):
        event = IrradiationEvent.objects.create(
            study=ct, ordinal=n, acquisition_protocol=protocol, ctdivol_mGy=ctdi, dlp_mGycm=dlp,
            ct_acquisition_type="Spiral Acquisition",
        )
        XraySource.objects.create(event=event, kvp_kV=120, tube_current_mA=180)
    dx = Study.objects.create(
        study_instance_uid="1.2.826.0.1.3680043.10.3.2", modality_type=Study.DX,
        study_date=dt.date(2024, 4, 3), accession_number="DXACC1", station_name="XR-EAST",
        source_sop_instance_uids=["1.2.3.2"],
    )
    AccumulatedPlane.objects.create(study=dx, dap_total_Gym2=1.2e-5)
    return ct


def test_it_filters_to_ct_and_shows_a_study(
    driver: WebDriver, live_server, django_user_model, artifacts: Path  # type: ignore[no-untyped-def]
) -> None:
    ct = make_studies()
    user = django_user_model.objects.create_user("physicist", password="pw-physicist-1")
    set_role(user, "viewer")
    wait = WebDriverWait(driver, WAIT_S)
    try:
        driver.get(f"{live_server.url}/login/?next=/studies/")
        driver.find_element(By.NAME, "username").send_keys("physicist")
        driver.find_element(By.NAME, "password").send_keys("pw-physicist-1")
        driver.find_element(By.ID, "login-submit").click()
        wait.until(ec.presence_of_element_located((By.ID, "studies")))
        assert len(driver.find_elements(By.CSS_SELECTOR, "#studies tr.study")) == 2

        Select(driver.find_element(By.NAME, "modality")).select_by_value("CT")
        driver.find_element(By.ID, "apply-filters").click()
        wait.until(ec.url_contains("modality=CT"))
        rows = driver.find_elements(By.CSS_SELECTOR, "#studies tr.study")
        assert [r.get_attribute("class") for r in rows] == ["study modality-CT"]
        assert "CTACC1" in rows[0].text and "DXACC1" not in driver.page_source
        driver.save_screenshot(str(artifacts / "browser_studies_list.png"))

        rows[0].find_element(By.TAG_NAME, "a").click()
        wait.until(ec.url_contains(f"/studies/{ct.pk}/"))
        events = driver.find_elements(By.CSS_SELECTOR, "#events tr.event")
        assert [e.find_elements(By.TAG_NAME, "td")[2].text for e in events] == [
            "Topogram", "Chest", "Abdomen",
        ]
        assert [e.find_element(By.CSS_SELECTOR, "td.ctdivol").text for e in events] == [
            "0.12", "6.5", "9.75",
        ]
        totals = driver.find_element(By.ID, "totals").text
        assert "DLP total (mGy·cm) 812.5" in totals
        assert "Events 3" in totals
    finally:
        driver.save_screenshot(str(artifacts / "browser_studies.png"))
