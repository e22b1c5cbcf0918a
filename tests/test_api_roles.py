"""The read API's answer for every endpoint (the study detail included) and every kind of
caller: no token 401, a user without a role 403, each role as its pages allow; never an
HTML page."""

from __future__ import annotations

from typing import Any

import pytest

from tests.test_api import get, key_for
from tests.test_export import ct_study

pytestmark = pytest.mark.django_db
LISTS = ["/api/studies/", "/api/nodes/", "/api/imports/", "/api/qr/jobs/"]
# Who may read what: qr jobs are the importer's pages; the rest are the viewer's.
ALLOWED = {
    "viewer": {"/api/studies/", "/api/nodes/", "/api/imports/", "study"},
    "importer": {*LISTS, "study"},
    "admin_user": {*LISTS, "study"},
    "no_role": set(),
}


@pytest.fixture
def no_role(django_user_model: Any) -> Any:
    return django_user_model.objects.create_user("nobody", password="x")


@pytest.mark.parametrize("caller", list(ALLOWED))
def test_each_endpoint_answers_each_role_as_its_pages_do(
    caller: str, request: pytest.FixtureRequest
) -> None:
    study = ct_study()
    key = key_for(request.getfixturevalue(caller))
    for path, name in [*((p, p) for p in LISTS), (f"/api/studies/{study.pk}/", "study")]:
        anonymous = get(path)
        assert anonymous.status_code == 401, path
        response = get(path, key)
        expected = 200 if name in ALLOWED[caller] else 403
        assert response.status_code == expected, (caller, path, response.content[:200])
        assert response["Content-Type"] == "application/json", path
        if expected == 403:
            assert response.json()["status"] == 403 and response.json()["detail"]
