"""Dental images, Patient Radiation Dose SRs and cine-only interventional reports."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydicom.uid import UID

from dose.models import Study
from dose.serialize import studies_for_export, study_to_dict
from imports.classify import DX_IMAGE, PATIENT_DOSE_REPORT, PROJECTION_RDSR, classify
from imports.models import Outcome, Source
from imports.service import import_file
from nodes.models import DeleteSettings
from tests.builders.rdsr import ProjectionEvent, build_projection_rdsr, write
from tests.builders.screens import build_cine_rdsr, build_io_image, build_patient_dose_sr

pytestmark = pytest.mark.django_db


def _study(uid: str) -> dict:
    (study,) = studies_for_export(Study.objects.filter(study_instance_uid=uid))
    return study_to_dict(study)


@pytest.mark.parametrize("processing", [False, True], ids=["presentation", "processing"])
def test_it_reads_dental_intra_oral_images_as_dx(tmp_path: Path, processing: bool) -> None:
    ds = build_io_image(processing=processing)
    assert classify(ds).kind == DX_IMAGE
    record = import_file(write(ds, tmp_path / "io.dcm"), Source.FILE)
    assert record.outcome == Outcome.IMPORTED, record.error
    study = _study(ds.StudyInstanceUID)
    assert study["modality_type"] == "DX"
    (event,) = study["events"]
    assert event["kvp_kV"] == 70.0
    assert event["average_tube_current_mA"] == 7.0
    assert event["exposure_time_ms"] == 160.0
    assert event["entrance_exposure_at_rp_mGy"] == pytest.approx(1.1)
    assert event["dap_Gym2"] == pytest.approx(0.041e-5)
    assert event["acquisition_protocol"] == "Molar upper left"
    assert study["totals"]["number_of_planes"] == 1


def test_it_reads_entrance_dose_in_dgy_when_there_is_none_in_mgy(tmp_path: Path) -> None:
    ds = build_io_image()
    del ds.EntranceDoseInmGy
    ds.EntranceDose = 2  # US, dGy
    import_file(write(ds, tmp_path / "io.dcm"), Source.FILE)
    assert _study(ds.StudyInstanceUID)["events"][0]["entrance_exposure_at_rp_mGy"] == 200.0


def test_it_reads_a_panoramic_dx_image(tmp_path: Path) -> None:
    ds = build_io_image()
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = UID("1.2.840.10008.5.1.4.1.1.1.1")
    ds.Modality = "PX"
    assert classify(ds).kind == DX_IMAGE
    assert import_file(write(ds, tmp_path / "px.dcm"), Source.FILE).outcome == Outcome.IMPORTED
    assert _study(ds.StudyInstanceUID)["events"][0]["kvp_kV"] == 70.0


def test_it_records_a_patient_dose_report_without_events_clearly(tmp_path: Path) -> None:
    ds = build_patient_dose_sr()
    assert classify(ds).kind == PATIENT_DOSE_REPORT
    record = import_file(write(ds, tmp_path / "pat.dcm"), Source.FILE)
    assert record.outcome == Outcome.NOT_IMPORTABLE
    assert record.error.startswith("no irradiation events")
    assert "Peak Skin Dose" in record.error and "Dose estimation method" in record.error
    assert "could not be read" not in record.error
    assert not Study.objects.exists()


def test_a_patient_dose_report_with_projection_content_is_read_as_one(tmp_path: Path) -> None:
    ds = build_projection_rdsr(2)
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = UID("1.2.840.10008.5.1.4.1.1.88.73")
    assert classify(ds).kind == PROJECTION_RDSR


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({}, "RF"),  # cine-only, no device type
        ({"device_type": "Integrated Projection Radiography System"}, "RF"),
        ({"pulses": 1, "plane_b": True}, "RF"),  # biplane: an angiography system
        ({"pulses": 2}, "DX"),  # dual-energy radiography: two exposures
        ({"pulses": 1}, "DX"),
        ({"device_type": "Cassette-based Projection Radiography System"}, "DX"),
    ],
    ids=["cine", "cine-integrated", "plane-b", "dual-energy", "single", "cassette"],
)
def test_it_types_projection_reports_by_dicom_evidence(
    tmp_path: Path, kwargs: dict, expected: str
) -> None:
    ds = build_cine_rdsr(**kwargs)
    record = import_file(write(ds, tmp_path / "xa.dcm"), Source.FILE)
    assert record.outcome == Outcome.IMPORTED, record.error
    study = _study(ds.StudyInstanceUID)
    assert study["modality_type"] == expected
    assert len(study["events"]) == 3


def test_a_dx_report_without_pulses_or_rp_dose_stays_dx(tmp_path: Path) -> None:
    ds = build_projection_rdsr([ProjectionEvent(), ProjectionEvent()])
    import_file(write(ds, tmp_path / "dx.dcm"), Source.FILE)
    assert _study(ds.StudyInstanceUID)["modality_type"] == "DX"


@pytest.mark.parametrize(("del_rdsr", "kept"), [(False, True), (True, False)])
def test_a_received_patient_dose_report_follows_the_dose_report_delete_setting(
    tmp_path: Path, del_rdsr: bool, kept: bool
) -> None:
    settings = DeleteSettings.get()
    settings.del_no_match, settings.del_rdsr = True, del_rdsr
    settings.save()
    path = write(build_patient_dose_sr(), tmp_path / "pat.dcm")
    record = import_file(path, Source.STORE)
    assert record.outcome == Outcome.NOT_IMPORTABLE
    assert path.exists() is kept
