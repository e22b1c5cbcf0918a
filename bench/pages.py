"""Imports page response time at scale: p50/p95 ms per page, on SQLite and PostgreSQL.

Fills a fresh database with N ImportRecords (bulk_create; 5 % failed and kept in
quarantine, half of those retried, store nodes, kinds, a Study for every fourth imported
record), then times GET requests through Django's test Client, logged in as a viewer:
the first page, a filtered page (outcome + kind + node + dates), a text search and a late
page. Queries per request are counted with CaptureQueriesContext. Timed without Django's
test instrumentation (setup_test_environment), as in production; PostgreSQL is VACUUM
ANALYZEd after the fill, as autovacuum would.

Run: [DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres] .venv/bin/python
     bench/pages.py [--records 20000] [--repeat 20] [--backends sqlite,postgresql]
PostgreSQL (when DATABASE_URL is set, or with --backends): a scratch database
`doseport_bench_pages` is created next to that URL's database and dropped afterwards.
Prints one JSON object; the numbers go into docs/PERFORMANCE.md ("Imports page").
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

BENCH_DB = "doseport_bench_pages"
PG_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
BATCH = 2000
ROW = re.compile(rb'<tr class="[^"]*outcome-')  # one per listed record
KINDS = ("ct_rdsr", "projection_rdsr", "dx_image", "mg_image", "nm_rdsr")


def _outcome(i: int) -> str:
    if i % 20 == 0:
        return "failed"
    if i % 7 == 0:
        return "duplicate"
    if i % 11 == 0:
        return "not_importable"
    return "imported"


def fill(records: int) -> dict[str, Any]:
    """N ImportRecords one second apart (plus retries), and the studies some of them made."""
    from django.db import connection
    from django.db.models import F

    from dose.models import Study
    from imports.models import ImportRecord
    from nodes.models import StoreNode

    nodes = [
        StoreNode.objects.create(name=f"node{n}", ae_title=f"NODE{n}", port=11200 + n)
        for n in range(3)
    ]
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    rows, studies = [], []
    for i in range(records):
        outcome = _outcome(i)
        node = nodes[i % 3] if i % 4 else None
        study_uid = f"1.2.826.0.1.3680043.10.543.{i}.7" if outcome == "imported" else ""
        rows.append(ImportRecord(
            sop_instance_uid=f"1.2.826.0.1.3680043.10.543.{i}.{i * 7919 % 100003}.1",
            sop_class_uid="1.2.840.10008.5.1.4.1.1.88.67", study_instance_uid=study_uid,
            kind=KINDS[i % len(KINDS)], source="store" if node else "file", store_node=node,
            path=f"/var/lib/doseport/spool/{i % 3}/{i:08d}.dcm",
            kept_path=f"/var/lib/doseport/quarantine/{i:08d}.dcm" if outcome == "failed" else "",
            outcome=outcome, error="cannot read DICOM file" if outcome == "failed" else "",
            received_at=start + dt.timedelta(seconds=i), duration_ms=12.5,
        ))
        if outcome == "failed" and i % 40 == 0:
            rows.append(ImportRecord(
                source="file", kind=KINDS[i % len(KINDS)], outcome="imported",
                path=f"/var/lib/doseport/quarantine/{i:08d}.dcm",
                received_at=start + dt.timedelta(seconds=i, milliseconds=500),
            ))
        if study_uid and i % 4 == 0:
            studies.append(Study(study_instance_uid=study_uid, modality_type="CT"))
    for b in range(0, len(rows), BATCH):
        ImportRecord.objects.bulk_create(rows[b:b + BATCH])
    Study.objects.bulk_create(studies, batch_size=BATCH)
    # created_at is auto_now_add: move it to the synthetic timeline in one statement.
    ImportRecord.objects.update(created_at=F("received_at") + dt.timedelta(seconds=1))
    ImportRecord.objects.filter(source="file").update(received_at=None)
    if connection.vendor == "postgresql":
        # What autovacuum does soon after a bulk load: without statistics the planner takes
        # a 20,000-row table for a few hundred rows, and without the visibility map a COUNT
        # reads the table instead of an index.
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE")
    return {"node": nodes[1].pk, "start": start}


def _time(client: Any, url: str, repeat: int) -> dict[str, Any]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url)  # also warms the caches
    queries = len(ctx.captured_queries)  # read now: the next request clears the log
    if response.status_code != 200:
        raise SystemExit(f"bench: {url} answered {response.status_code}")
    durations = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        client.get(url)
        durations.append(time.perf_counter() - t0)
    durations.sort()
    return {
        "url": url,
        "p50_ms": round(statistics.median(durations) * 1000, 1),
        "p95_ms": round(durations[min(len(durations) - 1, int(len(durations) * 0.95))] * 1000, 1),
        "queries": queries,
        "rows": len(ROW.findall(response.content)),
    }


def child(records: int, repeat: int) -> dict[str, Any]:
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
    from imports.models import ImportRecord

    # No setup_test_environment(): its per-template context copies would be timed too.
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    call_command("migrate", verbosity=0)
    t0 = time.perf_counter()
    facts = fill(records)
    fill_s = time.perf_counter() - t0
    user = User.objects.create_user("bench", password="bench-pw")
    set_role(user, "viewer")
    client = Client()
    client.force_login(user)
    day = facts["start"].date()
    pages = -(-ImportRecord.objects.count() // 50)
    urls = {
        "first page": "/imports/",
        "filtered": f"/imports/?outcome=imported&kind=ct_rdsr&node={facts['node']}"
        f"&date_from={day}&date_to={day + dt.timedelta(days=400)}",
        "text search": "/imports/?q=00001234",
        "late page": f"/imports/?page={max(1, pages - 1)}",
    }
    return {
        "vendor": connection.vendor,
        "records": ImportRecord.objects.count(),
        "fill_s": round(fill_s, 1),
        "pages": {name: _time(client, url, repeat) for name, url in urls.items()},
    }


def _run_child(env: dict[str, str], records: int, repeat: int) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, __file__, "--child", "--records", str(records), "--repeat", str(repeat)],
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
    parser.add_argument("--records", type=int, default=20000,
                        help="import records to create (20000)")
    parser.add_argument("--repeat", type=int, default=20, help="timed requests per page (20)")
    database_url = os.environ.get("DATABASE_URL", "")
    parser.add_argument("--backends", default="sqlite,postgresql" if database_url else "sqlite",
                        help="comma list: sqlite, postgresql (default sqlite, and postgresql "
                        "when DATABASE_URL is set)")
    parser.add_argument("--pg-url", default=database_url or PG_URL,
                        help=f"admin URL used to create/drop the scratch database "
                        f"(DATABASE_URL, else {PG_URL})")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.records, args.repeat)))
        return
    base = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    base["DOSEPORT_LOG_LEVEL"] = "WARNING"
    results = []
    for backend in args.backends.split(","):
        home = tempfile.mkdtemp(prefix=f"doseport-bench-pages-{backend}-")
        env = {**base, "DOSEPORT_HOME": home}
        if backend == "sqlite":
            results.append(_run_child(env, args.records, args.repeat))
        elif backend == "postgresql":
            _pg_admin(args.pg_url, f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")
            _pg_admin(args.pg_url, f"CREATE DATABASE {BENCH_DB}")
            try:
                env["DATABASE_URL"] = args.pg_url.rsplit("/", 1)[0] + f"/{BENCH_DB}"
                results.append(_run_child(env, args.records, args.repeat))
            finally:
                _pg_admin(args.pg_url, f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")
    print(json.dumps({"cpu_count": os.cpu_count(), "results": results}, indent=1))


if __name__ == "__main__":
    main()
