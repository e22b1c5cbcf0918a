"""An import costs the same with 20 or 20,000 objects stored: every lookup it makes goes
through a UID index, never a scan of all imported records or studies (issue 11 item 2:
SQLite chose the outcome / modality index and `doseport import` fell from 124 to 49/s).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from imports.models import Outcome, Source
from imports.service import import_file
from tests.builders.rdsr import build_ct_rdsr, write

pytestmark = pytest.mark.django_db
TABLES = ("imports_importrecord", "dose_study")
# A plan step on those tables must search by a UID (or the primary key).
GOOD_STEP = re.compile(r"\((sop_instance_uid|study_instance_uid|id|rowid)=\?")


# PostgreSQL: with sequential scans off, every index it picks must be a UID one (auto-named
# <table>_<column>_<hash>) or the primary key, never the outcome or modality index.
PG_INDEX = re.compile(r"(?:Index Scan|Index Only Scan|Bitmap Index Scan) (?:using|on) (\S+)")


def _plan(sql: str) -> list[str]:
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute("EXPLAIN QUERY PLAN " + sql)
            return [str(row[-1]) for row in cursor.fetchall()]
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("EXPLAIN " + sql)
        return [str(row[0]) for row in cursor.fetchall()]


def _check(step: str) -> None:
    if connection.vendor == "sqlite":
        if any(table in step for table in TABLES):
            assert GOOD_STEP.search(step), step
        return
    for index in PG_INDEX.findall(step):
        if index.startswith(TABLES):
            assert "instance_uid" in index or index.endswith("_pkey"), step


@pytest.mark.parametrize("again", [False, True], ids=["new", "duplicate"])
def test_it_looks_up_imports_and_studies_by_uid_index_only(tmp_path: Path, again: bool) -> None:
    for i in range(3):  # something stored of the same modality and outcome
        import_file(write(build_ct_rdsr(1), tmp_path / f"old{i}.dcm"), Source.FILE)
    path = write(build_ct_rdsr(2), tmp_path / "new.dcm")
    if again:
        import_file(path, Source.FILE)
    with CaptureQueriesContext(connection) as ctx:
        record = import_file(path, Source.FILE)
    assert record.outcome == (Outcome.DUPLICATE if again else Outcome.IMPORTED)
    selects = [q["sql"] for q in ctx.captured_queries if q["sql"].startswith("SELECT")]
    assert selects
    for sql in selects:
        for step in _plan(sql):
            _check(step)
