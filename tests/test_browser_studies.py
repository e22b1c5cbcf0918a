"""Headless Chromium: log in, open Studies, filter to CT, open a study, see events and totals."""

from __future__ import annotations

from pathlib import Path

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import Select, WebDriverWait

from dose.models import Study
from doseport.auth import set_role
from imports.models import Outcome, Source
from imports.service import import_file
from tests.builders.rdsr import CtEvent, Header, build_ct_rdsr, build_dx_image, write

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
WAIT_S = 15


def import_studies(folder: Path) -> Study:
    """A CT dose report with three acquisitions and a DX image, imported as a store would."""
    ct = build_ct_rdsr(
        events=[
            CtEvent(protocol="Topogram", ctdivol=0.12, dlp=2.5),
            CtEvent(protocol="Chest", ctdivol=6.5, dlp=310.0),
            CtEvent(protocol="Abdomen", ctdivol=9.75, dlp=500.0),
        ],
        header=Header(accession="CTACC1", station="CT-NORTH", description="CT Chest Abdomen"),
    )
    dx = build_dx_image(header=Header(accession="DXACC1", station="XR-EAST"))
    for name, ds in (("ct.dcm", ct), ("dx.dcm", dx)):
        record = import_file(write(ds, folder / name), Source.FILE)
        assert record.outcome == Outcome.IMPORTED, record.error
    return Study.objects.get(study_instance_uid=ct.StudyInstanceUID)


def test_it_filters_to_ct_and_shows_a_study(
    driver: WebDriver, live_server, django_user_model, artifacts: Path,  # type: ignore[no-untyped-def]
    tmp_path: Path,
) -> None:
    ct = import_studies(tmp_path / "in")
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
