"""Dose insight query times at scale: the dashboard and each chart's data, p50/p95 ms, on
SQLite and PostgreSQL.

Fills a fresh database with N synthetic studies over the last three years (bulk_create):
35 % CT (1-6 acquisitions, a report DLP total on 9 in 10), 35 % DX (1-4 exposures, a report
plane on 7 in 10), 8 % RF (10-60 events, one or two planes with fluoroscopy time and dose at
the reference point), 15 % MG (four views with AGD and compressed thickness, a breast total
per side), 7 % NM (one or two administrations); stations, manufacturers, models, protocols
and study descriptions per modality; import records for the activity figures. Then times
insight.dashboard.build() and every chart builder of insight.charts.CHARTS as the pages
call them (default period: last 30 days), plus the chart page's filter choices, the longer
periods (12 months, all time) and a station filter. PostgreSQL is VACUUM ANALYZEd after the
fill, as autovacuum would.

Run: [DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres] .venv/bin/python
     bench/insight.py [--studies 100000] [--repeat 20] [--backends sqlite,postgresql]
PostgreSQL (when DATABASE_URL is set, or with --backends): a scratch database
`doseport_bench_insight` is created next to that URL's database and dropped afterwards.
Prints one JSON object; the numbers go into docs/PERFORMANCE.md ("Dose insight").
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

BENCH_DB = "doseport_bench_insight"
PG_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
BATCH = 5000
DAYS = 3 * 365
MIX = (("CT", 0.35), ("DX", 0.35), ("RF", 0.08), ("MG", 0.15), ("NM", 0.07))
EQUIPMENT = {
    "CT": [("Siemens", "SOMATOM Force"), ("GE MEDICAL SYSTEMS", "Revolution CT"),
           ("Canon Medical Systems", "Aquilion ONE")],
    "DX": [("Carestream Health", "DRX-Evolution"), ("Philips", "DigitalDiagnost"),
           ("Canon Inc.", "CXDI")],
    "RF": [("Siemens", "Artis zee"), ("Philips", "Azurion")],
    "MG": [("HOLOGIC, Inc.", "Selenia Dimensions"), ("GE MEDICAL SYSTEMS", "Senographe")],
    "NM": [("SIEMENS", "Biograph Vision"), ("GE MEDICAL SYSTEMS", "Discovery MI")],
}
STATIONS = {"CT": 6, "DX": 10, "RF": 4, "MG": 4, "NM": 3}
CT_PROTOCOLS = [f"{part} {kind}" for part in ("Head", "Chest", "Abdomen", "Pelvis", "Spine",
                "Neck", "CAP") for kind in ("routine", "contrast", "low dose", "angio")]
DX_PROTOCOLS = [f"{part} {view}" for part in ("Chest", "Knee", "Hand", "Pelvis", "Spine L",
                "Shoulder") for view in ("PA", "LAT", "AP")]
RF_PROTOCOLS = ["Fluoro low", "Fluoro normal", "Fluoro high", "DSA 2 fps", "DSA 4 fps",
                "Cine 15 fps", "Single shot"]
DESCRIPTIONS = {
    "CT": ["CT head", "CT chest", "CT abdomen pelvis", "CT CAP", "CT angio", "CT spine"],
    "DX": ["XR chest", "XR knee", "XR hand", "XR pelvis", "XR spine"],
    "RF": ["Coronary angiography", "PCI", "Barium swallow", "ERCP", "Embolisation"],
    "MG": ["Screening mammography", "Diagnostic mammography"],
    "NM": ["PET-CT whole body", "Bone scan", "Myocardial perfusion"],
}
AGENTS = ["Fluorodeoxyglucose F^18^", "Technetium Tc^99m^ medronate",
          "Technetium Tc^99m^ tetrofosmin"]
VIEWS = [("cranio-caudal", "L"), ("cranio-caudal", "R"), ("medio-lateral oblique", "L"),
         ("medio-lateral oblique", "R")]


def _modality(rng: random.Random) -> str:
    x, total = rng.random(), 0.0
    for modality, share in MIX:
        total += share
        if x < total:
            return modality
    return "CT"


def _study(rng: random.Random, i: int, today: dt.date) -> Any:
    from dose.models import Study

    modality = _modality(rng)
    station = rng.randrange(STATIONS[modality])
    maker, model = EQUIPMENT[modality][station % len(EQUIPMENT[modality])]
    hour = min(23, max(0, int(rng.gauss(12, 3.5))))
    return Study(
        study_instance_uid=f"1.2.826.0.1.3680043.10.1616.{i}", modality_type=modality,
        study_date=today - dt.timedelta(days=rng.randrange(DAYS)),
        study_time=dt.time(hour, rng.randrange(60)), accession_number=f"ACC{i:08d}",
        study_description=rng.choice(DESCRIPTIONS[modality]),
        manufacturer=maker, manufacturer_model_name=model,
        station_name=f"{modality}{station + 1:02d}", source_sop_instance_uids=[],
        # A report's DLP total on 9 CT studies in 10; the others add up their events.
        dlp_total_mGycm=(rng.lognormvariate(6.2, 0.6)
                         if modality == "CT" and rng.random() < 0.9 else None),
    )


def _children(rng: random.Random, study: Any) -> dict[str, list[Any]]:
    from dose.models import (
        AccumulatedBreast,
        AccumulatedPlane,
        IrradiationEvent,
        RadiopharmaceuticalAdministration,
    )

    out: dict[str, list[Any]] = {"events": [], "planes": [], "breasts": [], "admins": []}
    m = study.modality_type
    if m == "CT":
        for n in range(rng.randint(1, 6)):
            ctdi = rng.lognormvariate(2.3, 0.6)
            out["events"].append(IrradiationEvent(
                study_id=study.pk, ordinal=n, acquisition_protocol=rng.choice(CT_PROTOCOLS),
                ctdivol_mGy=ctdi, dlp_mGycm=ctdi * rng.uniform(15, 60)))
    elif m in ("DX", "RF"):
        count = rng.randint(1, 4) if m == "DX" else rng.randint(10, 60)
        total_dap = 0.0
        for n in range(count):
            dap = rng.lognormvariate(-10.5 if m == "DX" else -9.0, 0.8)
            total_dap += dap
            out["events"].append(IrradiationEvent(
                study_id=study.pk, ordinal=n, dap_Gym2=dap, dose_rp_Gy=dap * 8,
                acquisition_protocol=rng.choice(DX_PROTOCOLS if m == "DX" else RF_PROTOCOLS)))
        if m == "RF" or rng.random() < 0.7:
            for plane in ("Single Plane",) if rng.random() < 0.8 else ("Plane A", "Plane B"):
                out["planes"].append(AccumulatedPlane(
                    study_id=study.pk, plane=plane, dap_total_Gym2=total_dap,
                    dose_rp_total_Gy=total_dap * 8 if m == "RF" else None,
                    total_fluoro_time_s=rng.lognormvariate(5.5, 0.9) if m == "RF" else None))
    elif m == "MG":
        for n, (view, side) in enumerate(VIEWS):
            thickness = rng.uniform(25, 85)
            out["events"].append(IrradiationEvent(
                study_id=study.pk, ordinal=n, image_view=view, laterality_code=side,
                compression_thickness_mm=thickness, agd_mGy=0.4 + thickness * 0.025
                * rng.uniform(0.7, 1.3), acquisition_protocol="Standard screening"))
        for side in ("Left breast", "Right breast"):
            out["breasts"].append(AccumulatedBreast(study_id=study.pk, laterality=side,
                                                    accumulated_agd_mGy=rng.uniform(2, 5)))
    else:
        for n in range(rng.randint(1, 2)):
            out["admins"].append(RadiopharmaceuticalAdministration(
                study_id=study.pk, ordinal=n, radiopharmaceutical_agent=rng.choice(AGENTS),
                administered_activity_MBq=rng.uniform(150, 800)))
    return out


def fill(studies: int) -> dict[str, Any]:
    from django.db import connection
    from django.utils import timezone

    from dose import summary
    from dose.models import (
        AccumulatedBreast,
        AccumulatedPlane,
        IrradiationEvent,
        RadiopharmaceuticalAdministration,
        Study,
    )
    from imports.models import ImportRecord

    rng = random.Random(16)
    today = timezone.localdate()
    counts = {"events": 0, "planes": 0, "breasts": 0, "admins": 0}
    models = {"events": IrradiationEvent, "planes": AccumulatedPlane,
              "breasts": AccumulatedBreast, "admins": RadiopharmaceuticalAdministration}
    for start in range(0, studies, BATCH):
        batch = [_study(rng, i, today) for i in range(start, min(studies, start + BATCH))]
        Study.objects.bulk_create(batch)
        rows: dict[str, list[Any]] = {k: [] for k in counts}
        for study in batch:
            for key, found in _children(rng, study).items():
                rows[key] += found
        for key, found in rows.items():
            models[key].objects.bulk_create(found, batch_size=BATCH)  # type: ignore[attr-defined]
            counts[key] += len(found)
    summary.refresh_all()  # what the import stores per study (dose/summary.py)
    ImportRecord.objects.bulk_create([
        ImportRecord(source="store", outcome="failed" if i % 25 == 0 else "imported",
                     kind="ct_rdsr") for i in range(5000)], batch_size=BATCH)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE")
    return {"studies": Study.objects.count(), **counts}


def _time(call: Callable[[], Any], repeat: int) -> dict[str, Any]:
    call()  # warms the caches
    durations = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        call()
        durations.append(time.perf_counter() - t0)
    durations.sort()
    return {
        "p50_ms": round(statistics.median(durations) * 1000, 1),
        "p95_ms": round(durations[min(len(durations) - 1, int(len(durations) * 0.95))] * 1000, 1),
    }


def timings(repeat: int) -> dict[str, Any]:
    from insight import dashboard, queries
    from insight.charts import CHARTS
    from insight.filters import InsightFilter, period_dates

    out: dict[str, Any] = {}
    # The pages' default period is what the target is for; 12 months and all time are
    # timed fewer times, for information.
    for preset, runs in (("30d", repeat), ("365d", max(3, repeat // 4)), ("all", 3)):
        since, until = period_dates(preset)
        flt = InsightFilter(since=since, until=until)
        times = {"dashboard": _time(lambda f=flt: dashboard.build(f), runs)}  # type: ignore[misc]
        for modality, charts in CHARTS.items():
            mflt = flt.with_(modality=modality)
            for name, build in charts.items():
                times[f"{modality} {name}"] = _time(
                    lambda b=build, f=mflt: b(f, "month"), runs)  # type: ignore[misc]
        out[preset] = times
    since, until = period_dates("30d")
    ct = InsightFilter(modality="CT", since=since, until=until)
    out["extra"] = {
        "CT chart page filter choices": _time(lambda: queries.choices(ct), repeat),
        "CT protocol, one station, 30 days": _time(lambda: CHARTS["CT"]["protocol"](
            ct.with_(station="CT02"), "month"), repeat),
        "CT dlp-time per week, 30 days": _time(lambda: CHARTS["CT"]["dlp-time"](
            ct, "week"), repeat),
    }
    return out


def child(studies: int, repeat: int) -> dict[str, Any]:
    """Runs inside a fresh process whose environment selects the database."""
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "doseport.settings")
    os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(50))
    django.setup()
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", verbosity=0)
    t0 = time.perf_counter()
    facts = fill(studies)
    fill_s = time.perf_counter() - t0
    return {"vendor": connection.vendor, "fill_s": round(fill_s, 1), **facts,
            "timings": timings(repeat)}


def _run_child(env: dict[str, str], studies: int, repeat: int) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, __file__, "--child", "--studies", str(studies), "--repeat", str(repeat)],
        env=env, capture_output=True, text=True, timeout=7200, cwd=REPO,
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
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--studies", type=int, default=100_000,
                        help="synthetic studies to create (100000)")
    parser.add_argument("--repeat", type=int, default=20,
                        help="timed calls per query for the last 30 days (20; 12 months: a "
                        "quarter of it, all time: 3)")
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
        print(json.dumps(child(args.studies, args.repeat)))
        return
    base = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    base["DOSEPORT_LOG_LEVEL"] = "WARNING"
    results = []
    for backend in args.backends.split(","):
        home = tempfile.mkdtemp(prefix=f"doseport-bench-insight-{backend}-")
        env = {**base, "DOSEPORT_HOME": home}
        if backend == "sqlite":
            results.append(_run_child(env, args.studies, args.repeat))
        elif backend == "postgresql":
            _pg_admin(args.pg_url, f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")
            _pg_admin(args.pg_url, f"CREATE DATABASE {BENCH_DB}")
            try:
                env["DATABASE_URL"] = args.pg_url.rsplit("/", 1)[0] + f"/{BENCH_DB}"
                results.append(_run_child(env, args.studies, args.repeat))
            finally:
                _pg_admin(args.pg_url, f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")
    print(json.dumps({"cpu_count": os.cpu_count(), "load": os.getloadavg(),
                      "results": results}, indent=1))


if __name__ == "__main__":
    main()
