"""Dose insight: SQL medians and percentiles against Python's, the dashboard's figures and
their links, chart data with filters, CSV, and who may see them. Runs on PostgreSQL too when
DATABASE_URL is set (the quantiles are window functions on both)."""

from __future__ import annotations

import csv
import datetime as dt
import html
import io
import random
import statistics
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
from django.db.models import F
from django.test import Client
from django.utils import timezone

from dose.models import (
    AccumulatedPlane,
    IrradiationEvent,
    RadiopharmaceuticalAdministration,
    Study,
)
from imports.models import ImportRecord, Outcome, Source
from insight import queries
from insight.charts import dap_scale
from insight.filters import InsightFilter, period_dates, study_list_url
from insight.quantiles import grouped_stats
from nodes.models import RemoteNode, StoreNode
from store.models import State, StoreRuntime

pytestmark = pytest.mark.django_db
_uid = iter(range(1, 1_000_000))
TODAY = timezone.localdate()


def make_study(modality: str = Study.CT, days_ago: int = 1, **fields: Any) -> Study:
    n = next(_uid)
    values: dict[str, Any] = {
        "study_instance_uid": f"1.2.826.0.1.3680043.10.16.{n}", "modality_type": modality,
        "study_date": TODAY - dt.timedelta(days=days_ago), "study_time": dt.time(9, 30),
        "station_name": "CT1", "manufacturer": "Siemens",
        "manufacturer_model_name": "Definition Flash",
    }
    values.update(fields)
    return Study.objects.create(**values)


def ct(dlp: float | None, ctdis: list[float], protocol: str = "Abdomen", **fields: Any) -> Study:
    study = make_study(Study.CT, dlp_total_mGycm=dlp, **fields)
    for n, ctdi in enumerate(ctdis):
        IrradiationEvent.objects.create(study=study, ordinal=n, acquisition_protocol=protocol,
                                        ctdivol_mGy=ctdi, dlp_mGycm=ctdi * 40)
    return study


def python_p75(values: list[float]) -> float:
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=4, method="inclusive")[2]


@pytest.fixture
def browser(client: Client, viewer) -> Client:  # type: ignore[no-untyped-def]
    client.force_login(viewer)
    return client


def test_it_computes_medians_and_75th_percentiles_as_python_does() -> None:
    rng = random.Random(16)
    expected: dict[str, list[float]] = {}
    for size in (1, 2, 3, 4, 5, 8, 13):
        station = f"S{size:02d}"
        for _ in range(size):
            weight = round(rng.uniform(3, 150), 3)
            expected.setdefault(station, []).append(weight)
            make_study(Study.DX, station_name=station, patient_weight_kg=weight)
        make_study(Study.DX, station_name=station, patient_weight_kg=None)  # not a zero
    make_study(Study.DX, station_name="EMPTY", patient_weight_kg=None)
    rows = grouped_stats(Study.objects.all(), ["station_name"], ["patient_weight_kg"],
                         by_label=True)
    got = {r.keys[0]: r for r in rows}
    assert list(got) == ["EMPTY", *sorted(expected)]
    for station, values in expected.items():
        stat = got[station].stats[0]
        assert got[station].rows == len(values) + 1
        assert stat.n == len(values)
        assert stat.median == pytest.approx(statistics.median(values), rel=1e-12)
        assert stat.p75 == pytest.approx(python_p75(values), rel=1e-12)
    empty = got["EMPTY"].stats[0]
    assert (empty.n, empty.median, empty.p75) == (0, None, None)


def test_it_orders_groups_largest_first_and_keeps_the_limit() -> None:
    for station, n in (("B", 3), ("A", 1), ("C", 3), ("D", 2)):
        for _ in range(n):
            make_study(station_name=station, patient_weight_kg=70.0)
    rows = grouped_stats(Study.objects.all(), ["station_name"], [F("patient_weight_kg")],
                         limit=3)
    assert [(r.keys[0], r.rows) for r in rows] == [("B", 3), ("C", 3), ("D", 2)]


