"""Each study's headline numbers are stored on its row (dose/summary.py) and must always
equal what the rows under it give (summary.computed()): after every import, merge,
replacement by a cumulative report and NM merge, after ORM saves, and after the migration's
fill. The Studies list's dose ranges, sorts and text search read those stored columns."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path
from typing import Any

import pytest

from dose import summary
from dose.models import AccumulatedBreast, IrradiationEvent, Study
from dose.queries import StudyFilter, filter_studies, headline, with_summary
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

pytestmark = pytest.mark.django_db


def _stored(study: Study) -> dict[str, Any]:
    return {name: getattr(study, column) for name, column in summary.COLUMNS.items()}


def assert_stored_equals_computed() -> int:
    """Every study's stored headline equals the one worked out from its rows now."""
    computed = Study.objects.annotate(**{f"c_{k}": v for k, v in summary.computed().items()})
    protocols = summary._protocols(list(Study.objects.values_list("pk", flat=True)))
    n = 0
    for study in computed:
        want = {name: getattr(study, f"c_{name}") for name in summary.COLUMNS}
        got = _stored(study)
        for name in summary.COLUMNS:
            if want[name] is None or got[name] is None:
                assert got[name] == want[name], (study.modality_type, name, got, want)
            else:
                assert got[name] == pytest.approx(want[name], rel=1e-12), (name, got, want)
        assert study.headline_protocols == protocols[study.pk]
        n += 1
    return n


def test_imports_merges_and_replacements_keep_the_stored_headline(tmp_path: Path) -> None:
    ct_uid = "1.2.826.0.1.3680043.10.543.77.1"
    objects = [
        ("CT first part", build_ct_rdsr(events=2, header=Header(study_uid=ct_uid))),
        # A second, disjoint report of the same study adds its events and totals.
        ("CT second part", build_ct_rdsr(events=3, header=Header(study_uid=ct_uid))),
        ("DX", build_projection_rdsr(events=3, header=Header(study_date="20240111"))),
        ("MG", build_mg_rdsr(header=Header(study_date="20240112"))),
        ("NM", build_rrdsr(header=Header(study_date="20240113"))),
        ("DX image", build_dx_image(header=Header(study_date="20240114"))),
    ]
    for name, ds in objects:
        record = import_file(write(ds, tmp_path / f"{name}.dcm"), Source.FILE, keep=True)
        assert record.outcome == Outcome.IMPORTED, (name, record.error)
        assert_stored_equals_computed()
    ct = Study.objects.get(study_instance_uid=ct_uid)
    assert ct.headline_events == 5
    assert ct.headline_dlp_mGycm is not None and ct.headline_dlp_mGycm > 0
    assert ct.headline_protocols  # the text search reads these


@pytest.mark.samples
def test_the_openrem_sample_set_stores_the_headline_it_computes(tmp_path: Path) -> None:
    work = tmp_path / "openrem"
    shutil.copytree(samples_dir() / "openrem", work, ignore=shutil.ignore_patterns("*.json"))
    for path in sorted(work.glob("*.dcm")):
        import_file(path, Source.FILE, keep=True)
    assert assert_stored_equals_computed() >= 30
    # The list shows the stored values: a Siemens CT's DLP as its report gives it.
    modalities = set(Study.objects.values_list("modality_type", flat=True))
    assert modalities == {"CT", "DX", "RF", "MG", "NM"}
    assert Study.objects.filter(modality_type="NM", headline_activity_MBq__gt=0).exists()
    assert Study.objects.filter(modality_type="MG").exclude(
        headline_agd_left_mGy=None, headline_agd_right_mGy=None, headline_agd_both_mGy=None
    ).exists()


def test_orm_saves_refresh_their_study() -> None:
    study = Study.objects.create(study_instance_uid="1.2.3", modality_type=Study.MG,
                                 study_date=dt.date(2024, 1, 2))
    IrradiationEvent.objects.create(study=study, agd_mGy=1.25, laterality_code="L",
                                    acquisition_protocol="Routine^Left")
    IrradiationEvent.objects.create(study=study, agd_mGy=1.5, laterality_code="L")
    study.refresh_from_db()
    assert (study.headline_events, study.headline_agd_left_mGy) == (2, 2.75)
    assert study.headline_protocols == "Routine^Left"
    AccumulatedBreast.objects.create(study=study, laterality="Left breast",
                                     accumulated_agd_mGy=3.0)
    study.refresh_from_db()
    assert study.headline_agd_left_mGy == 3.0  # a report's breast total beats the events
    assert_stored_equals_computed()


def test_refresh_all_fills_a_database_loaded_without_it() -> None:
    """What migration dose 0007 and bench/pages.py do for rows written with raw SQL."""
    study = Study.objects.create(study_instance_uid="1.2.4", modality_type=Study.CT,
                                 dlp_total_mGycm=512.0)
    for n in range(3):
        IrradiationEvent.objects.create(study=study, ordinal=n, dlp_mGycm=100.0)
    Study.objects.update(headline_events=0, headline_dlp_mGycm=None, headline_protocols="x")
    seen: list[tuple[int, int]] = []
    assert summary.refresh_all(lambda done, total: seen.append((done, total))) == 1
    assert seen == [(1, 1)]
    study.refresh_from_db()
    assert (study.headline_events, study.headline_dlp_mGycm) == (3, 512.0)
    assert study.headline_protocols == ""
    assert_stored_equals_computed()


def test_the_list_reads_the_stored_headline() -> None:
    """headline() and the dose range read the stored columns: a stale column shows, which
    is why every writer refreshes (this test fails if the list summed the rows again)."""
    study = Study.objects.create(study_instance_uid="1.2.5", modality_type=Study.CT)
    IrradiationEvent.objects.create(study=study, dlp_mGycm=300.0)
    Study.objects.filter(pk=study.pk).update(headline_dlp_mGycm=999.0)
    assert headline(with_summary(Study.objects.filter(pk=study.pk)).get()).dlp_mGycm == 999.0
    found = filter_studies(StudyFilter(modality="CT", dose_min=900.0))
    assert list(found.values_list("pk", flat=True)) == [study.pk]


def test_accession_matches_from_its_start_in_any_case() -> None:
    for n, accession in enumerate(("ACC1234", "ACC12", "XACC12", "acc129", "ACD1")):
        Study.objects.create(study_instance_uid=f"1.2.6.{n}", modality_type=Study.DX,
                             accession_number=accession)

    def found(text: str) -> set[str]:
        rows = filter_studies(StudyFilter(accession=text))
        return set(rows.values_list("accession_number", flat=True))

    assert found("ACC12") == {"ACC1234", "ACC12"}
    assert found("acc12") == {"ACC1234", "ACC12", "acc129"}
    assert found("ACC1234") == {"ACC1234"}
    assert found("CC12") == set()  # not a contains-search: an index range
    assert found("100%") == set()
    assert found("A_C") == set()  # LIKE wildcards are text
