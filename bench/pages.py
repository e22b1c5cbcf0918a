"""Page response times at scale: p50/p95 ms for every list and detail page, on SQLite and
PostgreSQL.

Fills a fresh database with N studies (bench/insight.py's synthetic mix: CT, DX, RF, MG, NM
with their events, planes, breasts and administrations, stations, equipment, protocols;
patient ages) and M ImportRecords (5 % failed and kept in quarantine, half of those retried;
store nodes, kinds; the first records are the studies' dose objects), plus query history,
loaded raw: one multi-row INSERT per batch on SQLite, COPY on PostgreSQL. Then times GET
requests through Django's test Client, logged in as an administrator: the Studies list with
each filter, a CT, an RF and an NM study, the Imports list with each filter, an import
record, the DICOM network configuration page and the query history. Queries per request
are counted with CaptureQueriesContext. Timed without Django's test instrumentation
(setup_test_environment), as in production; PostgreSQL is VACUUM ANALYZEd after the fill,
as autovacuum would; SQLite is ANALYZEd, as `doseport migrate` leaves it (PRAGMA optimize).

Run: [DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres] .venv/bin/python
     bench/pages.py [--studies 100000] [--records 1000000] [--repeat 20]
     [--backends sqlite,postgresql]
PostgreSQL (when DATABASE_URL is set, or with --backends): a scratch database
`doseport_bench_pages` is created next to that URL's database and dropped afterwards
(kept with --keep, timed again with --reuse). The fill stores each study's headline
(dose/summary.py refresh_all), as the import would have.
Prints one JSON object; the numbers go into docs/PERFORMANCE.md ("Pages").
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import re
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from django.db import models

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

BENCH_DB = "doseport_bench_pages"
PG_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
BATCH = 5000
ROW = re.compile(rb'<tr class="[^"]*(?:outcome-|study modality-)')  # one per listed row
KINDS = ("ct_rdsr", "projection_rdsr", "dx_image", "mg_image", "nm_rdsr")
START = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
QUERIES = 2000


def _outcome(i: int) -> str:
    if i % 20 == 0:
        return "failed"
    if i % 7 == 0:
        return "duplicate"
    if i % 11 == 0:
        return "not_importable"
    return "imported"


def load(model: Any, rows: Iterable[dict[str, Any]]) -> int:
    """Insert rows (dicts by attname, `id` included) raw: COPY on PostgreSQL, multi-row
    INSERTs on SQLite; missing fields take their defaults (lib/bulk.py's preparation)."""
    from django.db import connection

    from lib.bulk import _columns, row_values

    columns = [("id", "id", None, None), *_columns(model)]
    table = connection.ops.quote_name(model._meta.db_table)
    names = ", ".join(connection.ops.quote_name(c) for _, c, _, _ in columns)

    def values(row: dict[str, Any]) -> list[Any]:
        return row_values(columns, row)

    n = 0
    if connection.vendor == "postgresql":
        connection.ensure_connection()
        with connection.connection.cursor() as cursor:
            with cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(values(row))
                    n += 1
            cursor.execute(f"SELECT setval(pg_get_serial_sequence('{model._meta.db_table}', "
                           f"'id'), (SELECT max(id) FROM {table}))")
        return n
    one = "(" + ", ".join(["%s"] * len(columns)) + ")"
    per = max(1, 30000 // len(columns))
    with connection.cursor() as cursor:
        batch: list[Any] = []
        for row in rows:
            batch.append(values(row))
            if len(batch) == per:
                n += _insert(cursor, table, names, one, batch)
                batch = []
        n += _insert(cursor, table, names, one, batch)
    return n


def _insert(cursor: Any, table: str, names: str, one: str, batch: list[list[Any]]) -> int:
    if batch:
        params = [v for row in batch for v in row]
        cursor.execute(f"INSERT INTO {table} ({names}) VALUES " + ", ".join([one] * len(batch)),
                       params)
    return len(batch)


def _as_row(obj: models.Model, pk: int) -> dict[str, Any]:
    from lib.bulk import _columns

    row = {name: getattr(obj, name) for name, _, _, _ in _columns(type(obj))}
    row["id"] = pk
    return row


def fill_studies(count: int) -> dict[str, Any]:
    """bench/insight.py's studies with consecutive ids, their children, and patient ages."""
    from django.utils import timezone

    from bench.insight import _children, _study
    from dose.models import (
        AccumulatedBreast,
        AccumulatedPlane,
        IrradiationEvent,
        RadiopharmaceuticalAdministration,
        Study,
    )

    rng = random.Random(15)
    today = timezone.localdate()
    now = timezone.now()
    models = {"events": IrradiationEvent, "planes": AccumulatedPlane,
              "breasts": AccumulatedBreast, "admins": RadiopharmaceuticalAdministration}
    ids = dict.fromkeys(models, 0)
    first: dict[str, int] = {}
    for start in range(0, count, BATCH):
        studies: list[dict[str, Any]] = []
        children: dict[str, list[dict[str, Any]]] = {k: [] for k in models}
        for i in range(start, min(count, start + BATCH)):
            study = _study(rng, i, today)
            study.pk = i + 1
            age = rng.uniform(0.1, 95)
            study.patient_age_decimal_years = round(age, 2)
            study.patient_age = f"{int(age):03d}Y"
            study.source_sop_instance_uids = [_sop_uid(i)]
            study.created_at = study.updated_at = now
            first.setdefault(study.modality_type, study.pk)
            studies.append(_as_row(study, study.pk))
            for key, found in _children(rng, study).items():
                for obj in found:
                    ids[key] += 1
                    children[key].append(_as_row(obj, ids[key]))
        load(Study, studies)
        for key, rows in children.items():
            load(models[key], rows)
    return {"counts": {"studies": count, **ids}, "first": first}


def _sop_uid(i: int) -> str:
    return f"1.2.826.0.1.3680043.10.543.{i}.{i * 7919 % 100003}.1"


def _records(count: int, nodes: list[int]) -> Iterator[dict[str, Any]]:
    """N records one second apart, a retry after every other failure."""
    pk = 0
    for i in range(count):
        outcome = _outcome(i)
        node = nodes[i % len(nodes)] if i % 4 else None
        received = START + dt.timedelta(seconds=i)
        failed = outcome == "failed"
        pk += 1
        yield {
            "id": pk, "sop_instance_uid": _sop_uid(i),
            "sop_class_uid": "1.2.840.10008.5.1.4.1.1.88.67",
            "study_instance_uid": f"1.2.826.0.1.3680043.10.1616.{i}" if outcome == "imported"
            else "",
            "kind": KINDS[i % len(KINDS)], "source": "store" if node else "file",
            "store_node_id": node, "path": f"/var/lib/doseport/spool/{i % 3}/{i:08d}.dcm",
            "kept_path": f"/var/lib/doseport/quarantine/{i:08d}.dcm" if failed else "",
            "outcome": outcome, "error": "cannot read DICOM file" if failed else "",
            "received_at": received if node else None, "duration_ms": 12.5,
            "created_at": received + dt.timedelta(seconds=1),
        }
        if failed and i % 40 == 0:
            pk += 1
            yield {
                "id": pk, "source": "file", "kind": KINDS[i % len(KINDS)],
                "outcome": "imported", "path": f"/var/lib/doseport/quarantine/{i:08d}.dcm",
                "created_at": received + dt.timedelta(seconds=1, milliseconds=500),
            }


def fill(studies: int, records: int) -> dict[str, Any]:
    from django.db import connection

    from dose import summary
    from imports.models import ImportRecord
    from nodes.models import RemoteNode, StoreNode
    from qr.models import Query

    nodes = [
        StoreNode.objects.create(name=f"node{n}", ae_title=f"NODE{n}", port=11200 + n)
        for n in range(3)
    ]
    made = fill_studies(studies)
    summary.refresh_all()  # what the import stores per study (dose/summary.py)
    n_records = load(ImportRecord, _records(records, [n.pk for n in nodes]))
    remote = RemoteNode.objects.create(name="pacs", ae_title="PACS", host="127.0.0.1",
                                       port=104)
    Query.objects.bulk_create(
        [Query(remote=remote, store=nodes[0], remote_name="pacs", params={"modalities": ["CT"]})
         for _ in range(QUERIES)], batch_size=BATCH)
    with connection.cursor() as cursor:
        # What autovacuum (PostgreSQL) and `doseport migrate`'s optimize (SQLite) leave.
        cursor.execute("VACUUM ANALYZE" if connection.vendor == "postgresql" else "ANALYZE")
    return {"node": nodes[1].pk, "first": made["first"], "counts": {
        **made["counts"], "records": n_records, "queries": QUERIES}}


def _time(client: Any, url: str, repeat: int) -> dict[str, Any]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    headers = {"HX-Request": "true"} if "since=" in url else {}  # a live refresh
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url, headers=headers)  # also warms the caches
    queries = len(ctx.captured_queries)  # read now: the next request clears the log
    if response.status_code not in (200, 204):
        raise SystemExit(f"bench: {url} answered {response.status_code}")
    durations, cpu = [], []
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        client.get(url, headers=headers)
        durations.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    durations.sort()
    cpu.sort()
    return {
        "url": url,
        "p50_ms": round(statistics.median(durations) * 1000, 1),
        "p95_ms": round(_p95(durations) * 1000, 1),
        # This process's CPU (on SQLite that includes the database's work): steadier than
        # wall time on a machine shared with other work.
        "cpu_p50_ms": round(statistics.median(cpu) * 1000, 1),
        "cpu_p95_ms": round(_p95(cpu) * 1000, 1),
        "queries": queries,
        "rows": len(ROW.findall(response.content)),
    }


def _facts() -> dict[str, Any]:
    """What fill() returns, read back from a database it filled earlier (--reuse)."""
    from django.db.models import Min

    from dose.models import IrradiationEvent, Study
    from imports.models import ImportRecord
    from nodes.models import StoreNode

    first = dict(Study.objects.order_by().values_list("modality_type").annotate(Min("pk")))
    return {"node": StoreNode.objects.get(name="node1").pk, "first": first, "counts": {
        "studies": Study.objects.count(), "events": IrradiationEvent.objects.count(),
        "records": ImportRecord.objects.count()}}


def _p95(values: list[float]) -> float:
    return values[min(len(values) - 1, int(len(values) * 0.95))]


def _urls(facts: dict[str, Any]) -> dict[str, str]:
    from dose.models import Study
    from imports.models import ImportRecord
    from qr.models import Query

    day = START.date()
    first = facts["first"]
    ct = Study.objects.filter(modality_type="CT", dlp_total_mGycm__isnull=False).order_by("pk")[0]
    late_study_page = max(1, Study.objects.count() // 50 - 1)
    late_import_page = max(1, facts["counts"]["records"] // 50 - 1)
    failed = ImportRecord.objects.filter(outcome="failed").order_by("-pk")[0].pk
    imported = ImportRecord.objects.filter(outcome="imported").order_by("pk")[0].pk
    return {
        # A page that reads nothing from the big tables: what any request costs here.
        "baseline: password page": "/account/password/",
        "studies": "/studies/",
        "studies CT": "/studies/?modality=CT",
        "studies NM": "/studies/?modality=NM",
        "studies dates": "/studies/?date_from=2025-01-01&date_to=2025-01-31",
        "studies text": "/studies/?q=angio",
        "studies text rare": "/studies/?q=zzz-none",
        "studies equipment": "/studies/?equipment=somatom",
        "studies station": "/studies/?station=CT03",
        "studies accession": "/studies/?accession=ACC0000123",
        "studies age": "/studies/?age_min=0&age_max=16",
        "studies CT dose": "/studies/?modality=CT&dose_min=1000",
        "studies DX dose": "/studies/?modality=DX&dose_min=5&dose_max=10",
        "studies MG dose": "/studies/?modality=MG&dose_min=4.5",
        "studies NM dose": "/studies/?modality=NM&dose_min=700",
        "studies all filters": "/studies/?modality=CT&q=chest&equipment=siemens&age_min=18"
        "&dose_min=300&date_from=2024-01-01",
        "studies by DLP": "/studies/?sort=-dlp",
        "studies by station": "/studies/?sort=station",
        "studies late page": f"/studies/?page={late_study_page}",
        "studies live, unchanged": "/studies/?since=2999-01-01T00:00:00%2B00:00",
        "study CT": f"/studies/{ct.pk}/",
        "study RF": f"/studies/{first['RF']}/",
        "study NM": f"/studies/{first['NM']}/",
        "imports": "/imports/",
        "imports failed": "/imports/?outcome=failed",
        "imports kind": "/imports/?kind=mg_image",
        "imports node": f"/imports/?node={facts['node']}",
        "imports dates": f"/imports/?date_from={day}&date_to={day + dt.timedelta(days=2)}",
        "imports filtered": f"/imports/?outcome=imported&kind=ct_rdsr&node={facts['node']}"
        f"&date_from={day}&date_to={day + dt.timedelta(days=400)}",
        "imports whole UID": f"/imports/?q={_sop_uid(1234)}",
        "imports part of a path": f"/imports/?q={facts['counts']['records'] - 30000:08d}",
        "imports late page": f"/imports/?page={late_import_page}",
        "import failed": f"/imports/{failed}/",
        "import imported": f"/imports/{imported}/",
        "nodes": "/config/dicom/",
        "query history": "/qr/history/",
        "query": f"/qr/{Query.objects.order_by('-pk')[0].pk}/",
    }


def child(studies: int, records: int, repeat: int, only: str, reuse: bool) -> dict[str, Any]:
    """Runs inside a fresh process whose environment selects the database."""
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "doseport.settings")
    os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(50))  # scratch home: sessions
    django.setup()
    from django.conf import settings
    from django.contrib.auth.models import User
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client

    from doseport.auth import set_role

    # No setup_test_environment(): its per-template context copies would be timed too.
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    t0 = time.perf_counter()
    call_command("migrate", verbosity=0)  # on a reused database: builds new indexes
    if reuse:
        facts = _facts()
    else:
        facts = fill(studies, records)
    fill_s = time.perf_counter() - t0
    user, _ = User.objects.get_or_create(username="bench")
    set_role(user, "admin")
    client = Client()
    client.force_login(user)
    urls = _urls(facts)
    if only:
        urls = {k: v for k, v in urls.items() if re.search(only, k)}
    return {
        "vendor": connection.vendor,
        **facts["counts"],
        "fill_s" if not reuse else "migrate_s": round(fill_s, 1),
        "pages": {name: _time(client, url, repeat) for name, url in urls.items()},
    }


def _run_child(env: dict[str, str], args: argparse.Namespace) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, __file__, "--child", "--studies", str(args.studies), "--records",
         str(args.records), "--repeat", str(args.repeat), "--only", args.only,
         *(["--reuse", "yes"] if args.reuse else [])],
        env=env, capture_output=True, text=True, timeout=3600, cwd=REPO,
    )
    if done.returncode != 0:
        raise SystemExit(f"bench child failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _pg_admin(url: str, sql: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--studies", type=int, default=100000,
                        help="studies to create (100000)")
    parser.add_argument("--records", type=int, default=1000000,
                        help="import records to create (1000000)")
    parser.add_argument("--repeat", type=int, default=20, help="timed requests per page (20)")
    parser.add_argument("--only", default="", help="time only the pages whose name matches "
                        "this regular expression (all)")
    database_url = os.environ.get("DATABASE_URL", "")
    parser.add_argument("--backends", default="sqlite,postgresql" if database_url else "sqlite",
                        help="comma list: sqlite, postgresql (default sqlite, and postgresql "
                        "when DATABASE_URL is set)")
    parser.add_argument("--pg-url", default=database_url or PG_URL,
                        help=f"admin URL used to create/drop the scratch database "
                        f"(DATABASE_URL, else {PG_URL})")
    parser.add_argument("--keep", action="store_true",
                        help="keep the SQLite data folder (printed) and the PostgreSQL database "
                        f"{BENCH_DB} for --reuse (removed)")
    parser.add_argument("--reuse", default="", metavar="DIR",
                        help="time the pages on what a --keep run left (SQLite: the data folder "
                        f"DIR; PostgreSQL: {BENCH_DB}; give any DIR), after migrating it (new "
                        "indexes), without filling (fill)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.studies, args.records, args.repeat, args.only,
                               bool(args.reuse))))
        return
    base = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    base["DOSEPORT_LOG_LEVEL"] = "WARNING"
    results = []
    for backend in args.backends.split(","):
        home = args.reuse or tempfile.mkdtemp(prefix=f"doseport-bench-pages-{backend}-")
        env = {**base, "DOSEPORT_HOME": home}
        if backend == "sqlite":
            try:
                results.append({**_run_child(env, args), "home": home})
            finally:
                if not (args.keep or args.reuse):
                    shutil.rmtree(home, ignore_errors=True)
        elif backend == "postgresql":
            if args.reuse:  # a scratch data folder: the database is the kept one
                home = tempfile.mkdtemp(prefix="doseport-bench-pages-postgresql-")
                env["DOSEPORT_HOME"] = home
            else:
                _pg_admin(args.pg_url, f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")
                _pg_admin(args.pg_url, f"CREATE DATABASE {BENCH_DB}")
            try:
                env["DATABASE_URL"] = args.pg_url.rsplit("/", 1)[0] + f"/{BENCH_DB}"
                results.append(_run_child(env, args))
            finally:
                if not (args.keep or args.reuse):
                    _pg_admin(args.pg_url, f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")
                shutil.rmtree(home, ignore_errors=True)
    print(json.dumps({"cpu_count": os.cpu_count(), "results": results}, indent=1))


if __name__ == "__main__":
    main()
