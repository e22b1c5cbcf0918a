"""Probe a remote node (issue 15, item 5): against the fake remote in each behaviour and
against a real Orthanc; the result is stored on the node and printed by `doseport probe`."""

from __future__ import annotations

import datetime as dt
import json
from io import BytesIO, StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from pydicom import Dataset, dcmread
from pydicom.uid import generate_uid

from nodes.models import RemoteNode
from qr.probe import NO, YES, probe
from tests.conftest import free_port, require_tool, samples_dir
from tests.fake_remote import RDSR, FakeRemote, remote_node, series_of
from tests.orthanc import Orthanc, synthetic_image

pytestmark = pytest.mark.django_db(transaction=True)
TODAY = dt.date.today()
DAY = (TODAY - dt.timedelta(days=1)).strftime("%Y%m%d")


def pacs_objects() -> list[Any]:
    """A CT study with its RDSR, a Toshiba-style CT study (dose screen, no SR), a dose SR
    held as a study of its own, and an MG study; station names only at series level."""
    return (
        series_of("1.2.9.1", "CT", 3, date=DAY, series_desc="Chest")
        + series_of("1.2.9.1", "SR", 1, sop_class=RDSR, date=DAY, series_desc="Dose Report")
        + series_of("1.2.9.2", "CT", 2, date=DAY, series_desc="Head")
        + series_of("1.2.9.2", "SC", 1, date=DAY, series_desc="Dose screen")
        + series_of("1.2.9.3", "SR", 1, sop_class=RDSR, date=DAY, series_desc="Dose Report")
        + series_of("1.2.9.4", "MG", 2, date=DAY, series_desc="L CC")
    )


def test_it_reports_what_a_pacs_that_honours_the_keys_supports() -> None:
    with FakeRemote(pacs_objects()) as fake:
        node = remote_node(fake)
        result = probe(node)
    assert result.ok and result.studies_seen == 4
    assert result.check("modalities_in_study").result == YES
    assert result.check("station_name_study").result == NO  # only series carry it
    assert result.check("sr_series").result == YES
    assert result.check("image_level").result == YES
    assert "dose SR found" in result.check("image_level").detail
    assert result.check("instance_number").result == YES
    assert result.check("c_get").result == YES
    assert result.check("toshiba").result == YES
    assert result.sr_only_studies
    text = " ".join(result.suggestions)
    assert "Dose SRs only" in text and "--toshiba" in text and "series level" in text
    assert "C-GET" in text
    node.refresh_from_db()
    stored = node.probe_result or {}
    assert node.probed_at is not None and stored["sr_only_studies"] is True
    assert {c["key"] for c in stored["checks"]} >= {"c_get", "toshiba"}
    # Only queries: never a retrieve.
    assert fake.moves == [] and all(
        f.QueryRetrieveLevel in ("STUDY", "SERIES", "IMAGE") for f in fake.finds)


def test_it_finds_a_pacs_that_ignores_modalities_in_study() -> None:
    objs = pacs_objects()
    objs[0].study_station = "CT1"
    with FakeRemote(objs) as fake:
        fake.ignore_modalities = True
        result = probe(remote_node(fake))
    check = result.check("modalities_in_study")
    assert check.result == NO and "ignores the key" in check.detail
    assert result.check("station_name_study").result == YES
    assert any("filters the answers itself" in s for s in result.suggestions)
    assert any("--stationname-study-level" in s for s in result.suggestions)


def test_it_says_when_modalities_in_study_is_not_returned() -> None:
    with FakeRemote(pacs_objects()) as fake:
        fake.omit_modalities = True
        result = probe(remote_node(fake))
    check = result.check("modalities_in_study")
    assert check.result == NO and "rebuilds it from the series" in check.detail


