"""Headless Chromium: the Export button of the Studies page downloads CSV and XLSX files
of the shared samples that read back with the expected rows; screenshot of the list."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import Select

from dose.models import IrradiationEvent, RadiopharmaceuticalAdministration, Study
from doseport.auth import set_role
from tests.conftest import wait_for
from tests.test_browser_values import import_samples, log_in, shoot

pytestmark = [pytest.mark.browser, pytest.mark.samples, pytest.mark.django_db(transaction=True)]


def download(driver: WebDriver, folder: Path, layout: str, fmt: str) -> Path:
    """Choose layout and format, press Export, wait for the finished file."""
    before = set(folder.iterdir())
    Select(driver.find_element(By.ID, "export-layout")).select_by_value(layout)
    Select(driver.find_element(By.ID, "export-format")).select_by_value(fmt)
    driver.find_element(By.ID, "export-button").click()

    def finished() -> Path | None:
        new = [p for p in set(folder.iterdir()) - before if not p.name.endswith(".crdownload")]
        return new[0] if new else None

    found = wait_for(finished, timeout=30, interval=0.2)
    assert isinstance(found, Path)
    return found


def events_of(studies: list[Study]) -> int:
    ids = [s.pk for s in studies]
    return (
        IrradiationEvent.objects.filter(study_id__in=ids).count()
        + RadiopharmaceuticalAdministration.objects.filter(study_id__in=ids).count()
        + sum(1 for s in studies if not s.events.exists() and not s.administrations.exists())
    )


def test_it_exports_the_filtered_list_and_the_files_read_back(
    driver: WebDriver, live_server: Any, django_user_model: Any, artifacts: Path, tmp_path: Path,
) -> None:
    import_samples()
    user = django_user_model.objects.create_user("physicist", password="pw-physicist-1")
    set_role(user, "viewer")
    folder = tmp_path / "downloads"
    folder.mkdir()
    driver.execute_cdp_cmd("Browser.setDownloadBehavior",
                           {"behavior": "allow", "downloadPath": str(folder)})
    log_in(driver, live_server.url, "/studies/?modality=CT")
    wait_for(lambda: driver.find_elements(By.ID, "export-button"), timeout=15)
    shoot(driver, artifacts / "studies-export-button.png", 1400)

    ct = list(Study.objects.filter(modality_type=Study.CT))
    by_event = download(driver, folder, "event", "csv")
    rows = list(csv.DictReader(io.StringIO(by_event.read_text(encoding="utf-8"))))
    assert len(rows) == events_of(ct) > len(ct)
    assert {r["study_instance_uid"] for r in rows} == {s.study_instance_uid for s in ct}
    assert {r["modality_type"] for r in rows} == {"CT"}
    assert any(float(r["ctdivol_mGy"] or 0) > 0 for r in rows)

    driver.get(f"{live_server.url}/studies/")
    wait_for(lambda: driver.find_elements(By.ID, "export-button"), timeout=15)
    by_study = download(driver, folder, "study", "xlsx")
    assert by_study.suffix == ".xlsx"
    book = openpyxl.load_workbook(by_study, read_only=True)
    expected = {m: Study.objects.filter(modality_type=m).count()
                for m, _ in Study.MODALITY_CHOICES}
    assert {ws.title: ws.max_row - 1 for ws in book.worksheets} == {
        m: n for m, n in expected.items() if n
    }
    header = [c.value for c in next(book["CT"].iter_rows(max_row=1))]
    assert header[0] == "study_instance_uid" and "E1 ctdivol_mGy" in header