def test_the_dashboard_figures_are_the_medians_of_the_headline_values() -> None:
    dlps = [310.0, 820.5, 95.25, 1200.0]
    ctdis = [[4.1, 12.0], [7.5], [3.3, 9.9, 15.2], [22.0]]
    for dlp, per_event in zip(dlps, ctdis, strict=True):
        study = ct(dlp, per_event)
        IrradiationEvent.objects.create(study=study, ct_acquisition_type="Constant Angle "
                                        "Acquisition", ctdivol_mGy=0.1)  # a localizer: left out
    ct(None, [5.0], days_ago=40)  # before the period
    daps = [2.5e-4, 1.0e-4, 4.0e-4]
    for dap in daps:  # projection totals from the report's accumulated plane
        study = make_study(Study.RF, station_name="RF1")
        AccumulatedPlane.objects.create(study=study, dap_total_Gym2=dap, dose_rp_total_Gy=dap * 100,
                                        total_fluoro_time_s=dap * 1e6)
    dx = make_study(Study.DX, station_name="DX1")  # no plane: the events' sum
    IrradiationEvent.objects.create(study=dx, dap_Gym2=1e-5)
    IrradiationEvent.objects.create(study=dx, dap_Gym2=2e-5, ordinal=1)
    nm = make_study(Study.NM, station_name="PET")
    RadiopharmaceuticalAdministration.objects.create(study=nm, administered_activity_MBq=350.0)

    since, until = period_dates("30d")
    figures = {(f.modality, f.label): f for f in
               queries.headline_figures(InsightFilter(since=since, until=until))}
    dlp_figure = figures[Study.CT, "DLP per study"]
    assert (dlp_figure.n, dlp_figure.median, dlp_figure.p75) == (
        4, statistics.median(dlps), python_p75(dlps))
    flat = [c for per_event in ctdis for c in per_event]
    ctdi = figures[Study.CT, "CTDIvol per acquisition (no localizers)"]
    assert ctdi.n == len(flat) and ctdi.median == pytest.approx(statistics.median(flat))
    rf = figures[Study.RF, "DAP per study"]
    assert rf.median == pytest.approx(statistics.median(daps))
    assert figures[Study.RF, "Fluoroscopy time per study"].median == pytest.approx(250.0)
    assert figures[Study.RF, "Dose at the reference point per study"].p75 == pytest.approx(
        python_p75([d * 100 for d in daps]))
    assert figures[Study.DX, "DAP per study"].median == pytest.approx(3e-5)
    assert figures[Study.NM, "Administered activity"].median == 350.0
    assert (Study.MG, "AGD per view") not in figures  # no mammography: no line


def test_the_home_page_shows_the_dashboard_and_every_figure_links_to_its_studies(
    browser: Client,
) -> None:
    for station, n in (("CT1", 2), ("CT12", 3)):  # one name inside the other
        for _ in range(n):
            ct(400.0, [10.0], station_name=station)
    ct(400.0, [10.0], station_name="CT1", days_ago=60)
    body = browser.get("/").content.decode()
    assert 'id="dashboard"' in body and "last 30 days" in body
    dash = browser.get("/").context["dash"]
    assert [(m.label, m.n) for m in dash.modalities] == [("CT", 5)]
    assert [(s.label, s.n) for s in dash.stations] == [("CT12", 3), ("CT1", 2)]
    for linked in [*dash.modalities, *dash.stations]:
        listed = browser.get(linked.url).context["page"].paginator.count
        assert listed == linked.n, linked.url
    figure = dash.figures[0]
    assert html.escape(figure.url) in body
    assert browser.get(figure.url).context["page"].paginator.count == figure.figure.n
    assert parse_qs(urlparse(figure.url).query)["sort"] == ["-dlp"]
    # All time: the older study counts too.
    dash = browser.get("/", {"period": "all"}).context["dash"]
    assert sum(m.n for m in dash.modalities) == 6


