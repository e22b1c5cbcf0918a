"""Retrieve: QR_RULES.md scenarios 20 and 44-47, arrivals, calling AE, C-GET."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest

from imports.models import ImportRecord, Source
from qr.arrivals import link_arrivals
from qr.jobs import new_move, new_query
from qr.models import Move, Query, Status
from qr.move import run_move
from qr.params import QueryParams
from qr.run import run_query
from tests.fake_remote import (
    RDSR,
    RRDSR,
    FakeRemote,
    Obj,
    StoreSCP,
    kept,
    remote_node,
    series_of,
    store_node,
)

DAY = dt.date(2024, 1, 2)


class World:
    def __init__(self, objs: list[Obj]) -> None:
        self.scp = StoreSCP().start()
        self.fake = FakeRemote(objs, destinations={"DPSTORE": ("127.0.0.1", self.scp.port)})
        self.remote: Any = None
        self.store: Any = None

    def start(self, **node: Any) -> World:
        self.fake.start()
        self.remote = remote_node(self.fake, **node)
        self.store = store_node(self.scp)
        return self

    def query(self, **kw: Any) -> Query:
        params = QueryParams(date_from=DAY, date_until=DAY, **kw).normalized()
        query = new_query(self.remote, self.store, params)
        run_query(query)
        return query

    def move(self, query: Query) -> Move:
        move = new_move(query)
        run_move(move)
        move.refresh_from_db()
        return move

    def stop(self) -> None:
        self.fake.stop()
        self.scp.stop()


@pytest.fixture
def worlds() -> Iterator[list[World]]:
    made: list[World] = []
    yield made
    for w in made:
        w.stop()


def world(worlds: list[World], objs: list[Obj], **node: Any) -> World:
    w = World(objs)
    worlds.append(w)
    return w.start(**node)


def two_ct_studies() -> list[Obj]:
    objs: list[Obj] = []
    for uid in ("1.2.3.1", "1.2.3.2"):
        objs += series_of(uid, "CT", 3, series_desc="Chest")
        objs += series_of(uid, "SR", 2, sop_class=RDSR, series_desc="Dose")
    return objs


def srs(objs: list[Obj]) -> list[Obj]:
    return [o for o in objs if o.modality == "SR"]


def test_it_moves_the_kept_series_with_the_remotes_calling_aet(db: Any, worlds: list) -> None:
    objs = two_ct_studies()
    w = world(worlds, objs)
    move = w.move(w.query(modalities=["CT"]))
    assert move.status == Status.COMPLETE
    assert sorted(w.scp.received) == sorted(o.sop for o in srs(objs))
    assert set(w.fake.move_callers) == {"DPQUERY"}  # FIX: not the store's AE title
    assert move.completed == 4 and move.failed == 0 and move.requests == 2
    assert w.fake.associations == w.fake.released == 2 and w.fake.aborted == 0


def test_it_links_arrivals_by_sop_instance_uid(db: Any, worlds: list) -> None:
    objs = two_ct_studies()
    w = world(worlds, objs)
    query = w.query(modalities=["CT"])
    move = w.move(query)
    assert move.expected == 4 and move.arrived == 0
    for uid in w.scp.received[:3]:
        ImportRecord.objects.create(sop_instance_uid=uid, source=Source.QUERY, outcome="imported")
    ImportRecord.objects.create(sop_instance_uid="9.9.9", study_instance_uid="1.2.3.1",
                                source=Source.STORE, outcome="imported")
    assert link_arrivals(move) == 3


def test_it_20_moves_a_pet_ct_study_once_for_ct_and_nm(db: Any, worlds: list) -> None:
    ct = series_of("1.2.3.7", "CT", 3, series_desc="CT AC")
    rdsr = series_of("1.2.3.7", "SR", 1, sop_class=RDSR)
    rr = series_of("1.2.3.7", "SR", 1, sop_class=RRDSR)
    pet = series_of("1.2.3.7", "PT", 3, series_desc="PET AC")
    w = world(worlds, ct + rdsr + rr + pet)
    query = w.query(modalities=["CT", "NM"])
    assert query.studies.count() == 1
    assert kept(query) == {"1.2.3.7": {rdsr[0].series: "series", rr[0].series: "series",
                                       pet[0].series: [pet[0].sop]}}
    move = w.move(query)
    assert move.status == Status.COMPLETE
    assert sorted(w.scp.received) == sorted([rdsr[0].sop, rr[0].sop, pet[0].sop])
    assert move.requests == 3


def test_it_44_counts_a_b000_warning_and_continues(db: Any, worlds: list) -> None:
    objs = two_ct_studies()
    w = world(worlds, objs)
    first = srs(objs)[0].series
    w.fake.move_status[first] = 0xB000
    move = w.move(w.query(modalities=["CT"]))
    assert move.status == Status.PARTIAL
    assert move.requests == 2  # not retried
    assert {o.sop for o in srs(objs)[2:]} <= set(w.scp.received)
    series = {s.series_instance_uid: s.move_status
              for s in move.query.studies.get(study_instance_uid="1.2.3.1").series.all()}
    assert series[first] == "warning"
    assert any("0xB000" in e for e in move.errors)


def test_it_45_stops_on_a801_and_says_to_add_our_ae(db: Any, worlds: list) -> None:
    w = world(worlds, two_ct_studies())
    w.fake.move_status["*"] = 0xA801
    move = w.move(w.query(modalities=["CT"]))
    assert move.status == Status.FAILED
    assert "add AE title DPSTORE" in move.message and f"port {w.scp.port}" in move.message
    assert move.requests == 1
    assert w.fake.aborted == 0


def test_it_46_retries_an_aborted_series_once_then_marks_it_failed(db: Any, worlds: list) -> None:
    objs = two_ct_studies()
    w = world(worlds, objs)
    first = srs(objs)[0].series
    w.fake.abort_series[first] = 5
    move = w.move(w.query(modalities=["CT"]))
    assert move.status == Status.PARTIAL
    tried = [str(m.SeriesInstanceUID) for m in w.fake.moves]
    assert tried.count(first) == 2
    assert sorted(w.scp.received) == sorted(o.sop for o in srs(objs)[2:])
    assert move.series_failed == 1
    assert len([e for e in move.errors if first in e]) == 2


def test_it_46b_succeeds_when_the_retry_works(db: Any, worlds: list) -> None:
    objs = two_ct_studies()
    w = world(worlds, objs)
    w.fake.abort_series[srs(objs)[0].series] = 1
    move = w.move(w.query(modalities=["CT"]))
    assert sorted(w.scp.received) == sorted(o.sop for o in srs(objs))
    assert move.series_failed == 0


def test_it_47_cancel_sends_c_cancel_and_releases(transactional_db: Any, worlds: list) -> None:
    objs = series_of("1.2.3.1", "SR", 30, sop_class=RDSR)
    w = world(worlds, objs)
    w.fake.sub_op_delay = 0.1
    query = new_query(w.remote, w.store, QueryParams(sr_only=True, date_from=DAY).normalized())
    run_query(query)
    move = new_move(query)

    def cancel_on_third(event: Any) -> None:
        if len(w.scp.received) == 3:
            Move.objects.filter(pk=move.pk).update(cancel_requested=True)

    w.scp.on_store = cancel_on_third
    assert run_move(move) == Status.CANCELLED
    assert 3 <= len(w.scp.received) < 30
    assert w.fake.cancelled == 1
    assert w.fake.aborted == 0 and w.fake.released == w.fake.associations


def test_it_retrieves_with_c_get_and_imports(db: Any, worlds: list) -> None:
    objs = two_ct_studies()
    w = world(worlds, objs, retrieve_method="get")
    move = w.move(w.query(modalities=["CT"]))
    assert move.status == Status.COMPLETE
    assert w.scp.received == []
    got = set(ImportRecord.objects.values_list("sop_instance_uid", flat=True))
    assert got == {o.sop for o in srs(objs)}
    assert move.arrived == 4
