"""QR_RULES.md acceptance scenarios 1-19, 21-29, 33-36, 38-43 against the fake remote."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from imports.models import ImportRecord, Outcome, Source
from qr.jobs import new_query
from qr.models import Query, Status
from qr.params import QueryParams
from qr.run import run_query
from tests.fake_remote import (
    BASIC_SR,
    COMPREHENSIVE_SR,
    CR_IMAGE,
    ESR,
    RDSR,
    RRDSR,
    SC,
    FakeRemote,
    Obj,
    in_memory,
    kept,
    reasons,
    remote_node,
    series_of,
)

DAY = dt.date(2024, 1, 2)
Run = Callable[..., tuple[Query, FakeRemote]]


@pytest.fixture
def run(db: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Run]:
    """Run a query against a fake remote served in memory through lib.dicom's seam (the
    tests at the end of this file and test_qr_seam.py use the real SCP on a port)."""
    fakes: list[FakeRemote] = []

    def go(objs: list[Obj], setup: Callable[[FakeRemote], None] | None = None,
           node: dict[str, Any] | None = None, **kw: Any) -> tuple[Query, FakeRemote]:
        fake = FakeRemote(objs)
        if setup:
            setup(fake)
        fakes.append(in_memory(fake, monkeypatch))
        remote = remote_node(fake, **(node or {}))
        params = QueryParams(date_from=DAY, date_until=DAY, **kw).normalized()
        query = new_query(remote, None, params)
        run_query(query)
        query.refresh_from_db()
        return query, fake

    yield go
    for fake in fakes:
        fake.stop()


def study_finds(fake: FakeRemote) -> list[str]:
    return [str(f.ModalitiesInStudy) for f in fake.finds if f.QueryRetrieveLevel == "STUDY"]


def ct_study(uid: str = "1.2.3.1") -> list[Obj]:
    return series_of(uid, "CT", 3, series_desc="Abdomen") + series_of(uid, "SR", 1, sop_class=RDSR)


def mg_study(uid: str = "1.2.3.2") -> list[Obj]:
    return series_of(uid, "MG", 2)


def uid_of(objs: list[Obj], modality: str, n: int = 0) -> str:
    return [o for o in objs if o.modality == modality][n].series


# 1-2 -------------------------------------------------------------------------------------

def test_it_1_sends_one_find_when_the_remote_ignores_modalities_in_study(run: Run) -> None:
    ct, mg, other = ct_study(), mg_study(), series_of("1.2.3.9", "US", 2)
    query, fake = run(ct + mg + other, setup=lambda f: setattr(f, "ignore_modalities", True),
                      modalities=["CT", "MG"])
    assert study_finds(fake) == ["CT"]
    assert set(kept(query)) == {"1.2.3.1", "1.2.3.2"}
    assert reasons(query)["1.2.3.9"] == "modality not requested"
    assert any("ignores ModalitiesInStudy" in n for n in query.notes)
    assert query.status == Status.COMPLETE


def test_it_2_sends_one_find_per_modality_when_the_remote_honours_it(run: Run) -> None:
    query, fake = run(ct_study() + mg_study(), modalities=["CT", "MG"])
    assert study_finds(fake) == ["CT", "MG"]
    assert set(kept(query)) == {"1.2.3.1", "1.2.3.2"}
    assert all("PatientName" not in f for f in fake.finds)  # FIX: no patient names asked


# 3-7 CT --------------------------------------------------------------------------------------

def test_it_3_keeps_only_the_philips_dose_info_series(run: Run) -> None:
    objs = series_of("1.2.3.1", "CT", 5, series_desc="Thorax") + series_of(
        "1.2.3.1", "CT", 1, series_desc="Dose Info", series_number=999)
    query, _ = run(objs, modalities=["CT"])
    assert kept(query) == {"1.2.3.1": {objs[-1].series: "series"}}


def test_it_4_keeps_small_series_when_the_remote_returns_no_descriptions(run: Run) -> None:
    big = series_of("1.2.3.1", "CT", 6, series_desc=None)
    small = series_of("1.2.3.1", "CT", 2, series_desc=None, series_number=2)
    query, _ = run(big + small, modalities=["CT"])
    assert kept(query) == {"1.2.3.1": {small[0].series: "series"}}
    assert reasons(query)[big[0].series].startswith("more than 5 instances")


def test_it_5_excludes_ct_with_descriptions_no_dose_info_and_no_sr(run: Run) -> None:
    query, _ = run(series_of("1.2.3.1", "CT", 3, series_desc="Head"), modalities=["CT"])
    assert kept(query) == {}
    assert reasons(query)["1.2.3.1"] == "no dose report"


def test_it_6_keeps_only_the_rdsr_series_of_a_ct_study(run: Run) -> None:
    objs = ct_study()
    query, _ = run(objs, modalities=["CT"])
    assert kept(query) == {"1.2.3.1": {uid_of(objs, "SR"): "series"}}
    assert reasons(query)[uid_of(objs, "CT")].startswith("images not needed")


def test_it_7_rebuilds_modalities_in_study_from_the_series(run: Run) -> None:
    objs = ct_study() + series_of("1.2.3.1", "SC", 1, series_desc="Dose screen")
    query, _ = run(objs, setup=lambda f: setattr(f, "omit_modalities", True), modalities=["CT"])
    study = query.studies.get()
    assert study.modalities_in_study == "CT\\SC\\SR"
    assert study.modalities_rebuilt


# 8-11 filters, missing values kept -----------------------------------------------------------

def _stations() -> list[Obj]:
    return (series_of("1.2.3.1", "MG", 1, station="Breast ROOM1")
            + series_of("1.2.3.2", "MG", 1, station="BREAST room2")
            + series_of("1.2.3.3", "MG", 1, station=None))


def test_it_8_keeps_series_whose_station_is_included_or_missing(run: Run) -> None:
    query, _ = run(_stations(), modalities=["MG"], station_include=["room1"])
    assert set(kept(query)) == {"1.2.3.1", "1.2.3.3"}
    assert reasons(query)["1.2.3.2"] == "no series left"


def test_it_9_drops_series_whose_station_is_excluded(run: Run) -> None:
    query, _ = run(_stations(), modalities=["MG"], station_exclude=["room1"])
    assert set(kept(query)) == {"1.2.3.2", "1.2.3.3"}


def _descriptions() -> list[Obj]:
    return (series_of("1.2.3.1", "MG", 1, study_desc="Screening MAMMO")
            + series_of("1.2.3.2", "MG", 1, study_desc="Diagnostic mammo")
            + series_of("1.2.3.3", "MG", 1, study_desc=None))


def test_it_10_keeps_studies_whose_description_is_included_or_missing(run: Run) -> None:
    query, _ = run(_descriptions(), modalities=["MG"], desc_include=["screening"])
    assert set(kept(query)) == {"1.2.3.1", "1.2.3.3"}
    assert reasons(query)["1.2.3.2"] == "study description filter"


def test_it_11_drops_studies_whose_description_is_excluded_exclude_wins(run: Run) -> None:
    query, _ = run(_descriptions(), modalities=["MG"], desc_exclude=["mammo"],
                   desc_include=["screening"])
    assert set(kept(query)) == {"1.2.3.3"}


# 12-19 MG / DX / FL ---------------------------------------------------------------------

def test_it_12_keeps_mg_images_without_sr(run: Run) -> None:
    objs = mg_study()
    query, _ = run(objs, modalities=["MG"])
    assert kept(query) == {"1.2.3.2": {objs[0].series: "series"}}


def test_it_13_keeps_only_the_rdsr_instance_of_mg_with_rdsr_and_basic_sr(run: Run) -> None:
    sr = series_of("1.2.3.2", "SR", 2, sop_class=RDSR)
    sr[1].sop_class = BASIC_SR
    query, _ = run(mg_study() + sr, modalities=["MG"])
    assert kept(query) == {"1.2.3.2": {sr[0].series: [sr[0].sop]}}


def test_it_14_keeps_cr_and_drops_a_basic_sr(run: Run) -> None:
    cr = series_of("1.2.3.4", "CR", 2, sop_class=CR_IMAGE)
    sr = series_of("1.2.3.4", "SR", 1, sop_class=BASIC_SR)
    query, _ = run(cr + sr, modalities=["DX"])
    assert kept(query) == {"1.2.3.4": {cr[0].series: "series"}}
    assert reasons(query)[sr[0].series] == "SR holds no dose report"


def test_it_15_keeps_only_the_rdsr_of_dx_with_rdsr_basic_sr_and_esr(run: Run) -> None:
    dx = series_of("1.2.3.4", "DX", 2)
    rdsr = series_of("1.2.3.4", "SR", 1, sop_class=RDSR)
    basic = series_of("1.2.3.4", "SR", 1, sop_class=BASIC_SR)
    esr = series_of("1.2.3.4", "SR", 1, sop_class=ESR)
    query, _ = run(dx + rdsr + basic + esr, modalities=["DX"])
    assert kept(query) == {"1.2.3.4": {rdsr[0].series: "series"}}


def test_it_16_excludes_rf_with_only_a_basic_sr(run: Run) -> None:
    objs = series_of("1.2.3.5", "RF", 3) + series_of("1.2.3.5", "SR", 1, sop_class=BASIC_SR)
    query, _ = run(objs, modalities=["FL"])
    assert kept(query) == {}
    assert reasons(query)["1.2.3.5"] == "no dose report"


def test_it_17_keeps_only_the_esr_of_xa_with_esr_and_basic_sr(run: Run) -> None:
    esr = series_of("1.2.3.5", "SR", 1, sop_class=ESR)
    objs = series_of("1.2.3.5", "XA", 3) + esr + series_of(
        "1.2.3.5", "SR", 1, sop_class=COMPREHENSIVE_SR)
    query, _ = run(objs, modalities=["FL"])
    assert kept(query) == {"1.2.3.5": {esr[0].series: "series"}}


def _mg_empty_sr() -> tuple[list[Obj], list[Obj]]:
    mg = mg_study()
    return mg, series_of("1.2.3.2", "SR", 1, hidden=True)


def test_it_18_keeps_mg_and_drops_an_empty_sr_without_emptysr(run: Run) -> None:
    mg, sr = _mg_empty_sr()
    query, _ = run(mg + sr, modalities=["MG"])
    assert kept(query) == {"1.2.3.2": {mg[0].series: "series"}}


def test_it_19_keeps_the_empty_sr_and_drops_mg_with_emptysr(run: Run) -> None:
    mg, sr = _mg_empty_sr()
    query, _ = run(mg + sr, modalities=["MG"], emptysr=True)
    assert kept(query) == {"1.2.3.2": {sr[0].series: "series"}}


# 21-23 NM ----------------------------------------------------------------------------------

def test_it_21_keeps_rrdsr_and_first_pet_image_not_nm(run: Run) -> None:
    rr = series_of("1.2.3.6", "SR", 1, sop_class=RRDSR)
    pet = series_of("1.2.3.6", "PT", 4)
    nm = series_of("1.2.3.6", "NM", 2)
    query, _ = run(rr + pet + nm, modalities=["NM"])
    assert kept(query) == {"1.2.3.6": {rr[0].series: "series", pet[0].series: [pet[0].sop]}}
    assert "NM images not needed" in reasons(query)[nm[0].series]


def test_it_22_keeps_the_first_pet_image_of_a_pet_only_study(run: Run) -> None:
    pet = series_of("1.2.3.6", "PT", 4)
    query, _ = run(pet, modalities=["NM"])
    assert kept(query) == {"1.2.3.6": {pet[0].series: [pet[0].sop]}}


def test_it_23_keeps_the_first_nm_series_of_an_nm_only_study(run: Run) -> None:
    first = series_of("1.2.3.6", "NM", 2, series_number=1)
    second = series_of("1.2.3.6", "NM", 2, series_number=2)
    query, _ = run(second + first, modalities=["NM"])
    assert kept(query) == {"1.2.3.6": {first[0].series: "series"}}


# 24-29 CT dose objects --------------------------------------------------------------------------

def _ct(*extra: list[Obj]) -> list[Obj]:
    objs = series_of("1.2.3.1", "CT", 3, series_desc="Chest")
    for part in extra:
        objs += part
    return objs


def test_it_24_keeps_the_ct_rdsr(run: Run) -> None:
    sr = series_of("1.2.3.1", "SR", 1, sop_class=RDSR)
    query, _ = run(_ct(sr), modalities=["CT"])
    assert kept(query) == {"1.2.3.1": {sr[0].series: "series"}}


def test_it_25_keeps_the_ct_enhanced_sr(run: Run) -> None:
    sr = series_of("1.2.3.1", "SR", 1, sop_class=ESR)
    query, _ = run(_ct(sr), modalities=["CT"])
    assert kept(query) == {"1.2.3.1": {sr[0].series: "series"}}


def test_it_26_keeps_the_ct_dose_info_series_case_insensitive(run: Run) -> None:
    info = series_of("1.2.3.1", "SC", 1, series_desc="DOSE INFO", sop_class=SC)
    query, _ = run(_ct(info), modalities=["CT"])
    assert kept(query) == {"1.2.3.1": {info[0].series: "series"}}


def test_it_27_excludes_ct_with_an_empty_sr_without_emptysr(run: Run) -> None:
    sr = series_of("1.2.3.1", "SR", 1, hidden=True)
    query, _ = run(_ct(sr), modalities=["CT"])
    assert kept(query) == {}
    assert reasons(query)["1.2.3.1"] == "no dose report"


def test_it_28_keeps_the_ct_empty_sr_with_emptysr(run: Run) -> None:
    sr = series_of("1.2.3.1", "SR", 1, hidden=True)
    query, _ = run(_ct(sr), modalities=["CT"], emptysr=True)
    assert kept(query) == {"1.2.3.1": {sr[0].series: "series"}}


def test_it_29_prefers_the_rdsr_to_the_enhanced_sr(run: Run) -> None:
    rdsr = series_of("1.2.3.1", "SR", 1, sop_class=RDSR)
    esr = series_of("1.2.3.1", "SR", 1, sop_class=ESR)
    query, _ = run(_ct(esr, rdsr), modalities=["CT"])
    assert kept(query) == {"1.2.3.1": {rdsr[0].series: "series"}}


def test_it_keeps_toshiba_sc_series_whole_and_the_first_image_of_others(run: Run) -> None:
    ct = series_of("1.2.3.1", "CT", 3, series_desc="Chest")
    sc = series_of("1.2.3.1", "CT", 2, series_desc="Dose", sop_class=SC, series_number=9)
    query, _ = run(ct + sc, modalities=["CT"], toshiba=True)
    assert kept(query) == {"1.2.3.1": {ct[0].series: [ct[0].sop], sc[0].series: "series"}}


# 33-36 already imported --------------------------------------------------------------------

def _imported(sop: str, study: str, outcome: str = Outcome.IMPORTED) -> None:
    ImportRecord.objects.create(sop_instance_uid=sop, study_instance_uid=study,
                                source=Source.STORE, outcome=outcome)


def test_it_33_keeps_a_new_rdsr_of_a_known_study(run: Run) -> None:
    objs = ct_study()
    _imported("1.9.9.1", "1.2.3.1")
    query, _ = run(objs, modalities=["CT"])
    assert kept(query) == {"1.2.3.1": {uid_of(objs, "SR"): "series"}}


def test_it_34_excludes_an_rdsr_already_imported(run: Run) -> None:
    objs = ct_study()
    _imported([o for o in objs if o.modality == "SR"][0].sop, "1.2.3.1")
    query, _ = run(objs, modalities=["CT"])
    assert kept(query) == {}
    assert reasons(query)["1.2.3.1"] == "already imported"


def test_it_34b_retrieves_it_again_with_dup(run: Run) -> None:
    objs = ct_study()
    _imported([o for o in objs if o.modality == "SR"][0].sop, "1.2.3.1")
    query, _ = run(objs, modalities=["CT"], dup=True)
    assert kept(query) == {"1.2.3.1": {uid_of(objs, "SR"): "series"}}


def test_it_35_keeps_a_known_study_without_recorded_instances(run: Run) -> None:
    objs = ct_study()
    _imported("", "1.2.3.1", outcome=Outcome.NOT_IMPORTABLE)
    query, _ = run(objs, modalities=["CT"])
    assert kept(query) == {"1.2.3.1": {uid_of(objs, "SR"): "series"}}


def test_it_36_excludes_an_imported_dx_image_and_keeps_the_new_one(run: Run) -> None:
    dx = series_of("1.2.3.4", "DX", 2)
    _imported(dx[0].sop, "1.2.3.4")
    query, _ = run(dx, modalities=["DX"])
    assert kept(query) == {"1.2.3.4": {dx[0].series: [dx[1].sop]}}


# 38 merge, 39-43 station level ---------------------------------------------------------------

def test_it_38_merges_duplicate_study_responses(run: Run) -> None:
    objs = ct_study() + series_of("1.2.3.1", "MG", 1)
    query, fake = run(objs, modalities=["CT", "MG"])
    assert study_finds(fake) == ["CT", "MG"]
    assert query.studies.count() == 1
    assert query.studies.get().matched == "CT,MG"


def _station_levels() -> list[Obj]:
    return series_of("1.2.3.2", "MG", 1, station="ROOMB", study_station="MAINMG")


def test_it_39_includes_by_series_station_by_default(run: Run) -> None:
    query, _ = run(_station_levels(), modalities=["MG"], station_include=["mainmg"])
    assert kept(query) == {}
    assert reasons(query)["1.2.3.2"] == "no series left"


def test_it_40_includes_by_study_station_when_asked(run: Run) -> None:
    query, _ = run(_station_levels(), modalities=["MG"], station_include=["mainmg"],
                   station_study_level=True)
    assert set(kept(query)) == {"1.2.3.2"}


def test_it_41_excludes_by_series_station_by_default(run: Run) -> None:
    query, _ = run(_station_levels(), modalities=["MG"], station_exclude=["mainmg"])
    assert set(kept(query)) == {"1.2.3.2"}


def test_it_42_excludes_by_study_station_when_asked(run: Run) -> None:
    query, _ = run(_station_levels(), modalities=["MG"], station_exclude=["mainmg"],
                   station_study_level=True)
    assert kept(query) == {}
    assert reasons(query)["1.2.3.2"] == "station name filter"


def test_it_43_includes_the_series_station_at_series_level_only(run: Run) -> None:
    series_level, _ = run(_station_levels(), modalities=["MG"], station_include=["roomb"])
    study_level, _ = run(_station_levels(), modalities=["MG"], station_include=["roomb"],
                         station_study_level=True)
    assert set(kept(series_level)) == {"1.2.3.2"}
    assert kept(study_level) == {}


# cross-check and modality tag --------------------------------------------------------------

def test_it_requeries_series_when_the_counts_disagree(run: Run) -> None:
    objs = ct_study()
    query, _ = run(objs, setup=lambda f: f.drop_series_once.add("1.2.3.1"), modalities=["CT"])
    assert kept(query) == {"1.2.3.1": {uid_of(objs, "SR"): "series"}}
    assert any("re-queried" in n for n in query.notes)


def test_it_sends_the_modality_value_when_the_node_needs_the_tag(run: Run) -> None:
    _, fake = run(ct_study(), node={"use_modality_tag": True}, modalities=["CT"])
    study = [f for f in fake.finds if f.QueryRetrieveLevel == "STUDY"][0]
    assert study.Modality == "CT"


def test_it_fails_with_the_reason_when_the_remote_is_down(db: Any) -> None:
    fake = FakeRemote([])
    remote = remote_node(fake)  # never started
    query = new_query(remote, None, QueryParams(modalities=["CT"], date_from=DAY).normalized())
    assert run_query(query) == Status.FAILED
    assert "connection refused" in query.errors[0]


def test_it_cancels_a_query_and_releases_the_association(db: Any) -> None:
    with FakeRemote(ct_study()) as fake:
        query = new_query(remote_node(fake), None,
                          QueryParams(modalities=["CT"], date_from=DAY).normalized())
        Query.objects.filter(pk=query.pk).update(cancel_requested=True)
        assert run_query(query) == Status.CANCELLED
        assert fake.finds == [] and query.errors == []
        assert fake.associations == fake.released == 1
