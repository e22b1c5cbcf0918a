"""Headless Chromium over the shared vendor samples: the dashboard and every modality's
charts draw without a console error, each chart's table and PNG work, and a filter changes
a chart's data. Screenshots in test-artifacts/insight_*.png."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import Select, WebDriverWait

from alerts.models import PatternOn, ReferenceLevel
from dose.models import Study
from doseport.auth import set_role
from imports.models import Outcome, Source
from imports.service import import_file
from insight.charts import CHARTS
from tests.conftest import samples_dir

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
WAIT_S = 20


def import_all_samples() -> int:
    """Every shared object, kept in place; returns how many were imported."""
    folder = samples_dir() / "openrem"
    imported = 0
    for path in sorted(folder.glob("*.dcm")):
        record = import_file(path, Source.FILE, keep=True)
        imported += record.outcome == Outcome.IMPORTED
        assert path.exists()
    return imported


def log_in(driver: WebDriver, url: str, next_path: str) -> None:
    driver.get(f"{url}/login/?next={next_path}")
    driver.find_element(By.NAME, "username").send_keys("physicist")
    driver.find_element(By.NAME, "password").send_keys("pw-physicist-1")
    driver.find_element(By.ID, "login-submit").click()


def console_errors(driver: WebDriver) -> list[str]:
    log = driver.get_log("browser")  # type: ignore[attr-defined]  # Chrome's driver has it
    return [e["message"] for e in log if e["level"] == "SEVERE"]


def shoot(driver: WebDriver, path: Path, width: int = 1400) -> None:
    driver.set_window_size(width, 900)
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(width, min(int(height) + 140, 9000))
    driver.save_screenshot(str(path))
    driver.set_window_size(1400, 1100)


def charts_loaded(driver: WebDriver) -> dict[str, Any]:
    """Wait until every chart section has its data; name -> (loaded, rows, summary)."""
    def states(d: WebDriver) -> dict[str, Any] | None:
        found = d.execute_script(
            "return Array.from(document.querySelectorAll('.chart')).map(function (s) {"
            " return [s.id, s.dataset.loaded || '', Number(s.dataset.rows || 0),"
            " s.dataset.summary || '', s.querySelector('.chart-title').textContent]; });")
        if not found or any(not loaded for _, loaded, _, _, _ in found):
            return None
        return {i: {"loaded": ld, "rows": n, "summary": s, "title": t}
                for i, ld, n, s, t in found}

    result: dict[str, Any] = WebDriverWait(driver, WAIT_S).until(states)  # type: ignore[arg-type]
    return result


def canvas_has_ink(driver: WebDriver, section_id: str) -> bool:
    return bool(driver.execute_script(
        "var c = document.querySelector('#' + arguments[0] + ' canvas');"
        "var d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
        "for (var i = 0; i < d.length; i += 4) {"
        " if (d[i + 3] && (d[i] < 200 || d[i + 1] < 200 || d[i + 2] < 200)) return true; }"
        "return false;", section_id))


def test_the_dashboard_and_each_modalitys_charts_render_with_the_samples(
    driver: WebDriver, live_server, django_user_model, artifacts: Path,  # type: ignore[no-untyped-def]
) -> None:
    assert import_all_samples() >= 40
    # A level every CT protocol's bar is compared with (no pattern): 5 mGy CTDIvol.
    ReferenceLevel.objects.create(name="Test DRL", modality="CT", quantity="ctdivol",
                                  pattern_on=PatternOn.PROTOCOL, value=5.0)
    user = django_user_model.objects.create_user("physicist", password="pw-physicist-1")
    set_role(user, "viewer")
    log_in(driver, live_server.url, "/?period=all")
    WebDriverWait(driver, WAIT_S).until(lambda d: d.find_elements(By.ID, "dashboard"))
    doses = driver.find_element(By.ID, "dash-doses").text
    for quantity in ("DLP per study", "CTDIvol per acquisition (no localizers)",
                     "DAP per study (cGy·cm²)", "Fluoroscopy time per study", "AGD per view",
                     "Administered activity"):
        assert quantity in doses
    assert "e-0" not in doses and "e+" not in doses
    per_modality = driver.find_element(By.ID, "dash-modalities").text
    for modality in ("CT", "DX", "RF", "MG", "NM"):
        assert modality in per_modality
    assert console_errors(driver) == []
    shoot(driver, artifacts / "insight_dashboard.png")
    # A figure leads to its studies.
    link = driver.find_element(By.CSS_SELECTOR, "#dash-modalities a[href^='/studies/']")
    expected = link.text
    link.click()
    WebDriverWait(driver, WAIT_S).until(lambda d: d.find_elements(By.ID, "studies"))
    assert driver.find_element(By.CSS_SELECTOR, "main p.hint").text.startswith(expected + " ")

    for modality, charts in CHARTS.items():
        slug = modality.lower()
        driver.get(f"{live_server.url}/insight/{slug}/?period=all")
        states = charts_loaded(driver)
        assert set(states) == {f"chart-{name}" for name in charts}
        for section_id, state in states.items():
            assert state["loaded"] == "1", (slug, section_id, state["title"])
            assert state["rows"] > 0, (slug, section_id)
            assert canvas_has_ink(driver, section_id), (slug, section_id)
        # The text equivalent: a table with a row per bar (or point).
        first = next(iter(states))
        toggle = driver.find_element(By.CSS_SELECTOR, f"#{first} .toggle-table")
        toggle.click()
        rows = driver.find_elements(By.CSS_SELECTOR, f"#{first} .chart-table tbody tr")
        assert len(rows) == states[first]["rows"]
        assert toggle.get_attribute("aria-expanded") == "true"
        # The image: the PNG link gets the canvas's drawing (the download itself is stopped).
        driver.execute_script("document.addEventListener('click', function (e) {"
                              " e.preventDefault(); }, true);")
        driver.find_element(By.CSS_SELECTOR, f"#{first} .download-png").click()
        href = driver.find_element(By.CSS_SELECTOR, f"#{first} .download-png").get_attribute("href")
        assert href and href.startswith("data:image/png;base64,")
        assert console_errors(driver) == [], slug
        if slug == "ct":  # the level: a tick on every bar, an outline on bars above it
            above = json.loads(driver.find_element(By.ID, "chart-protocol")
                               .get_attribute("data-above") or "[]")[0]
            assert True in above and len(above) == states["chart-protocol"]["rows"]
            marks = driver.find_elements(By.CSS_SELECTOR, "#chart-protocol .chart-table td")
            assert sum(m.text == "above" for m in marks) == above.count(True)
            assert any("(Test DRL)" in m.text for m in marks)
        shoot(driver, artifacts / f"insight_{slug}.png")


def test_a_chart_filter_changes_the_data(
    driver: WebDriver, live_server, django_user_model, artifacts: Path,  # type: ignore[no-untyped-def]
) -> None:
    import_all_samples()
    user = django_user_model.objects.create_user("physicist", password="pw-physicist-1")
    set_role(user, "viewer")
    log_in(driver, live_server.url, "/insight/ct/?period=all")
    before = charts_loaded(driver)["chart-protocol"]
    stations = Select(driver.find_element(By.ID, "id_station"))
    names = [str(o.get_attribute("value")) for o in stations.options
             if o.get_attribute("value")]
    assert len(names) >= 2
    counts = {n: Study.objects.filter(modality_type="CT", station_name=n).count() for n in names}
    station = min(names, key=lambda n: counts[n])
    stations.select_by_value(station)
    driver.find_element(By.ID, "apply-chart-filters").click()
    WebDriverWait(driver, WAIT_S).until(lambda d: "station=" in d.current_url)
    after = charts_loaded(driver)["chart-protocol"]
    assert after["loaded"] == "1" and after["summary"] != before["summary"]
    assert after["rows"] < before["rows"]
    labels = json.loads(after["summary"])[-1]
    assert labels and all(isinstance(label, str) for label in labels)
    assert console_errors(driver) == []
    shoot(driver, artifacts / "insight_ct_filtered.png")