def test_the_dashboard_counts_arrivals_failures_and_node_health(browser: Client) -> None:
    now = timezone.now()
    for outcome in (Outcome.IMPORTED, Outcome.IMPORTED, Outcome.FAILED):
        ImportRecord.objects.create(source=Source.FILE, outcome=outcome)
    old = ImportRecord.objects.create(source=Source.FILE, outcome=Outcome.FAILED)
    ImportRecord.objects.filter(pk=old.pk).update(created_at=now - dt.timedelta(days=3))
    running = StoreNode.objects.create(name="ct-store", ae_title="CTSTORE", port=11113)
    StoreNode.objects.create(name="mg-store", ae_title="MGSTORE", port=11114)
    StoreRuntime.objects.create(node=running, state=State.RUNNING, last_heartbeat=now)
    RemoteNode.objects.create(name="pacs", ae_title="PACS", host="10.0.0.9", port=104,
                              echo_alive=True, echo_checked_at=now)
    RemoteNode.objects.create(name="old", ae_title="OLD", host="10.0.0.8", port=104,
                              echo_alive=False, echo_checked_at=now - dt.timedelta(hours=1))
    dash = browser.get("/").context["dash"]
    assert dash.activity == queries.Activity(received_today=3, imported_today=2, failed_24h=1,
                                             failed_period=2)
    assert (dash.nodes.stores_controlled, dash.nodes.stores_running) == (2, 1)
    assert (dash.nodes.remotes, dash.nodes.remotes_alive, dash.nodes.remotes_down) == (2, 1, 1)
    body = browser.get("/").content.decode()
    assert "1 of 2 running" in body and "1 not responding" in body
    failed = browser.get(dash.links["failed_period"])
    assert failed.status_code == 200


def test_the_period_form_takes_presets_and_dates() -> None:
    since, until = period_dates("7d", today=dt.date(2026, 3, 10))
    assert (since, until) == (dt.date(2026, 3, 4), dt.date(2026, 3, 10))
    assert period_dates("all", today=dt.date(2026, 3, 10)) == (None, None)  # undated too


def test_the_dashboard_takes_from_and_to_dates(browser: Client) -> None:
    ct(400.0, [10.0], days_ago=100)
    ct(400.0, [10.0], days_ago=1)
    day = (TODAY - dt.timedelta(days=100)).isoformat()
    dash = browser.get("/", {"date_from": day, "date_to": day}).context["dash"]
    assert [(m.label, m.n) for m in dash.modalities] == [("CT", 1)]
    response = browser.get("/", {"date_from": "2026-02-01", "date_to": "2026-01-01"})
    assert "after the" in response.content.decode()


def chart(browser: Client, path: str, **params: str) -> dict[str, Any]:
    response = browser.get(path, params)
    assert response.status_code == 200, response.content[:300]
    data: dict[str, Any] = response.json()
    return data


def test_the_ct_protocol_chart_has_medians_per_protocol_and_follows_the_filters(
    browser: Client,
) -> None:
    ct(500.0, [10.0, 20.0, 30.0], protocol="Thorax^Routine", station_name="CT1")
    ct(500.0, [12.0], protocol="Thorax^Routine", station_name="CT2", manufacturer="GE",
       manufacturer_model_name="Revolution")
    ct(500.0, [2.0, 4.0], protocol="Head", station_name="CT2", manufacturer="GE",
       manufacturer_model_name="Revolution")
    data = chart(browser, "/insight/ct/protocol.json")
    assert data["labels"] == ["Thorax Routine", "Head"]  # largest first, ^ as a space
    ctdi, dlp = data["series"]
    assert ctdi["values"] == [pytest.approx(statistics.median([10.0, 20.0, 30.0, 12.0])), 3.0]
    assert ctdi["n"] == [4, 2] and ctdi["text"][0] == "16"
    assert dlp["values"][1] == pytest.approx(120.0) and dlp["axis"] == "y1"
    query = parse_qs(urlparse(data["links"][0]).query)
    assert query["protocol"] == ["Thorax^Routine"] and query["modality"] == ["CT"]
    assert browser.get(data["links"][0]).context["page"].paginator.count == 2

    by_station = chart(browser, "/insight/ct/protocol.json", station="CT2")
    assert by_station["labels"] == ["Head", "Thorax Routine"]
    assert by_station["series"][0]["n"] == [2, 1]
    assert by_station["series"][0]["values"] != data["series"][0]["values"]
    by_model = chart(browser, "/insight/ct/protocol.json", model="Revolution", protocol="Head")
    assert by_model["labels"] == ["Head"]
    assert browser.get(by_model["links"][0]).context["page"].paginator.count == 1


