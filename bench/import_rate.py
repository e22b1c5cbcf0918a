"""Import rate: reports/s and SQL queries per report, on SQLite and PostgreSQL.

Workloads, each in a fresh process and database, all through `imports.service.import_file`
(the worker's code path: read, classify, extract, one transaction, ImportRecord):

- ct: N synthetic CT RDSRs (unique UIDs, 4 events each, tests/builders/rdsr.py). Queries
  per report are counted with CaptureQueriesContext on extra reports after the timed run.
- mix: the objects of ../shared/samples/openrem (every kind: CT, RF, DX, MG, NM; images
  and reports) imported round-robin, each copy with fresh UIDs (Study, Series, SOP
  Instance and every UIDREF of the content tree such as Irradiation Event UIDs), so that
  every import is a new object. UIDs are replaced in the file's bytes by new UIDs of the
  same length, which keeps every length field valid whatever the encoding.
- large: a 150-event fluoroscopy projection RDSR (implicit VR, undefined lengths, no
  Specific Character Set, as modalities write them) imported --large-repeat times: CPU s.

Run: .venv/bin/python bench/import_rate.py [--reports 2000] [--backends sqlite,postgresql]
     [--workloads ct,mix,large] [--mix-rounds 10] [--large-repeat 10]
     [--pg-url postgresql://postgres@127.0.0.1:5432/postgres]
PostgreSQL: a scratch database `doseport_bench` is created and dropped afterwards.
Prints one JSON object; the numbers go into docs/PERFORMANCE.md ("Import").
"""

from __future__ import annotations

import argparse
import json
import os
import random
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
LARGE_EVENTS = 150


def _generate(folder: Path, count: int) -> list[Path]:
    from tests.builders.rdsr import CtEvent, build_ct_rdsr, write

    paths = []
    for i in range(count):
        events = [CtEvent(protocol=f"Protocol {j}", dlp=100.0 + j) for j in range(4)]
        paths.append(write(build_ct_rdsr(events), folder / f"ct{i:05d}.dcm"))
    return paths


def _setup() -> None:
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "doseport.settings")
    django.setup()
    from django.core.management import call_command

    from imports.reading import configure_pydicom

    call_command("migrate", verbosity=0)
    configure_pydicom()  # as the worker does


def child(workload: str, args: argparse.Namespace) -> dict[str, Any]:
    """Runs inside a fresh process whose environment selects the database."""
    _setup()
    if workload == "mix":
        return mix(args.mix_rounds)
    if workload == "large":
        return large(args.large_repeat)
    return ct(args.reports)


def ct(reports: int) -> dict[str, Any]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from imports.models import Outcome, Source
    from imports.service import import_file

    folder = Path(tempfile.mkdtemp(prefix="doseport-bench-files-"))
    paths = _generate(folder, reports + QUERY_SAMPLE)
    timed, sampled = paths[:reports], paths[reports:]
    durations = []
    cpu, started = time.process_time(), time.perf_counter()
    for path in timed:
        t0 = time.perf_counter()
        record = import_file(path, Source.FILE, keep=True)
        durations.append(time.perf_counter() - t0)
        if record.outcome != Outcome.IMPORTED:
            raise SystemExit(f"bench import failed: {record.outcome} {record.error}")
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    with CaptureQueriesContext(connection) as ctx:
        for path in sampled:
            import_file(path, Source.FILE, keep=True)
    duplicate_queries = 0
    with CaptureQueriesContext(connection) as dup:
        import_file(sampled[0], Source.FILE, keep=True)
    duplicate_queries = len(dup.captured_queries)
    durations.sort()
    return {
        "workload": "ct",
        "vendor": connection.vendor,
        "reports": reports,
        "seconds": round(elapsed, 2),
        "reports_per_s": round(reports / elapsed, 1),
        "cpu_ms_per_report": round(cpu / reports * 1000, 2),
        "reports_per_cpu_s": round(reports / cpu, 1),
        "p50_ms": round(statistics.median(durations) * 1000, 2),
        "p95_ms": round(durations[int(len(durations) * 0.95)] * 1000, 2),
        "queries_per_report": round(len(ctx.captured_queries) / len(sampled), 1),
        "queries_per_duplicate": duplicate_queries,
    }


def _fresh_uid(old: str, rng: random.Random) -> str:
    """A new UID of the same length (2.25.<digits>; at least 8 characters)."""
    digits = max(len(old) - 5, 3)
    return "2.25." + str(rng.randrange(10 ** (digits - 1), 10 ** digits))


def _uids(path: Path) -> set[str]:
    """UIDs to renew: the instance's own, event UIDs in the header and every UIDREF."""
    from imports.extractors.sr import tree
    from imports.reading import read_file

    ds = read_file(path)
    found = {str(ds.get(k, "")) for k in ("StudyInstanceUID", "SeriesInstanceUID",
                                           "SOPInstanceUID")}
    found.update(str(uid) for uid in (ds.get("IrradiationEventUID") or []) if uid)
    if "ContentSequence" in ds:
        found.update(node.text for node in tree(ds).walk() if node.vt == "UIDREF")
    return {uid for uid in found if len(uid) >= 8}


