"""Imports page: failures first, outcome filter, paging, roles, retry of quarantined files.

At scale, the other filters and study links: test_imports_page_scale.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from django.test import Client

from dose.models import Study
from imports.models import ImportRecord, Outcome, Source
from tests.builders.rdsr import build_ct_rdsr, write

pytestmark = pytest.mark.django_db


def make_record(outcome: str, uid: str, error: str = "") -> ImportRecord:
    return ImportRecord.objects.create(
        source=Source.FILE, outcome=outcome, sop_instance_uid=uid, error=error
    )


def login(client: Client, user) -> Client:  # type: ignore[no-untyped-def]
    client.force_login(user)
    return client


def quarantined(tmp_path: Path, content: bytes = b"not a DICOM file") -> ImportRecord:
    kept = tmp_path / "quarantine" / "broken.dcm"
    kept.parent.mkdir(parents=True, exist_ok=True)
    kept.write_bytes(content)
    return ImportRecord.objects.create(
        source=Source.FILE, path=str(tmp_path / "in" / "broken.dcm"), kept_path=str(kept),
        outcome=Outcome.FAILED, error="cannot read DICOM file: truncated",
    )


def test_it_lists_failures_first_then_newest(client: Client, viewer) -> None:
    make_record(Outcome.IMPORTED, "1.1")
    make_record(Outcome.FAILED, "1.2", error="bad unit dGy")
    make_record(Outcome.DUPLICATE, "1.3")
    response = login(client, viewer).get("/imports/")
    assert response.status_code == 200
    uids = [r.sop_instance_uid for r in response.context["page"]]
    assert uids == ["1.2", "1.3", "1.1"]
    assert b"bad unit dGy" in response.content


def test_it_filters_by_outcome(client: Client, viewer) -> None:
    make_record(Outcome.IMPORTED, "1.1")
    make_record(Outcome.FAILED, "1.2")
    response = login(client, viewer).get("/imports/", {"outcome": "imported"})
    assert [r.sop_instance_uid for r in response.context["page"]] == ["1.1"]
    response = client.get("/imports/", {"outcome": "no-such-outcome"})
    assert response.status_code == 200
    assert len(response.context["page"]) == 2


def test_it_pages_the_list(client: Client, viewer) -> None:
    ImportRecord.objects.bulk_create(
        ImportRecord(source=Source.FILE, outcome=Outcome.IMPORTED, sop_instance_uid=f"2.{i}")
        for i in range(55)
    )
    response = login(client, viewer).get("/imports/", {"outcome": "imported", "page": "2"})
    assert len(response.context["page"]) == 5
    assert b"Page 2 of 2" in response.content
    assert b"outcome=imported&amp;page=1" in response.content


def test_it_needs_a_role_to_view(client: Client, django_user_model) -> None:
    nobody = django_user_model.objects.create_user("nobody", password="pw")
    assert login(client, nobody).get("/imports/").status_code == 403


def test_it_refuses_retry_by_a_viewer(client: Client, viewer, tmp_path: Path) -> None:
    record = quarantined(tmp_path)
    response = login(client, viewer).post(f"/imports/{record.pk}/retry/")
    assert response.status_code == 403
    assert ImportRecord.objects.count() == 1
    page = client.get("/imports/")
    assert b'name="retry"' not in page.content


def test_it_refuses_retry_by_get(client: Client, importer, tmp_path: Path) -> None:
    record = quarantined(tmp_path)
    assert login(client, importer).get(f"/imports/{record.pk}/retry/").status_code == 405


def test_it_retries_a_quarantined_file_and_shows_the_new_outcome(
    client: Client, importer, tmp_path: Path
) -> None:
    record = quarantined(tmp_path)
    # The site replaced the broken copy in quarantine (e.g. re-exported it); retry imports it.
    ds = build_ct_rdsr(events=2)
    write(ds, record.kept_path)
    login(client, importer)
    assert b'name="retry"' in client.get("/imports/").content
    response = client.post(f"/imports/{record.pk}/retry/")
    assert response.status_code == 302
    assert response["Location"] == f"/imports/{record.pk}/?retried=1"
    attempt = ImportRecord.objects.exclude(pk=record.pk).get()
    assert attempt.sop_instance_uid == ds.SOPInstanceUID
    assert attempt.outcome == Outcome.IMPORTED
    page = client.get(response["Location"])
    assert [a.pk for a in page.context["attempts"]] == [attempt.pk]
    assert b"imported" in page.content
    assert b"hx-trigger" not in page.content  # done: no more polling
    listing = client.get("/imports/").content
    assert b"retried: imported" in listing and b'name="retry"' not in listing
    client.post(f"/imports/{record.pk}/retry/")  # a second retry is refused
    assert ImportRecord.objects.count() == 2
    study = Study.objects.get()
    assert study.study_instance_uid == ds.StudyInstanceUID
    assert f'href="/studies/{study.pk}/"'.encode() in client.get("/imports/").content


def test_it_keeps_a_file_that_fails_again_retryable(
    client: Client, importer, tmp_path: Path
) -> None:
    good = tmp_path / "good.dcm"
    write(build_ct_rdsr(), good)
    data = good.read_bytes()
    record = quarantined(tmp_path, content=data[: len(data) // 2])  # truncated dose report
    login(client, importer).post(f"/imports/{record.pk}/retry/")
    attempt = ImportRecord.objects.exclude(pk=record.pk).get()
    assert attempt.outcome == Outcome.FAILED, attempt.error
    assert attempt.path == record.kept_path
    assert Path(attempt.kept_path).is_file()  # still in quarantine, never deleted
    listing = client.get("/imports/", {"outcome": "failed"})
    assert [r.pk for r in listing.context["page"]] == [attempt.pk, record.pk]
    assert listing.content.count(b'name="retry"') == 1  # only the newest attempt


def test_it_polls_until_the_retry_has_a_result(client: Client, viewer, tmp_path: Path) -> None:
    record = quarantined(tmp_path)
    page = login(client, viewer).get(f"/imports/{record.pk}/?retried=1")
    assert f'data-live-url="/imports/{record.pk}/?retried=1"'.encode() in page.content
    partial = client.get(f"/imports/{record.pk}/?retried=1", HTTP_HX_REQUEST="true")
    assert b"<html" not in partial.content and b"Waiting for the worker" in partial.content
    assert b"data-live-url" in partial.content  # still waiting: keeps polling
    ImportRecord.objects.create(source=Source.FILE, path=record.kept_path,
                                outcome=Outcome.IMPORTED)
    done = client.get(f"/imports/{record.pk}/?retried=1", HTTP_HX_REQUEST="true")
    assert b"imported" in done.content and b"data-live-url" not in done.content  # stops


def test_it_follows_a_pending_import_until_it_has_an_outcome(client: Client, viewer) -> None:
    record = make_record(Outcome.PENDING, "1.9")
    page = login(client, viewer).get(f"/imports/{record.pk}/")
    assert f'data-live-url="/imports/{record.pk}/?part=record"'.encode() in page.content
    ImportRecord.objects.filter(pk=record.pk).update(outcome=Outcome.IMPORTED)
    part = client.get(f"/imports/{record.pk}/?part=record", HTTP_HX_REQUEST="true")
    assert b"<html" not in part.content and b"Import %d: imported" % record.pk in part.content
    assert b"data-live-url" not in part.content


def test_it_refreshes_the_first_page_only_when_a_record_arrives(client: Client, viewer) -> None:
    first = make_record(Outcome.IMPORTED, "1.1")
    page = login(client, viewer).get("/imports/", {"outcome": "imported"})
    live = f'data-live-url="?outcome=imported&amp;since={first.pk}"'.encode()
    assert live in page.content
    url = f"/imports/?outcome=imported&since={first.pk}"
    assert client.get(url, HTTP_HX_REQUEST="true").status_code == 204
    make_record(Outcome.IMPORTED, "1.2.3.4.5")
    fresh = client.get(url, HTTP_HX_REQUEST="true")
    assert fresh.status_code == 200 and b"<html" not in fresh.content
    assert b"1.2.3.4.5" in fresh.content
    for n in range(60):
        make_record(Outcome.IMPORTED, f"2.{n}")
    assert b"data-live-url" not in client.get("/imports/", {"page": "2"}).content


def test_it_does_not_retry_a_record_that_did_not_fail(
    client: Client, importer, tmp_path: Path
) -> None:
    record = quarantined(tmp_path)
    record.outcome = Outcome.IMPORTED
    record.save()
    response = login(client, importer).post(f"/imports/{record.pk}/retry/")
    assert response.status_code == 302
    assert ImportRecord.objects.count() == 1


def test_it_does_not_retry_when_the_file_is_gone(
    client: Client, importer, tmp_path: Path
) -> None:
    record = quarantined(tmp_path)
    Path(record.kept_path).unlink()
    login(client, importer).post(f"/imports/{record.pk}/retry/")
    assert ImportRecord.objects.count() == 1


def test_a_retry_is_claimed_once_however_often_it_is_asked_or_delivered(
    client: Client, importer, tmp_path: Path
) -> None:
    """Issue 14 item 5: a double click, two people or a task delivered twice import once."""
    from imports.models import RetryState
    from imports.tasks import retry_import_task

    record = quarantined(tmp_path)
    write(build_ct_rdsr(events=1), record.kept_path)
    # Two people pressed Retry: the second finds the claim taken (no second task).
    ImportRecord.objects.filter(pk=record.pk).update(retry_state=RetryState.QUEUED)
    response = login(client, importer).post(f"/imports/{record.pk}/retry/")
    assert response.status_code == 302
    assert ImportRecord.objects.count() == 1
    # The queued task delivered twice: the first claims and imports, the second does nothing.
    first = retry_import_task.call_local(record.pk)
    second = retry_import_task.call_local(record.pk)
    assert first is not None and second is None
    assert ImportRecord.objects.exclude(pk=record.pk).get().outcome == Outcome.IMPORTED
    record.refresh_from_db()
    assert record.retry_state == RetryState.STARTED
    assert b'name="retry"' not in client.get("/imports/").content
