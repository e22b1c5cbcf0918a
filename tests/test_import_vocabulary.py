"""One vocabulary whatever the source: coded values from image headers use the code meanings
a dose report carries; laterality_code L/R/B; AGD totals per breast once; number_of_planes
for every projection study; the collimated field area of mammography images."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydicom import dcmread

from dose.models import Study
from dose.serialize import studies_for_export, study_to_dict
from imports.models import Outcome, Source
from imports.service import import_file
from lib.laterality import laterality_code
from tests.builders.rdsr import (
    Header,
    build_dx_image,
    build_mg_image,
    build_mg_rdsr,
    write,
)
from tests.conftest import samples_dir

pytestmark = pytest.mark.django_db


def _study(uid: str) -> dict:
    (study,) = studies_for_export(Study.objects.filter(study_instance_uid=uid))
    return study_to_dict(study)


@pytest.mark.parametrize(
    ("words", "code"),
    [("Left breast", "L"), ("Right breast", "R"), ("Left", "L"), ("RIGHT", "R"), ("R", "R"),
     ("Both breasts", "B"), ("B", "B"), ("bilateral", "B"), ("unknown", ""), ("", ""),
     ("U", "")],
)
def test_it_codes_laterality_whatever_the_words(words: str, code: str) -> None:
    assert laterality_code(words) == code


def test_mammography_image_values_use_the_reports_code_meanings(tmp_path: Path) -> None:
    ds = build_mg_image(laterality="R")
    ds.CollimatorShape = "RECTANGULAR"
    ds.CollimatorLeftVerticalEdge, ds.CollimatorRightVerticalEdge = "10", "1010"
    ds.CollimatorUpperHorizontalEdge, ds.CollimatorLowerHorizontalEdge = "0", "800"
    ds.ImagerPixelSpacing = [0.1, 0.1]
    import_file(write(ds, tmp_path / "mg.dcm"), Source.FILE)
    study = _study(ds.StudyInstanceUID)
    (event,) = study["events"]
    assert event["anode_target_material"] == "Tungsten or Tungsten compound"
    assert event["filters"][0]["material"] == "Rhodium or Rhodium compound"
    assert event["laterality"] == "Right"
    assert event["laterality_code"] == "R"
    assert event["image_view"] == "cranio-caudal"
    assert event["collimated_field_area_m2"] == pytest.approx(0.1 * 0.08)  # 100 mm x 80 mm
    assert study["totals"]["accumulated_agd_by_side_mGy"] == {"R": pytest.approx(1.2)}
    assert study["totals"]["number_of_planes"] == 1


def test_field_of_view_dimensions_give_the_area_without_collimator_edges(tmp_path: Path) -> None:
    ds = build_mg_image()
    ds.FieldOfViewDimensions = [240, 300]
    import_file(write(ds, tmp_path / "mg.dcm"), Source.FILE)
    assert _study(ds.StudyInstanceUID)["events"][0]["collimated_field_area_m2"] == \
        pytest.approx(0.072)


def test_a_dx_image_study_has_one_plane(tmp_path: Path) -> None:
    ds = build_dx_image()
    import_file(write(ds, tmp_path / "dx.dcm"), Source.FILE)
    totals = _study(ds.StudyInstanceUID)["totals"]
    assert totals["number_of_planes"] == 1
    assert totals["accumulated_agd_by_side_mGy"] is None


@pytest.mark.parametrize("report_first", [True, False], ids=["report-first", "images-first"])
def test_a_report_and_images_of_one_study_total_each_breast_once(
    tmp_path: Path, report_first: bool
) -> None:
    uid = "1.2.826.0.1.3680043.8.498.88"
    report = build_mg_rdsr(header=Header(study_uid=uid))  # Left 1.2, Right 1.4 mGy
    images = [
        build_mg_image(header=Header(study_uid=uid), laterality="L", agd_dgy=0.012),
        build_mg_image(header=Header(study_uid=uid), laterality="R", agd_dgy=0.014,
                       acquisition_time="093612"),
    ]
    objects = [report, *images] if report_first else [*images, report]
    for i, ds in enumerate(objects):
        record = import_file(write(ds, tmp_path / f"{i}.dcm"), Source.FILE)
        assert record.outcome in (Outcome.IMPORTED, Outcome.DUPLICATE), record.error
    study = _study(uid)
    assert study["totals"]["accumulated_agd_by_side_mGy"] == {
        "L": pytest.approx(1.2), "R": pytest.approx(1.4)}
    assert study["totals"]["accumulated_agd_mGy"] == {
        "Left breast": pytest.approx(1.2), "Right breast": pytest.approx(1.4)}
    assert [e["laterality_code"] for e in study["events"]] == ["L", "R"]
    assert study["totals"]["number_of_planes"] == 1


@pytest.mark.samples
def test_the_ge_seno_sample_gives_codes_and_a_collimated_field_area(tmp_path: Path) -> None:
    path = samples_dir() / "openrem" / "MG-Im-GE_Seno_1_ForPresentation.dcm"
    if not path.exists():
        pytest.skip(f"shared samples not found at {path.parent}")
    record = import_file(path, Source.FILE, keep=True)
    assert record.outcome == Outcome.IMPORTED, record.error
    study = _study(str(dcmread(path, stop_before_pixels=True).StudyInstanceUID))
    (event,) = study["events"]
    assert event["anode_target_material"] == "Molybdenum or Molybdenum compound"
    assert event["filters"][0]["material"] == "Molybdenum or Molybdenum compound"
    assert event["laterality_code"] == "L"
    # collimator edges 0..989 x 0..793 pixels at 0.094090909 mm
    assert event["collimated_field_area_m2"] == pytest.approx(
        989 * 0.094090909 * 793 * 0.094090909 / 1e6, rel=1e-6)
    assert study["totals"]["accumulated_agd_by_side_mGy"] == {"L": pytest.approx(0.547)}
