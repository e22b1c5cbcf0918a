"""/studies/export/: CSV and XLSX, per event and per study, the list's filters, the worker
path for large exports, private files and links that expire."""

from __future__ import annotations

import csv
import datetime as dt
import io
import stat
import zipfile
from collections.abc import Iterator
from typing import Any

import openpyxl
import pytest
from django.test import Client
from django.utils import timezone
from huey.contrib.djhuey import HUEY

from audit.models import AuditEntry
from dose import export_jobs, web_export
from dose.export_job import ExportJob
from dose.models import Study
from tests.test_export import ct_study, dx_study, export, mg_study, nm_study

pytestmark = pytest.mark.django_db
URL = "/studies/export/"


@pytest.fixture
def client_as(client: Client, viewer: Any) -> Client:
    client.force_login(viewer)
    return client


@pytest.fixture
def queued() -> Iterator[None]:
    """Tasks are queued (as for a real worker), not run inline; the test runs them."""
    HUEY.immediate = False
    HUEY.flush()
    try:
        yield
    finally:
        HUEY.flush()
        HUEY.immediate = True


def body(response: Any) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


def csv_table(data: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(data.decode("utf-8"))))


def sheets(data: bytes) -> dict[str, list[tuple[Any, ...]]]:
    book = openpyxl.load_workbook(io.BytesIO(data), read_only=True)
    return {ws.title: list(ws.iter_rows(values_only=True)) for ws in book.worksheets}


def registry() -> dict[str, Study]:
    return {
        "ct2": ct_study("2024-03-01", station="CT1", events=2),
        "ct3": ct_study("2024-03-05", station="CT2", events=3),
        "dx": dx_study(), "mg": mg_study(), "nm": nm_study(),
    }


def test_it_exports_one_row_per_event_exactly_as_the_command(client_as: Client) -> None:
    registry()
    response = client_as.get(URL, {"format": "csv", "layout": "event"})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert 'attachment; filename="doseport-studies-event-' in response["Content-Disposition"]
    assert body(response).decode("utf-8") == export("--format", "csv")
    assert len(csv_table(body(response))) == 2 + 3 + 1 + 2 + 1


def test_it_respects_the_lists_filters(client_as: Client) -> None:
    studies = registry()
    response = client_as.get(URL, {"format": "csv", "layout": "event", "modality": "CT",
                                   "date_from": "2024-03-02", "station": "ct2"})
    rows = csv_table(body(response))
    assert {r["study_instance_uid"] for r in rows} == {studies["ct3"].study_instance_uid}
    assert [r["event_number"] for r in rows] == ["1", "2", "3"]
    response = client_as.get(URL, {"format": "csv", "accession": "ACC2024-03-01"})
    assert {r["study_instance_uid"] for r in csv_table(body(response))} == {
        studies["ct2"].study_instance_uid
    }


def test_it_puts_a_studys_events_side_by_side(client_as: Client) -> None:
    studies = registry()
    response = client_as.get(URL, {"format": "csv", "layout": "study", "modality": "CT"})
    assert response["Content-Type"].startswith("text/csv")
    rows = csv_table(body(response))
    assert [r["study_instance_uid"] for r in rows] == [
        studies["ct2"].study_instance_uid, studies["ct3"].study_instance_uid
    ]
    first, second = rows
    assert first["E1 acquisition_protocol"] == "Thorax 0"
    assert first["E2 ctdivol_mGy"] == "8.25" and first["E3 dlp_mGycm"] == ""
    assert second["E3 acquisition_protocol"] == "Thorax 2" and second["E3 dlp_mGycm"] == "120.5"
    assert second["number_of_events"] == "3" and second["dlp_total_mGycm"] == "361.5"
    assert "E4 ctdivol_mGy" not in first  # as many groups as the longest study has


