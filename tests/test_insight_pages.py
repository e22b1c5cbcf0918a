"""Dose insight pages as people read them: every dashboard figure is a link that answers,
the recent activity names import kinds in words."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
from django.test import Client

from dose.models import AccumulatedPlane, IrradiationEvent, Study
from imports.models import ImportRecord, Outcome, Source
from insight.templatetags.insight_tags import KIND_NAMES
from tests.test_insight import ct, make_study

pytestmark = pytest.mark.django_db


class Cells(HTMLParser):
    """The dashboard's number cells (td.num) and figure cards, each with its links."""

    def __init__(self) -> None:
        super().__init__()
        self.cells: list[dict[str, Any]] = []
        self._open: list[dict[str, Any]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if (tag == "td" and "num" in (values.get("class") or "").split()) or (
                tag == "div" and "dash-card" in (values.get("class") or "").split()
                and values.get("id") != "dash-nodes"):
            self._open.append({"tag": tag, "id": values.get("id"), "links": [], "text": ""})
        elif tag == "a" and self._open:
            self._open[-1]["links"].append(values.get("href"))

    def handle_data(self, data: str) -> None:
        if self._open:
            self._open[-1]["text"] += data

    def handle_endtag(self, tag: str) -> None:
        if self._open and tag == self._open[-1]["tag"]:
            self.cells.append(self._open.pop())


def test_every_dashboard_figure_links_to_the_studies_or_records_it_counts(
    client: Client, viewer: Any,
) -> None:
    ct(400.0, [10.0, 12.0], station_name="CT1")
    rf = make_study(Study.RF, station_name="RF1")
    AccumulatedPlane.objects.create(study=rf, dap_total_Gym2=1e-3, dose_rp_total_Gy=0.2,
                                    total_fluoro_time_s=300.0)
    dx = make_study(Study.DX, station_name="DX1")
    IrradiationEvent.objects.create(study=dx, dap_Gym2=1e-5)
    ImportRecord.objects.create(source=Source.FILE, outcome=Outcome.FAILED)
    client.force_login(viewer)
    page = client.get("/").content.decode()
    dashboard = page[page.index('id="dashboard"'):]
    parser = Cells()
    parser.feed(dashboard)
    numbers = [c for c in parser.cells if re.search(r"\d", c["text"])]
    # 2 cards, 3 modalities, 3 stations, 6 figures x (n, median, p75)
    assert len(numbers) == 2 + 3 + 3 + 3 * 6
    for cell in numbers:
        assert cell["links"], f"{cell['text'].strip()!r} is not a link"
        for href in cell["links"]:
            assert client.get(href.replace("&amp;", "&")).status_code == 200, href
    assert "Fluoroscopy time per study</td>" in dashboard  # values say their unit (5 min 2 s)
    assert "(time)" not in dashboard and "DLP per study (mGy·cm)" in dashboard
    study_links = [h.replace("&amp;", "&") for c in numbers for h in c["links"]
                   if h.startswith("/studies/")]
    assert {parse_qs(urlparse(h).query)["modality"][0] for h in study_links} == {"CT", "RF", "DX"}


def test_recent_activity_names_the_kind_of_each_object(client: Client, viewer: Any) -> None:
    for kind in ("ct_philips_screen", "projection_rdsr", "some_new_kind"):
        ImportRecord.objects.create(source=Source.STORE, outcome=Outcome.IMPORTED, kind=kind,
                                    sop_instance_uid=f"1.2.3.{len(kind)}")
    client.force_login(viewer)
    recent = client.get("/").content.decode()
    recent = recent[recent.index('id="recent-activity"'):]
    assert "<td>Philips CT dose screen</td>" in recent and "ct_philips_screen" not in recent
    assert "<td>X-ray dose report (RDSR)</td>" in recent
    assert "<td>some new kind</td>" in recent


def test_every_import_kind_has_a_name() -> None:
    from imports.classify import KINDS

    assert set(KINDS) <= set(KIND_NAMES)
