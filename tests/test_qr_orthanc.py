"""End to end against a real Orthanc: `doseport qr` for CT+DX+MG retrieves exactly the dose
objects the rules select into a running store node, they are imported, a second run
retrieves nothing, and --dup retrieves again without duplicate studies."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from pydicom import dcmread
from pydicom.uid import generate_uid

from dose.models import Study
from imports.models import ImportRecord, Outcome
from nodes.models import RemoteNode
from tests.conftest import doseport_cmd, require_tool, samples_dir
from tests.orthanc import Orthanc, synthetic_image
from tests.store_helpers import make_node, start_node_and_worker

pytestmark = [pytest.mark.interop, pytest.mark.samples]

# sample file -> kept by the rules (True) or loaded only for context (False)
KEPT_FILES = {
    "CT-RDSR-GEPixelMed.dcm", "CT-RDSR-Philips_BigBore4DCT.dcm", "CT-RDSR-Siemens-Multi-1.dcm",
    "CT-RDSR-Siemens-Multi-2.dcm", "CT-RDSR-Siemens-Multi-3.dcm",
    "CT-RDSR-Siemens_Flash-QA-DS.dcm", "CT-RDSR-ToshibaPixelMed.dcm",
    "CT-RDSR-Toshiba_MultiValSD.dcm", "CT-ESR-GE_Optima.dcm", "CT-SC-Philips_Brilliance16P.dcm",
    "DX-Im-Carestream_DR7500-1.dcm", "DX-Im-Carestream_DR7500-2.dcm", "DX-Im-Carestream_DRX.dcm",
    "DX-Im-DRGEM.dcm", "DX-Im-GE_XR220-1.dcm", "DX-Im-GE_XR220-2.dcm", "DX-Im-GE_XR220-3.dcm",
    "DX-Im-SiemensMultix.dcm", "DX-RDSR-Canon_CXDI.dcm",
    "MG-Im-GE_Seno_1_ForPresentation.dcm", "MG-Im-GE_Seno_1_ForProcessing.dcm",
    "MG-Im-GE_Seno_2_ForPresentation.dcm", "MG-RDSR-Hologic_2D.dcm",
}
# dose SRs whose study gets synthetic images of this modality (so CT/DX/MG queries find it)
WITH_IMAGES = {
    "CT-RDSR-GEPixelMed.dcm": "CT", "CT-RDSR-Philips_BigBore4DCT.dcm": "CT",
    "CT-RDSR-Siemens-Multi-1.dcm": "CT", "CT-RDSR-Siemens_Flash-QA-DS.dcm": "CT",
    "CT-RDSR-ToshibaPixelMed.dcm": "CT", "CT-RDSR-Toshiba_MultiValSD.dcm": "CT",
    "CT-ESR-GE_Optima.dcm": "CT", "DX-RDSR-Canon_CXDI.dcm": "DX",
    "MG-RDSR-Hologic_2D.dcm": "MG",
}
# an RDSR-only study (ModalitiesInStudy SR): not found by a CT/DX/MG query
SR_ONLY = "MG-RDSR-GEPristina-2D.dcm"


def load(orthanc: Orthanc) -> set[str]:
    """Upload samples + synthetic series; returns the SOP UIDs the rules must select."""
    base = samples_dir() / "openrem"
    expected: set[str] = set()
    for name in sorted(KEPT_FILES | {SR_ONLY}):
        path = base / name
        ds = dcmread(path, stop_before_pixels=True)
        orthanc.upload_file(path)
        if name in KEPT_FILES:
            expected.add(str(ds.SOPInstanceUID))
        modality = WITH_IMAGES.get(name)
        if modality:
            series = generate_uid()
            for n in range(1, 4):
                orthanc.upload(synthetic_image(ds, modality, series, n, "Synthetic axial")[1])
    # a CT study with described images and no dose object: excluded
    template = dcmread(base / "CT-RDSR-GEPixelMed.dcm", stop_before_pixels=True)
    template.StudyInstanceUID = generate_uid()
    series = generate_uid()
    for n in range(1, 4):
        orthanc.upload(synthetic_image(template, "CT", series, n, "Head")[1])
    return expected


def qr(process_env: dict[str, str], remote: RemoteNode, store: Any, *extra: str) -> dict:
    run = subprocess.run(
        doseport_cmd("qr", str(remote.pk), str(store.pk), "-ct", "-dx", "-mg",
                     "-f", "1990-01-01", "-t", "2024-12-31", "--json", *extra),
        env=process_env, capture_output=True, text=True, timeout=240,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    summary: dict = json.loads(run.stdout)
    return summary


def test_it_retrieves_exactly_the_dose_objects_and_not_twice(
    process_env: dict[str, str], spawn: Any, tmp_path: Path
) -> None:
    require_tool("Orthanc")
    store = make_node(ae_title="DOSESTORE", allowed_calling_aets="")
    with Orthanc(tmp_path / "orthanc", {
        "DPQUERY": ("127.0.0.1", 104), "DOSESTORE": ("127.0.0.1", store.port),
    }) as orthanc:
        expected = load(orthanc)
        remote = RemoteNode.objects.create(
            name="orthanc", ae_title=orthanc.aet, host="127.0.0.1", port=orthanc.dicom_port,
            calling_ae_title="DPQUERY",
        )
        start_node_and_worker(spawn, store, tmp_path / "logs")

        first = qr(process_env, remote, store)
        assert first["status"] == "complete" and first["errors"] == []
        assert first["move"]["status"] == "complete", first["move"]
        assert first["move"]["completed"] == len(expected)
        assert first["move"]["arrived"] == len(expected)
        received = ImportRecord.objects.filter(store_node=store)
        assert set(received.values_list("sop_instance_uid", flat=True)) == expected
        assert received.count() == len(expected)
        # the importer may call an object a duplicate (e.g. For Processing + For Presentation
        # of one exposure); nothing may fail
        done = received.exclude(outcome__in=[Outcome.IMPORTED, Outcome.DUPLICATE])
        assert not done.exists(), list(done.values_list("path", "outcome", "error"))
        first_ids = list(received.values_list("pk", flat=True))
        studies = Study.objects.count()
        assert studies > 0

        second = qr(process_env, remote, store)
        assert second["to_retrieve"] == 0
        assert second["excluded"].get("already imported") == first["to_retrieve"]
        assert second["move"]["completed"] == 0

        third = qr(process_env, remote, store, "--dup")
        assert third["move"]["completed"] == len(expected)
        assert Study.objects.count() == studies
        again = ImportRecord.objects.filter(store_node=store).exclude(pk__in=first_ids)
        assert set(again.values_list("sop_instance_uid", flat=True)) == expected


def test_it_fetches_with_c_get_from_orthanc_and_imports(db: Any, tmp_path: Path) -> None:
    from qr.jobs import new_move, new_query
    from qr.move import run_move
    from qr.params import QueryParams
    from qr.run import run_query

    require_tool("Orthanc")
    base = samples_dir() / "openrem"
    with Orthanc(tmp_path / "orthanc", {"DPQUERY": ("127.0.0.1", 104)}) as orthanc:
        wanted = set()
        for name in ("CT-RDSR-Siemens-Multi-1.dcm", "CT-RDSR-Siemens-Multi-2.dcm"):
            ds = dcmread(base / name, stop_before_pixels=True)
            orthanc.upload_file(base / name)
            wanted.add(str(ds.SOPInstanceUID))
        series = generate_uid()
        for n in (1, 2):
            orthanc.upload(synthetic_image(ds, "CT", series, n, "Synthetic axial")[1])
        remote = RemoteNode.objects.create(
            name="orthanc", ae_title=orthanc.aet, host="127.0.0.1", port=orthanc.dicom_port,
            calling_ae_title="DPQUERY", retrieve_method=RemoteNode.RETRIEVE_GET,
        )
        day = dt.date(2018, 1, 5)
        query = new_query(remote, None, QueryParams(modalities=["CT"], date_from=day,
                                                    date_until=day).normalized())
        assert run_query(query) == "complete"
        move = new_move(query)
        assert run_move(move) == "complete", move.errors
    records = ImportRecord.objects.filter(sop_instance_uid__in=wanted)
    assert set(records.values_list("sop_instance_uid", flat=True)) == wanted
    assert set(records.values_list("outcome", flat=True)) == {Outcome.IMPORTED}
    assert move.arrived == 2 and ImportRecord.objects.count() == 2
