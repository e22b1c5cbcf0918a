"""Export of imported objects: synthetic reports and (when present) the OpenREM sample set,
validated against dose/schema/studies-v1.json."""

from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from django.core.management import call_command

from imports.models import ImportRecord, Outcome, Source
from imports.service import import_file
from tests.builders.rdsr import (
    Header,
    build_ct_rdsr,
    build_dx_image,
    build_mg_rdsr,
    build_projection_rdsr,
    build_rrdsr,
    write,
)
from tests.conftest import REPO, doseport_cmd, samples_dir

pytestmark = pytest.mark.django_db
SCHEMA = json.loads((REPO / "dose" / "schema" / "studies-v1.json").read_text())


def export_json(*args: str) -> dict[str, Any]:
    out = io.StringIO()
    call_command("export", "studies", "--format", "json", *args, stdout=out)
    document = json.loads(out.getvalue())
    jsonschema.validate(document, SCHEMA)
    return document


def import_built(tmp_path: Path) -> dict[str, str]:
    """Import one synthetic object of each kind; returns modality -> Study Instance UID."""
    objects = {
        "CT": build_ct_rdsr(events=2, header=Header(study_date="20240110", station="CT-A")),
        "DX": build_projection_rdsr(events=2, header=Header(study_date="20240111")),
        "MG": build_mg_rdsr(header=Header(study_date="20240112")),
        "NM": build_rrdsr(header=Header(study_date="20240113")),
        "DXI": build_dx_image(header=Header(study_date="20240114")),
    }
    for name, ds in objects.items():
        record = import_file(write(ds, tmp_path / f"{name}.dcm"), Source.FILE, keep=True)
        assert record.outcome == Outcome.IMPORTED, (name, record.error)
    return {name: str(ds.StudyInstanceUID) for name, ds in objects.items()}


def test_it_exports_imported_synthetic_reports_valid_against_the_schema(
    tmp_path: Path,
) -> None:
    uids = import_built(tmp_path)
    document = export_json()
    studies = {s["study_instance_uid"]: s for s in document["studies"]}
    assert set(studies) == set(uids.values())
    ct = studies[uids["CT"]]
    assert ct["modality_type"] == "CT" and ct["study_date"] == "2024-01-10"
    assert [e["ctdivol_mGy"] for e in ct["events"]] == [10.0, 10.0]
    assert [e["dlp_mGycm"] for e in ct["events"]] == [100.0, 200.0]
    assert ct["totals"]["dlp_total_mGycm"] == 300.0
    assert ct["events"][0]["dap_Gym2"] is None  # absent, not omitted
    dx = studies[uids["DX"]]
    assert dx["modality_type"] == "DX"
    assert dx["events"][0]["dap_Gym2"] == pytest.approx(0.5e-5, rel=1e-6)  # 0.5 dGy·cm²
    assert studies[uids["NM"]]["events"][0]["administered_activity_MBq"] == 350.0
    text = json.dumps(document)
    assert "DOE" not in text and "PID001" not in text and "19700101" not in text


def test_it_exports_imported_reports_as_csv_one_row_per_event(tmp_path: Path) -> None:
    uids = import_built(tmp_path)
    out = io.StringIO()
    call_command("export", "studies", "--format", "csv", "--modality", "ct", stdout=out)
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert [(r["study_instance_uid"], r["event_number"], r["dlp_mGycm"]) for r in rows] == [
        (uids["CT"], "1", "100.0"), (uids["CT"], "2", "200.0"),
    ]
    assert {r["station_name"] for r in rows} == {"CT-A"}
    out = io.StringIO()
    call_command("export", "studies", "--format", "csv", stdout=out)
    assert len(list(csv.DictReader(io.StringIO(out.getvalue())))) == 2 + 2 + 2 + 1 + 1


def test_it_filters_imported_reports(tmp_path: Path) -> None:
    uids = import_built(tmp_path)

    def exported(*args: str) -> set[str]:
        return {s["study_instance_uid"] for s in export_json(*args)["studies"]}

    assert exported("--modality", "MG") == {uids["MG"]}
    assert exported("--since", "2024-01-12", "--until", "2024-01-13") == {uids["MG"], uids["NM"]}
    assert exported("--station", "ct-a") == {uids["CT"]}


@pytest.mark.samples
def test_it_exports_the_whole_openrem_sample_set_valid_against_the_schema(
    tmp_path: Path,
) -> None:
    # Work on a copy: failed imports are moved to quarantine, and samples stay untouched.
    work = tmp_path / "openrem"
    shutil.copytree(samples_dir() / "openrem", work, ignore=shutil.ignore_patterns("*.json"))
    files = sorted(work.glob("*.dcm"))
    records = [import_file(path, Source.FILE, keep=True) for path in files]
    outcomes = {r.path: r.outcome for r in records}
    imported = {r.study_instance_uid for r in records if r.outcome == Outcome.IMPORTED}
    assert len(imported) >= 20, outcomes

    document = export_json()
    exported = {s["study_instance_uid"] for s in document["studies"]}
    assert imported <= exported
    modalities = {s["modality_type"] for s in document["studies"]}
    assert modalities == {"CT", "DX", "RF", "MG", "NM"}
    assert sum(len(s["events"]) for s in document["studies"]) > len(document["studies"])
    assert ImportRecord.objects.filter(outcome=Outcome.NOT_IMPORTABLE).exists()

    out = io.StringIO()
    call_command("export", "studies", "--format", "csv", stdout=out)
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert len(rows) == sum(max(1, len(s["events"])) for s in document["studies"])


def test_it_streams_the_export_from_the_command_line(
    tmp_path: Path, process_env: dict[str, str]
) -> None:
    """A real `doseport export` process (autocommit, server-side cursors on PostgreSQL)."""
    uids = import_built(tmp_path)
    done = subprocess.run(
        doseport_cmd("export", "studies", "--format", "json"), env=process_env, cwd=REPO,
        capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    jsonschema.validate(document, SCHEMA)
    assert {s["study_instance_uid"] for s in document["studies"]} == set(uids.values())
    target = tmp_path / "out" / "studies.csv"
    target.parent.mkdir()
    done = subprocess.run(
        doseport_cmd("export", "studies", "--format", "csv", "--output", str(target)),
        env=process_env, cwd=REPO, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    assert len(target.read_text(encoding="utf-8").splitlines()) == 1 + 8