def test_it_zips_one_csv_per_modality_without_a_modality_filter(client_as: Client) -> None:
    registry()
    response = client_as.get(URL, {"format": "csv", "layout": "study"})
    assert response["Content-Type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(body(response))) as archive:
        names = archive.namelist()
        nm = csv_table(archive.read("doseport-studies-NM.csv"))
        mg = csv_table(archive.read("doseport-studies-MG.csv"))
    assert names == [f"doseport-studies-{m}.csv" for m in ("CT", "DX", "MG", "NM")]
    assert nm[0]["E1 administered_activity_MBq"] == "250.0"
    assert mg[0]["E1 agd_mGy"] == mg[0]["E2 agd_mGy"] == "1.25"


@pytest.mark.parametrize("layout", ["event", "study"])
def test_it_writes_one_xlsx_sheet_per_modality(client_as: Client, layout: str) -> None:
    registry()
    response = client_as.get(URL, {"format": "xlsx", "layout": layout})
    assert response["Content-Type"].startswith("application/vnd.openxmlformats")
    book = sheets(body(response))
    assert list(book) == ["CT", "DX", "MG", "NM"]
    header, *rows = book["CT"]
    assert len(rows) == (5 if layout == "event" else 2)
    assert header[0] == "study_instance_uid"
    column = header.index("ctdivol_mGy" if layout == "event" else "E1 ctdivol_mGy")
    assert rows[0][column] == 8.25  # a number, not text
    assert "agd_mGy" not in header and "E1 agd_mGy" not in header  # CT's columns only


def test_it_never_writes_a_formula_into_xlsx(client_as: Client) -> None:
    study = ct_study(events=1)
    study.study_description = '=HYPERLINK("http://evil","x")'
    study.save()
    book = sheets(body(client_as.get(URL, {"format": "xlsx", "layout": "study"})))
    header, row = book["CT"]
    assert row[header.index("study_description")] == '=HYPERLINK("http://evil","x")'
    raw = zipfile.ZipFile(io.BytesIO(body(client_as.get(URL, {"format": "xlsx"}))))
    assert b"<f>" not in raw.read("xl/worksheets/sheet1.xml")


def test_it_answers_400_for_an_unknown_format_or_a_bad_filter(client_as: Client) -> None:
    assert client_as.get(URL, {"format": "pdf"}).status_code == 400
    response = client_as.get(URL, {"format": "csv", "date_from": "2024-03-05",
                                   "date_to": "2024-03-01"})
    assert response.status_code == 400
    assert b"after the" in response.content


def test_it_records_the_export_in_the_audit_log(client_as: Client) -> None:
    registry()
    client_as.get(URL, {"format": "xlsx", "layout": "study", "modality": "CT"})
    entry = AuditEntry.objects.get(action="export.run")
    assert entry.username == "viewer"
    assert entry.detail["filters"] == "modality=CT" and entry.detail["rows"] == 2


def test_it_gives_identity_columns_to_admins_only(
    client: Client, viewer: Any, admin_user: Any, settings: Any
) -> None:
    settings.PATIENT_IDENTITY = "plain"
    study = ct_study(events=1)
    study.patient_name, study.patient_id = "DOE^JANE", "PID-7"
    study.save()
    client.force_login(admin_user)
    rows = csv_table(body(client.get(URL, {"format": "csv"})))
    assert rows[0]["patient_name"] == "DOE^JANE" and rows[0]["patient_id"] == "PID-7"
    client.force_login(viewer)
    header = body(client.get(URL, {"format": "csv"})).decode().splitlines()[0]
    assert "patient" in header and "patient_name" not in header and "PID-7" not in header


def test_it_refuses_people_without_a_role(client: Client, django_user_model: Any) -> None:
    client.force_login(django_user_model.objects.create_user("nobody", password="x"))
    assert client.get(URL, {"format": "csv"}).status_code == 403


def test_it_sends_a_large_export_to_the_worker(
    client_as: Client, settings: Any, queued: None
) -> None:
    settings.EXPORT_DIRECT_MAX_ROWS = 4
    registry()
    response = client_as.get(URL, {"format": "xlsx", "layout": "event", "modality": "CT",
                                   "sort": "-date", "page": "2"})
    job = ExportJob.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/studies/export/jobs/{job.pk}/"
    assert (job.status, job.rows_total, job.query) == ("queued", 5, "modality=CT")
    assert HUEY.pending_count() == 1  # queued for `doseport worker`, not run here
    page = client_as.get(f"/studies/export/jobs/{job.pk}/status/").content.decode()
    assert 'hx-trigger="every 1s"' in page and "0 of 5 rows" in page

    assert export_jobs.run_job(job.pk) == "done"
    job.refresh_from_db()
    assert (job.status, job.rows_done) == ("done", 5)
    assert job.path is not None and stat.S_IMODE(job.path.stat().st_mode) == 0o600
    assert job.expires_at is not None
    assert job.expires_at - timezone.now() > dt.timedelta(hours=23)
    page = client_as.get(f"/studies/export/jobs/{job.pk}/status/").content.decode()
    assert "hx-trigger" not in page and f"/studies/export/jobs/{job.pk}/download/" in page
    download = client_as.get(f"/studies/export/jobs/{job.pk}/download/")
    assert download.status_code == 200
    assert len(sheets(body(download))["CT"]) == 1 + 5
    assert AuditEntry.objects.filter(action="export.download").count() == 1
    assert export_jobs.run_job(job.pk) == "skipped"  # a second delivery does nothing


def test_it_reports_progress_while_writing(
    client_as: Client, settings: Any, queued: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.EXPORT_DIRECT_MAX_ROWS = 0
    monkeypatch.setattr(web_export, "PROGRESS_EVERY", 10)
    for _ in range(3):
        ct_study(events=12)
    client_as.get(URL, {"format": "csv"})
    job = ExportJob.objects.get()
    seen: list[int] = []
    original = ExportJob.set_progress

    def spy(self: ExportJob, rows: int) -> None:
        seen.append(rows)
        original(self, rows)

    monkeypatch.setattr(ExportJob, "set_progress", spy)
    export_jobs.run_job(job.pk)
    # Counted per study (12 rows each), reported whenever a multiple of 10 is passed.
    assert seen == [12, 24, 36] and ExportJob.objects.get().rows_done == 36


def test_it_shows_a_users_export_to_them_and_admins_only(
    client: Client, viewer: Any, importer: Any, admin_user: Any, settings: Any, queued: None
) -> None:
    settings.EXPORT_DIRECT_MAX_ROWS = 0
    ct_study()
    client.force_login(viewer)
    client.get(URL, {"format": "csv"})
    job = ExportJob.objects.get()
    client.force_login(importer)
    assert client.get(f"/studies/export/jobs/{job.pk}/").status_code == 403
    assert client.get(f"/studies/export/jobs/{job.pk}/download/").status_code == 403
    client.force_login(admin_user)
    assert client.get(f"/studies/export/jobs/{job.pk}/").status_code == 200


def test_it_expires_the_link_and_deletes_the_file(
    client_as: Client, settings: Any, queued: None
) -> None:
    settings.EXPORT_DIRECT_MAX_ROWS = 0
    ct_study()
    client_as.get(URL, {"format": "csv"})
    job = ExportJob.objects.get()
    export_jobs.run_job(job.pk)
    job.refresh_from_db()
    path, link = job.path, f"/studies/export/jobs/{job.pk}/download/"
    assert path is not None and client_as.get(link).status_code == 200

    assert export_jobs.purge(timezone.now() + dt.timedelta(hours=23)) == 0
    assert path.exists()
    ExportJob.objects.filter(pk=job.pk).update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    assert client_as.get(link).status_code == 404  # at once, before the purge runs
    assert export_jobs.purge(timezone.now()) == 1
    assert not path.exists() and ExportJob.objects.get().status == "expired"
    assert client_as.get(link).status_code == 404
    assert b"expired" in client_as.get(f"/studies/export/jobs/{job.pk}/").content


def test_it_fails_a_job_whose_worker_never_came(client_as: Client, settings: Any,
                                                 queued: None) -> None:
    settings.EXPORT_DIRECT_MAX_ROWS = 0
    ct_study()
    client_as.get(URL, {"format": "csv"})
    export_jobs.purge(timezone.now() + dt.timedelta(minutes=59))
    assert ExportJob.objects.get().status == "queued"
    export_jobs.purge(timezone.now() + dt.timedelta(hours=2))
    job = ExportJob.objects.get()
    assert job.status == "failed" and "doseport worker" in job.error
    assert export_jobs.run_job(job.pk) == "skipped"


def test_it_deletes_leftover_files_no_job_owns(settings: Any, tmp_path: Any) -> None:
    settings.HOME = tmp_path
    folder = export_jobs.exports_dir()
    folder.mkdir(parents=True, exist_ok=True)
    leftover = folder / "abc.csv.part"
    leftover.write_text("half")
    assert export_jobs.purge(timezone.now()) == 0 and leftover.exists()
    assert export_jobs.purge(timezone.now() + dt.timedelta(hours=25)) == 1
    assert not leftover.exists()


def test_the_study_list_carries_its_filters_to_the_export_button(client_as: Client) -> None:
    ct_study()
    page = client_as.get("/studies/", {"modality": "CT", "station": "CT1", "sort": "dlp"})
    html = page.content.decode()
    assert 'action="/studies/export/"' in html and 'id="export-button"' in html
    assert 'name="modality" value="CT"' in html and 'name="station" value="CT1"' in html


def test_its_bulk_read_gives_what_the_command_reads() -> None:
    registry()
    dx_study("2024-03-01")
    from dose.export import iter_model_dicts
    from dose.export_rows import iter_export_dicts
    from dose.queries import StudyFilter

    expected = list(iter_model_dicts(StudyFilter()))
    assert list(iter_export_dicts(StudyFilter(), chunk=2)) == expected
    assert [s["events"] for s in expected if s["modality_type"] == "CT"][0][0]["xray_sources"]


def test_the_row_writer_gives_the_same_cells_without_xlsxwriters_undecorated_methods(
) -> None:
    """xlsx_row_writer uses XlsxWriter's `_write_*` where they exist and its public
    methods otherwise: both give the same workbook."""
    import xlsxwriter

    rows: list[list[Any]] = [["CT", 1.5, 7, True, None, "", "a<b&c", dt.date(2020, 1, 2)]]

    class Public:
        """The worksheet as a later XlsxWriter without the private names might be."""

        def __init__(self, ws: Any) -> None:
            self.write_string, self.write_number = ws.write_string, ws.write_number
            self.write_boolean = ws.write_boolean

    def cells(wrap: bool) -> list[Any]:
        buffer = io.BytesIO()
        book = xlsxwriter.Workbook(buffer, {"constant_memory": True})
        ws = book.add_worksheet("CT")
        write = web_export.xlsx_row_writer(Public(ws) if wrap else ws)
        for index, row in enumerate(rows):
            write(index, row)
        book.close()
        buffer.seek(0)
        return [list(r) for r in openpyxl.load_workbook(buffer).active.iter_rows(values_only=True)]

    assert cells(False) == cells(True) == [["CT", 1.5, 7, True, None, None, "a<b&c", "2020-01-02"]]
