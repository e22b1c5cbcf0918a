"""Audit log: an entry for every recorded action, the admin page, `doseport audit`."""

from __future__ import annotations

import datetime as dt
import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, transaction
from django.test import Client
from django.utils import timezone

import audit
from audit.models import AuditEntry
from imports.models import ImportRecord, Outcome, Source
from nodes.models import DeleteSettings, RemoteNode, StoreNode
from qr.models import Move, Query
from tests.fake_remote import RDSR, FakeRemote, StoreSCP, remote_node, series_of, store_node
from tests.store_helpers import make_node

pytestmark = pytest.mark.django_db

TODAY = dt.date.today()
STORE_FORM = {"name": "Main", "ae_title": "DOSESTORE", "port": 11112, "controlled": "on"}


def login(client: Client, user: Any) -> Client:
    client.force_login(user)
    return client


def actions() -> list[str]:
    return list(AuditEntry.objects.order_by("created_at", "pk").values_list("action", flat=True))


def last(action: str) -> AuditEntry:
    return AuditEntry.objects.filter(action=action).latest("created_at", "pk")


def entry(action: str, username: str, days_ago: int, target: str = "t") -> AuditEntry:
    return AuditEntry.objects.create(
        action=action, username=username, target=target, address="10.0.0.1",
        created_at=timezone.now() - dt.timedelta(days=days_ago),
    )


@pytest.fixture
def peers(db: Any) -> Iterator[tuple[RemoteNode, StoreNode]]:
    day = TODAY.strftime("%Y%m%d")
    objs = series_of("1.2.3.1", "CT", 1, date=day) + series_of(
        "1.2.3.1", "SR", 1, sop_class=RDSR, date=day)
    scp = StoreSCP().start()
    fake = FakeRemote(objs, destinations={"DPSTORE": ("127.0.0.1", scp.port)}).start()
    yield remote_node(fake), store_node(scp)
    fake.stop()
    scp.stop()


# --- one entry per action, through the real views ---------------------------------------


def test_it_records_adding_editing_and_deleting_a_store_node(
    client: Client, admin_user: Any
) -> None:
    login(client, admin_user).post("/config/dicom/store/add/", STORE_FORM)
    node = StoreNode.objects.get()
    added = last("node.add")
    assert added.target == f"store node {node.pk} Main"
    assert (added.user, added.username, added.source) == (admin_user, "boss", "web")
    assert added.address == "127.0.0.1"
    assert added.detail["ae_title"][1] == "DOSESTORE"

    client.post(f"/config/dicom/store/{node.pk}/edit/", {**STORE_FORM, "port": 11113})
    assert last("node.edit").detail == {"port": [11112, 11113]}

    client.post(f"/config/dicom/store/{node.pk}/delete/")
    assert not StoreNode.objects.exists()
    assert last("node.delete").target == f"store node {node.pk} Main"
    assert actions() == ["node.add", "node.edit", "node.delete"]


def test_it_records_remote_node_changes(client: Client, admin_user: Any) -> None:
    form = {"name": "PACS", "ae_title": "PACS", "host": "10.0.0.9", "port": 104,
            "calling_ae_title": "", "retrieve_method": "move", "connect_timeout": 3,
            "acse_timeout": 5, "dimse_timeout": 30, "network_timeout": 60}
    assert login(client, admin_user).post("/config/dicom/remote/add/", form).status_code == 302
    node = RemoteNode.objects.get()
    client.post(f"/config/dicom/remote/{node.pk}/edit/", {**form, "host": "10.0.0.10"})
    client.post(f"/config/dicom/remote/{node.pk}/delete/")
    assert actions() == ["node.add", "node.edit", "node.delete"]
    assert last("node.edit").detail == {"host": ["10.0.0.9", "10.0.0.10"]}
    assert last("node.delete").target == f"remote node {node.pk} PACS"


