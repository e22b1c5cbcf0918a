"""Home page: node status at a glance and recent activity."""

from __future__ import annotations

import pytest
from django.test import Client

from imports.models import ImportRecord, Outcome, Source
from nodes.models import StoreNode

pytestmark = pytest.mark.django_db


def test_it_shows_nodes_recent_imports_and_failures(client: Client, viewer) -> None:  # type: ignore[no-untyped-def]
    StoreNode.objects.create(name="CT store", ae_title="CTSTORE", port=11113)
    ImportRecord.objects.create(
        source=Source.STORE, outcome=Outcome.IMPORTED, sop_instance_uid="1.2.3.4", kind="ct_rdsr"
    )
    ImportRecord.objects.create(source=Source.FILE, outcome=Outcome.FAILED, sop_instance_uid="1.9")
    client.force_login(viewer)
    response = client.get("/")
    assert response.status_code == 200
    body = response.content.decode()
    assert "CT store" in body and "CTSTORE" in body and ">Stopped<" in body  # never started
    assert "1.2.3.4" in body and "1 failed import" in body


def test_it_sends_anonymous_users_to_login(client: Client) -> None:
    response = client.get("/")
    assert response.status_code == 302 and response["Location"].startswith("/login/")
