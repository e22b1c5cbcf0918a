"""`doseport export studies`: JSON valid against dose/schema/studies-v1.json, CSV, filters."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test.utils import CaptureQueriesContext

from dose.export import CSV_COLUMNS
from dose.models import (
    AccumulatedBreast,
    AccumulatedPlane,
    IrradiationEvent,
    RadiopharmaceuticalAdministration,
    Study,
    XrayFilter,
    XraySource,
)
from tests.conftest import REPO, doseport_cmd

SCHEMA = json.loads((REPO / "dose" / "schema" / "studies-v1.json").read_text())
_uid = iter(range(1, 100_000))


def uid() -> str:
    return f"1.2.826.0.1.3680043.10.1.{next(_uid)}"


def ct_study(date: str = "2024-03-01", station: str = "CT1", events: int = 2) -> Study:
    study = Study.objects.create(
        study_instance_uid=uid(), modality_type=Study.CT, study_date=dt.date.fromisoformat(date),
        study_time=dt.time(9, 30, 5), accession_number="ACC" + date, station_name=station,
        manufacturer="Siemens", patient_sex="F", patient_age="045Y",
        source_sop_instance_uids=[uid()], dlp_total_mGycm=120.5 * events,
    )
    for n in range(events):
        event = IrradiationEvent.objects.create(
            study=study, ordinal=n, irradiation_event_uid=uid(),
            date_time_started=dt.datetime(2024, 3, 1, 9, 31, n, tzinfo=dt.UTC),
            acquisition_protocol=f"Thorax {n}", ct_acquisition_type="Spiral Acquisition",
            ctdivol_mGy=8.25, dlp_mGycm=120.5, number_of_xray_sources=1,
        )
        XraySource.objects.create(event=event, kvp_kV=120, tube_current_mA=200)
    return study


def dx_study(date: str = "2024-03-02") -> Study:
    study = Study.objects.create(
        study_instance_uid=uid(), modality_type=Study.DX, study_date=dt.date.fromisoformat(date),
        station_name="XR2", source_sop_instance_uids=[uid()],
    )
    event = IrradiationEvent.objects.create(
        study=study, irradiation_event_uid=uid(), dap_Gym2=1.5e-5, kvp_kV=70,
        acquisition_plane="Single Plane",
    )
    XrayFilter.objects.create(event=event, material="Copper", thickness_min_mm=0.1,
                              thickness_max_mm=0.1)
    AccumulatedPlane.objects.create(study=study, plane="Single Plane", dap_total_Gym2=1.5e-5)
    return study


def mg_study() -> Study:
    study = Study.objects.create(
        study_instance_uid=uid(), modality_type=Study.MG, study_date=dt.date(2024, 3, 3),
        source_sop_instance_uids=[uid()],
    )
    for side in ("L", "R"):
        IrradiationEvent.objects.create(study=study, irradiation_event_uid=uid(), agd_mGy=1.25,
                                        laterality=side, image_view="cranio-caudal")
        AccumulatedBreast.objects.create(study=study, laterality=side, accumulated_agd_mGy=1.25)
    return study


def nm_study() -> Study:
    study = Study.objects.create(
        study_instance_uid=uid(), modality_type=Study.NM, study_date=dt.date(2024, 3, 4),
        source_sop_instance_uids=[uid()],
    )
    RadiopharmaceuticalAdministration.objects.create(
        study=study, radiopharmaceutical_agent="Fluorodeoxyglucose F^18^", radionuclide="^18^F",
        administered_activity_MBq=250.0,
        radiopharmaceutical_start_datetime=dt.datetime(2024, 3, 4, 8, 0, tzinfo=dt.UTC),
    )
    return study


def export(*args: str) -> str:
    out = io.StringIO()
    call_command("export", "studies", *args, stdout=out)
    return out.getvalue()


def export_json(*args: str) -> dict[str, Any]:
    document = json.loads(export("--format", "json", *args))
    jsonschema.validate(document, SCHEMA)
    return document


@pytest.mark.django_db
def test_it_exports_every_modality_valid_against_the_schema() -> None:
    studies = [ct_study(), dx_study(), mg_study(), nm_study()]
    document = export_json()
    assert document["schema"] == "doseport.studies/1"
    got = {s["study_instance_uid"]: s for s in document["studies"]}
    assert set(got) == {s.study_instance_uid for s in studies}
    ct = got[studies[0].study_instance_uid]
    assert ct["study_date"] == "2024-03-01" and ct["study_time"] == "09:30:05"
    assert [e["ctdivol_mGy"] for e in ct["events"]] == [8.25, 8.25]
    assert ct["events"][0]["date_time_started"] == "2024-03-01T09:31:00"
    assert ct["events"][0]["xray_sources"][0]["kvp_kV"] == 120
    assert ct["totals"]["dlp_total_mGycm"] == 241.0
    assert got[studies[2].study_instance_uid]["totals"]["accumulated_agd_mGy"] == {
        "L": 1.25, "R": 1.25,
    }
    nm = got[studies[3].study_instance_uid]
    assert nm["events"][0]["administered_activity_MBq"] == 250.0


@pytest.mark.django_db
def test_it_writes_null_for_absent_values_never_empty_strings() -> None:
    dx_study()
    study = export_json()["studies"][0]
    assert study["accession_number"] is None
    assert study["patient_age"] is None
    assert study["events"][0]["ctdivol_mGy"] is None
    assert study["totals"]["dlp_total_mGycm"] is None
    text = export("--format", "json")
    assert '""' not in text


def test_it_rejects_what_the_schema_forbids() -> None:
    """The schema itself must be able to fail: empty strings and missing keys are invalid."""
    good = {"schema": "doseport.studies/1", "studies": []}
    jsonschema.validate(good, SCHEMA)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**good, "schema": "doseport.studies/2"}, SCHEMA)
    study = {
        "study_instance_uid": "1.2.3", "modality_type": "CT", "study_date": "2024-01-01",
        "events": [], "totals": {},
    }
    with pytest.raises(jsonschema.ValidationError, match="required"):
        jsonschema.validate({**good, "studies": [study]}, SCHEMA)


@pytest.mark.django_db
def test_it_keeps_the_query_count_flat() -> None:
    for n in range(3):
        ct_study(events=3, station=f"CT{n}")
    with CaptureQueriesContext(connection) as few:
        export("--format", "json")
    for n in range(10):
        ct_study(events=3, station=f"CT{n}")
    with CaptureQueriesContext(connection) as many:
        export("--format", "json")
    assert len(many) == len(few)


@pytest.mark.django_db
def test_it_writes_one_csv_row_per_event_with_the_study_repeated() -> None:
    ct = ct_study(events=3)
    mg = mg_study()
    empty = Study.objects.create(
        study_instance_uid=uid(), modality_type=Study.RF, study_date=dt.date(2024, 3, 9),
        source_sop_instance_uids=[uid()],
    )
    rows = list(csv.DictReader(io.StringIO(export("--format", "csv"))))
    assert tuple(rows[0]) == CSV_COLUMNS
    by_study: dict[str, list[dict[str, str]]] = {}
    for row in rows:
        by_study.setdefault(row["study_instance_uid"], []).append(row)
    ct_rows = by_study[ct.study_instance_uid]
    assert [r["event_number"] for r in ct_rows] == ["1", "2", "3"]
    assert {r["accession_number"] for r in ct_rows} == {"ACC2024-03-01"}
    assert {r["dlp_total_mGycm"] for r in ct_rows} == {"361.5"}
    assert [r["acquisition_protocol"] for r in ct_rows] == ["Thorax 0", "Thorax 1", "Thorax 2"]
    assert json.loads(ct_rows[0]["xray_sources"])[0]["tube_current_mA"] == 200
    assert [r["laterality"] for r in by_study[mg.study_instance_uid]] == ["L", "R"]
    assert json.loads(by_study[mg.study_instance_uid][0]["accumulated_agd_mGy"]) == {
        "L": 1.25, "R": 1.25,
    }
    (only,) = by_study[empty.study_instance_uid]
    assert only["event_number"] == "" and only["number_of_events"] == "0"


@pytest.mark.django_db
def test_it_filters_by_modality_dates_and_station() -> None:
    early = ct_study(date="2024-01-10", station="CT North")
    late = ct_study(date="2024-02-20", station="CT South")
    dx = dx_study(date="2024-02-01")

    def uids(*args: str) -> set[str]:
        return {s["study_instance_uid"] for s in export_json(*args)["studies"]}

    assert uids("--modality", "ct") == {early.study_instance_uid, late.study_instance_uid}
    assert uids("--since", "2024-02-01") == {late.study_instance_uid, dx.study_instance_uid}
    assert uids("--until", "2024-02-01") == {early.study_instance_uid, dx.study_instance_uid}
    assert uids("--since", "2024-01-10", "--until", "2024-01-10") == {early.study_instance_uid}
    assert uids("--station", "south") == {late.study_instance_uid}
    assert uids("--modality", "MG") == set()


@pytest.mark.django_db
def test_it_orders_studies_by_date() -> None:
    late = ct_study(date="2024-05-01")
    early = ct_study(date="2024-01-01")
    assert [s["study_instance_uid"] for s in export_json()["studies"]] == [
        early.study_instance_uid, late.study_instance_uid,
    ]


@pytest.mark.django_db
def test_it_writes_the_output_file_complete(tmp_path: Path) -> None:
    ct_study()
    target = tmp_path / "studies.csv"
    call_command("export", "studies", "--format", "csv", "--output", str(target))
    assert len(target.read_text().splitlines()) == 3
    assert [p.name for p in tmp_path.iterdir()] == ["studies.csv"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--since", "2024-13-01"], "--since '2024-13-01' is not a date"),
        (["--until", "yesterday"], "--until 'yesterday' is not a date"),
        (["--since", "2024-02-01", "--until", "2024-01-01"], "--since is after --until"),
    ],
)
def test_it_rejects_bad_dates(args: list[str], message: str) -> None:
    with pytest.raises(CommandError, match=message):
        export(*args)


@pytest.mark.parametrize(
    "args",
    [
        ["export", "studies", "--since", "2024-02-30"],
        ["export", "studies", "--format", "xml"],
        ["export", "studies", "--modality", "PET"],
        ["export", "patients"],
    ],
)
def test_it_exits_non_zero_with_one_line_on_bad_arguments(
    args: list[str], process_env: dict[str, str]
) -> None:
    done = subprocess.run(
        doseport_cmd(*args), env=process_env, cwd=REPO, capture_output=True, text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert done.stdout == ""
    lines = [line for line in done.stderr.splitlines() if "WARNING" not in line]
    assert len(lines) == 1, done.stderr
    assert "error" in lines[0].lower()
