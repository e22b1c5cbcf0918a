"""CT dose screens (GE, Philips and any vendor's Exposure Dose Sequence) import as CT events,
and a screen never adds to a CT dose report of the same study (the report wins)."""

from __future__ import annotations

from pathlib import Path

import pytest

from dose.models import Study
from dose.serialize import studies_for_export, study_to_dict
from imports.classify import CT_DOSE_SCREEN, CT_PHILIPS_SCREEN, classify
from imports.models import Outcome, Source
from imports.service import import_file
from tests.builders.rdsr import CtEvent, Header, build_ct_rdsr, write
from tests.builders.screens import ScreenSeries, build_ge_dose_screen, build_philips_dose_screen

pytestmark = pytest.mark.django_db

SERIES = [
    ScreenSeries(ctdivol=0.0, dlp=0.0, acquisition_type="CONSTANT_ANGLE", current_ua=10000),
    ScreenSeries(ctdivol=24.33, dlp=950.1, body_part="CHEST"),
    ScreenSeries(ctdivol=12.5, dlp=560.0, body_part="ABDOMEN", kvp=100),
]


def _study(uid: str) -> dict:
    (study,) = studies_for_export(Study.objects.filter(study_instance_uid=uid))
    return study_to_dict(study)


def test_it_reads_a_ge_dose_screen_as_ct_events(tmp_path: Path) -> None:
    ds = build_ge_dose_screen(SERIES)
    assert classify(ds).kind == CT_DOSE_SCREEN
    record = import_file(write(ds, tmp_path / "ge.dcm"), Source.FILE)
    assert record.outcome == Outcome.IMPORTED, record.error
    assert record.kind == CT_DOSE_SCREEN
    study = _study(ds.StudyInstanceUID)
    assert study["modality_type"] == "CT"
    assert study["manufacturer"] == "GE MEDICAL SYSTEMS"
    events = study["events"]
    assert [e["ctdivol_mGy"] for e in events] == [0.0, 24.33, 12.5]  # a localizer says 0
    assert [e["dlp_mGycm"] for e in events] == [0.0, 950.1, 560.0]
    assert [e["ct_acquisition_type"] for e in events] == [
        "Constant Angle Acquisition", "Spiral Acquisition", "Spiral Acquisition"]
    assert [e["target_region"] for e in events] == ["Chest", "Chest", "Abdomen"]
    assert events[1]["ctdiw_phantom_type"] == "IEC Body Dosimetry Phantom"
    assert events[1]["xray_sources"][0]["kvp_kV"] == 120.0
    assert events[1]["xray_sources"][0]["tube_current_mA"] == pytest.approx(200.0)
    assert events[2]["exposure_time_s"] == pytest.approx(5.0)
    assert events[1]["pitch_factor"] == pytest.approx(0.984)
    assert events[1]["nominal_total_collimation_width_mm"] == 40.0
    assert study["totals"]["dlp_total_mGycm"] == pytest.approx(1510.1)
    assert study["totals"]["number_of_events"] == 3


def test_it_reads_any_vendor_screen_with_an_exposure_dose_sequence(tmp_path: Path) -> None:
    ds = build_ge_dose_screen(SERIES[1:], header=Header(manufacturer="Other Vendor"))
    ds.SeriesDescription = "Patient Protocol"
    assert classify(ds).kind == CT_DOSE_SCREEN
    del ds.ExposureDoseSequence
    assert not classify(ds).importable


def test_it_still_reads_philips_screens_from_the_private_dlp(tmp_path: Path) -> None:
    ds = build_philips_dose_screen(SERIES[1:])
    assert classify(ds).kind == CT_PHILIPS_SCREEN
    record = import_file(write(ds, tmp_path / "ph.dcm"), Source.FILE)
    assert record.outcome == Outcome.IMPORTED, record.error
    study = _study(ds.StudyInstanceUID)
    assert [e["dlp_mGycm"] for e in study["events"]] == [950.1, 560.0]
    assert study["totals"]["dlp_total_mGycm"] == pytest.approx(1510.1)


@pytest.mark.parametrize("screen_first", [True, False], ids=["screen-first", "report-first"])
@pytest.mark.parametrize("builder", [build_ge_dose_screen, build_philips_dose_screen],
                         ids=["ge", "philips"])
def test_it_never_counts_a_screen_and_a_report_of_one_study_twice(
    tmp_path: Path, screen_first: bool, builder: object,
) -> None:
    study_uid = "1.2.826.0.1.3680043.8.498.77"
    report = build_ct_rdsr([CtEvent(dlp=950.1, ctdivol=24.33), CtEvent(dlp=560.0)],
                           header=Header(study_uid=study_uid))
    screen = builder(SERIES[1:], header=Header(study_uid=study_uid))  # type: ignore[operator]
    order = [("s.dcm", screen), ("r.dcm", report)]
    if not screen_first:
        order.reverse()
    records = [import_file(write(ds, tmp_path / name), Source.FILE) for name, ds in order]
    assert Study.objects.filter(study_instance_uid=study_uid).count() == 1
    study = _study(study_uid)
    assert study["totals"]["number_of_events"] == 2
    assert study["totals"]["dlp_total_mGycm"] == pytest.approx(1510.1)
    assert {e["irradiation_event_uid"] for e in study["events"]} == {
        e.ContentSequence[3].UID for e in report.ContentSequence[2:]}
    assert set(study["source_sop_instance_uids"]) == {report.SOPInstanceUID, screen.SOPInstanceUID}
    outcomes = [r.outcome for r in records]
    assert outcomes == ([Outcome.IMPORTED, Outcome.IMPORTED] if screen_first
                        else [Outcome.IMPORTED, Outcome.DUPLICATE])