def test_it_stores_a_failed_probe_and_the_command_exits_non_zero() -> None:
    node = RemoteNode.objects.create(
        name="gone", ae_title="GONE", host="127.0.0.1", port=free_port(), connect_timeout=2)
    with pytest.raises(CommandError, match="cannot probe gone: connection refused"):
        call_command("probe", str(node.pk), stdout=StringIO())
    node.refresh_from_db()
    assert (node.probe_result or {})["ok"] is False and node.probed_at is not None
    with pytest.raises(CommandError, match="no remote node with id 99999"):
        call_command("probe", "99999", stdout=StringIO())


def test_the_command_prints_checks_and_suggestions() -> None:
    with FakeRemote(pacs_objects()) as fake:
        node = remote_node(fake)
        out = StringIO()
        call_command("probe", str(node.pk), stdout=out)
        text = out.getvalue()
        assert "ModalitiesInStudy matching at study level" in text and "suggested:" in text
        out = StringIO()
        call_command("probe", str(node.pk), "--json", stdout=out)
    assert json.loads(out.getvalue())["ok"] is True


@pytest.mark.interop
@pytest.mark.samples
def test_it_probes_a_real_orthanc(tmp_path: Path) -> None:
    """Orthanc honours ModalitiesInStudy, lists SR series and answers image-level queries; a
    dose SR of its own study (ModalitiesInStudy SR) calls for a "Dose SRs only" query."""
    require_tool("Orthanc")
    with Orthanc(tmp_path / "orthanc", {"DPQUERY": ("127.0.0.1", free_port())}) as orthanc:
        sr = dcmread(samples_dir() / "openrem" / "CT-RDSR-GEPixelMed.dcm")
        sr.StudyDate = DAY
        buffer = BytesIO()
        sr.save_as(buffer)
        orthanc.upload(buffer.getvalue())
        study = Dataset()
        study.StudyInstanceUID, study.StudyDate = generate_uid(), DAY
        series = generate_uid()
        for number in (1, 2, 3):
            orthanc.upload(synthetic_image(study, "CT", series, number)[1])
        node = RemoteNode.objects.create(
            name="Orthanc", ae_title=orthanc.aet, host="127.0.0.1", port=orthanc.dicom_port,
            calling_ae_title="DPQUERY")
        result = probe(node)
    assert result.ok, result.error
    assert result.studies_seen == 2 and result.sr_only_studies
    assert result.check("modalities_in_study").result == YES
    assert result.check("sr_series").result == YES
    assert result.check("image_level").result == YES
    assert "dose SR found" in result.check("image_level").detail
    assert result.check("instance_number").result == YES
    assert result.check("c_get").result == YES
    assert any("Dose SRs only" in s for s in result.suggestions)


def test_the_probe_button_queues_a_probe_and_the_panel_shows_the_result(
    client: Any, importer: Any, viewer: Any,
) -> None:
    with FakeRemote(pacs_objects()) as fake:
        node = remote_node(fake, name="Fake PACS")
        client.force_login(viewer)
        assert client.post(f"/config/dicom/remote/{node.pk}/probe/").status_code == 403
        client.force_login(importer)
        response = client.post(f"/config/dicom/remote/{node.pk}/probe/", HTTP_HX_REQUEST="true")
    body = response.content.decode()
    assert response.status_code == 200 and f'id="probe-{node.pk}"' in body
    assert "What this PACS supports" in body and "Suggested query options" in body
    assert 'data-check="modalities_in_study"' in body and "Dose SRs only" in body
    node.refresh_from_db()
    assert "pending" not in (node.probe_result or {})


def test_it_does_not_echo_odd_modality_codes_from_the_pacs() -> None:
    objs = series_of("1.2.9.7", "C\x1b[2J", 2, date=DAY)
    with FakeRemote(objs) as fake:
        result = probe(remote_node(fake))
    detail = result.check("modalities_in_study").detail
    assert result.ok and not any("\x1b" in c.detail for c in result.checks)
    assert detail == "no usable modality code among the answers"
