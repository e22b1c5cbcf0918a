"""Synthetic dose objects (tests/builders) import with the values they were built with."""

from __future__ import annotations

from pathlib import Path

import pytest

from dose.models import Study
from dose.serialize import studies_for_export, study_to_dict
from imports.classify import CT_RDSR, MG_IMAGE, NM_RDSR, PROJECTION_RDSR, classify
from imports.models import Outcome, Source
from imports.service import import_file, imported_sop_uids
from tests.builders.rdsr import (
    CtEvent,
    Header,
    ProjectionEvent,
    build_ct_rdsr,
    build_dx_image,
    build_mg_image,
    build_mg_rdsr,
    build_projection_rdsr,
    build_rrdsr,
    write,
)

pytestmark = pytest.mark.django_db


def _one(study_uid: str) -> dict:
    return study_to_dict(studies_for_export(Study.objects.filter(study_instance_uid=study_uid))[0])


def test_it_imports_a_ct_rdsr_with_events_sources_and_totals(tmp_path: Path) -> None:
    events = [CtEvent(protocol="Héad", ctdivol=12.5, dlp=250.0), CtEvent(dlp=150.0, pitch=None)]
    ds = build_ct_rdsr(events)
    assert classify(ds).kind == CT_RDSR
    record = import_file(write(ds, tmp_path / "ct.dcm"), Source.FILE)
    assert record.outcome == Outcome.IMPORTED, record.error
    study = _one(ds.StudyInstanceUID)
    assert study["modality_type"] == "CT"
    assert study["study_date"] == "2024-01-15"
    assert [e["acquisition_protocol"] for e in study["events"]] == ["Héad", "Chest"]
    assert study["events"][0]["ctdivol_mGy"] == 12.5
    assert study["events"][0]["xray_sources"][0]["kvp_kV"] == 120.0
    assert study["events"][1]["pitch_factor"] is None
    assert study["totals"]["dlp_total_mGycm"] == pytest.approx(400.0)
    assert study["totals"]["number_of_events"] == 2
    assert study["source_sop_instance_uids"] == [ds.SOPInstanceUID]
    assert "patient_name" not in study
    assert imported_sop_uids([ds.SOPInstanceUID, "1.2.3"]) == {ds.SOPInstanceUID}


def test_it_converts_dlp_units_and_rejects_unknown_units(tmp_path: Path) -> None:
    ds = build_ct_rdsr([CtEvent(dlp=300.0)], dlp_unit="Gy.cm")
    assert import_file(write(ds, tmp_path / "a.dcm"), Source.FILE).outcome == Outcome.IMPORTED
    assert _one(ds.StudyInstanceUID)["events"][0]["dlp_mGycm"] == pytest.approx(300.0)
    bad = build_ct_rdsr(1, dlp_unit="furlong.Gy")
    record = import_file(write(bad, tmp_path / "b.dcm"), Source.FILE)
    assert record.outcome == Outcome.FAILED
    assert "furlong.Gy" in record.error


def test_it_imports_a_projection_rdsr_converting_dap(tmp_path: Path) -> None:
    events = [ProjectionEvent(dap=0.41), ProjectionEvent(event_type="Fluoroscopy", dap=2.0)]
    ds = build_projection_rdsr(events, dap_unit="dGy.cm2")
    assert classify(ds).kind == PROJECTION_RDSR
    assert import_file(write(ds, tmp_path / "rf.dcm"), Source.FILE).outcome == Outcome.IMPORTED
    study = _one(ds.StudyInstanceUID)
    assert study["modality_type"] == "RF"  # fluoroscopy in the study
    assert study["events"][0]["dap_Gym2"] == pytest.approx(0.41e-5, rel=1e-9)
    assert study["events"][0]["filters"][0]["material"] == "Copper or Copper compound"
    assert study["totals"]["dap_total_Gym2"] == pytest.approx(2.41e-5, rel=1e-9)
    assert study["totals"]["number_of_planes"] == 1


def test_it_types_a_projection_report_without_fluoroscopy_as_dx(tmp_path: Path) -> None:
    ds = build_projection_rdsr(1, dap_unit="cGy.cm2")
    import_file(write(ds, tmp_path / "dx.dcm"), Source.FILE)
    study = _one(ds.StudyInstanceUID)
    assert study["modality_type"] == "DX"
    assert study["events"][0]["dap_Gym2"] == pytest.approx(0.5e-6, rel=1e-9)


