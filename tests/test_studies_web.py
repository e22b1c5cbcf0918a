"""Studies page: filters, sorting, paging, roles; the study page shows events and totals."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.test import Client

from dose.models import (
    AccumulatedBreast,
    AccumulatedPlane,
    IrradiationEvent,
    RadiopharmaceuticalAdministration,
    Study,
)

pytestmark = pytest.mark.django_db
_uid = iter(range(1, 100_000))


def make_study(modality: str = Study.CT, date: str = "2024-03-01", **fields: object) -> Study:
    n = next(_uid)
    values: dict[str, object] = {
        "study_instance_uid": f"1.2.826.0.1.3680043.10.2.{n}", "modality_type": modality,
        "study_date": dt.date.fromisoformat(date), "accession_number": f"A{n:04d}",
        "station_name": "CT1", "source_sop_instance_uids": [f"1.2.3.{n}"],
    }
    values.update(fields)
    return Study.objects.create(**values)


def ct_with_events() -> Study:
    study = make_study(Study.CT, dlp_total_mGycm=500.0)
    for n, (ctdi, dlp) in enumerate([(12.5, 400.0), (3.75, 100.0)]):
        IrradiationEvent.objects.create(
            study=study, ordinal=n, acquisition_protocol=f"Abdomen phase {n + 1}",
            ctdivol_mGy=ctdi, dlp_mGycm=dlp, ct_acquisition_type="Spiral Acquisition",
        )
    return study


def listing(client: Client, **params: str) -> list[Study]:
    response = client.get("/studies/", params)
    assert response.status_code == 200
    return [study for study, _ in response.context["rows"]]


@pytest.fixture
def browser(client: Client, viewer) -> Client:  # type: ignore[no-untyped-def]
    client.force_login(viewer)
    return client


def test_it_needs_the_viewer_role(client: Client, django_user_model) -> None:
    nobody = django_user_model.objects.create_user("nobody", password="pw")
    client.force_login(nobody)
    assert client.get("/studies/").status_code == 403
    study = make_study()
    assert client.get(f"/studies/{study.pk}/").status_code == 403


def test_it_sends_anonymous_users_to_log_in(client: Client) -> None:
    response = client.get("/studies/")
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


def test_it_filters_by_modality_dates_station_and_accession(browser: Client) -> None:
    ct = make_study(Study.CT, "2024-01-05", station_name="CT North", accession_number="X100")
    dx = make_study(Study.DX, "2024-02-05", station_name="XR East", accession_number="X200")
    mg = make_study(Study.MG, "2024-03-05", station_name="Mammo", accession_number="Y300")
    assert listing(browser, modality="CT") == [ct]
    assert set(listing(browser, date_from="2024-02-01")) == {dx, mg}
    assert set(listing(browser, date_to="2024-02-05")) == {ct, dx}
    assert listing(browser, date_from="2024-02-01", date_to="2024-02-28") == [dx]
    assert listing(browser, station="north") == [ct]
    assert set(listing(browser, accession="X")) == {ct, dx}
    assert listing(browser, modality="DX", accession="X2") == [dx]


def test_it_shows_bad_filter_values_and_ignores_them(browser: Client) -> None:
    make_study()
    response = browser.get("/studies/", {"date_from": "2024-02-31"})
    assert len(response.context["page"]) == 1
    assert b"Enter a valid date" in response.content
    response = browser.get("/studies/", {"date_from": "2024-03-01", "date_to": "2024-01-01"})
    assert b"after the" in response.content


def test_it_sorts_by_the_chosen_column_both_ways(browser: Client) -> None:
    a = make_study(date="2024-01-01", accession_number="B", station_name="Z")
    b = make_study(date="2024-03-01", accession_number="C", station_name="X")
    c = make_study(date="2024-02-01", accession_number="A", station_name="Y")
    assert listing(browser) == [b, c, a]  # newest first by default
    assert listing(browser, sort="date") == [a, c, b]
    assert listing(browser, sort="accession") == [c, a, b]
    assert listing(browser, sort="-accession") == [b, a, c]
    assert listing(browser, sort="station") == [b, c, a]
    assert listing(browser, sort="nonsense") == [b, c, a]


def test_it_sorts_by_dose_with_empty_values_last(browser: Client) -> None:
    low = make_study(dlp_total_mGycm=10.0)
    high = make_study(dlp_total_mGycm=900.0)
    none = make_study(Study.DX)
    assert listing(browser, sort="dlp") == [low, high, none]
    assert listing(browser, sort="-dlp") == [high, low, none]


def test_it_keeps_filters_in_sort_links_and_flips_the_current_column(browser: Client) -> None:
    make_study()
    response = browser.get("/studies/", {"modality": "CT", "sort": "accession"})
    links = {c.label: c.query for c in response.context["columns"]}
    assert links["Accession"] == "modality=CT&sort=-accession"
    assert links["Date"] == "modality=CT&sort=date"


def test_it_pages_with_filters_kept(browser: Client) -> None:
    for n in range(55):
        make_study(date=(dt.date(2024, 1, 1) + dt.timedelta(days=n)).isoformat())
    make_study(Study.DX)
    first = browser.get("/studies/", {"modality": "CT"})
    assert len(first.context["page"]) == 50
    assert b"Page 1 of 2" in first.content
    assert b"modality=CT&amp;page=2" in first.content
    second = listing(browser, modality="CT", page="2")
    assert len(second) == 5
    assert {s.modality_type for s in second} == {"CT"}
    assert second[-1].study_date == dt.date(2024, 1, 1)


def test_it_summarises_events_and_dose_per_study(browser: Client) -> None:
    ct = ct_with_events()
    dx = make_study(Study.DX)
    AccumulatedPlane.objects.create(study=dx, dap_total_Gym2=2.5e-5)
    rows: dict[int, Any] = {s.pk: s for s in listing(browser)}
    assert rows[ct.pk].n_events == 2 and rows[ct.pk].dlp_total == 500.0
    assert rows[dx.pk].dap_total == 2.5e-5
    html = browser.get("/studies/").content.decode()
    assert '<td class="num dap">25</td>' in html and "2.5e-05" not in html  # cGy·cm²


def test_it_shows_a_ct_study_with_events_and_totals(browser: Client) -> None:
    study = ct_with_events()
    response = browser.get(f"/studies/{study.pk}/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "Abdomen phase 1" in html and "Abdomen phase 2" in html
    assert '<td class="num ctdivol">12.5</td>' in html
    assert '<td class="num dlp">400</td>' in html
    assert response.context["headline"].dlp_mGycm == 500.0
    assert response.context["headline"].events == 2


def test_it_shows_the_columns_of_each_modality(browser: Client) -> None:
    mg = make_study(Study.MG)
    IrradiationEvent.objects.create(study=mg, agd_mGy=1.5, laterality="R", image_view="CC")
    AccumulatedBreast.objects.create(study=mg, laterality="R", accumulated_agd_mGy=1.5)
    html = browser.get(f"/studies/{mg.pk}/").content.decode()
    assert '<td class="num agd">1.5</td>' in html
    assert "Accumulated AGD, right breast (mGy)" in html
    nm = make_study(Study.NM)
    RadiopharmaceuticalAdministration.objects.create(
        study=nm, radiopharmaceutical_agent="Tc-99m MDP", administered_activity_MBq=600.0
    )
    html = browser.get(f"/studies/{nm.pk}/").content.decode()
    assert '<td class="num activity">600</td>' in html and "Tc-99m MDP" in html
    rf = make_study(Study.RF)
    IrradiationEvent.objects.create(study=rf, dap_Gym2=3.2e-4, dose_rp_Gy=0.012)
    html = browser.get(f"/studies/{rf.pk}/").content.decode()
    # cGy·cm² and mGy
    assert '<td class="num dap">320</td>' in html and '<td class="num dose-rp">12</td>' in html


def test_it_answers_404_for_an_unknown_study(browser: Client) -> None:
    assert browser.get("/studies/999999/").status_code == 404


def test_it_refuses_post(browser: Client) -> None:
    assert browser.post("/studies/").status_code == 405
