"""Query pages: submit, summary, retrieve, history, delete, run again, schedules, roles."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from qr.jobs import due_schedules, schedule_params
from qr.models import Query, ScheduledQuery, Status
from qr.tasks import scheduled_queries_task
from tests.fake_remote import RDSR, FakeRemote, StoreSCP, remote_node, series_of, store_node

TODAY = dt.date.today()


@pytest.fixture
def peers(db: Any) -> Iterator[tuple[Any, Any, FakeRemote, StoreSCP]]:
    day = TODAY.strftime("%Y%m%d")
    objs = series_of("1.2.3.1", "CT", 2, series_desc="Chest", date=day) + series_of(
        "1.2.3.1", "SR", 1, sop_class=RDSR, date=day) + series_of(
        "1.2.3.2", "CT", 2, series_desc="Head", date=day)
    scp = StoreSCP().start()
    fake = FakeRemote(objs, destinations={"DPSTORE": ("127.0.0.1", scp.port)}).start()
    yield remote_node(fake), store_node(scp), fake, scp
    fake.stop()
    scp.stop()


def login(client: Client, user: Any) -> Client:
    client.force_login(user)
    return client


def submit(client: Client, remote: Any, store: Any, **extra: Any) -> Any:
    data = {"remote": remote.pk, "store": store.pk, "modalities": ["CT"],
            "date_from": TODAY.isoformat(), "date_until": TODAY.isoformat(), **extra}
    return client.post("/qr/", data)


def test_it_shows_the_form_with_default_dates(client: Client, importer: Any, peers: Any) -> None:
    page = login(client, importer).get("/qr/")
    assert page.status_code == 200
    yesterday = (TODAY - dt.timedelta(days=1)).isoformat()
    assert f'value="{yesterday}"' in page.content.decode()
    status = client.get(f"/qr/nodes/?remote={peers[0].pk}&store={peers[1].pk}")
    assert "Unknown" in status.content.decode()


def test_it_refuses_a_query_without_dates(client: Client, importer: Any, peers: Any) -> None:
    page = submit(login(client, importer), peers[0], peers[1], date_from="", date_until="")
    assert page.status_code == 200
    assert "whole archive" in page.content.decode()
    assert not Query.objects.exists()


def test_it_runs_a_query_shows_the_summary_and_retrieves(
    client: Client, importer: Any, peers: Any
) -> None:
    remote, store, _, scp = peers
    page = submit(login(client, importer), remote, store)
    query = Query.objects.get()
    assert page.status_code == 302 and page.url == f"/qr/{query.pk}/"
    html = client.get(page.url).content.decode()
    assert 'id="to-retrieve">1</strong> of 2 studies' in html
    assert "no dose report" in html and 'id="retrieve"' in html
    assert 'hx-trigger="every 1s"' not in html  # done: no polling
    done = client.post(f"/qr/{query.pk}/retrieve/", {"store": store.pk})
    assert done.status_code == 302
    assert len(scp.received) == 1
    html = client.get(f"/qr/{query.pk}/live/").content.decode()
    assert 'id="move-status">complete' in html


def test_it_lists_filters_reruns_and_deletes_queries(
    client: Client, importer: Any, peers: Any
) -> None:
    remote, store, _, _ = peers
    submit(login(client, importer), remote, store)
    first = Query.objects.get()
    rerun = client.post(f"/qr/{first.pk}/again/")
    second = Query.objects.exclude(pk=first.pk).get()
    assert rerun["Location"] == f"/qr/{second.pk}/" and second.status == Status.COMPLETE
    html = client.get("/qr/history/").content.decode()
    assert f"Query {first.pk}" in html and f"Query {second.pk}" in html
    assert "Query" not in client.get("/qr/history/?status=failed").content.decode().split(
        "<tbody>")[1].split("</tbody>")[0]
    client.post("/qr/history/delete/", {"ids": [first.pk, second.pk]})
    assert not Query.objects.exists()


def test_it_needs_the_importer_role(client: Client, viewer: Any, peers: Any) -> None:
    login(client, viewer)
    assert client.get("/qr/").status_code == 403
    assert submit(client, peers[0], peers[1]).status_code == 403
    assert client.get("/qr/history/").status_code == 403


def test_it_saves_a_scheduled_query_and_the_worker_runs_it_when_due(
    client: Client, importer: Any, peers: Any
) -> None:
    remote, store, _, scp = peers
    page = login(client, importer).post("/qr/schedules/", {
        "name": "hourly CT", "remote": remote.pk, "store": store.pk, "modalities": ["CT"],
        "desc_exclude": "imported", "every_minutes": 60, "last_hours": 24, "move": "on",
    })
    assert page.status_code == 302
    schedule = ScheduledQuery.objects.get()
    assert schedule.params["desc_exclude"] == ["imported"]
    assert scheduled_queries_task.call_local() == 1
    query = Query.objects.get(scheduled=schedule)
    assert query.status == Status.COMPLETE and query.moves.get().status == Status.COMPLETE
    assert len(scp.received) == 1
    assert due_schedules(timezone.now()) == []  # not due again within the hour
    later = timezone.now() + dt.timedelta(minutes=61)
    assert len(due_schedules(later)) == 1


def test_it_turns_last_n_hours_into_dates_and_a_time_window(db: Any, peers: Any) -> None:
    schedule = ScheduledQuery(remote=peers[0], store=peers[1], last_hours=2,
                              params={"modalities": ["CT"]})
    noon = timezone.make_aware(dt.datetime(2024, 3, 5, 12, 30))
    params = schedule_params(schedule, noon)
    assert (params.study_date(), params.study_time()) == ("20240305", "1030-1230")
    early = timezone.make_aware(dt.datetime(2024, 3, 5, 1, 0))
    params = schedule_params(schedule, early)
    assert (params.study_date(), params.study_time()) == ("20240304-20240305", "")


def test_it_links_a_late_arrival_when_its_import_finishes(
    client: Client, importer: Any, peers: Any, tmp_path: Any
) -> None:
    from imports.models import Source
    from imports.service import import_file

    remote, store, fake, scp = peers
    submit(login(client, importer), remote, store, auto_move="on")
    move = Query.objects.get().moves.get()
    assert move.status == Status.COMPLETE and move.arrived == 0 and move.expected == 1
    sent = next(o for o in fake.objs if o.sop == scp.received[0]).dataset()
    path = tmp_path / "arrived.dcm"
    sent.save_as(path, enforce_file_format=True)
    record = import_file(path, Source.STORE, store.pk)  # an RDSR without content: fails
    move.refresh_from_db()
    assert move.arrived == 1 and move.imported == 0
    from qr.models import QueryImage

    assert QueryImage.objects.get(sop_instance_uid=sent.SOPInstanceUID).arrival == record
    html = client.get(f"/qr/{move.query_id}/").content.decode()
    assert f"arrived: {record.get_outcome_display()}" in html
    assert ("1 selected: 0 imported, 1 arrived not imported, 0 sent not yet arrived, "
            "0 failed, 0 not attempted") in html