def test_it_takes_the_address_from_a_trusted_proxy(
    client: Client, admin_user: Any, settings: Any
) -> None:
    settings.TRUSTED_PROXIES = ["127.0.0.1"]
    login(client, admin_user).post("/config/dicom/store/add/", STORE_FORM,
                                   HTTP_X_FORWARDED_FOR="10.9.8.7")
    assert last("node.add").address == "10.9.8.7"
    settings.TRUSTED_PROXIES = []
    client.post("/config/dicom/store/add/", {**STORE_FORM, "name": "Other", "port": 11114},
                HTTP_X_FORWARDED_FOR="10.9.8.7")
    assert last("node.add").address == "127.0.0.1"


def test_it_records_nothing_for_a_refused_change(
    client: Client, admin_user: Any, viewer: Any
) -> None:
    login(client, admin_user).post("/config/dicom/store/add/", {**STORE_FORM, "port": 70000})
    login(client, viewer).post("/config/dicom/store/add/", STORE_FORM)
    assert not AuditEntry.objects.exists()


def test_it_records_start_and_stop(client: Client, admin_user: Any) -> None:
    node = make_node()
    login(client, admin_user).post(f"/store/nodes/{node.pk}/start/")
    client.post(f"/store/nodes/{node.pk}/stop/", HTTP_HX_REQUEST="true")
    assert actions() == ["node.start", "node.stop"]
    assert last("node.stop").target == f"store node {node.pk} {node.name}"


def test_it_records_delete_settings_changes(client: Client, admin_user: Any) -> None:
    before = DeleteSettings.get().del_rdsr
    data = {} if before else {"del_rdsr": "on"}
    response = login(client, admin_user).post("/config/dicom/delete-settings/", data)
    assert response.status_code == 302
    saved = last("delete_settings.edit")
    assert saved.detail["del_rdsr"] == [before, not before]
    assert saved.username == "boss"


def test_it_records_queries_retrieves_reruns_and_deletes_from_the_web(
    client: Client, importer: Any, peers: tuple[RemoteNode, StoreNode]
) -> None:
    remote, store = peers
    login(client, importer).post("/qr/", {
        "remote": remote.pk, "store": store.pk, "modalities": ["CT"],
        "date_from": TODAY.isoformat(), "date_until": TODAY.isoformat(),
    })
    query = Query.objects.get()
    started = last("query.run")
    assert started.target == f"query {query.pk} {remote.name}"
    assert started.detail["params"]["modalities"] == ["CT"]
    assert started.username == "importer"

    client.post(f"/qr/{query.pk}/retrieve/", {"store": store.pk})
    move = Move.objects.get()
    assert last("retrieve.run").target == f"retrieve {move.pk} of query {query.pk}"
    assert last("retrieve.run").detail == {"store": store.name}

    client.post(f"/qr/{query.pk}/again/")
    again = Query.objects.exclude(pk=query.pk).get()
    assert last("query.run").detail == {"again_of": query.pk}
    assert last("query.run").target.startswith(f"query {again.pk} ")

    client.post("/qr/history/delete/", {"ids": [query.pk, again.pk]})
    deleted = last("query.delete")
    assert deleted.detail["ids"] == [query.pk, again.pk]
    assert actions() == ["query.run", "retrieve.run", "query.run", "query.delete"]


def test_it_records_queries_and_retrieves_from_the_cli(
    peers: tuple[RemoteNode, StoreNode], monkeypatch: pytest.MonkeyPatch
) -> None:
    remote, store = peers
    monkeypatch.setattr("audit.service.getpass.getuser", lambda: "cronuser")
    with pytest.raises(SystemExit) as done:
        call_command("qr", str(remote.pk), str(store.pk), "-ct", "-sd", TODAY.isoformat(),
                     "--arrival-timeout", "0", stdout=io.StringIO())
    assert done.value.code == 0
    assert actions() == ["query.run", "retrieve.run"]
    for row in AuditEntry.objects.all():
        assert (row.source, row.username, row.user) == ("cli", "cronuser", None)
        assert row.address  # the host name
    query = Query.objects.get()
    with pytest.raises(SystemExit):
        call_command("qr", "--retrieve", str(query.pk), str(store.pk),
                     "--arrival-timeout", "0", stdout=io.StringIO())
    assert actions() == ["query.run", "retrieve.run", "retrieve.run"]


