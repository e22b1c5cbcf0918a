"""CT RDSR import rate: reports/s and SQL queries per report, on SQLite and PostgreSQL.

Builds N synthetic CT RDSRs (unique UIDs, 4 events each, tests/builders/rdsr.py), then
imports them one by one through `imports.service.import_file` (the worker's code path:
read, classify, extract, one transaction, ImportRecord) into a fresh database. Queries per
report are counted with CaptureQueriesContext on extra reports after the timed run.

Run: .venv/bin/python bench/import_rate.py [--reports 2000] [--backends sqlite,postgresql]
     [--pg-url postgresql://postgres@127.0.0.1:5432/postgres]
PostgreSQL: a scratch database `doseport_bench` is created and dropped afterwards.
Prints one JSON object; the numbers go into docs/PERFORMANCE.md ("Import").
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

BENCH_DB = "doseport_bench"
QUERY_SAMPLE = 50


def _generate(folder: Path, count: int) -> list[Path]:
    from tests.builders.rdsr import CtEvent, build_ct_rdsr, write

    paths = []
    for i in range(count):
        events = [CtEvent(protocol=f"Protocol {j}", dlp=100.0 + j) for j in range(4)]
        paths.append(write(build_ct_rdsr(events), folder / f"ct{i:05d}.dcm"))
    return paths


def child(reports: int) -> dict[str, Any]:
    """Runs inside a fresh process whose environment selects the database."""
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "doseport.settings")
    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from imports.models import Outcome, Source
    from imports.service import import_file

    call_command("migrate", verbosity=0)
    folder = Path(tempfile.mkdtemp(prefix="doseport-bench-files-"))
    paths = _generate(folder, reports + QUERY_SAMPLE)
    timed, sampled = paths[:reports], paths[reports:]
    durations = []
    started = time.perf_counter()
    for path in timed:
        t0 = time.perf_counter()
        record = import_file(path, Source.FILE, keep=True)
        durations.append(time.perf_counter() - t0)
        if record.outcome != Outcome.IMPORTED:
            raise SystemExit(f"bench import failed: {record.outcome} {record.error}")
    elapsed = time.perf_counter() - started
    with CaptureQueriesContext(connection) as ctx:
        for path in sampled:
            import_file(path, Source.FILE, keep=True)
    duplicate_queries = 0
    with CaptureQueriesContext(connection) as dup:
        import_file(sampled[0], Source.FILE, keep=True)
    duplicate_queries = len(dup.captured_queries)
    durations.sort()
    return {
        "vendor": connection.vendor,
        "reports": reports,
        "seconds": round(elapsed, 2),
        "reports_per_s": round(reports / elapsed, 1),
        "p50_ms": round(statistics.median(durations) * 1000, 2),
        "p95_ms": round(durations[int(len(durations) * 0.95)] * 1000, 2),
        "queries_per_report": round(len(ctx.captured_queries) / len(sampled), 1),
        "queries_per_duplicate": duplicate_queries,
    }


def _run_child(env: dict[str, str], reports: int) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, __file__, "--child", "--reports", str(reports)],
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
    parser.add_argument("--reports", type=int, default=2000, help="reports to import (2000)")
    parser.add_argument("--backends", default="sqlite,postgresql",
                        help="comma list: sqlite, postgresql (default both)")
    parser.add_argument("--pg-url", default="postgresql://postgres@127.0.0.1:5432/postgres",
                        help="admin URL used to create/drop the scratch database")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.reports)))
        return
    base = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    base["DOSEPORT_LOG_LEVEL"] = "WARNING"
    results = []
    for backend in args.backends.split(","):
        home = tempfile.mkdtemp(prefix=f"doseport-bench-{backend}-")
        env = {**base, "DOSEPORT_HOME": home}
        if backend == "sqlite":
            results.append(_run_child(env, args.reports))
        elif backend == "postgresql":
            _pg_admin(args.pg_url, f"DROP DATABASE IF EXISTS {BENCH_DB}")
            _pg_admin(args.pg_url, f"CREATE DATABASE {BENCH_DB}")
            try:
                env["DATABASE_URL"] = args.pg_url.rsplit("/", 1)[0] + f"/{BENCH_DB}"
                results.append(_run_child(env, args.reports))
            finally:
                _pg_admin(args.pg_url, f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")
    print(json.dumps({"cpu_count": os.cpu_count(), "results": results}, indent=1))


if __name__ == "__main__":
    main()
