"""Reference levels on the charts (issue 16, item 3): each bar's level in the chart's unit,
bars whose median is above it, the same in the CSV; patterns on the chart's grouping only,
no banded levels."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest
from django.test import Client

from alerts.models import PatternKind, PatternOn, ReferenceLevel
from dose.models import AccumulatedPlane, RadiopharmaceuticalAdministration, Study
from tests.test_insight import chart, ct, make_study

pytestmark = pytest.mark.django_db


@pytest.fixture
def browser(client: Client, viewer: Any) -> Client:
    client.force_login(viewer)
    return client


def level(**fields: Any) -> ReferenceLevel:
    values: dict[str, Any] = {"name": "NDRL", "modality": "CT", "quantity": "ctdivol",
                              "pattern_on": PatternOn.PROTOCOL, "value": 15.0}
    values.update(fields)
    return ReferenceLevel.objects.create(**values)


def test_the_ct_protocol_chart_marks_the_level_of_each_protocol(browser: Client) -> None:
    ct(500.0, [20.0, 30.0], protocol="Thorax^Routine")
    ct(500.0, [10.0], protocol="Head")
    ct(500.0, [5.0], protocol="Spine")
    level(name="Chest DRL", pattern="thorax*", pattern_kind=PatternKind.GLOB, value=12.0)
    level(name="Head DRL", pattern="head", value=60.0)
    level(name="Child head", pattern="head", value=1.0, age_max_years=5.0)  # banded: not drawn
    level(name="Description", pattern="spine", pattern_on=PatternOn.DESCRIPTION)  # not bars'
    level(name="DLP", quantity="dlp", value=1.0)  # another quantity
    data = chart(browser, "/insight/ct/protocol.json")
    assert data["labels"] == ["Thorax Routine", "Head", "Spine"]
    ctdi, dlp = data["series"]
    assert ctdi["levels"] == [12.0, 60.0, None]
    assert ctdi["level_names"] == ["Chest DRL", "Head DRL", ""]
    assert ctdi["above"] == [True, False, False]
    assert ctdi["level_text"] == ["12", "60", ""]
    assert dlp["levels"] == [] and dlp["above"] == []

    rows = list(csv.reader(io.StringIO(browser.get("/insight/ct/protocol.csv").content.decode())))
    assert rows[0][4:7] == ["CTDIvol: reference level (mGy)", "CTDIvol: reference level name",
                            "CTDIvol: median above the level"]
    assert rows[1][4:7] == ["12.0", "Chest DRL", "yes"]
    assert rows[2][4:7] == ["60.0", "Head DRL", ""]


def test_a_level_without_a_pattern_applies_to_every_bar_after_patterned_ones(
    browser: Client,
) -> None:
    ct(900.0, [5.0], study_description="CT head")
    ct(400.0, [5.0], study_description="CT abdomen")
    level(name="Any CT", quantity="dlp", pattern="", value=500.0)
    level(name="Head", quantity="dlp", pattern="head", pattern_on=PatternOn.DESCRIPTION,
          value=1000.0)
    level(name="Off", quantity="dlp", pattern="", value=1.0, active=False)
    data = chart(browser, "/insight/ct/description.json")
    dlp = data["series"][0]
    assert data["labels"] == ["CT abdomen", "CT head"] or data["labels"] == ["CT head",
                                                                             "CT abdomen"]
    by_label = dict(zip(data["labels"], zip(dlp["levels"], dlp["above"], strict=True),
                        strict=True))
    assert by_label == {"CT head": (1000.0, False), "CT abdomen": (500.0, False)}
    ReferenceLevel.objects.filter(name="Head").update(value=800.0)
    dlp = chart(browser, "/insight/ct/description.json")["series"][0]
    assert sorted(dlp["above"]) == [False, True]


def test_rf_dose_and_nm_activity_levels_are_in_the_charts_units(browser: Client) -> None:
    rf = make_study(Study.RF, study_description="Barium swallow")
    AccumulatedPlane.objects.create(study=rf, dose_rp_total_Gy=0.0425, total_fluoro_time_s=60.0)
    level(name="Swallow", modality="RF", quantity="dose_rp", pattern="barium",
          pattern_on=PatternOn.DESCRIPTION, value=0.040)  # Gy
    dose = chart(browser, "/insight/rf/fluoro.json")["series"][1]
    assert dose["levels"] == [pytest.approx(40.0)] and dose["above"] == [True]

    nm = make_study(Study.NM)
    RadiopharmaceuticalAdministration.objects.create(
        study=nm, radiopharmaceutical_agent="Fluorodeoxyglucose F^18^",
        administered_activity_MBq=350.0)
    level(name="FDG", modality="NM", quantity="activity", pattern="fluorodeoxyglucose f 18",
          value=400.0)
    activity = chart(browser, "/insight/nm/agent.json")["series"][0]
    assert activity["levels"] == [400.0] and activity["above"] == [False]


def test_the_chart_page_explains_the_marks(browser: Client) -> None:
    page = browser.get("/insight/ct/").content.decode()
    assert "black tick marks the reference level" in page and 'href="/alerts/levels/"' in page
    assert "black tick" not in browser.get("/insight/mg/").content.decode()  # no level charts
