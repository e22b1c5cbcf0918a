"""Headless Chromium over real vendor objects: an admin defines a reference level that marks
a study, and an alert rule that fires when a study is imported; an importer acknowledges the
alert with a note. Screenshots in test-artifacts/alerts_*.png."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import Select, WebDriverWait

from alerts.models import Alert, AlertRule, ReferenceLevel
from dose.models import Study
from doseport.auth import set_role
from imports.models import Outcome, Source
from imports.service import import_file
from tests.conftest import fill, samples_dir

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
WAIT_S = 15
THORAX_CT = "CT-RDSR-Siemens-Multi-1.dcm"  # "Thorax^RTP_4DCT_Thorax_C (Adult)", DLP 7.46
OTHER_CT = "CT-RDSR-GEPixelMed.dcm"  # no description, DLP 586.34
RF = "RF-RDSR-Philips_Azurion.dcm"  # dose at the reference point 548.37 mGy


def imported(name: str) -> Study:
    record = import_file(samples_dir() / "openrem" / name, Source.FILE, keep=True)
    assert record.outcome == Outcome.IMPORTED, f"{name}: {record.error}"
    uid = record.sop_instance_uid
    return next(s for s in Study.objects.all() if uid in s.source_sop_instance_uids)


def shoot(driver: WebDriver, path: Path, width: int = 1400) -> None:
    driver.set_window_size(width, 900)
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(width, min(int(height) + 140, 6000))
    driver.save_screenshot(str(path))


def log_in(driver: WebDriver, url: str, username: str, next_path: str) -> None:
    driver.delete_all_cookies()
    driver.get(f"{url}/login/?next={next_path}")
    driver.find_element(By.NAME, "username").send_keys(username)
    driver.find_element(By.NAME, "password").send_keys(f"pw-{username}-long1")
    driver.find_element(By.ID, "login-submit").click()


def user(django_user_model: Any, name: str, role: str) -> Any:
    made = django_user_model.objects.create_user(name, password=f"pw-{name}-long1")
    set_role(made, role)
    return made


def choose(driver: WebDriver, values: dict[str, str]) -> None:
    for name, value in values.items():
        Select(driver.find_element(By.ID, f"id_{name}")).select_by_value(value)


def console_errors(driver: WebDriver) -> list[str]:
    logs = driver.get_log("browser")  # type: ignore[attr-defined]
    return [e["message"] for e in logs if e["level"] == "SEVERE"]


def test_a_reference_level_marks_a_study_and_an_alert_is_acknowledged(
    driver: WebDriver, live_server: Any, django_user_model: Any, artifacts: Path,
) -> None:
    thorax, other = imported(THORAX_CT), imported(OTHER_CT)
    user(django_user_model, "physicist", "admin")
    user(django_user_model, "radiographer", "importer")
    wait = WebDriverWait(driver, WAIT_S)
    url = live_server.url

    # An admin adds a level for thorax CT: DLP 5 mGy·cm (the sample has 7.46).
    log_in(driver, url, "physicist", "/alerts/levels/add/")
    wait.until(ec.presence_of_element_located((By.ID, "level-form")))
    assert "Type the level in the unit pages show" in driver.page_source
    choose(driver, {"modality": "CT", "quantity": "dlp", "pattern_on": "description",
                    "pattern_kind": "contains"})
    fill(driver, {"name": "CT thorax (local DRL)", "pattern": "thorax", "amount": "5"})
    shoot(driver, artifacts / "alerts_level_form.png")
    driver.find_element(By.ID, "save-level").click()
    wait.until(ec.presence_of_element_located((By.ID, "levels")))
    level = ReferenceLevel.objects.get()
    assert level.value == 5.0
    driver.get(f"{url}/alerts/levels/?since=2010-01-01&until=2030-12-31")
    row = driver.find_element(By.ID, f"level-{level.pk}").text
    assert "5 mGy·cm" in row and "7.46 mGy·cm" in row
    assert driver.find_element(By.CSS_SELECTOR, f"#level-{level.pk} td.above").text \
        .startswith("1")
    shoot(driver, artifacts / "alerts_levels_report.png")

    driver.get(f"{url}/studies/")
    badge = f"#studies tr.study:has(a[href='/studies/{thorax.pk}/']) .level-badge"
    assert driver.find_element(By.CSS_SELECTOR, badge).text == "above reference level"
    assert not driver.find_elements(
        By.CSS_SELECTOR, f"#studies tr.study:has(a[href='/studies/{other.pk}/']) .level-badge")
    shoot(driver, artifacts / "alerts_studies_marked.png")
    driver.get(f"{url}/studies/{thorax.pk}/")
    note = driver.find_element(By.ID, "reference-levels").text
    assert "DLP per study 7.46 mGy·cm is above CT thorax (local DRL) (5 mGy·cm)" in note
    shoot(driver, artifacts / "alerts_study_marked.png")

    # An admin adds a rule: RF dose at the reference point above 500 mGy.
    driver.get(f"{url}/alerts/rules/add/")
    choose(driver, {"modality": "RF", "quantity": "dose_rp", "kind": "study"})
    fill(driver, {"name": "RF skin dose check", "amount": "500"})
    driver.find_element(By.ID, "save-rule").click()
    wait.until(ec.presence_of_element_located((By.ID, "rules")))
    assert AlertRule.objects.get().threshold == 0.5
    assert not driver.find_elements(By.CSS_SELECTOR, "#nav-alerts .nav-count")

    # A study arrives; the alert appears in the header and on the Alerts page.
    rf = imported(RF)
    alert = Alert.objects.get()
    assert alert.study == rf
    log_in(driver, url, "radiographer", "/alerts/")
    wait.until(ec.presence_of_element_located((By.ID, "alerts")))
    assert driver.find_element(By.CSS_SELECTOR, "#nav-alerts .nav-count").text == "1"
    line = driver.find_element(By.ID, f"alert-{alert.pk}").text
    assert "RF skin dose check" in line and "548.4 mGy" in line and "500 mGy" in line
    shoot(driver, artifacts / "alerts_list.png")
    driver.find_element(By.CSS_SELECTOR, f"#alert-{alert.pk} td.when a").click()
    wait.until(ec.presence_of_element_located((By.ID, "acknowledge-form")))
    fill(driver, {"note": "Skin checked at follow-up; no erythema."})
    shoot(driver, artifacts / "alerts_acknowledge.png")
    driver.find_element(By.ID, "acknowledge").click()
    wait.until(ec.presence_of_element_located((By.ID, "alerts")))
    assert "Alert acknowledged." in driver.page_source
    assert not driver.find_elements(By.CSS_SELECTOR, "#nav-alerts .nav-count")
    alert.refresh_from_db()
    assert alert.acknowledged_by_name == "radiographer"
    driver.get(f"{url}/alerts/{alert.pk}/")
    assert "Acknowledged by radiographer" in driver.find_element(By.ID, "acknowledged").text
    shoot(driver, artifacts / "alerts_acknowledged.png")
    assert console_errors(driver) == []
