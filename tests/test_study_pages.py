"""Connected study pages: dose objects and their imports, same-visit studies, one source of
headline totals, constant query counts, empty states and page titles."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest
from django.test import Client
from django.utils import timezone

from dose.models import (
    AccumulatedBreast,
    AccumulatedPlane,
    IrradiationEvent,
    RadiopharmaceuticalAdministration,
    Study,
)
from dose.queries import headline, with_summary
from dose.serialize import studies_for_export, study_to_dict
from imports.models import ImportRecord, Outcome, Source
from imports.service import import_file
from nodes.models import RemoteNode, StoreNode
from qr.models import Query, QueryImage, QuerySeries, QueryStudy
from tests.conftest import samples_dir

pytestmark = pytest.mark.django_db
RDSR = "1.2.840.10008.5.1.4.1.1.88.67"
_n = iter(range(1, 100_000))


def make_study(modality: str = Study.CT, **fields: object) -> Study:
    n = next(_n)
    values: dict[str, object] = {
        "study_instance_uid": f"1.2.826.0.1.3680043.10.9.{n}", "modality_type": modality,
        "study_date": dt.date(2013, 4, 12), "study_time": dt.time(13, 22, 23),
        "accession_number": f"ACC{n}", "source_sop_instance_uids": [f"1.2.3.9.{n}"],
    }
    values.update(fields)
    return Study.objects.create(**values)


def record_for(study: Study, uid: str, **fields: object) -> ImportRecord:
    values: dict[str, object] = {
        "sop_instance_uid": uid, "sop_class_uid": RDSR, "kind": "ct_rdsr",
        "study_instance_uid": study.study_instance_uid, "source": Source.FILE,
        "outcome": Outcome.IMPORTED,
    }
    values.update(fields)
    return ImportRecord.objects.create(**values)


def text_of(html: bytes) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", html.decode()).split())


def title_of(html: bytes) -> str:
    found = re.search(r"<title>(.*?)</title>", html.decode(), re.S)
    assert found
    return " ".join(found.group(1).split())


@pytest.fixture
def browser(client: Client, importer) -> Client:  # type: ignore[no-untyped-def]
    client.force_login(importer)
    return client


def test_it_lists_the_objects_that_made_a_study_with_their_imports(browser: Client) -> None:
    study = make_study(source_sop_instance_uids=["1.2.3.100", "1.2.3.101", "1.2.3.102"])
    node = StoreNode.objects.create(name="CT store", ae_title="CTSTORE", port=11113)
    stored = record_for(
        study, "1.2.3.100", source=Source.STORE, store_node=node,
        received_at=dt.datetime(2013, 4, 12, 14, 0, 5, tzinfo=dt.UTC),
    )
    again = record_for(study, "1.2.3.100", outcome=Outcome.DUPLICATE)
    remote = RemoteNode.objects.create(name="PACS", ae_title="PACS", host="pacs", port=104)
    query = Query.objects.create(remote=remote, remote_name="PACS")
    series = QuerySeries.objects.create(
        study=QueryStudy.objects.create(query=query, study_instance_uid=study.study_instance_uid),
        series_instance_uid="1.2.3.7",
    )
    retrieved = record_for(study, "1.2.3.101", source=Source.QUERY, sop_class_uid="")
    QueryImage.objects.create(series=series, sop_instance_uid="1.2.3.101", arrival=retrieved)

    response = browser.get(f"/studies/{study.pk}/")
    html = response.content.decode()
    objects = response.context["objects"]
    assert [(o.sop_instance_uid, o.record) for o in objects] == [
        ("1.2.3.100", stored), ("1.2.3.100", again), ("1.2.3.101", retrieved), ("1.2.3.102", None),
    ]
    assert objects[0].sop_class_name == "X-Ray Radiation Dose SR Storage"
    assert objects[2].query_id == query.pk
    table = text_of(html.split('id="objects"')[1].encode())
    assert "X-Ray Radiation Dose SR Storage 1.2.3.100 12 Apr 2013 14:00 CT store (CTSTORE)" in table
    assert f"query {query.pk}" in table and "no import record (deleted)" in table
    for record in (stored, again, retrieved):
        assert f'href="/imports/{record.pk}/"' in html
    assert f'href="/qr/{query.pk}/"' in html


def test_it_links_an_import_record_to_its_study(browser: Client) -> None:
    ct = make_study(Study.CT, study_description="PET^CT", source_sop_instance_uids=["1.2.3.200"])
    nm = make_study(
        Study.NM, study_instance_uid=ct.study_instance_uid, source_sop_instance_uids=["1.2.3.201"]
    )
    record = record_for(ct, "1.2.3.200")
    html = browser.get(f"/imports/{record.pk}/").content.decode()
    assert f'href="/studies/{ct.pk}/"' in html and f'href="/studies/{nm.pk}/"' not in html
    assert "CT study · 12 Apr 2013 13:22 · PET CT" in html
    assert "X-Ray Radiation Dose SR Storage" in html

    failed = record_for(ct, "1.2.3.299", outcome=Outcome.FAILED)
    html = browser.get(f"/imports/{failed.pk}/").content.decode()
    assert f'href="/studies/{ct.pk}/"' in html and f'href="/studies/{nm.pk}/"' in html

    lost = record_for(ct, "1.2.3.298", study_instance_uid="9.9.9")
    html = browser.get(f"/imports/{lost.pk}/").content.decode()
    assert "no study (deleted since)" in text_of(html.encode())


def test_it_links_studies_of_the_same_visit(browser: Client) -> None:
    ct = make_study(Study.CT, accession_number="PETCT1")
    nm = make_study(Study.NM, study_instance_uid=ct.study_instance_uid, accession_number="")
    follow_up = make_study(Study.CT, accession_number="PETCT1")
    other = make_study(Study.CT)
    response = browser.get(f"/studies/{ct.pk}/")
    assert set(response.context["related"]) == {nm, follow_up}
    related = text_of(response.content.decode().split('id="related"')[1].encode())
    assert "NM study · 12 Apr 2013 13:22 same Study Instance UID" in related
    assert "same accession number" in related
    assert f'href="/studies/{other.pk}/"' not in response.content.decode()
    nm_page = browser.get(f"/studies/{nm.pk}/")
    assert list(nm_page.context["related"]) == [ct]  # no accession: matched by UID only


def mg_from_images() -> Study:
    """An MG study built from image headers: no accumulated breasts, AGD on the events."""
    mg = make_study(Study.MG)
    for side, agd in (("L", 1.25), ("L", 1.5), ("R", 1.0)):
        IrradiationEvent.objects.create(
            study=mg, agd_mGy=agd, laterality=side, laterality_code=side
        )
    return mg


def test_it_shows_the_same_headline_in_the_list_and_on_the_study_page(browser: Client) -> None:
    mg = mg_from_images()
    row = next(h for s, h in browser.get("/studies/").context["rows"] if s.pk == mg.pk)
    page = browser.get(f"/studies/{mg.pk}/").context["headline"]
    assert row == page
    assert row.agd_mGy_by_side == {"L": 2.75, "R": 1.0}
    listed = text_of(browser.get("/studies/").content)
    assert "L 2.75 R 1" in listed
    detail = text_of(browser.get(f"/studies/{mg.pk}/").content)
    assert "Accumulated AGD, left breast (mGy) 2.75" in detail


def export_totals(study: Study) -> dict[str, object]:
    return study_to_dict(studies_for_export(Study.objects.filter(pk=study.pk)).get())["totals"]


def test_it_computes_headlines_by_the_export_rules() -> None:
    mg = make_study(Study.MG)
    AccumulatedBreast.objects.create(study=mg, laterality="Left breast", accumulated_agd_mGy=3.0)
    IrradiationEvent.objects.create(study=mg, agd_mGy=9.0, laterality_code="R")  # report wins
    rf = make_study(Study.RF)
    AccumulatedPlane.objects.create(study=rf, dap_total_Gym2=2.0e-4, dose_rp_total_Gy=0.05)
    AccumulatedPlane.objects.create(study=rf, dap_total_Gym2=1.0e-4, dose_rp_total_Gy=None)
    IrradiationEvent.objects.create(study=rf, dap_Gym2=7.0)
    dx = make_study(Study.DX)
    IrradiationEvent.objects.create(study=dx, dap_Gym2=1.5e-5, dose_rp_Gy=0.001)
    ct = make_study(Study.CT)
    IrradiationEvent.objects.create(study=ct, dlp_mGycm=100.0)
    IrradiationEvent.objects.create(study=ct, dlp_mGycm=50.0)
    nm = make_study(Study.NM)
    RadiopharmaceuticalAdministration.objects.create(study=nm, administered_activity_MBq=394.0)
    for study in (mg, rf, dx, ct, nm):
        h = headline(with_summary(Study.objects.filter(pk=study.pk)).get())
        totals = export_totals(study)
        assert h.events == totals["number_of_events"]
        assert h.dlp_mGycm == totals["dlp_total_mGycm"]
        assert h.dap_Gym2 == pytest.approx(totals["dap_total_Gym2"])
        assert h.dose_rp_Gy == pytest.approx(totals["dose_rp_total_Gy"])
        assert h.agd_mGy_by_side == (totals["accumulated_agd_by_side_mGy"] or {})
    assert headline(with_summary(Study.objects.filter(pk=nm.pk)).get()).activity_MBq == 394.0


@pytest.mark.parametrize("name", [
    "CT-RDSR-Siemens-Multi-1.dcm", "RF-RDSR-Siemens-Zee.dcm", "MG-RDSR-Hologic_2D.dcm",
    "MG-Im-GE_Seno_1_ForPresentation.dcm", "DX-Im-GE_XR220-1.dcm", "NM-RRDSR-Siemens.dcm",
])
def test_it_agrees_with_the_export_for_samples(name: str) -> None:
    path: Path = samples_dir() / "openrem" / name
    record = import_file(path, Source.FILE, keep=True)
    assert record.outcome == Outcome.IMPORTED, record.error
    for study in Study.objects.all():
        h = headline(with_summary(Study.objects.filter(pk=study.pk)).get())
        totals = export_totals(study)
        assert h.events == totals["number_of_events"]
        assert h.dlp_mGycm == totals["dlp_total_mGycm"]
        assert h.dap_Gym2 == pytest.approx(totals["dap_total_Gym2"])
        assert h.dose_rp_Gy == pytest.approx(totals["dose_rp_total_Gy"])
        assert h.agd_mGy_by_side == pytest.approx(totals["accumulated_agd_by_side_mGy"] or {})


def fill_studies(count: int) -> None:
    for n in range(count):
        modality = (Study.CT, Study.RF, Study.MG, Study.NM)[n % 4]
        study = make_study(modality, source_sop_instance_uids=[f"9.{n}.1", f"9.{n}.2"])
        IrradiationEvent.objects.create(study=study, dlp_mGycm=10.0, dap_Gym2=1e-5,
                                        agd_mGy=1.0, laterality_code="L")
        AccumulatedPlane.objects.create(study=study, dap_total_Gym2=2e-5)
        AccumulatedBreast.objects.create(study=study, laterality="Right", accumulated_agd_mGy=2.0)
        RadiopharmaceuticalAdministration.objects.create(study=study, administered_activity_MBq=5)
        record_for(study, f"9.{n}.1")


def test_it_keeps_the_list_query_count_constant(
    browser: Client, django_assert_max_num_queries  # type: ignore[no-untyped-def]
) -> None:
    fill_studies(3)
    browser.get("/studies/")  # warm the session and role caches
    # 10 for the page (one is the live refresh's version), the header's alert count and the
    # reference levels (alerts app).
    with django_assert_max_num_queries(12) as few:
        assert len(browser.get("/studies/").context["rows"]) == 3
    fill_studies(40)
    with django_assert_max_num_queries(len(few.captured_queries)):
        assert len(browser.get("/studies/").context["rows"]) == 43


def test_it_keeps_the_study_page_query_count_constant(
    browser: Client, django_assert_max_num_queries  # type: ignore[no-untyped-def]
) -> None:
    small = make_study(source_sop_instance_uids=["8.1"])
    IrradiationEvent.objects.create(study=small, dlp_mGycm=1.0)  # event prefetches run
    record_for(small, "8.1")
    browser.get(f"/studies/{small.pk}/")
    with django_assert_max_num_queries(20) as few:
        browser.get(f"/studies/{small.pk}/")
    big = make_study(source_sop_instance_uids=[f"8.2.{n}" for n in range(30)])
    for n in range(30):
        IrradiationEvent.objects.create(study=big, dlp_mGycm=1.0)
        record_for(big, f"8.2.{n}")
    with django_assert_max_num_queries(len(few.captured_queries)):
        assert len(browser.get(f"/studies/{big.pk}/").context["objects"]) == 30


def test_it_says_how_to_send_a_first_study(browser: Client) -> None:
    html = text_of(browser.get("/studies/").content)
    assert "No studies yet" in html
    assert "storescu -R -aec DOSEPORT testserver 11112 report.dcm" in html
    assert "doseport import --keep report.dcm" in html
    StoreNode.objects.create(name="Dose store", ae_title="DOSESTORE", port=11190,
                             bind_address="10.0.0.5")
    html = text_of(browser.get("/studies/").content)
    assert "storescu -R -aec DOSESTORE 10.0.0.5 11190 report.dcm" in html
    assert "the store node Dose store" in html
    home = text_of(browser.get("/").content)
    assert "storescu -R -aec DOSESTORE 10.0.0.5 11190 report.dcm" in home


def test_it_says_when_filters_match_nothing(browser: Client) -> None:
    make_study(Study.CT)
    html = text_of(browser.get("/studies/", {"modality": "MG"}).content)
    assert "No studies match these filters." in html and "storescu" not in html


def test_it_shows_dates_and_values_for_people(browser: Client) -> None:
    undated = make_study(Study.DX, study_date=None, study_time=dt.time(10, 48))
    IrradiationEvent.objects.create(
        study=undated, dap_Gym2=2.359e-05, dose_rp_Gy=0.00252,
        acquisition_protocol="Chest^PA", date_time_started=dt.datetime(
            2013, 4, 12, 13, 22, 23, tzinfo=dt.UTC),
    )
    listed = text_of(browser.get("/studies/").content)
    assert "date unknown" in listed and "no date" not in listed and "10:48" not in listed
    assert "DAP (cGy·cm²)" in listed and "23.59" in listed and "e-05" not in listed
    page = text_of(browser.get(f"/studies/{undated.pk}/").content)
    assert "DX study · date unknown" in page
    assert "Chest PA" in page and "12 Apr 2013 13:22:23" in page
    assert "DAP total (cGy·cm²) 23.59" in page
    assert "Dose at reference point total (mGy) 2.52" in page


def test_it_puts_where_you_are_in_the_page_title(browser: Client) -> None:
    ct = make_study(Study.CT, study_description="Thorax^RTP_4DCT")
    assert title_of(browser.get(f"/studies/{ct.pk}/").content) == (
        "CT study 12 Apr 2013 · Thorax RTP_4DCT — Doseport"
    )
    assert title_of(browser.get("/studies/").content) == "Studies — Doseport"
    record = record_for(ct, "1.2.3.300")
    assert title_of(browser.get(f"/imports/{record.pk}/").content) == (
        f"Import {record.pk} — Doseport"
    )


def test_it_links_a_favicon_that_exists(browser: Client) -> None:
    from django.conf import settings

    html = browser.get("/").content.decode()
    found = re.search(r'<link rel="icon" href="([^"]+)" type="image/svg\+xml">', html)
    assert found and found.group(1).endswith("doseport/favicon.svg")
    icon = Path(settings.BASE_DIR) / "static" / "doseport" / "favicon.svg"
    assert icon.read_text().startswith("<svg")


def test_it_shows_arrival_times_in_the_site_zone(browser: Client, settings) -> None:  # type: ignore[no-untyped-def]
    settings.TIME_ZONE = "Europe/Paris"
    study = make_study(source_sop_instance_uids=["1.2.3.400"])
    record_for(study, "1.2.3.400", received_at=timezone.make_aware(
        dt.datetime(2024, 7, 1, 12, 0), dt.UTC))
    html = text_of(browser.get(f"/studies/{study.pk}/").content)
    assert "01 Jul 2024 14:00" in html
