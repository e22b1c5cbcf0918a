"""Quarantine retention: day folders older than DOSEPORT_QUARANTINE_DAYS are deleted by a
periodic task of each server, their records lose kept_path; the page shows count and size."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from django.core.cache import cache
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from imports import quarantine
from imports.models import ImportRecord, Outcome, Source

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 6, 30, 12, 0, tzinfo=UTC)


@pytest.fixture
def qdir(settings: Any, tmp_path: Path) -> Path:
    settings.QUARANTINE_DIR = tmp_path / "quarantine"
    settings.QUARANTINE_DAYS = 30
    cache.delete(quarantine.SUMMARY_CACHE_KEY)
    return settings.QUARANTINE_DIR


def _put(root: Path, day: date, name: str, size: int) -> Path:
    folder = root / day.strftime("%Y%m%d")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(b"\0" * size)
    ImportRecord.objects.create(source=Source.STORE, outcome=Outcome.FAILED,
                                path=f"/spool/{name}", kept_path=str(path))
    return path


def test_it_deletes_objects_quarantined_longer_than_the_limit(qdir: Path) -> None:
    old = _put(qdir, date(2026, 5, 30), "old.dcm", 100)  # 31 days before NOW
    edge = _put(qdir, date(2026, 5, 31), "edge.dcm", 10)  # exactly 30 days: kept
    new = _put(qdir, date(2026, 6, 29), "new.dcm", 1000)
    (qdir / "notes").mkdir()  # not a day folder: left alone
    (qdir / "19990101x").mkdir()

    assert quarantine.summary() == quarantine.Summary(3, 1110, date(2026, 5, 30), 30)
    purged = quarantine.purge(NOW)

    assert purged == quarantine.Purged(count=1, size=100, folders=1)
    assert not old.exists() and not old.parent.exists()
    assert edge.exists() and new.exists() and (qdir / "notes").is_dir()
    kept = dict(ImportRecord.objects.values_list("path", "kept_path"))
    assert kept == {"/spool/old.dcm": "", "/spool/edge.dcm": str(edge),
                    "/spool/new.dcm": str(new)}
    assert quarantine.summary() == quarantine.Summary(2, 1010, date(2026, 5, 31), 30)
    assert quarantine.purge(NOW) == quarantine.Purged()  # nothing more to do


def test_it_follows_the_configured_age(qdir: Path, settings: Any) -> None:
    settings.QUARANTINE_DAYS = 1
    _put(qdir, date(2026, 6, 28), "a.dcm", 5)
    _put(qdir, date(2026, 6, 29), "b.dcm", 5)
    assert quarantine.purge(NOW).count == 1


def test_it_never_follows_a_symlink_out_of_the_quarantine(qdir: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    precious = outside / "precious.dcm"
    precious.write_bytes(b"x")
    qdir.mkdir()
    (qdir / "20200101").symlink_to(outside, target_is_directory=True)
    folder = qdir / "20200102"
    folder.mkdir()
    (folder / "link.dcm").symlink_to(precious)
    quarantine.purge(NOW)
    assert precious.exists() and (qdir / "20200101").is_symlink()
    assert not folder.exists()


def test_it_runs_as_a_periodic_task_of_each_server(qdir: Path) -> None:
    from imports.tasks import purge_quarantine_task

    assert purge_quarantine_task.periodic is not None
    _put(qdir, (timezone.now() - timedelta(days=40)).date(), "old.dcm", 1)
    purge_quarantine_task.func()
    assert quarantine.summary().count == 0


def test_it_shows_count_and_size_on_the_node_page(qdir: Path, viewer: Any) -> None:
    _put(qdir, date(2026, 6, 1), "a.dcm", 2048)
    _put(qdir, date(2026, 6, 2), "b.dcm", 2048)
    client = Client()
    client.force_login(viewer)
    page = client.get(reverse("nodes:dicom")).content.decode()
    assert '<dd id="quarantine-count">2</dd>' in page
    assert '<dd id="quarantine-size">4.0\xa0KB</dd>' in page
    assert "quarantined 2026-06-01, deleted on 2026-07-02" in page
