"""Studies page search: free text, equipment, age and dose ranges, column sets per modality,
the Export form carrying every filter, and the live refresh answering 204 when nothing changed."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.test import Client, override_settings

from dose.forms import StudyFilterForm
from dose.models import (
    AccumulatedBreast,
    AccumulatedPlane,
    IrradiationEvent,
    RadiopharmaceuticalAdministration,
    Study,
)
from dose.queries import StudyFilter, filter_studies, headline, with_summary

pytestmark = pytest.mark.django_db
_uid = iter(range(1, 100_000))


def make_study(modality: str = Study.CT, **fields: object) -> Study:
    n = next(_uid)
    values: dict[str, object] = {
        "study_instance_uid": f"1.2.826.0.1.3680043.10.9.{n}", "modality_type": modality,
        "study_date": dt.date(2025, 5, 1), "accession_number": f"F{n:04d}",
        "source_sop_instance_uids": [f"1.2.9.{n}"],
    }
    values.update(fields)
    return Study.objects.create(**values)


def found(**flt: object) -> set[int]:
    return set(filter_studies(StudyFilter(**flt)).values_list("pk", flat=True))  # type: ignore[arg-type]


def test_it_searches_description_protocol_and_station_in_any_case() -> None:
    chest = make_study(study_description="CT Thorax^Routine", station_name="CT-NORTH")
    IrradiationEvent.objects.create(study=chest, acquisition_protocol="Topogram")
    head = make_study(study_description="Head", station_name="ct-south")
    IrradiationEvent.objects.create(study=head, acquisition_protocol="Brain SEQ")
    assert found(text="thorax") == {chest.pk}
    assert found(text="brain seq") == {head.pk}
    assert found(text="CT-") == {chest.pk, head.pk}
    assert found(text="Topo", modality="DX") == set()
    assert found(text="nothing like it") == set()


def test_it_filters_manufacturer_or_model_and_age_range() -> None:
    ge = make_study(manufacturer="GE MEDICAL SYSTEMS", manufacturer_model_name="Revolution",
                    patient_age_decimal_years=4.5)
    siemens = make_study(manufacturer="SIEMENS", manufacturer_model_name="SOMATOM Force",
                         patient_age_decimal_years=67.0)
    unknown_age = make_study(manufacturer="SIEMENS")
    assert found(equipment="somatom") == {siemens.pk}
    assert found(equipment="ge medical") == {ge.pk}
    assert found(age_min=18) == {siemens.pk}
    assert found(age_max=16) == {ge.pk}
    assert found(age_min=4.5, age_max=67) == {ge.pk, siemens.pk}
    assert unknown_age.pk not in found(age_max=200)


def dose_studies() -> dict[str, Study]:
    """One study per way a headline dose is made (stored, summed events, planes, breasts)."""
    s = {
        "ct_stored": make_study(Study.CT, dlp_total_mGycm=500.0),
        "ct_events": make_study(Study.CT),
        "dx_planes": make_study(Study.DX),
        "dx_events": make_study(Study.DX),
        "rf_planes": make_study(Study.RF),
        "mg_breasts": make_study(Study.MG),
        "mg_events": make_study(Study.MG),
        "nm": make_study(Study.NM),
    }
    for dlp in (100.0, 150.0):
        IrradiationEvent.objects.create(study=s["ct_events"], dlp_mGycm=dlp)
    IrradiationEvent.objects.create(study=s["ct_stored"], dlp_mGycm=1.0)  # stored total wins
    AccumulatedPlane.objects.create(study=s["dx_planes"], dap_total_Gym2=2e-5)
    IrradiationEvent.objects.create(study=s["dx_planes"], dap_Gym2=9.0)  # planes win
    for dap in (1e-5, 3e-5):
        IrradiationEvent.objects.create(study=s["dx_events"], dap_Gym2=dap)
    AccumulatedPlane.objects.create(study=s["rf_planes"], dap_total_Gym2=4e-4)
    AccumulatedPlane.objects.create(study=s["rf_planes"], dap_total_Gym2=1e-4)
    AccumulatedBreast.objects.create(study=s["mg_breasts"], laterality="Left breast",
                                     accumulated_agd_mGy=1.2)
    AccumulatedBreast.objects.create(study=s["mg_breasts"], laterality="Right breast",
                                     accumulated_agd_mGy=2.6)
    for agd in (0.9, 1.1):
        IrradiationEvent.objects.create(study=s["mg_events"], agd_mGy=agd, laterality_code="L")
    RadiopharmaceuticalAdministration.objects.create(study=s["nm"], administered_activity_MBq=350)
    return s


@pytest.mark.parametrize(("modality", "low", "high", "expected"), [
    ("CT", 400, 600, {"ct_stored"}),
    ("CT", 200, 300, {"ct_events"}),
    ("CT", None, 1, set()),
    ("DX", 1.5e-5, 2.5e-5, {"dx_planes"}),
    ("DX", 3.5e-5, None, {"dx_events"}),
    ("RF", 4.5e-4, 5.5e-4, {"rf_planes"}),
    ("MG", 2.5, 3.0, {"mg_breasts"}),
    ("MG", 1.95, 2.05, {"mg_events"}),  # 0.9 + 1.1 on the left
    ("MG", 3.5, None, set()),  # the two breasts are not added together
    ("NM", 300, 400, {"nm"}),
    ("NM", 400, None, set()),
])
def test_it_filters_the_headline_dose_of_the_modality(
    modality: str, low: float | None, high: float | None, expected: set[str]
) -> None:
    studies = dose_studies()
    got = found(modality=modality, dose_min=low, dose_max=high)
    assert got == {studies[name].pk for name in expected}
    # The same numbers as the list shows (headline()), for every study of the modality.
    for study in with_summary(Study.objects.filter(modality_type=modality)):
        h = headline(study)
        by_modality: dict[str, list[float | None]] = {
            "CT": [h.dlp_mGycm], "DX": [h.dap_Gym2], "RF": [h.dap_Gym2],
            "MG": list(h.agd_mGy_by_side.values()), "NM": [h.activity_MBq],
        }
        values = by_modality[modality]
        inside = any(v is not None and (low is None or v >= low) and (high is None or v <= high)
                     for v in values)
        assert inside == (study.pk in got), (study, values)


def form(**params: str) -> StudyFilterForm:
    f = StudyFilterForm(params)
    f.is_valid()
    return f


@override_settings(DAP_UNIT="cGy.cm2")
def test_it_reads_a_dap_range_in_the_unit_the_list_shows() -> None:
    flt = form(modality="DX", dose_min="15", dose_max="25").study_filter()
    assert flt.dose_min == pytest.approx(1.5e-5) and flt.dose_max == pytest.approx(2.5e-5)
    assert form(modality="DX").dose_label() == "DAP (cGy·cm²)"
    assert form(modality="CT", dose_min="5").study_filter().dose_min == 5.0


def test_it_names_the_field_and_the_fix_for_bad_ranges() -> None:
    no_modality = form(dose_min="5")
    assert "Choose a modality" in no_modality.errors["modality"][0]
    assert no_modality.study_filter().dose_min == 5.0 and no_modality.study_filter().modality == ""
    swapped = form(modality="CT", dose_min="50", dose_max="5", age_min="60", age_max="20")
    assert "swap them" in swapped.errors["dose_max"][0]
    assert "swap them" in swapped.errors["age_max"][0]
    assert swapped.study_filter().dose_max is None
    assert "at most 150" in form(age_min="300").errors["age_min"][0]
    assert "number" in form(age_min="abc").errors["age_min"][0]
    assert form(dose_min="-1").errors["dose_min"]


@pytest.fixture
def browser(client: Client, viewer) -> Client:  # type: ignore[no-untyped-def]
    client.force_login(viewer)
    return client


def headers(html: str) -> list[str]:
    head = html.split("<thead>", 1)[1].split("</thead>", 1)[0]
    return re.findall(r'<th class="col-(\w+)"', head)


def test_it_shows_the_columns_of_the_chosen_modality(browser: Client) -> None:
    dose_studies()
    everything = headers(browser.get("/studies/").content.decode())
    assert everything == ["date", "modality", "accession", "description", "station", "events",
                          "dlp", "dap", "agd", "activity"]
    ct = headers(browser.get("/studies/", {"modality": "CT"}).content.decode())
    assert ct[-1] == "dlp" and "dap" not in ct and "age" in ct
    rf = browser.get("/studies/", {"modality": "RF"}).content.decode()
    assert headers(rf)[-2:] == ["dap", "dose_rp"]
    assert '<td class="num dose-rp">' in rf
    assert headers(browser.get("/studies/", {"modality": "NM"}).content.decode())[-1] == "activity"


def test_it_exports_with_every_filter_of_the_list(browser: Client) -> None:
    make_study(Study.CT, study_description="Chest", manufacturer="GE",
               patient_age_decimal_years=40.0, dlp_total_mGycm=10.0)
    params = {"modality": "CT", "q": "chest", "equipment": "GE", "age_min": "18",
              "dose_min": "1", "manufacturer": "GE", "sort": "-dlp", "page": "1"}
    html = browser.get("/studies/", params).content.decode()
    export = html.split('id="study-export"', 1)[1].split("</form>", 1)[0]
    hidden = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', export))
    assert hidden == {"modality": "CT", "q": "chest", "equipment": "GE", "age_min": "18",
                      "dose_min": "1", "manufacturer": "GE"}


def test_it_answers_a_live_refresh_with_204_until_a_study_changes(browser: Client) -> None:
    make_study(Study.CT, study_description="First")
    page = browser.get("/studies/").content.decode()
    live = re.search(r'data-live-url="([^"]+)"', page)
    assert live, "page 1 of the list refreshes itself"
    url = "/studies/" + live.group(1).replace("&amp;", "&")
    assert browser.get(url, headers={"HX-Request": "true"}).status_code == 204
    make_study(Study.CT, study_description="Second")
    fresh = browser.get(url, headers={"HX-Request": "true"})
    assert fresh.status_code == 200 and "Second" in fresh.content.decode()
    assert "<html" not in fresh.content.decode()  # only the results part


def test_it_refreshes_only_the_first_page(browser: Client) -> None:
    for _ in range(51):
        make_study(Study.CT)
    assert "data-live-url" in browser.get("/studies/").content.decode()
    assert "data-live-url" not in browser.get("/studies/", {"page": "2"}).content.decode()


def test_it_follows_a_study_page_while_its_objects_may_still_arrive(browser: Client) -> None:
    from django.utils import timezone

    study = make_study(Study.CT, study_description="Arriving")
    page = browser.get(f"/studies/{study.pk}/").content.decode()
    live = re.search(r'data-live-url="([^"]+)"', page)
    assert live, "a study received minutes ago follows new objects"
    url = live.group(1).replace("&amp;", "&")
    assert browser.get(url, headers={"HX-Request": "true"}).status_code == 204
    IrradiationEvent.objects.create(study=study, dlp_mGycm=42.0, acquisition_protocol="Late")
    study.save(update_fields=["updated_at"])  # as the import does when it merges
    part = browser.get(url, headers={"HX-Request": "true"})
    assert part.status_code == 200 and "Late" in part.content.decode()
    assert "<html" not in part.content.decode()
    # Quiet for longer than the window: the next refresh renders the page without polling.
    Study.objects.filter(pk=study.pk).update(updated_at=timezone.now() - dt.timedelta(hours=1))
    done = browser.get(url, headers={"HX-Request": "true"})
    assert done.status_code == 200 and "data-live-url" not in done.content.decode()
    assert "data-live-url" not in browser.get(f"/studies/{study.pk}/").content.decode()