def test_it_records_an_import_retry(client: Client, importer: Any, tmp_path: Path) -> None:
    kept = tmp_path / "quarantine" / "broken.dcm"
    kept.parent.mkdir()
    kept.write_bytes(b"still not a DICOM file")
    record = ImportRecord.objects.create(
        source=Source.FILE, path=str(tmp_path / "in" / "Doe^Jane.dcm"), kept_path=str(kept),
        outcome=Outcome.FAILED, error="cannot read DICOM file",
    )
    response = login(client, importer).post(f"/imports/{record.pk}/retry/")
    assert response.status_code == 302
    retried = last("import.retry")
    assert retried.target == f"import {record.pk}"
    assert "Doe" not in json.dumps(retried.detail) + retried.target  # no file names


# --- the service ------------------------------------------------------------------------


def test_it_records_user_changes_and_keeps_the_name_of_a_deleted_user(admin_user: Any) -> None:
    alice = get_user_model().objects.create_user("alice")
    entry_ = audit.record("user.add", alice, user=admin_user, detail={"role": "viewer"},
                          source="web")
    assert entry_ is not None and entry_.target == f"user {alice.pk} alice"
    audit.record("user.role", alice, user=alice, detail={"role": ["viewer", "importer"]})
    alice.delete()
    kept = last("user.role")
    assert (kept.user, kept.username) == (None, "alice")
    assert actions() == ["user.add", "user.role"]


