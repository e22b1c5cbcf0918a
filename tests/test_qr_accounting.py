"""Retrieve accounting: imported, arrived, sent, failed and not attempted add up to what was
selected; a PACS that dies mid-retrieve is named as a lost connection with how far it got;
arrivals count as their import finishes."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from typing import Any

import pytest

from imports.models import ImportRecord, Outcome, Source
from qr.arrivals import NOT_ATTEMPTED, link_import, tally
from qr.jobs import new_move, new_query
from qr.models import Move, Query, Status
from qr.move import run_move
from qr.params import QueryParams
from qr.run import run_query
from tests.fake_remote import RDSR, FakeRemote, StoreSCP, remote_node, series_of, store_node

DAY = dt.date(2024, 1, 2)


@pytest.fixture
def peers() -> Iterator[tuple[FakeRemote, StoreSCP]]:
    """A remote with 8 series of 4 dose reports (32 objects) and a destination."""
    scp = StoreSCP().start()
    objs = []
    for n in range(8):
        objs += series_of("1.2.3.1", "SR", 4, sop_class=RDSR, series_number=n + 1)
    fake = FakeRemote(objs, destinations={"DPSTORE": ("127.0.0.1", scp.port)}).start()
    yield fake, scp
    fake.stop()
    scp.stop()


def queried(fake: FakeRemote, scp: StoreSCP, **node: Any) -> Query:
    params = QueryParams(sr_only=True, date_from=DAY, date_until=DAY).normalized()
    query = new_query(remote_node(fake, **node), store_node(scp), params)
    run_query(query)
    return query


def arrive(uid: str, outcome: str = Outcome.IMPORTED) -> ImportRecord:
    """What imports.service.import_file does at the end of an import of a received object."""
    record = ImportRecord.objects.create(sop_instance_uid=uid, source=Source.STORE,
                                         outcome=outcome)
    link_import(record)
    return record


def test_it_names_a_pacs_killed_mid_retrieve_and_the_numbers_add_up(
    db: Any, peers: Any
) -> None:
    fake, scp = peers
    query = queried(fake, scp)
    fake.die_after = 10  # two series and two objects of the third, then the PACS is gone
    move = new_move(query)
    assert run_move(move) == Status.FAILED
    move.refresh_from_db()
    sent = len(scp.received)
    assert sent == 10
    assert re.fullmatch(
        rf"connection to FAKEPACS lost after {move.completed} of 32 objects; "
        r"5 series not attempted", move.message), move.message
    assert move.completed in (9, 10)  # the last pending response may die with the PACS
    assert "response timeout" not in " ".join(move.errors)
    assert any("connection to the remote lost during the retrieve" in e for e in move.errors)
    assert move.not_attempted == 20 and move.series_not_attempted == 5
    statuses = [s.move_status for s in query.studies.get().series.order_by("series_number")]
    assert statuses == ["complete", "complete", "failed"] + [NOT_ATTEMPTED] * 5
    counts = tally(move)
    assert counts.total == counts.selected == 32
    assert (counts.sent, counts.failed, counts.not_attempted) == (move.completed,
                                                                  12 - move.completed, 20)

    # the store imports what was sent: each import counts at once, no periodic pass
    for n, uid in enumerate(scp.received):
        arrive(uid, Outcome.FAILED if n == 0 else Outcome.IMPORTED)
    move.refresh_from_db()
    assert (move.arrived, move.imported) == (10, 9)
    counts = tally(move)
    assert (counts.imported, counts.arrived, counts.sent, counts.failed,
            counts.not_attempted) == (9, 1, 0, 2, 20)
    assert counts.total == 32
    assert counts.line() == ("32 selected: 9 imported, 1 arrived not imported, 0 sent not yet "
                             "arrived, 2 failed, 20 not attempted (5 series)")


def test_it_counts_a_retried_series_once(db: Any, peers: Any) -> None:
    fake, scp = peers
    query = queried(fake, scp)
    third = sorted({o.series for o in fake.objs if o.series_number == 3})[0]
    fake.abort_series[third] = 1  # the first attempt is aborted, the retry works
    move = new_move(query)
    assert run_move(move) == Status.PARTIAL
    move.refresh_from_db()
    assert move.completed == 32 and move.not_attempted == 0
    for uid in set(scp.received):
        arrive(uid)
    move.refresh_from_db()
    assert (move.arrived, move.imported) == (32, 32)
    assert tally(move).imported == tally(move).total == 32


def test_it_counts_the_rest_of_a_cancelled_retrieve_as_not_attempted(
    transactional_db: Any, peers: Any
) -> None:
    fake, scp = peers
    query = queried(fake, scp)
    move = new_move(query)

    def cancel_on_sixth(event: Any) -> None:
        if len(scp.received) == 6:
            Move.objects.filter(pk=move.pk).update(cancel_requested=True)

    scp.on_store = cancel_on_sixth
    fake.sub_op_delay = 0.1
    assert run_move(move) == Status.CANCELLED
    move.refresh_from_db()
    assert move.message.startswith(f"cancelled by the user after {move.completed} of 32 objects")
    counts = tally(move)
    assert counts.total == counts.selected == 32
    assert counts.failed == 0 and counts.not_attempted == 32 - counts.sent
    assert counts.sent == move.completed == len(scp.received)


def test_it_says_how_far_a_c_get_got_when_the_pacs_dies(db: Any, peers: Any) -> None:
    fake, scp = peers
    query = queried(fake, scp, retrieve_method="get")
    fake.die_after = 6
    move = new_move(query)
    assert run_move(move) == Status.FAILED
    move.refresh_from_db()
    assert move.message.startswith(f"connection to FAKEPACS lost after {move.completed} of 32")
    assert move.message.endswith("; 6 series not attempted")
    counts = tally(move)
    # C-GET objects are imported inside the job: they arrived (RDSRs without content fail)
    assert counts.total == 32 and counts.not_attempted == 24
    assert counts.arrived == move.arrived == ImportRecord.objects.count()