def test_the_csv_has_the_charts_numbers(browser: Client) -> None:
    ct(500.0, [10.0, 20.0], protocol="Abdomen")
    data = chart(browser, "/insight/ct/protocol.json")
    response = browser.get("/insight/ct/protocol.csv")
    assert response["Content-Type"].startswith("text/csv")
    assert 'filename="doseport-ct-protocol.csv"' in response["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0][:4] == ["acquisition protocol", "CTDIvol: median (mGy)",
                           "CTDIvol: 75th percentile (mGy)", "CTDIvol: n"]
    assert rows[1][0] == "Abdomen"
    assert float(rows[1][1]) == data["series"][0]["values"][0] == 15.0
    assert float(rows[1][2]) == data["series"][0]["p75"][0] == 17.5


def test_dap_charts_use_the_sites_unit_and_study_totals(browser: Client) -> None:
    factor, unit = dap_scale()
    for dap in (1e-4, 3e-4):
        study = make_study(Study.DX, station_name="DX1")
        IrradiationEvent.objects.create(study=study, acquisition_protocol="Chest PA",
                                        dap_Gym2=dap)
    data = chart(browser, "/insight/dx/station.json")
    assert data["labels"] == ["DX1"] and data["series"][0]["unit"] == unit == "cGy·cm²"
    assert data["series"][0]["values"] == [pytest.approx(2e-4 * factor)]
    assert data["series"][0]["text"] == ["200"]
    link = data["links"][0]
    assert parse_qs(urlparse(link).query)["station"] == ['"DX1"']
    assert browser.get(link).context["page"].paginator.count == 2


def test_rf_fluoroscopy_chart_and_dlp_over_time(browser: Client) -> None:
    study = make_study(Study.RF, study_description="Barium swallow")
    AccumulatedPlane.objects.create(study=study, total_fluoro_time_s=312.0,
                                    dose_rp_total_Gy=0.0425, dap_total_Gym2=1e-3)
    data = chart(browser, "/insight/rf/fluoro.json")
    time_, dose = data["series"]
    assert data["labels"] == ["Barium swallow"]
    assert time_["text"] == ["5 min 12 s"] and dose["values"] == [pytest.approx(42.5)]

    first = TODAY.replace(day=1)
    last_month = (first - dt.timedelta(days=1)).replace(day=1)
    ct(100.0, [5.0], study_date=first)
    ct(300.0, [5.0], study_date=first)
    ct(1000.0, [5.0], study_date=last_month)
    month = chart(browser, "/insight/ct/dlp-time.json", period="365d")
    assert month["labels"] == [last_month.strftime("%b %Y"), first.strftime("%b %Y")]
    assert month["series"][0]["values"] == [1000.0, 200.0]
    link = parse_qs(urlparse(month["links"][1]).query)
    assert link["date_from"] == [first.isoformat()]
    week = chart(browser, "/insight/ct/dlp-time.json", period="365d", interval="week")
    assert all(label.startswith("week of ") for label in week["labels"])
    assert sum(week["series"][0]["n"]) == 3


