"""Web export speed: CSV and XLSX, event and study layouts, over N synthetic events.

Fills a fresh SQLite database (a temporary DOSEPORT_HOME) with bulk_create: a mix of CT
(4 acquisitions, one X-ray source each), DX (2 exposures, one filter each), RF (25 events,
one accumulated plane), MG (4 views, two breasts) and NM (one administration) studies,
about 40/20/20/15/5 % of the events. Then times dose.web_export.write_export() into a
file for each format and layout, as the worker runs it (sizing query included), and
re-reads the row count of each file.

Run: .venv/bin/python bench/export.py [--events 100000] [--only xlsx-event]
Prints one JSON object; the numbers go into docs/PERFORMANCE.md ("Exports").
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
BATCH = 5000
# modality -> (share of events, events per study)
MIX = {"CT": (0.40, 4), "DX": (0.20, 2), "RF": (0.20, 25), "MG": (0.15, 4), "NM": (0.05, 1)}


def setup(home: Path) -> None:
    os.environ.update(DOSEPORT_HOME=str(home), DOSEPORT_LOG_LEVEL="WARNING",
                      DJANGO_SETTINGS_MODULE="doseport.settings")
    for name in ("DATABASE_URL", "REDIS_URL", "DOSEPORT_SQLITE"):
        os.environ.pop(name, None)
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    from lib.private import prepare_home

    prepare_home(home)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def _event(study: Any, modality: str, n: int, start: dt.datetime) -> Any:
    from dose.models import IrradiationEvent

    common = {"study": study, "ordinal": n,
              "irradiation_event_uid": f"{study.study_instance_uid}.{n}",
              "date_time_started": start + dt.timedelta(seconds=30 * n)}
    if modality == "CT":
        return IrradiationEvent(**common, acquisition_protocol=f"Thorax {n % 3}",
                                ct_acquisition_type="Spiral Acquisition", ctdivol_mGy=8.0 + n,
                                dlp_mGycm=300.0 + 10 * n, scanning_length_mm=350.0,
                                pitch_factor=0.9, number_of_xray_sources=1,
                                ctdiw_phantom_type="IEC Body Dosimetry Phantom")
    if modality == "MG":
        return IrradiationEvent(**common, acquisition_protocol="Standard screening",
                                agd_mGy=1.2 + n / 10, laterality="Left" if n % 2 else "Right",
                                laterality_code="L" if n % 2 else "R",
                                image_view="cranio-caudal", compression_thickness_mm=52.0,
                                kvp_kV=29.0, exposure_uAs=90000.0, dap_Gym2=None)
    plane = "Plane A" if modality == "RF" else "Single Plane"
    return IrradiationEvent(**common, acquisition_protocol=f"{modality} protocol {n % 4}",
                            irradiation_event_type="Fluoroscopy" if modality == "RF" else
                            "Stationary Acquisition", acquisition_plane=plane,
                            dap_Gym2=2.5e-5 * (n + 1), dose_rp_Gy=1.0e-3 * (n + 1),
                            kvp_kV=75.0, exposure_time_ms=120.0, exposure_uAs=2500.0,
                            number_of_pulses=15.0 if modality == "RF" else None)


def fill(total_events: int) -> dict[str, int]:
    """bulk_create studies of each modality until their share of `total_events` is made."""
    from django.db import transaction

    from dose import summary
    from dose.models import (
        AccumulatedBreast,
        AccumulatedPlane,
        IrradiationEvent,
        RadiopharmaceuticalAdministration,
        Study,
        XrayFilter,
        XraySource,
    )

    counts: dict[str, int] = {}
    day0 = dt.date(2025, 1, 1)
    serial = 0
    for modality, (share, per_study) in MIX.items():
        studies_needed = max(1, round(total_events * share / per_study))
        counts[modality] = studies_needed * per_study
        for first in range(0, studies_needed, BATCH // per_study or 1):
            size = min(BATCH // per_study or 1, studies_needed - first)
            with transaction.atomic():
                studies = []
                for i in range(size):
                    serial += 1
                    date = day0 + dt.timedelta(days=serial % 365)
                    studies.append(Study(
                        study_instance_uid=f"1.2.826.0.1.3680043.10.99.{serial}",
                        modality_type=modality, study_date=date, study_time=dt.time(9, serial % 60),
                        accession_number=f"ACC{serial:08d}",
                        study_description=f"{modality} examination {i % 7}",
                        manufacturer="Bench", manufacturer_model_name="Model 1",
                        station_name=f"{modality}STATION{serial % 3}", patient_sex="F",
                        patient_age="052Y", patient_age_decimal_years=52.3,
                        source_sop_instance_uids=[f"1.2.826.0.1.3680043.10.98.{serial}"],
                        dlp_total_mGycm=1300.0 if modality == "CT" else None,
                    ))
                Study.objects.bulk_create(studies)
                start = dt.datetime(2025, 1, 1, 9, 0, tzinfo=dt.UTC)
                if modality == "NM":
                    RadiopharmaceuticalAdministration.objects.bulk_create([
                        RadiopharmaceuticalAdministration(
                            study=s, event_uid=f"{s.study_instance_uid}.1",
                            radiopharmaceutical_agent="Fluorodeoxyglucose F^18^",
                            radionuclide="^18^F", administered_activity_MBq=250.0,
                            radiopharmaceutical_start_datetime=start, from_report=True)
                        for s in studies
                    ])
                    continue
                events = IrradiationEvent.objects.bulk_create(
                    [_event(s, modality, n, start) for s in studies for n in range(per_study)]
                )
                if modality == "CT":
                    XraySource.objects.bulk_create(
                        [XraySource(event=e, kvp_kV=120.0, tube_current_mA=210.0) for e in events]
                    )
                if modality == "DX":
                    XrayFilter.objects.bulk_create([
                        XrayFilter(event=e, material="Copper", thickness_min_mm=0.1,
                                   thickness_max_mm=0.1) for e in events
                    ])
                if modality == "RF":
                    AccumulatedPlane.objects.bulk_create([
                        AccumulatedPlane(study=s, plane="Plane A", dap_total_Gym2=8.1e-3,
                                         dose_rp_total_Gy=0.3, total_fluoro_time_s=420.0)
                        for s in studies
                    ])
                if modality == "MG":
                    AccumulatedBreast.objects.bulk_create([
                        AccumulatedBreast(study=s, laterality=side, accumulated_agd_mGy=2.6)
                        for s in studies for side in ("Left breast", "Right breast")
                    ])
    summary.refresh_all()  # what the import stores per study (dose/summary.py)
    return counts


def rows_in(path: Path, fmt: str) -> int:
    """Data rows, read back (openpyxl, read-only) to show the file is whole."""
    if fmt == "xlsx":
        import openpyxl

        book = openpyxl.load_workbook(path, read_only=True)
        return sum(ws.max_row - 1 for ws in book.worksheets)
    if path.suffix == ".zip":
        import zipfile

        with zipfile.ZipFile(path) as archive:
            return sum(archive.read(n).count(b"\n") - 1 for n in archive.namelist())
    with path.open("rb") as handle:
        return sum(1 for _ in handle) - 1


def run(home: Path, which: list[str]) -> dict[str, Any]:
    from dose.queries import StudyFilter
    from dose.web_export import ExportSpec, export_size, write_export

    results: dict[str, Any] = {}
    size = export_size(StudyFilter())
    results["studies"], results["events"] = size.studies, size.events
    for name in which:
        fmt, layout = name.split("-")
        spec = ExportSpec(StudyFilter(), fmt, layout)
        path = home / f"bench-{name}.{spec.extension}"
        started, cpu = time.perf_counter(), time.process_time()
        with path.open("wb") as out:
            rows = write_export(spec, out)
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
        results[name] = {
            "seconds": round(seconds, 2), "cpu_seconds": round(cpu, 2), "rows": rows,
            # The machine's load: on a shared machine CPU time grows with it too.
            "load_average_1m": round(os.getloadavg()[0], 1),
            "rows_read_back": rows_in(path, fmt),
            "bytes": path.stat().st_size,
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        }
        print(name, results[name], file=sys.stderr, flush=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000, help="default 100000")
    parser.add_argument("--only", action="append", default=[],
                        choices=["csv-event", "xlsx-event", "csv-study", "xlsx-study"],
                        help="run only these (repeatable); default all four")
    args = parser.parse_args()
    which = args.only or ["csv-event", "xlsx-event", "csv-study", "xlsx-study"]
    with tempfile.TemporaryDirectory(prefix="doseport-bench-export-") as tmp:
        home = Path(tmp)
        setup(home)
        started = time.perf_counter()
        made = fill(args.events)
        fill_s = time.perf_counter() - started
        print(f"filled {sum(made.values())} events in {fill_s:.1f} s", file=sys.stderr)
        result = {"events_made": made, "fill_seconds": round(fill_s, 1), **run(home, which)}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