def test_it_imports_mammography_reports_and_images(tmp_path: Path) -> None:
    ds = build_mg_rdsr()
    import_file(write(ds, tmp_path / "mg.dcm"), Source.FILE)
    study = _one(ds.StudyInstanceUID)
    assert study["modality_type"] == "MG"
    assert study["totals"]["accumulated_agd_mGy"] == {"Left breast": 1.2, "Right breast": 1.4}
    assert [e["agd_mGy"] for e in study["events"]] == [1.2, 1.4]

    header = Header()
    first = build_mg_image(header=Header(study_uid=header.study_uid), agd_dgy=0.012)
    copy = build_mg_image(header=Header(study_uid=header.study_uid), agd_dgy=0.012,
                          for_processing=True)
    other = build_mg_image(header=Header(study_uid=header.study_uid), laterality="R",
                           agd_dgy=0.02, acquisition_time="094000")
    assert classify(first).kind == MG_IMAGE
    outcomes = [import_file(write(d, tmp_path / f"{i}.dcm"), Source.FILE).outcome
                for i, d in enumerate([first, copy, other])]
    assert outcomes == [Outcome.IMPORTED, Outcome.DUPLICATE, Outcome.IMPORTED]
    images = _one(header.study_uid)
    assert images["totals"]["number_of_events"] == 2
    assert images["totals"]["accumulated_agd_mGy"] == {"Left": 1.2, "Right": 2.0}


def test_it_imports_dx_images_into_one_study(tmp_path: Path) -> None:
    study_uid = Header().study_uid
    for i in range(3):
        ds = build_dx_image(header=Header(study_uid=study_uid), dap_dgycm2=1.0 + i)
        assert import_file(write(ds, tmp_path / f"{i}.dcm"), Source.FILE).outcome == "imported"
    study = _one(study_uid)
    assert study["modality_type"] == "DX"
    assert study["totals"]["number_of_events"] == 3
    assert study["totals"]["dap_total_Gym2"] == pytest.approx(6.0e-5, rel=1e-9)
    assert study["events"][0]["deviation_index"] == -1.0


def test_it_imports_a_radiopharmaceutical_report(tmp_path: Path) -> None:
    ds = build_rrdsr(activity_mbq=394.0)
    assert classify(ds).kind == NM_RDSR
    assert import_file(write(ds, tmp_path / "nm.dcm"), Source.FILE).outcome == "imported"
    study = _one(ds.StudyInstanceUID)
    assert study["modality_type"] == "NM"
    event = study["events"][0]
    assert event["administered_activity_MBq"] == 394.0
    assert event["radionuclide"] == "^18^Fluorine"
    assert event["effective_dose_mSv"] == 6.5
    assert event["radiopharmaceutical_start_datetime"] == "2024-01-15T08:15:00"


@pytest.mark.parametrize("implicit", [False, True])
def test_it_reads_the_same_content_tree_fast_and_through_pydicom(
    tmp_path: Path, implicit: bool
) -> None:
    from pydicom import dcmread
    from pydicom.uid import ImplicitVRLittleEndian

    from imports.extractors.sr import node_from_item, tree
    from imports.extractors.sr_fast import fast_children

    ds = build_ct_rdsr([CtEvent(protocol="Kopf ü"), CtEvent()])
    if implicit:
        ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
    path = write(ds, tmp_path / "ct.dcm")
    assert len(fast_children(dcmread(path))) == 4  # fast path taken, not the fallback
    assert tree(dcmread(path)) == node_from_item(dcmread(path))


def test_it_answers_which_uids_were_imported_in_chunks(django_assert_num_queries) -> None:
    from imports.models import ImportRecord

    rows = [ImportRecord(sop_instance_uid=f"1.2.3.{i}", source=Source.STORE,
                         outcome=Outcome.IMPORTED if i % 3 else Outcome.FAILED)
            for i in range(1200)]
    rows.append(ImportRecord(sop_instance_uid="9.9", source=Source.FILE,
                             outcome=Outcome.DUPLICATE))
    ImportRecord.objects.bulk_create(rows)
    wanted = [f"1.2.3.{i}" for i in range(1200)] + ["9.9", "7.7"]
    with django_assert_num_queries(3):  # 1202 UIDs, 500 per query
        found = imported_sop_uids(wanted)
    assert found == {f"1.2.3.{i}" for i in range(1200) if i % 3} | {"9.9"}


def test_it_imports_through_the_worker_task(tmp_path: Path) -> None:
    from imports.models import ImportRecord
    from imports.tasks import import_file_task

    ds = build_ct_rdsr(1)
    result = import_file_task(str(write(ds, tmp_path / "ct.dcm")), Source.STORE, None)
    record = ImportRecord.objects.get(pk=result.get())  # Huey runs tasks inline in tests
    assert (record.outcome, record.source, record.kind) == (Outcome.IMPORTED, "store", CT_RDSR)
    assert record.duration_ms is not None and record.finished_at is not None
