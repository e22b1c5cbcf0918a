"""ImportRecord.received_at: when the object arrived (spool file time for received objects)."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pytest

from imports.models import Source
from imports.service import import_file
from tests.builders.rdsr import build_ct_rdsr, write

pytestmark = pytest.mark.django_db


def test_a_received_object_arrived_when_its_spool_file_was_written(tmp_path: Path) -> None:
    path = write(build_ct_rdsr(1), tmp_path / "in.dcm")
    arrived = dt.datetime(2026, 11, 30, 8, 15, 0, tzinfo=dt.UTC)
    os.utime(path, (arrived.timestamp(), arrived.timestamp()))
    record = import_file(path, Source.STORE)
    record.refresh_from_db()
    assert record.received_at == arrived
    assert record.started_at is not None and record.started_at > arrived


def test_a_file_import_arrives_when_it_is_read(tmp_path: Path) -> None:
    path = write(build_ct_rdsr(1), tmp_path / "f.dcm")
    os.utime(path, (0, 0))
    record = import_file(path, Source.FILE, keep=True)
    record.refresh_from_db()
    assert record.received_at == record.started_at
