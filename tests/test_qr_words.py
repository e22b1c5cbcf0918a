"""Query pages in people's words (issue 15, item 5): the options as a sentence, DICOM dates
and times, SOP class names and hints when the results look thin."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace
from typing import Any

import pytest

from qr import words
from qr.params import QueryParams


def params(**kw: object) -> dict[str, object]:
    return QueryParams(**kw).to_json()  # type: ignore[arg-type]


def test_it_says_the_options_as_a_sentence() -> None:
    text = words.sentence(params(
        modalities=["CT", "MG", "DX"], date_from=dt.date(2000, 1, 1),
        date_until=dt.date(2000, 12, 31), desc_exclude=["head"],
    ), "PACS X")
    assert text.startswith("CT, MG and DX (DX, CR, PX) studies from 01 Jan 2000 to 31 Dec 2000 "
                           "on PACS X; no study description containing “head”")
    assert "objects already imported skipped" in text
    one_day = words.sentence(params(
        sr_only=True, date_from=dt.date(2024, 3, 5), date_until=dt.date(2024, 3, 5),
        time_from="0800", time_until="1230", dup=True,
    ), "PACS")
    assert one_day.startswith("Dose SR studies (modality SR) on 05 Mar 2024 between 08:00 "
                              "and 12:30 on PACS")
    assert "retrieved again" in one_day
    assert "modalities=" not in text and "[" not in text


def test_it_formats_dicom_dates_times_and_sop_classes() -> None:
    assert words.dicom_date("20000101") == "01 Jan 2000"
    assert words.dicom_date("") == "date unknown" and words.dicom_date("2000") == "date unknown"
    assert words.dicom_time("132135.000000") == "13:21:35"
    assert words.dicom_time("1321") == "13:21" and words.dicom_time("") == ""
    assert words.sop_class_name("1.2.840.10008.5.1.4.1.1.88.67") == "X-Ray Radiation Dose SR"
    assert words.sop_class_name("1.2.840.10008.5.1.4.1.1.88.68") == (
        "Radiopharmaceutical Radiation Dose SR")
    assert words.sop_class_name("1.2.3.4") == "1.2.3.4"


def query(notes: list[str] | None = None, probe: dict[str, object] | None = None,
          **kw: object) -> SimpleNamespace:
    return SimpleNamespace(params=params(**kw), notes=notes or [],
                           remote=SimpleNamespace(probe_result=probe))


def test_it_hints_when_results_look_thin() -> None:
    ct: dict[str, Any] = {"modalities": ["CT", "DX"], "date_from": dt.date(2024, 1, 1)}
    thin = {"to_retrieve": 7, "excluded": {"no dose report": 32}}
    hints = words.hints(query(**ct), thin)
    assert len(hints) == 1 and "Some PACS list dose reports" in hints[0]
    assert "“Dose SRs only”" in hints[0] and "CT and DX query" in hints[0]
    hints = words.hints(query(probe={"sr_only_studies": True}, **ct), thin)
    assert hints[0].startswith("This PACS lists dose reports as studies of their own")
    ignored = {"to_retrieve": 3, "excluded": {"modality not requested": 5}}
    hints = words.hints(query(**ct), ignored)
    assert len(hints) == 1 and "The PACS ignored ModalitiesInStudy" in hints[0]
    assert "5 studies of other modalities" in hints[0]
    assert words.hints(query(**ct), {"to_retrieve": 3, "excluded": {}}) == []
    assert words.hints(query(sr_only=True), {"to_retrieve": 0, "excluded": {}}) == []
    assert words.hints(query(**ct), None) == []


@pytest.mark.django_db
def test_the_query_page_polls_node_status_only_while_a_check_is_pending(
    admin_client: Any,
) -> None:
    from nodes.models import RemoteNode, StoreNode

    remote = RemoteNode.objects.create(name="PACS", ae_title="PACS", host="pacs", port=104)
    store = StoreNode.objects.create(name="S", ae_title="S", port=11112, controlled=False)
    page = admin_client.get("/qr/").content.decode()
    assert "every 3s" not in page and "every 1s" not in page
    url = f"/qr/nodes/?remote={remote.pk}&store={store.pk}"
    assert "every 1s" not in admin_client.get(url).content.decode()
    remote.request_echo()
    assert 'hx-trigger="every 1s"' in admin_client.get(url).content.decode()