def _mix_files(folder: Path, rounds: int) -> list[Path]:
    """rounds x every sample, round-robin, each copy with fresh UIDs."""
    samples = sorted((Path(os.environ.get("DOSEPORT_SAMPLES", REPO.parent / "shared" /
                                          "samples")) / "openrem").glob("*.dcm"))
    if not samples:
        raise SystemExit("no sample objects (set DOSEPORT_SAMPLES)")
    rng = random.Random(11)
    originals = [(p, p.read_bytes(), sorted(_uids(p), key=len, reverse=True)) for p in samples]
    paths = []
    for r in range(rounds):
        for i, (sample, data, uids) in enumerate(originals):
            for uid in uids:  # longest first: a UID may be the prefix of another
                data = data.replace(uid.encode(), _fresh_uid(uid, rng).encode())
            path = folder / f"{r:03d}-{i:02d}-{sample.name}"
            path.write_bytes(data)
            paths.append(path)
    return paths


def mix(rounds: int) -> dict[str, Any]:
    from collections import Counter

    from django.db import connection

    from imports.models import Source
    from imports.service import import_file

    folder = Path(tempfile.mkdtemp(prefix="doseport-bench-mix-"))
    paths = _mix_files(folder, rounds)
    outcomes: Counter[str] = Counter()
    cpu, started = time.process_time(), time.perf_counter()
    for path in paths:
        outcomes[import_file(path, Source.FILE, keep=True).outcome] += 1
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    if outcomes["failed"] or outcomes["duplicate"]:
        raise SystemExit(f"bench mix: unexpected outcomes {dict(outcomes)}")
    return {
        "workload": "mix",
        "vendor": connection.vendor,
        "objects": len(paths),
        "distinct_samples": len(paths) // rounds,
        "seconds": round(elapsed, 2),
        "objects_per_s": round(len(paths) / elapsed, 1),
        "cpu_s": round(cpu, 2),
        "objects_per_cpu_s": round(len(paths) / cpu, 1),
        "outcomes": dict(outcomes),
    }


def large(repeat: int) -> dict[str, Any]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from imports.models import Outcome, Source
    from imports.service import import_file
    from tests.builders.rdsr import Header, ProjectionEvent, build_projection_rdsr, write

    folder = Path(tempfile.mkdtemp(prefix="doseport-bench-large-"))
    cpu: list[float] = []
    queries = 0
    for i in range(repeat + 1):
        events = [ProjectionEvent(event_type="Fluoroscopy", protocol=f"Run {j}")
                  for j in range(LARGE_EVENTS)]
        ds = build_projection_rdsr(events, header=Header(charset=None),
                                   device_type="Fluoroscopy")
        path = write(ds, folder / f"rf{i:03d}.dcm", implicit_vr=True, undefined_lengths=True)
        t0 = time.process_time()
        with CaptureQueriesContext(connection) as ctx:
            record = import_file(path, Source.FILE, keep=True)
        if record.outcome != Outcome.IMPORTED:
            raise SystemExit(f"bench large failed: {record.outcome} {record.error}")
        if i:  # the first import warms caches (imports, Django field lookups)
            cpu.append(time.process_time() - t0)
            queries = len(ctx.captured_queries)
    return {
        "workload": "large",
        "vendor": connection.vendor,
        "events": LARGE_EVENTS,
        "imports": repeat,
        "cpu_s_median": round(statistics.median(cpu), 4),
        "cpu_s_max": round(max(cpu), 4),
        "queries": queries,
    }


def _run_child(env: dict[str, str], workload: str, args: argparse.Namespace) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, __file__, "--child", workload, "--reports", str(args.reports),
         "--mix-rounds", str(args.mix_rounds), "--large-repeat", str(args.large_repeat)],
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


def _run_backend(
    backend: str, workload: str, base: dict[str, str], args: argparse.Namespace
) -> dict[str, Any]:
    home = tempfile.mkdtemp(prefix=f"doseport-bench-{backend}-")
    env = {**base, "DOSEPORT_HOME": home}
    if backend != "postgresql":
        return _run_child(env, workload, args)
    _pg_admin(args.pg_url, f"DROP DATABASE IF EXISTS {BENCH_DB}")
    _pg_admin(args.pg_url, f"CREATE DATABASE {BENCH_DB}")
    try:
        env["DATABASE_URL"] = args.pg_url.rsplit("/", 1)[0] + f"/{BENCH_DB}"
        return _run_child(env, workload, args)
    finally:
        _pg_admin(args.pg_url, f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reports", type=int, default=2000, help="reports to import (2000)")
    parser.add_argument("--backends", default="sqlite,postgresql",
                        help="comma list: sqlite, postgresql (default both)")
    parser.add_argument("--pg-url", default="postgresql://postgres@127.0.0.1:5432/postgres",
                        help="admin URL used to create/drop the scratch database")
    parser.add_argument("--workloads", default="ct,mix,large",
                        help="comma list: ct, mix, large (default all three)")
    parser.add_argument("--mix-rounds", type=int, default=10,
                        help="mix: rounds over the sample objects (10)")
    parser.add_argument("--large-repeat", type=int, default=10,
                        help="large: timed imports of the 150-event report (10)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args)))
        return
    base = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    base["DOSEPORT_LOG_LEVEL"] = "WARNING"
    results = []
    for backend in args.backends.split(","):
        for workload in args.workloads.split(","):
            results.append(_run_backend(backend, workload, base, args))
    print(json.dumps({"cpu_count": os.cpu_count(), "results": results}, indent=1))


if __name__ == "__main__":
    main()
