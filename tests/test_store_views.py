"""Start/Stop buttons (admin only, POST) and the live runtime partial of store panels."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from store import control
from store.models import State, StoreRuntime
from tests.store_helpers import make_node

pytestmark = pytest.mark.django_db


def test_it_forbids_start_and_stop_to_non_admins(client, viewer, importer) -> None:  # type: ignore[no-untyped-def]
    node = make_node()
    for user in (viewer, importer):
        client.force_login(user)
        assert client.post(reverse("store:start", args=[node.pk])).status_code == 403
        assert client.post(reverse("store:stop", args=[node.pk])).status_code == 403
    assert not StoreRuntime.objects.filter(node=node, run_requested=True).exists()


def test_it_needs_a_post_to_start(client, admin_user) -> None:  # type: ignore[no-untyped-def]
    node = make_node()
    client.force_login(admin_user)
    assert client.get(reverse("store:start", args=[node.pk])).status_code == 405


def test_it_lets_an_admin_start_and_stop_a_controlled_node(client, admin_user) -> None:  # type: ignore[no-untyped-def]
    node = make_node()
    client.force_login(admin_user)
    response = client.post(reverse("store:start", args=[node.pk]), HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    assert StoreRuntime.for_node(node).run_requested
    body = response.content.decode()
    assert 'class="store-stop"' in body and 'hx-trigger="every 2s"' in body
    response = client.post(reverse("store:stop", args=[node.pk]))
    assert response.status_code == 302
    assert not StoreRuntime.for_node(node).run_requested


def test_it_stops_an_auto_start_node_until_someone_starts_it(client, admin_user) -> None:  # type: ignore[no-untyped-def]
    node = make_node(auto_start=True)
    client.force_login(admin_user)
    response = client.post(reverse("store:stop", args=[node.pk]), HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    runtime = StoreRuntime.for_node(node)
    assert runtime.stopped_by == "boss" and runtime.stopped_at is not None
    assert not control.should_run(node, runtime)
    body = response.content.decode()
    assert ">Stopped<" in body and "stopped by boss at" in body and 'class="store-start"' in body
    client.post(reverse("store:start", args=[node.pk]))
    runtime = StoreRuntime.for_node(node)
    assert control.should_run(node, runtime) and runtime.stopped_at is None


def test_it_shows_state_uptime_and_counters_to_viewers(client, viewer) -> None:  # type: ignore[no-untyped-def]
    node = make_node()
    client.force_login(viewer)
    body = client.get(reverse("store:runtime", args=[node.pk])).content.decode()
    assert ">Stopped<" in body and "store-start" not in body  # no buttons for viewers
    assert "hx-trigger" not in body  # nothing to poll for a stopped node
    StoreRuntime.objects.create(
        node=node, state=State.RUNNING, run_requested=True, pid=321,
        started_at=timezone.now() - timedelta(hours=2, minutes=5),
        last_heartbeat=timezone.now(), supervised_at=timezone.now(),
        associations_total=9, associations_open=1, objects_received=1234,
        bytes_received=5_000_000,
    )
    body = client.get(reverse("store:runtime", args=[node.pk])).content.decode()
    assert ">Listening<" in body and "2 h 5 min" in body and "1,234" in body
    assert "1 open, 9 in total" in body and 'hx-trigger="every 2s"' in body


def test_it_shows_a_crashed_node_as_restarting_and_a_silent_one_as_not_responding(
    client, viewer  # type: ignore[no-untyped-def]
) -> None:
    node = make_node(auto_start=True)
    runtime = StoreRuntime.objects.create(
        node=node, state=State.CRASHED, last_error="node process killed by signal SIGKILL",
        last_heartbeat=timezone.now(), supervised_at=timezone.now(),
    )
    client.force_login(viewer)
    body = client.get(reverse("store:runtime", args=[node.pk])).content.decode()
    assert ">Crashed<" in body and "SIGKILL" in body
    runtime.state = State.RUNNING
    runtime.last_heartbeat = timezone.now() - timedelta(minutes=3)
    runtime.save()
    body = client.get(reverse("store:runtime", args=[node.pk])).content.decode()
    assert "Not responding" in body


def test_it_puts_the_runtime_panel_on_the_dicom_page(client, admin_user) -> None:  # type: ignore[no-untyped-def]
    node = make_node()
    make_node(name="orthanc", controlled=False, port=node.port + 1)
    client.force_login(admin_user)
    body = client.get(reverse("nodes:dicom")).content.decode()
    assert f'id="runtime-{node.pk}"' in body and body.count('class="store-start"') == 1
