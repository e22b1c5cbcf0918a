"""Headless Chromium: the Studies list at 1400 and 800 px (dose columns and the top bar on
screen), its search fields, its live refresh (paused while the tab is hidden), and the
Imports page with compact rows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import Select, WebDriverWait

from doseport.auth import set_role
from imports.models import ImportRecord, Outcome, Source
from imports.service import import_file
from tests.builders.rdsr import (
    CtEvent,
    Header,
    ProjectionEvent,
    build_ct_rdsr,
    build_dx_image,
    build_mg_rdsr,
    build_projection_rdsr,
    write,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
WAIT_S = 15


def import_mix(folder: Path) -> None:
    """A CT, an RF, a DX and an MG study, imported as a store would."""
    objects = {
        "ct.dcm": build_ct_rdsr(
            events=[CtEvent(protocol="Thorax^Routine", ctdivol=6.5, dlp=310.0),
                    CtEvent(protocol="Abdomen", ctdivol=9.75, dlp=500.0)],
            header=Header(accession="CTACC1", station="CT-NORTH", description="CT Chest Abdomen",
                          manufacturer="SIEMENS", model="SOMATOM Force", age="067Y")),
        "rf.dcm": build_projection_rdsr(
            events=[ProjectionEvent(), ProjectionEvent()],
            header=Header(accession="RFACC1", station="ANGIO-2",
                          description="Coronary angiography", age="071Y")),
        "dx.dcm": build_dx_image(header=Header(accession="DXACC1", station="XR-EAST",
                                               description="XR chest", age="008Y")),
        "mg.dcm": build_mg_rdsr(header=Header(accession="MGACC1", station="MAMMO-1",
                                              description="Screening mammography")),
    }
    for name, ds in objects.items():
        record = import_file(write(ds, folder / name), Source.FILE)
        assert record.outcome == Outcome.IMPORTED, record.error


def log_in(driver: WebDriver, url: str, django_user_model: Any, next_path: str) -> None:
    user = django_user_model.objects.create_user("physicist", password="pw-physicist-1")
    set_role(user, "importer")
    driver.get(f"{url}/login/?next={next_path}")
    driver.find_element(By.NAME, "username").send_keys("physicist")
    driver.find_element(By.NAME, "password").send_keys("pw-physicist-1")
    driver.find_element(By.ID, "login-submit").click()


def on_screen(driver: WebDriver, css: str) -> bool:
    """Every element matching `css` is displayed and inside the window, without scrolling."""
    return bool(driver.execute_script(
        "const els = [...document.querySelectorAll(arguments[0])];"
        "return els.length > 0 && els.every(e => { const r = e.getBoundingClientRect();"
        " return r.width > 0 && r.left >= 0 && r.right <= window.innerWidth; });", css))


def test_it_fits_the_study_list_to_1400_and_800_px_and_searches(
    driver: WebDriver, live_server, django_user_model, artifacts: Path,  # type: ignore[no-untyped-def]
    tmp_path: Path,
) -> None:
    import_mix(tmp_path / "in")
    wait = WebDriverWait(driver, WAIT_S)
    try:
        log_in(driver, live_server.url, django_user_model, "/studies/")
        wait.until(ec.presence_of_element_located((By.ID, "studies")))
        assert len(driver.find_elements(By.CSS_SELECTOR, "#studies tr.study")) == 4
        assert on_screen(driver, "#studies th.col-activity")
        driver.save_screenshot(str(artifacts / "browser_lists_studies_1400.png"))

        driver.set_window_size(800, 1000)
        wait.until(lambda d: d.execute_script("return window.innerWidth") <= 800)
        for col in ("dlp", "dap", "agd", "activity"):
            assert on_screen(driver, f"#studies th.col-{col}"), f"{col} column off-screen"
        assert driver.execute_script(
            "return document.documentElement.scrollWidth <= window.innerWidth"), "page scrolls"
        assert on_screen(driver, ".topbar nav a"), "a top bar link runs off the window"
        driver.save_screenshot(str(artifacts / "browser_lists_studies_800.png"))

        # Search: free text reaches an event's protocol; the CT columns end with DLP.
        Select(driver.find_element(By.NAME, "modality")).select_by_value("CT")
        driver.find_element(By.NAME, "q").send_keys("thorax")
        driver.find_element(By.NAME, "dose_min").send_keys("800")
        driver.find_element(By.ID, "apply-filters").click()
        wait.until(ec.url_contains("q=thorax"))
        rows = driver.find_elements(By.CSS_SELECTOR, "#studies tr.study")
        assert len(rows) == 1 and "CT Chest Abdomen" in rows[0].text
        headers = [th.text for th in driver.find_elements(By.CSS_SELECTOR, "#studies thead th")]
        assert headers[-1].startswith("DLP") and not any(h.startswith("DAP") for h in headers)
        assert on_screen(driver, "#studies td.dlp")
        assert driver.find_element(By.ID, "dose-range").text.startswith("DLP (mGy·cm)")
        driver.save_screenshot(str(artifacts / "browser_lists_studies_ct_search_800.png"))
        driver.find_element(By.NAME, "dose_min").clear()
        driver.find_element(By.NAME, "dose_min").send_keys("900")
        driver.find_element(By.ID, "apply-filters").click()
        wait.until(ec.presence_of_element_located((By.ID, "no-match")))
    finally:
        driver.save_screenshot(str(artifacts / "browser_lists_studies_last.png"))


def hide_tab(driver: WebDriver, hidden: bool) -> None:
    """What the browser does when the user switches tabs (headless tabs are never hidden)."""
    driver.execute_script(
        "Object.defineProperty(document, 'hidden', {configurable: true, get: () => arguments[0]});"
        "document.dispatchEvent(new Event('visibilitychange'));", hidden)


def test_it_shows_new_studies_live_but_not_while_the_tab_is_hidden(
    driver: WebDriver, live_server, django_user_model, artifacts: Path,  # type: ignore[no-untyped-def]
    tmp_path: Path,
) -> None:
    folder = tmp_path / "in"
    first = build_dx_image(header=Header(accession="LIVE1", description="XR first"))
    import_file(write(first, folder / "first.dcm"), Source.FILE)
    wait = WebDriverWait(driver, WAIT_S)
    try:
        log_in(driver, live_server.url, django_user_model, "/studies/")
        wait.until(ec.presence_of_element_located((By.ID, "studies")))
        hide_tab(driver, True)
        second = build_dx_image(header=Header(accession="LIVE2", description="XR second"))
        import_file(write(second, folder / "second.dcm"), Source.FILE)
        # Longer than one polling period (3 s): a hidden tab did not ask.
        with pytest.raises(TimeoutException):
            WebDriverWait(driver, 4).until(lambda d: "XR second" in d.page_source)
        hide_tab(driver, False)  # shown again: catches up at once
        wait.until(lambda d: "XR second" in d.page_source)
        assert "2 studies" in driver.find_element(By.ID, "study-count").text
    finally:
        driver.save_screenshot(str(artifacts / "browser_lists_studies_live.png"))


def test_it_keeps_import_rows_compact_and_copies_a_uid(
    driver: WebDriver, live_server, django_user_model, artifacts: Path,  # type: ignore[no-untyped-def]
    tmp_path: Path,
) -> None:
    import_mix(tmp_path / "in")
    for n in range(3):
        ImportRecord.objects.create(
            source=Source.FILE, kind="ct_rdsr", outcome=Outcome.FAILED,
            sop_instance_uid=f"1.2.826.0.1.3680043.10.5432.{n}.987654321.123456789",
            path=f"/var/lib/doseport/spool/x/{n}.dcm", kept_path=f"/q/{n}.dcm",
            error="cannot read DICOM file (truncated or corrupt: the element (0040,A730) "
            "ends past the end of the file)")
    wait = WebDriverWait(driver, WAIT_S)
    try:
        log_in(driver, live_server.url, django_user_model, "/imports/")
        wait.until(ec.presence_of_element_located((By.ID, "imports")))
        rows = driver.find_elements(By.CSS_SELECTOR, "#imports tr.import")
        assert len(rows) == 7
        heights = [r.rect["height"] for r in rows]
        assert max(heights) < 45, f"rows are {heights} px tall"  # one line each
        short = driver.find_element(By.CSS_SELECTOR, "#imports .short-uid")
        assert short.text.startswith("…") and len(short.text) <= 21
        driver.save_screenshot(str(artifacts / "browser_lists_imports_1400.png"))

        Select(driver.find_element(By.NAME, "outcome")).select_by_value("failed")
        Select(driver.find_element(By.NAME, "kind")).select_by_value("ct_rdsr")
        driver.find_element(By.NAME, "q").send_keys("5432.1.")
        driver.find_element(By.ID, "apply-filters").click()
        wait.until(ec.url_contains("outcome=failed"))
        rows = driver.find_elements(By.CSS_SELECTOR, "#imports tr.import")
        assert len(rows) == 1
        driver.find_element(By.CSS_SELECTOR, "#imports button.copy").click()
        copy = "#imports button.copy"
        wait.until(lambda d: d.find_element(By.CSS_SELECTOR, copy).text == "copied")
        assert rows[0].find_element(By.CSS_SELECTOR, ".col-kind").text == "CT dose report"
        driver.set_window_size(800, 1000)
        # The Retry button stays on screen (the table does not scroll it away).
        on_screen = ("const b = document.querySelector('#imports button[name=retry]');"
                     "return b.getBoundingClientRect().right <= "
                     "document.documentElement.clientWidth;")
        assert wait.until(lambda d: d.execute_script(on_screen)), "Retry is off-screen"
        driver.save_screenshot(str(artifacts / "browser_lists_imports_800.png"))
    finally:
        driver.save_screenshot(str(artifacts / "browser_lists_imports_last.png"))