def test_mammography_scatter_nm_activity_and_workload(browser: Client) -> None:
    study = make_study(Study.MG, study_time=dt.time(14, 5), station_name="MG1")
    for n, (view, thickness, agd) in enumerate(
        [("cranio-caudal", 52.0, 1.2), ("medio-lateral oblique", 61.0, 1.6)]
    ):
        IrradiationEvent.objects.create(study=study, ordinal=n, image_view=view,
                                        compression_thickness_mm=thickness, agd_mGy=agd)
    scatter = chart(browser, "/insight/mg/agd-thickness.json")
    assert scatter["kind"] == "scatter"
    assert scatter["points"] == {"cranio-caudal": [[52.0, 1.2]],
                                 "medio-lateral oblique": [[61.0, 1.6]]}
    rows = list(csv.reader(io.StringIO(
        browser.get("/insight/mg/agd-thickness.csv").content.decode())))
    assert rows[1:] == [["cranio-caudal", "52.0", "1.2"], ["medio-lateral oblique", "61.0", "1.6"]]

    nm = make_study(Study.NM, study_time=dt.time(8, 0))
    for activity in (180.0, 220.0, 400.0):
        RadiopharmaceuticalAdministration.objects.create(
            study=nm, radiopharmaceutical_agent="Fluorodeoxyglucose F^18^",
            administered_activity_MBq=activity)
    agents = chart(browser, "/insight/nm/agent.json")
    assert agents["labels"] == ["Fluorodeoxyglucose F¹⁸"]
    assert agents["series"][0]["values"] == [220.0] and agents["series"][0]["p75"] == [310.0]

    work = chart(browser, "/insight/mg/workload.json")
    weekday = (TODAY - dt.timedelta(days=1)).isoweekday() - 1
    assert work["series"][weekday]["values"][14] == 1.0
    assert sum(sum(s["values"]) for s in work["series"]) == 1.0


def test_the_chart_page_offers_the_modalitys_values_as_filters(browser: Client) -> None:
    ct(500.0, [10.0], protocol="Abdomen", station_name="CT9")
    make_study(Study.DX, station_name="DX-only")
    response = browser.get("/insight/ct/", {"period": "90d", "station": "CT9"})
    body = response.content.decode()
    assert response.status_code == 200
    assert 'data-src="/insight/ct/protocol.json?period=90d&amp;station=CT9"' in body
    assert 'href="/insight/dx/?period=90d"' in body  # tabs keep the period only
    assert '<option value="CT9" selected>' in body and "DX-only" not in body
    assert 'value="Abdomen"' in body
    ct(500.0, [10.0], protocol="Old protocol", days_ago=200)  # outside the 90 days
    assert "Old protocol" not in browser.get("/insight/ct/", {"period": "90d"}).content.decode()
    chosen = browser.get("/insight/ct/", {"period": "90d", "protocol": "Old protocol"})
    assert chosen.context["form"].is_valid()  # still offered once chosen
    assert browser.get("/insight/").status_code == 302


@pytest.mark.parametrize("path", ["/insight/ct/", "/insight/ct/protocol.json",
                                  "/insight/nm/agent.csv", "/insight/mg/"])
def test_viewers_may_see_charts_and_others_may_not(
    path: str, client: Client, viewer, django_user_model,  # type: ignore[no-untyped-def]
) -> None:
    assert client.get(path).status_code == 302  # to the login page
    client.force_login(django_user_model.objects.create_user("norole", password="pw"))
    assert client.get(path).status_code == 403
    client.force_login(viewer)
    assert client.get(path).status_code == 200
    assert client.post(path).status_code == 405


def test_unknown_modalities_and_charts_are_404(browser: Client) -> None:
    assert browser.get("/insight/xa/").status_code == 404
    assert browser.get("/insight/ct/agent.json").status_code == 404
    assert browser.get("/insight/nm/protocol.csv").status_code == 404


def test_the_study_list_takes_the_exact_filters_the_charts_link_with(browser: Client) -> None:
    ct(500.0, [10.0], protocol="Head", station_name="CT1", study_description="Head^Routine")
    ct(500.0, [10.0], protocol="Head", station_name="CT12", manufacturer="GE",
       manufacturer_model_name="Revolution")
    ct(500.0, [10.0], protocol="Head spiral", station_name="CT1")

    def count(**params: str) -> int:
        return int(browser.get("/studies/", params).context["page"].paginator.count)

    assert count(station="CT1") == 3 and count(station='"CT1"') == 2
    assert count(protocol="Head") == 2 and count(manufacturer="GE") == 1
    assert count(model="Definition Flash") == 2 and count(description="Head^Routine") == 1
    body = browser.get("/studies/", {"protocol": "Head"}).content.decode()
    assert 'id="exact-filters"' in body and 'acquisition protocol "Head"' in body
    url = study_list_url(InsightFilter(modality=Study.NM, protocol="PET^WB"), station="")
    assert parse_qs(urlparse(url).query) == {"modality": ["NM"], "description": ["PET^WB"],
                                             "station": ['""']}
