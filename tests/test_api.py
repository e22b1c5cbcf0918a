"""The read API: tokens (page and `doseport tokens`), 401/403/405 as JSON, each endpoint
for each role, filters and pagination."""

from __future__ import annotations

import io
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client

from api import tokens
from api.models import ApiToken
from audit.models import AuditEntry
from dose.serialize import studies_for_export, study_to_dict
from imports.models import ImportRecord, Outcome, Source
from nodes.models import RemoteNode, StoreNode
from qr.models import Move, Query
from store.models import State, StoreRuntime
from tests.test_export import ct_study, dx_study

pytestmark = pytest.mark.django_db
ENDPOINTS = ["/api/studies/", "/api/nodes/", "/api/imports/", "/api/qr/jobs/"]


def key_for(user: Any) -> str:
    return tokens.create(user, "test").key


def get(path: str, key: str | None = None, **params: Any) -> Any:
    headers = {"Authorization": f"Token {key}"} if key else {}
    return Client(enforce_csrf_checks=True).get(path, params, headers=headers)


@pytest.mark.parametrize("path", ENDPOINTS + ["/api/studies/1/"])
def test_it_answers_401_in_json_without_a_token(path: str) -> None:
    response = get(path)
    assert response.status_code == 401
    assert response["Content-Type"] == "application/json"
    assert response["WWW-Authenticate"] == 'Token realm="doseport"'
    assert "Authorization: Token KEY" in response.json()["detail"]


@pytest.mark.parametrize("header", ["Token", "Bearer abc", "Token dp_not-a-key", "Basic dXNlcg=="])
def test_it_answers_401_for_a_bad_header_or_key(header: str, viewer: Any) -> None:
    key_for(viewer)
    response = Client().get("/api/studies/", headers={"Authorization": header})
    assert response.status_code == 401 and response.json()["status"] == 401


def test_it_answers_401_for_a_revoked_token_or_a_disabled_user(viewer: Any) -> None:
    created = tokens.create(viewer)
    assert get("/api/studies/", created.key).status_code == 200
    created.token.revoke()
    assert get("/api/studies/", created.key).status_code == 401
    other = key_for(viewer)
    viewer.is_active = False
    viewer.save()
    assert get("/api/studies/", other).status_code == 401


def test_it_stores_only_a_hash_of_the_key(viewer: Any) -> None:
    created = tokens.create(viewer)
    stored = ApiToken.objects.get()
    assert created.key not in (stored.key_hash, stored.prefix, stored.name)
    assert stored.key_hash == tokens.hash_key(created.key) and created.key.startswith(stored.prefix)


@pytest.mark.parametrize(("role_fixture", "allowed"), [
    ("viewer", {"/api/studies/", "/api/nodes/", "/api/imports/"}),
    ("importer", set(ENDPOINTS)),
    ("admin_user", set(ENDPOINTS)),
])
def test_it_applies_the_pages_role_checks(
    role_fixture: str, allowed: set[str], request: pytest.FixtureRequest
) -> None:
    key = key_for(request.getfixturevalue(role_fixture))
    for path in ENDPOINTS:
        response = get(path, key)
        assert response.status_code == (200 if path in allowed else 403), path
    if "/api/qr/jobs/" not in allowed:
        assert get("/api/qr/jobs/", key).json()["detail"] == (
            "Your role, viewer, cannot run queries, retrieves or imports: that needs the "
            "importer role."
        )


def test_it_refuses_a_user_without_a_role(django_user_model: Any) -> None:
    key = key_for(django_user_model.objects.create_user("nobody", password="x"))
    response = get("/api/studies/", key)
    assert response.status_code == 403 and "no role" in response.json()["detail"]


def test_it_accepts_a_logged_in_browser_session(client: Client, viewer: Any) -> None:
    assert client.get("/api/studies/").status_code == 401  # no redirect to the login page
    client.force_login(viewer)
    assert client.get("/api/studies/").status_code == 200
    # A token header decides on its own: a bad key is refused even with a session.
    bad = client.get("/api/studies/", headers={"Authorization": "Token dp_wrong"})
    assert bad.status_code == 401


