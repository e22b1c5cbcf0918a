"""Several objects of one study: cumulative, continued, duplicate, NM image + report."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from dose.models import Study
from dose.serialize import studies_for_export, study_to_dict
from imports.models import Outcome, Source
from imports.service import import_file
from tests.builders.rdsr import (
    CtEvent,
    Header,
    build_ct_rdsr,
    build_pet_image,
    build_rrdsr,
    write,
)
from tests.test_study_headline import assert_stored_equals_computed

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _stored_headline_stays_right() -> Iterator[None]:
    """After every merge, replacement and NM merge below, each study's stored headline
    (dose/summary.py) equals what its rows give."""
    yield
    assert_stored_equals_computed()


def _import(ds, folder: Path) -> str:  # type: ignore[no-untyped-def]
    return import_file(write(ds, folder / f"{ds.SOPInstanceUID}.dcm"), Source.FILE).outcome


def _studies() -> list[dict]:
    return [study_to_dict(s) for s in studies_for_export(Study.objects.order_by("id"))]


def test_it_replaces_a_study_with_a_cumulative_report(tmp_path: Path) -> None:
    study_uid = Header().study_uid
    e1, e2 = CtEvent(dlp=10.0), CtEvent(dlp=20.0)
    early = build_ct_rdsr([e1], header=Header(study_uid=study_uid))
    later = build_ct_rdsr([e1, e2], header=Header(study_uid=study_uid))
    assert _import(early, tmp_path) == Outcome.IMPORTED
    assert _import(later, tmp_path) == Outcome.IMPORTED
    [study] = _studies()
    assert [e["irradiation_event_uid"] for e in study["events"]] == [e1.uid, e2.uid]
    assert study["totals"]["dlp_total_mGycm"] == pytest.approx(30.0)
    assert set(study["source_sop_instance_uids"]) == {early.SOPInstanceUID, later.SOPInstanceUID}
    # The earlier report arriving again (new copy, new SOP UID) adds nothing.
    again = build_ct_rdsr([e1], header=Header(study_uid=study_uid))
    assert _import(again, tmp_path) == Outcome.IMPORTED
    [study] = _studies()
    assert len(study["events"]) == 2
    # The same object again is a duplicate.
    assert _import(later, tmp_path) == Outcome.DUPLICATE


def test_it_keeps_both_reports_that_continue_a_study(tmp_path: Path) -> None:
    study_uid = Header().study_uid
    first = build_ct_rdsr([CtEvent(dlp=100.0)], header=Header(study_uid=study_uid))
    second = build_ct_rdsr([CtEvent(dlp=50.0), CtEvent(dlp=25.0)],
                           header=Header(study_uid=study_uid))
    assert _import(first, tmp_path) == _import(second, tmp_path) == Outcome.IMPORTED
    [study] = _studies()
    assert [e["dlp_mGycm"] for e in study["events"]] == [100.0, 50.0, 25.0]
    assert study["totals"]["dlp_total_mGycm"] == pytest.approx(175.0)
    assert study["totals"]["number_of_events"] == 3


@pytest.mark.parametrize("report_first", [True, False])
def test_it_merges_nm_images_and_the_radiopharmaceutical_report(
    tmp_path: Path, report_first: bool
) -> None:
    study_uid = Header().study_uid
    report = build_rrdsr(header=Header(study_uid=study_uid), activity_mbq=350.0)
    image = build_pet_image(header=Header(study_uid=study_uid), activity_bq=380e6)
    second_image = build_pet_image(header=Header(study_uid=study_uid), activity_bq=380e6)
    order = [report, image, second_image] if report_first else [image, second_image, report]
    assert [_import(ds, tmp_path) for ds in order] == [Outcome.IMPORTED] * 3
    [study] = _studies()
    assert study["modality_type"] == "NM"
    assert len(study["events"]) == 1
    assert study["events"][0]["administered_activity_MBq"] == 350.0  # the report wins
    assert len(study["source_sop_instance_uids"]) == 3


def test_it_keeps_image_values_when_no_report_arrives(tmp_path: Path) -> None:
    _import(build_pet_image(activity_bq=380e6), tmp_path)
    [study] = _studies()
    assert study["events"][0]["administered_activity_MBq"] == pytest.approx(380.0)
    assert study["events"][0]["radiopharmaceutical_agent"] == "FDG"


def test_it_keeps_ct_and_nm_studies_of_one_pet_ct_apart(tmp_path: Path) -> None:
    study_uid = Header().study_uid
    _import(build_rrdsr(header=Header(study_uid=study_uid)), tmp_path)
    _import(build_ct_rdsr(2, header=Header(study_uid=study_uid)), tmp_path)
    assert sorted(s["modality_type"] for s in _studies()) == ["CT", "NM"]


@pytest.mark.parametrize("report_first", [True, False])
def test_it_never_counts_an_exposure_twice_from_a_report_and_its_images(
    tmp_path: Path, report_first: bool
) -> None:
    from tests.builders.rdsr import ProjectionEvent, build_dx_image, build_projection_rdsr

    study_uid = Header().study_uid
    report = build_projection_rdsr([ProjectionEvent(dap=1.0)], header=Header(study_uid=study_uid))
    images = [build_dx_image(header=Header(study_uid=study_uid), dap_dgycm2=1.0)
              for _ in range(2)]
    order = [report, *images] if report_first else [*images, report]
    outcomes = [_import(ds, tmp_path) for ds in order]
    [study] = _studies()
    assert study["totals"]["number_of_events"] == 1  # the report's event only
    assert study["totals"]["dap_total_Gym2"] == pytest.approx(1.0e-5)
    assert len(study["source_sop_instance_uids"]) == 3
    if report_first:  # images of a reported study add nothing
        assert outcomes == [Outcome.IMPORTED, Outcome.DUPLICATE, Outcome.DUPLICATE]
    else:  # the report replaces what the images gave
        assert outcomes == [Outcome.IMPORTED] * 3
