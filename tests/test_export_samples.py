"""Export of imported objects: synthetic reports and (when present) the OpenREM sample set,
validated against dose/schema/studies-v1.json."""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from django.core.management import call_command

from imports.models import ImportRecord, Outcome, Source
from imports.service import import_file
from tests.conftest import REPO, samples_dir

pytestmark = pytest.mark.django_db
SCHEMA = json.loads((REPO / "dose" / "schema" / "studies-v1.json").read_text())


def export_json(*args: str) -> dict[str, Any]:
    out = io.StringIO()
    call_command("export", "studies", "--format", "json", *args, stdout=out)
    document = json.loads(out.getvalue())
    jsonschema.validate(document, SCHEMA)
    return document


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