def test_it_is_read_only_and_needs_no_csrf_token(viewer: Any) -> None:
    key = key_for(viewer)
    client = Client(enforce_csrf_checks=True)
    response = client.post("/api/studies/", headers={"Authorization": f"Token {key}"})
    assert response.status_code == 405 and response["Allow"] == "GET, HEAD"
    assert client.get("/api/studies/", headers={"Authorization": f"Token {key}"}).status_code == 200


def test_it_lists_studies_with_the_lists_filters_and_pages(viewer: Any) -> None:
    first = ct_study("2024-03-01", station="CT1", events=2)
    second = ct_study("2024-03-05", station="CT2", events=3)
    dx = dx_study("2024-03-03")
    key = key_for(viewer)
    body = get("/api/studies/", key, page_size=2).json()
    assert body["count"] == 3 and body["previous"] is None
    assert [r["id"] for r in body["results"]] == [second.pk, dx.pk]  # newest first, as the list
    assert body["next"].startswith("http://testserver/api/studies/?")
    assert "page=2" in body["next"] and "page_size=2" in body["next"]
    page2 = get(body["next"], key).json()
    assert [r["id"] for r in page2["results"]] == [first.pk] and page2["next"] is None
    assert page2["previous"] is not None

    row = get("/api/studies/", key, modality="CT", station="ct2").json()["results"]
    assert [r["id"] for r in row] == [second.pk]
    assert row[0]["number_of_events"] == 3 and row[0]["dlp_total_mGycm"] == 361.5
    assert row[0]["url"] == f"http://testserver/api/studies/{second.pk}/"
    dated = get("/api/studies/", key, date_from="2024-03-02", date_to="2024-03-04", sort="date")
    assert [r["id"] for r in dated.json()["results"]] == [dx.pk]


@pytest.mark.parametrize(("params", "status"), [
    ({"date_from": "2024-02-30"}, 400), ({"modality": "XX"}, 400),
    ({"date_from": "2024-03-05", "date_to": "2024-03-01"}, 400),
    ({"page": "0"}, 400), ({"page_size": "501"}, 400), ({"page": "9"}, 404),
])
def test_it_answers_400_or_404_for_bad_parameters(
    viewer: Any, params: dict[str, str], status: int
) -> None:
    ct_study()
    response = get("/api/studies/", key_for(viewer), **params)
    assert response.status_code == status
    assert response.json()["detail"]


def test_it_gives_a_study_as_the_export_schema_object(viewer: Any, admin_user: Any) -> None:
    study = ct_study()
    study.patient_name = "DOE^JANE"
    study.save()
    expected = study_to_dict(studies_for_export().get(pk=study.pk))
    admin_view = get(f"/api/studies/{study.pk}/", key_for(admin_user)).json()
    assert admin_view == expected and admin_view["patient_name"] == "DOE^JANE"
    viewer_view = get(f"/api/studies/{study.pk}/", key_for(viewer)).json()
    assert "patient_name" not in viewer_view
    assert viewer_view == {k: v for k, v in expected.items() if k != "patient_name"}
    missing = get(f"/api/studies/{study.pk + 100}/", key_for(viewer))
    assert missing.status_code == 404 and missing.json() == {"detail": "Not found.", "status": 404}


def test_it_reports_the_nodes_and_their_status(viewer: Any) -> None:
    store = StoreNode.objects.create(name="Main", ae_title="DOSEPORT", port=11112,
                                     echo_alive=True)
    StoreRuntime.objects.create(node=store, state=State.CRASHED, restarts=3,
                                last_error="port in use")
    RemoteNode.objects.create(name="PACS", ae_title="PACS", host="pacs.example", port=104,
                              echo_alive=False, echo_reason="connection refused")
    body = get("/api/nodes/", key_for(viewer)).json()
    (s,), (r,) = body["store_nodes"], body["remote_nodes"]
    assert (s["name"], s["echo"]["status"]) == ("Main", "alive")
    assert s["runtime"]["state"] == "crashed" and s["runtime"]["running"] is False
    assert s["runtime"]["restarts"] == 3 and s["runtime"]["last_error"] == "port in use"
    assert r["echo"] == {**r["echo"], "status": "failed", "reason": "connection refused"}
    assert r["host"] == "pacs.example"


