"""Headless Chromium over real vendor objects: values for people, connected pages, empty
state, favicon and titles; screenshots of the list (1400 and 800 px) and of CT, RF and NM
study pages in test-artifacts/."""

from __future__ import annotations

from pathlib import Path

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from dose.models import Study
from doseport.auth import set_role
from imports.models import Outcome, Source
from imports.service import import_file
from tests.conftest import samples_dir

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
WAIT_S = 15
SAMPLES = {
    "ct": "CT-RDSR-Siemens-Multi-1.dcm",
    "ct_continued": "CT-RDSR-Siemens-Multi-2.dcm",
    "ct_continued_more": "CT-RDSR-Siemens-Multi-3.dcm",
    "rf": "RF-RDSR-Siemens-Zee.dcm",
    "nm": "NM-RRDSR-Siemens.dcm",
    "pet_ct": "NM-CT-RDSR-Siemens.dcm",
    "mg": "MG-RDSR-Hologic_2D.dcm",
    "dx_undated": "DX-Im-Date-Missing.dcm",
}


def import_samples() -> dict[str, Study]:
    """Import the samples (kept in place), then find the study each one ended up in."""
    folder = samples_dir() / "openrem"
    uids = {}
    for key, name in SAMPLES.items():
        record = import_file(folder / name, Source.FILE, keep=True)
        assert record.outcome == Outcome.IMPORTED, f"{name}: {record.error}"
        assert (folder / name).exists()  # keep=True: the shared sample stays
        uids[key] = record.sop_instance_uid
    everything = list(Study.objects.all())
    return {
        key: next(s for s in everything if uid in s.source_sop_instance_uids)
        for key, uid in uids.items()
    }


def shoot(driver: WebDriver, path: Path, width: int) -> None:
    """A screenshot of the whole page at `width` px (the window grows to the page's height)."""
    driver.set_window_size(width, 900)
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(width, min(int(height) + 140, 6000))
    driver.save_screenshot(str(path))


def log_in(driver: WebDriver, url: str, next_path: str) -> None:
    driver.get(f"{url}/login/?next={next_path}")
    driver.find_element(By.NAME, "username").send_keys("physicist")
    driver.find_element(By.NAME, "password").send_keys("pw-physicist-1")
    driver.find_element(By.ID, "login-submit").click()


def cells(driver: WebDriver, row: str, css: str) -> list[str]:
    return [e.text for e in driver.find_elements(By.CSS_SELECTOR, f"{row} {css}")]


def test_it_shows_an_empty_registry_with_how_to_send_a_study(
    driver: WebDriver, live_server, django_user_model, artifacts: Path,  # type: ignore[no-untyped-def]
) -> None:
    user = django_user_model.objects.create_user("physicist", password="pw-physicist-1")
    set_role(user, "viewer")
    log_in(driver, live_server.url, "/studies/")
    WebDriverWait(driver, WAIT_S).until(ec.presence_of_element_located((By.ID, "no-studies")))
    text = driver.find_element(By.ID, "no-studies").text
    assert "No studies yet" in text and "storescu -R -aec DOSEPORT" in text
    assert driver.title == "Studies — Doseport"
    icon = driver.find_element(By.CSS_SELECTOR, "link[rel=icon]").get_attribute("href")
    assert icon and icon.endswith("/doseport/favicon.svg")
    driver.get(icon)
    assert "<svg" in driver.page_source
    driver.back()
    shoot(driver, artifacts / "values_studies_empty.png", 1400)


def test_it_shows_values_for_people_on_connected_pages(
    driver: WebDriver, live_server, django_user_model, artifacts: Path,  # type: ignore[no-untyped-def]
) -> None:
    studies = import_samples()
    user = django_user_model.objects.create_user("physicist", password="pw-physicist-1")
    set_role(user, "importer")
    wait = WebDriverWait(driver, WAIT_S)
    log_in(driver, live_server.url, "/studies/")
    wait.until(ec.presence_of_element_located((By.ID, "studies")))
    table = driver.find_element(By.ID, "studies").text
    assert "DAP (cGy·cm²)" in table and "e-0" not in table
    assert "Thorax RTP_4DCT_Thorax_C (Adult)" in table and "^" not in table
    assert "date unknown" in table and "no date" not in table
    rf_row = f"#studies tr.study:has(a[href='/studies/{studies['rf'].pk}/'])"
    assert cells(driver, rf_row, "td.dap") == ["16"]
    mg_row = f"#studies tr.study:has(a[href='/studies/{studies['mg'].pk}/'])"
    assert cells(driver, mg_row, "td.agd")[0].startswith("L ")
    shoot(driver, artifacts / "values_studies_1400.png", 1400)
    shoot(driver, artifacts / "values_studies_800.png", 800)
    # At 800 px the dose columns are still on screen.
    last = driver.find_elements(By.CSS_SELECTOR, "#studies thead th")[-1]
    assert last.text == "Activity (MBq)"
    assert last.location["x"] + last.size["width"] <= 800
    driver.set_window_size(1400, 1000)

    driver.get(f"{live_server.url}/studies/{studies['ct'].pk}/")
    assert driver.title.startswith("CT study 05 Jan 2018 · Thorax RTP_4DCT")
    assert driver.title.endswith(" — Doseport")
    objects = driver.find_elements(By.CSS_SELECTOR, "#objects tr.object")
    assert studies["ct_continued"] == studies["ct"]  # one study from three reports
    assert len(objects) == 3 and "X-Ray Radiation Dose SR Storage" in objects[0].text
    shoot(driver, artifacts / "values_study_ct.png", 1400)

    driver.get(f"{live_server.url}/studies/{studies['rf'].pk}/")
    totals = driver.find_element(By.ID, "totals").text
    assert "DAP total (cGy·cm²) 16" in totals
    assert "Dose at reference point total (mGy) 2.52" in totals
    shoot(driver, artifacts / "values_study_rf.png", 1400)

    driver.get(f"{live_server.url}/studies/{studies['nm'].pk}/")
    assert cells(driver, "#events tr.event", "td.nuclide") == ["¹⁸Fluorine"]
    assert cells(driver, "#events tr.event", "td.agent") == ["Fluorodeoxyglucose F¹⁸"]
    related = driver.find_element(By.ID, "related")
    assert "same Study Instance UID" in related.text
    shoot(driver, artifacts / "values_study_nm.png", 1400)
    related.find_element(By.TAG_NAME, "a").click()
    wait.until(ec.url_contains(f"/studies/{studies['pet_ct'].pk}/"))

    # The CT half's dose object -> its import record -> back to the study.
    driver.find_element(By.CSS_SELECTOR, "#objects a[href^='/imports/']").click()
    wait.until(ec.presence_of_element_located((By.ID, "record-studies")))
    assert driver.title.startswith("Import ")
    driver.find_element(By.CSS_SELECTOR, "#record-studies a").click()
    wait.until(ec.url_contains(f"/studies/{studies['pet_ct'].pk}/"))