def test_it_never_raises_into_the_caller(
    admin_user: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(*args: Any, **kwargs: Any) -> None:
        raise DatabaseError("disk I/O error")

    monkeypatch.setattr(AuditEntry, "save", broken)
    with caplog.at_level(logging.WARNING, logger="audit.service"), transaction.atomic():
        assert audit.record("node.add", "store node 1 X", user=admin_user) is None
        StoreNode.objects.create(name="Still", ae_title="STILL", port=104)  # usable
    assert StoreNode.objects.filter(name="Still").exists()
    assert "audit entry node.add not recorded: disk I/O error" in caplog.text


def test_it_stores_detail_values_json_can_not_hold_as_text(admin_user: Any) -> None:
    saved = audit.record("node.edit", "x", user=admin_user,
                         detail={"when": dt.date(2026, 12, 1), "path": Path("/a")})
    assert saved is not None
    saved.refresh_from_db()
    assert saved.detail == {"when": "2026-12-01", "path": "/a"}


# --- the page ---------------------------------------------------------------------------


def test_it_shows_entries_newest_first_and_filters_them(client: Client, admin_user: Any) -> None:
    entry("node.add", "boss", 5, "store node 1 OLD")
    entry("node.delete", "carol", 2, "store node 1 OLD")
    entry("query.run", "boss", 0, "query 9 PACS")
    login(client, admin_user)

    def targets(**params: str) -> list[tuple[str, str]]:
        response = client.get("/audit/", params)
        assert response.status_code == 200
        return [(e.action, e.username) for e in response.context["page"]]

    assert targets() == [("query.run", "boss"), ("node.delete", "carol"), ("node.add", "boss")]
    assert targets(action="node.add") == [("node.add", "boss")]
    assert targets(action="node") == [("node.delete", "carol"), ("node.add", "boss")]
    assert targets(user="CAROL") == [("node.delete", "carol")]
    since = (TODAY - dt.timedelta(days=3)).isoformat()
    until = (TODAY - dt.timedelta(days=1)).isoformat()
    assert targets(since=since, until=until) == [("node.delete", "carol")]
    AuditEntry.objects.filter(action="query.run").update(detail={"items": [1], "again_of": 3})
    page = client.get("/audit/").content.decode()
    assert "query 9 PACS" in page and "items=[1]; again_of=3" in page


def test_it_pages_the_entries(client: Client, admin_user: Any) -> None:
    AuditEntry.objects.bulk_create(
        AuditEntry(action="node.edit", username="boss", target=f"store node {i} N")
        for i in range(60)
    )
    first = login(client, admin_user).get("/audit/")
    assert len(first.context["page"]) == 50
    second = client.get("/audit/", {"page": "2", "action": "node.edit"})
    assert len(second.context["page"]) == 10
    assert "action=node.edit&amp;page=1" in second.content.decode()


def test_it_forbids_the_page_to_viewers_and_importers(
    client: Client, viewer: Any, importer: Any
) -> None:
    for user in (viewer, importer):
        assert login(client, user).get("/audit/").status_code == 403
    client.logout()
    assert client.get("/audit/").status_code in (302, 403)


def test_it_links_the_page_for_admins_only(client: Client, admin_user: Any, viewer: Any) -> None:
    assert 'id="nav-audit"' in login(client, admin_user).get("/audit/").content.decode()
    assert 'id="nav-audit"' not in login(client, viewer).get("/imports/").content.decode()


# --- doseport audit ---------------------------------------------------------------------


def run_audit(*argv: str) -> str:
    out = io.StringIO()
    call_command("audit", *argv, stdout=out)
    return out.getvalue()


def test_it_prints_entries_since_a_date_oldest_first() -> None:
    entry("node.add", "boss", 5, "store node 1 OLD")
    entry("node.delete", "carol", 2, "store node 1 OLD")
    entry("query.run", "boss", 0, "query 9 PACS")
    since = (TODAY - dt.timedelta(days=3)).isoformat()
    lines = run_audit("--since", since).splitlines()
    assert [line.split("\t")[1:6] for line in lines] == [
        ["carol", "10.0.0.1", "web", "node.delete", "store node 1 OLD"],
        ["boss", "10.0.0.1", "web", "query.run", "query 9 PACS"],
    ]
    rows = json.loads(run_audit("--since", since, "--action", "query", "--format", "json"))
    assert [(r["action"], r["user"], r["target"]) for r in rows] == [
        ("query.run", "boss", "query 9 PACS")
    ]
    assert len(json.loads(run_audit("--format", "json"))) == 3


def test_it_takes_a_moment_to_continue_from() -> None:
    older = entry("node.add", "boss", 1)
    entry("node.edit", "boss", 0)
    rows = json.loads(run_audit("--since", older.created_at.isoformat(), "--format", "json"))
    assert [r["action"] for r in rows] == ["node.add", "node.edit"]
    after = (older.created_at + dt.timedelta(seconds=1)).isoformat()
    rows = json.loads(run_audit("--since", after, "--format", "json"))
    assert [r["action"] for r in rows] == ["node.edit"]


def test_it_refuses_a_bad_date() -> None:
    with pytest.raises(CommandError, match="--since '2026-13-01' is not a date"):
        run_audit("--since", "2026-13-01")
    with pytest.raises(CommandError, match="--until 'soon' is not a date"):
        run_audit("--until", "soon")


def test_it_reports_a_database_error_in_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: Any) -> None:
        raise DatabaseError("no such table: audit_auditentry")

    monkeypatch.setattr("audit.management.commands.audit.write_entries", broken)
    with pytest.raises(CommandError, match="database error: no such table.*doseport migrate"):
        run_audit("--since", "2026-12-01")


def test_it_records_node_changes_and_start_stop_from_the_cli(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("audit.service.getpass.getuser", lambda: "pacsadmin")
    call_command("nodes", "add-store", "--name", "CT door", "--ae-title", "CTDOOR",
                 "--port", "11190", stdout=io.StringIO(), stderr=io.StringIO())
    call_command("nodes", "add-remote", "--name", "PACS", "--ae-title", "PACS",
                 "--host", "127.0.0.1", "--port", "11191", stdout=io.StringIO())
    node = StoreNode.objects.get(name="CT door")
    for action in ("start", "stop"):
        with pytest.raises(CommandError):  # no supervisor runs in this test
            call_command("store", action, str(node.pk), "--wait", "0", stdout=io.StringIO())
    assert actions() == ["node.add", "node.add", "node.start", "node.stop"]
    assert {(row.source, row.username) for row in AuditEntry.objects.all()} == {
        ("cli", "pacsadmin")}
