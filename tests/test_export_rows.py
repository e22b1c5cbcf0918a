"""dose/export_rows.py reads the export from plain rows: the STUDY objects must equal what
serialize.study_to_dict() makes from model instances (the command's path), for every kind
of study the importers make, in the same order."""

from __future__ import annotations

import datetime as dt
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from dose.export import iter_model_dicts
from dose.export_rows import iter_export_dicts
from dose.models import AccumulatedBreast, AccumulatedPlane, IrradiationEvent, Study
from dose.queries import StudyFilter
from imports.models import Outcome, Source
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
from tests.conftest import samples_dir
from tests.test_export import ct_study, dx_study, mg_study, nm_study, uid

pytestmark = pytest.mark.django_db


def same_as_the_models(flt: StudyFilter, chunk: int = 2) -> list[dict[str, Any]]:
    expected = list(iter_model_dicts(flt))
    got = list(iter_export_dicts(flt, chunk=chunk))
    assert [s["study_instance_uid"] for s in got] == [s["study_instance_uid"] for s in expected]
    for mine, theirs in zip(got, expected, strict=True):
        assert mine == theirs
        assert list(mine) == list(theirs)  # the same key order (JSON output)
        for a, b in zip(mine["events"], theirs["events"], strict=True):
            assert list(a) == list(b)
    return got


def test_it_reads_what_the_models_give_for_built_studies() -> None:
    ct_study("2024-03-01", events=3)
    dx_study()
    mg_study()
    nm_study()
    rf = Study.objects.create(
        study_instance_uid=uid(), modality_type=Study.RF, study_date=dt.date(2024, 3, 6),
        study_time=None, patient_name="Doe^Jane", patient_id="", study_description="",
    )
    for n, plane in enumerate(("Plane A", "Plane B")):
        IrradiationEvent.objects.create(
            study=rf, ordinal=n, acquisition_plane=plane, dap_Gym2=1e-4, dose_rp_Gy=None,
            date_time_started=dt.datetime(2024, 3, 6, 10, n, tzinfo=dt.UTC),
        )
    AccumulatedPlane.objects.create(study=rf, plane="Plane A", dap_total_Gym2=2e-4)
    mg = mg_study()
    AccumulatedBreast.objects.create(study=mg, laterality="Left breast", accumulated_agd_mGy=2.5)
    AccumulatedBreast.objects.create(study=mg, laterality="Right breast", accumulated_agd_mGy=None)
    Study.objects.create(study_instance_uid=uid(), modality_type=Study.CT, study_date=None)
    got = same_as_the_models(StudyFilter())
    assert any(e["xray_sources"] for s in got for e in s["events"])
    assert any(s.get("patient_name") == "Doe^Jane" for s in got)
    assert same_as_the_models(StudyFilter(modality="RF"))[0]["totals"]["number_of_planes"] == 1


def test_it_reads_what_the_models_give_for_imported_reports(tmp_path: Path) -> None:
    objects = {
        "CT": build_ct_rdsr(events=2, header=Header(study_date="20240110", station="CT-A")),
        "DX": build_projection_rdsr(events=3, header=Header(study_date="20240111")),
        "MG": build_mg_rdsr(header=Header(study_date="20240112")),
        "NM": build_rrdsr(header=Header(study_date="20240113")),
        "DXI": build_dx_image(header=Header(study_date="20240114")),
    }
    for name, ds in objects.items():
        record = import_file(write(ds, tmp_path / f"{name}.dcm"), Source.FILE, keep=True)
        assert record.outcome == Outcome.IMPORTED, (name, record.error)
    assert len(same_as_the_models(StudyFilter(), chunk=3)) == 5


@pytest.mark.samples
def test_it_reads_what_the_models_give_for_the_openrem_sample_set(tmp_path: Path) -> None:
    work = tmp_path / "openrem"
    shutil.copytree(samples_dir() / "openrem", work, ignore=shutil.ignore_patterns("*.json"))
    for path in sorted(work.glob("*.dcm")):
        import_file(path, Source.FILE, keep=True)
    got = same_as_the_models(StudyFilter(), chunk=7)
    assert {s["modality_type"] for s in got} == {"CT", "DX", "RF", "MG", "NM"}


def test_its_queries_take_at_most_a_chunk_of_study_ids() -> None:
    """Event ids would overflow SQLite's 32,766 and PostgreSQL's 65,535 query parameters on a
    chunk of long RF studies; every IN list holds study ids, at most a chunk of them."""
    for _ in range(3):
        ct_study(events=5)
    with CaptureQueriesContext(connection) as queries:
        dicts = list(iter_export_dicts(StudyFilter(), chunk=2))
    assert sum(len(s["events"]) for s in dicts) == 15
    in_lists = [m.split(",") for q in queries.captured_queries
                for m in re.findall(r" IN \(([^()]*)\)", q["sql"])]
    assert in_lists and max(len(values) for values in in_lists) <= 2