def test_it_lists_imports_filtered_by_outcome(viewer: Any) -> None:
    ok = ImportRecord.objects.create(source=Source.FILE, outcome=Outcome.IMPORTED, kind="ct_rdsr")
    bad = ImportRecord.objects.create(source=Source.STORE, outcome=Outcome.FAILED, error="boom")
    key = key_for(viewer)
    everything = get("/api/imports/", key).json()
    assert everything["count"] == 2 and {r["id"] for r in everything["results"]} == {ok.pk, bad.pk}
    failed = get("/api/imports/", key, outcome="failed").json()
    assert [(r["id"], r["error"]) for r in failed["results"]] == [(bad.pk, "boom")]
    assert [r["id"] for r in get("/api/imports/", key, source="file").json()["results"]] == [ok.pk]
    wrong = get("/api/imports/", key, outcome="lost")
    assert wrong.status_code == 400 and "outcome must be one of" in wrong.json()["detail"]


def test_it_lists_query_jobs_with_their_retrieves(importer: Any) -> None:
    remote = RemoteNode.objects.create(name="PACS", ae_title="PACS", host="h", port=104)
    query = Query.objects.create(remote=remote, remote_name="PACS", status="complete",
                                 user=importer, params={"modalities": ["CT"]})
    Move.objects.create(query=query, status="running", expected=10, arrived=4, completed=4)
    Query.objects.create(remote=remote, status="failed", errors=["refused"])
    key = key_for(importer)
    body = get("/api/qr/jobs/", key).json()
    assert body["count"] == 2
    done = get("/api/qr/jobs/", key, status="complete").json()["results"]
    assert [j["id"] for j in done] == [query.pk]
    assert done[0]["user"] == "importer" and done[0]["params"] == {"modalities": ["CT"]}
    assert done[0]["moves"][0]["arrived"] == 4 and done[0]["moves"][0]["status"] == "running"


def test_the_tokens_command_adds_lists_and_revokes(viewer: Any) -> None:
    out, err = io.StringIO(), io.StringIO()
    call_command("tokens", "add", "viewer", "--name", "report script", stdout=out, stderr=err)
    key = out.getvalue().strip()
    assert get("/api/studies/", key).status_code == 200
    assert "shown only this once" in err.getvalue()
    listing = io.StringIO()
    call_command("tokens", "list", stdout=listing)
    token = ApiToken.objects.get()
    assert token.prefix in listing.getvalue() and "report script" in listing.getvalue()
    assert key not in listing.getvalue()
    call_command("tokens", "revoke", token.prefix, stdout=io.StringIO())
    assert get("/api/studies/", key).status_code == 401
    with pytest.raises(CommandError, match="already revoked"):
        call_command("tokens", "revoke", str(token.pk))
    with pytest.raises(CommandError, match="no user"):
        call_command("tokens", "add", "ghost")
    assert set(AuditEntry.objects.values_list("action", flat=True)) == {"token.add", "token.revoke"}


def test_the_tokens_page_shows_a_new_key_once(client: Client, viewer: Any, importer: Any) -> None:
    client.force_login(viewer)
    page = client.post("/api/tokens/", {"name": "grafana"})
    html = page.content.decode()
    token = ApiToken.objects.get()
    key = html.split('id="new-token">')[1].split("<")[0]
    assert token.key_hash == tokens.hash_key(key) and "no-store" in page["Cache-Control"]
    assert key not in client.get("/api/tokens/").content.decode()
    client.force_login(importer)
    assert client.post(f"/api/tokens/{token.pk}/revoke/").status_code == 404  # not theirs
    client.force_login(viewer)
    client.post(f"/api/tokens/{token.pk}/revoke/")
    assert get("/api/studies/", key).status_code == 401
    assert 'id="nav-tokens"' in client.get("/studies/").content.decode()
