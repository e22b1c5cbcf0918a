"""Imports page at scale: few constant queries, no per-row subquery, filters, study links."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from dose.models import Study
from imports.models import ImportRecord, Outcome, Source
from lib.format import datetime_text
from nodes.models import StoreNode

pytestmark = pytest.mark.django_db

MANY = 20_000
# count, failed count, failed rows, other rows (ids first on deep pages), latest retries,
# studies: the same few at any size
MAX_LIST_QUERIES = 8
# All queries, with the site's own per request (session, user, role checks, alert count,
# session refresh) and the form's store nodes: bounded, generously, as those grow.
MAX_QUERIES = 25


def login(client: Client, user) -> Client:  # type: ignore[no-untyped-def]
    client.force_login(user)
    return client


def fill_many(count: int) -> None:
    """`count` imported records, a failed record that was retried, and one still failed."""
    ImportRecord.objects.bulk_create(
        (
            ImportRecord(
                source=Source.STORE, outcome=Outcome.IMPORTED, kind="ct_rdsr",
                sop_instance_uid=f"1.2.826.0.1.3680043.10.543.{i}.1",
                path=f"/spool/{i:08d}.dcm",
            )
            for i in range(count)
        ),
        batch_size=2000,
    )
    ImportRecord.objects.create(  # an older import from the path a later failure is kept at
        source=Source.FILE, outcome=Outcome.DUPLICATE, sop_instance_uid="9.9.0",
        path="/quarantine/broken.dcm",
    )
    failed = ImportRecord.objects.create(
        source=Source.FILE, outcome=Outcome.FAILED, sop_instance_uid="9.9.1",
        path="/in/retried.dcm", kept_path="/quarantine/retried.dcm", error="truncated",
    )
    ImportRecord.objects.create(
        source=Source.FILE, outcome=Outcome.IMPORTED, sop_instance_uid="9.9.1",
        path=failed.kept_path,
    )
    ImportRecord.objects.create(
        source=Source.FILE, outcome=Outcome.FAILED, sop_instance_uid="9.9.2",
        path="/in/broken.dcm", kept_path="/quarantine/broken.dcm", error="bad unit dGy",
    )


def page_queries(client: Client, url: str) -> list[str]:
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url)
    assert response.status_code == 200
    return [q["sql"] for q in ctx.captured_queries]


def query_plan(sql: str) -> str:
    prefix = "EXPLAIN QUERY PLAN " if connection.vendor == "sqlite" else "EXPLAIN "
    with connection.cursor() as cursor:
        cursor.execute(prefix + sql)
        return "\n".join(" ".join(str(col) for col in row) for row in cursor.fetchall())


def test_it_answers_in_few_queries_and_no_subquery_per_row(client: Client, viewer) -> None:
    fill_many(MANY)
    login(client, viewer)
    first = page_queries(client, "/imports/")
    pages = client.get("/imports/").context["page"].paginator.num_pages
    assert pages == (MANY + 4 + 49) // 50
    late = page_queries(client, f"/imports/?page={pages - 1}")
    filtered = page_queries(client, "/imports/?kind=ct_rdsr&q=543.1234.&outcome=imported")
    for queries in (first, late, filtered):
        assert len(queries) <= MAX_QUERIES
        listing = [sql for sql in queries if "imports_importrecord" in sql or "dose_study" in sql]
        assert len(listing) <= MAX_LIST_QUERIES
    for sql in first + late + filtered:
        if "imports_importrecord" not in sql:
            continue
        assert "CASE" not in sql.upper(), sql  # no ORDER BY on an expression per row
        plan = query_plan(sql)
        assert "CORRELATED" not in plan and "SubPlan" not in plan, (sql, plan)


def test_it_shows_failures_first_and_the_retry_outcome_among_many(
    client: Client, importer
) -> None:
    fill_many(MANY)
    response = login(client, importer).get("/imports/")
    rows = response.context["rows"]
    assert [r.record.sop_instance_uid for r in rows[:2]] == ["9.9.2", "9.9.1"]
    assert [r.retry_outcome for r in rows[:3]] == ["", Outcome.IMPORTED, ""]
    assert response.content.count(b"retried: imported") == 1
    assert response.content.count(b'name="retry"') == 1  # only the one never retried
    assert len(rows) == 50
    assert rows[2].record.outcome == Outcome.IMPORTED  # then the newest of the others
    assert rows[2].record.pk > rows[3].record.pk


def test_it_reads_deep_pages_in_order(client: Client, viewer) -> None:
    fill_many(3000)  # page 40 starts 1,950 records in: its ids come from an index first
    others = ImportRecord.objects.exclude(outcome=Outcome.FAILED).order_by("-created_at", "-pk")
    expected = list(others.values_list("pk", flat=True)[1948:1998])  # after the 2 failures
    response = login(client, viewer).get("/imports/", {"page": "40"})
    assert [r.record.pk for r in response.context["rows"]] == expected
    assert response.context["rows"][0].record.store_node_id is None


def make(uid: str, **fields: object) -> ImportRecord:
    fields.setdefault("source", Source.FILE)
    fields.setdefault("outcome", Outcome.IMPORTED)
    return ImportRecord.objects.create(sop_instance_uid=uid, **fields)


def listed(client: Client, **params: str) -> list[str]:
    response = client.get("/imports/", params)
    assert response.status_code == 200
    return [r.record.sop_instance_uid for r in response.context["rows"]]


def test_it_filters_by_kind_node_date_and_text(client: Client, viewer) -> None:
    east = StoreNode.objects.create(name="east", ae_title="EAST", port=11112)
    west = StoreNode.objects.create(name="west", ae_title="WEST", port=11113)
    make("1.1", kind="ct_rdsr", source=Source.STORE, store_node=east, path="/spool/a.dcm")
    make("1.2", kind="dx_image", source=Source.STORE, store_node=west, path="/spool/b.dcm")
    make("1.3", kind="ct_rdsr", outcome=Outcome.FAILED, path="/import/c.dcm",
         kept_path="/quarantine/c.dcm")
    old = make("1.4", kind="mg_image")
    ImportRecord.objects.filter(pk=old.pk).update(
        created_at=timezone.now() - dt.timedelta(days=10)
    )
    login(client, viewer)
    assert listed(client) == ["1.3", "1.2", "1.1", "1.4"]
    assert listed(client, kind="ct_rdsr") == ["1.3", "1.1"]
    assert listed(client, node=str(west.pk)) == ["1.2"]
    assert listed(client, outcome="imported", kind="ct_rdsr") == ["1.1"]
    today = timezone.localdate()
    assert listed(client, date_from=str(today)) == ["1.3", "1.2", "1.1"]
    assert listed(client, date_to=str(today - dt.timedelta(days=5))) == ["1.4"]
    assert listed(client, date_from=str(today - dt.timedelta(days=10)),
                  date_to=str(today - dt.timedelta(days=10))) == ["1.4"]
    assert listed(client, q="1.2") == ["1.2"]
    assert listed(client, q="quarantine/c") == ["1.3"]
    assert listed(client, q="/spool/") == ["1.2", "1.1"]
    assert listed(client, q="no such thing") == []


def test_it_shows_bad_filters_and_ignores_them(client: Client, viewer) -> None:
    make("1.1", kind="ct_rdsr")
    login(client, viewer)
    assert listed(client, kind="no-such-kind", node="999") == ["1.1"]
    response = client.get("/imports/", {"date_from": "2026-05-02", "date_to": "2026-05-01"})
    assert b"after the" in response.content
    response = client.get("/imports/", {"q": "nothing"})
    assert b"No imports match these filters." in response.content


def test_it_keeps_rows_compact_and_links_the_study(client: Client, viewer) -> None:
    long_uid = "1.2.826.0.1.3680043.10.543.20261203.125959.123456.1"
    study = Study.objects.create(study_instance_uid="1.2.3.4", modality_type=Study.CT)
    received = timezone.make_aware(dt.datetime(2026, 5, 1, 8, 30, 15))
    make(long_uid, study_instance_uid="1.2.3.4", received_at=received)
    unreceived = make("1.5", study_instance_uid="5.6.7")  # no study in the database
    content = login(client, viewer).get("/imports/").content.decode()
    assert f'title="{long_uid}"' in content and f'data-copy="{long_uid}"' in content
    assert f">{long_uid}<" not in content  # the cell shows the shortened UID only
    assert "…" + long_uid[-20:] in content
    assert f'href="/studies/{study.pk}/"' in content
    assert content.count('class="study-link"') == 1
    zone = timezone.get_current_timezone()
    assert datetime_text(received, zone=zone) in content  # Received, from received_at
    assert datetime_text(unreceived.created_at, zone=zone) in content  # or when recorded
    assert "imports/imports.js" in content


def test_it_finds_a_whole_uid_anywhere_and_part_of_one_among_the_newest(
    client: Client, viewer, monkeypatch: pytest.MonkeyPatch
) -> None:
    import imports.queries

    monkeypatch.setattr(imports.queries, "TEXT_WINDOW", 3)
    make("1.2.840.99.1", study_instance_uid="1.2.840.77", path="/spool/old.dcm")  # oldest
    for n in range(3):
        make(f"1.2.840.10.{n}", path=f"/spool/new{n}.dcm")
    login(client, viewer)
    assert listed(client, q="99.1") == []  # part of a UID, outside the newest 3
    assert listed(client, q="1.2.840.99.1") == ["1.2.840.99.1"]  # the whole UID
    assert listed(client, q="1.2.840.77") == ["1.2.840.99.1"]  # the whole study UID
    assert listed(client, q="/spool/old.dcm") == ["1.2.840.99.1"]  # the whole path
    assert listed(client, q="840.10.") == ["1.2.840.10.2", "1.2.840.10.1", "1.2.840.10.0"]


def test_it_searches_text_through_indexes_not_a_scan_of_every_record(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import imports.queries
    from imports.queries import text_matches

    monkeypatch.setattr(imports.queries, "TEXT_WINDOW", 2)
    for n in range(3):
        make(f"1.2.{n}", path=f"/spool/{n}.dcm")
    sql, params = text_matches("1.2.3").query.sql_with_params()
    with connection.cursor() as cursor:
        prefix = "EXPLAIN QUERY PLAN " if connection.vendor == "sqlite" else "EXPLAIN "
        if connection.vendor == "postgresql":
            cursor.execute("SET enable_seqscan = off")
        cursor.execute(prefix + sql, params)
        plan = "\n".join(" ".join(str(c) for c in row) for row in cursor.fetchall())
    if connection.vendor == "sqlite":
        assert "MULTI-INDEX OR" in plan and "SCAN imports_importrecord\n" not in plan + "\n", plan
    else:
        assert "BitmapOr" in plan or "Index" in plan, plan
        assert "Seq Scan" not in plan, plan
