"""supervise_once(): which nodes run, restart with backoff, stop on stop/change/delete."""

from __future__ import annotations

import subprocess
import time

import pytest

from store.models import State, StoreRuntime
from store.supervisor import NodeChild, StoreSupervisor
from tests.store_helpers import make_node

pytestmark = pytest.mark.django_db


@pytest.fixture
def fake_children(monkeypatch):  # type: ignore[no-untyped-def]
    """Children are `sleep` processes: this tests the decisions, not the node."""
    started: list[NodeChild] = []

    def start(self: NodeChild) -> None:
        self.proc = subprocess.Popen(["sleep", "60"])
        self.started_at = time.monotonic()
        started.append(self)

    monkeypatch.setattr(NodeChild, "start", start)
    yield started
    for child in started:
        if child.proc is not None and child.proc.poll() is None:
            child.proc.kill()
            child.proc.wait()


def test_it_runs_auto_start_and_user_started_nodes_only(fake_children) -> None:  # type: ignore[no-untyped-def]
    auto = make_node(name="auto", auto_start=True)
    manual = make_node(name="manual")
    make_node(name="third-party", controlled=False, auto_start=True)
    supervisor = StoreSupervisor()
    assert supervisor.supervise_once()
    assert set(supervisor.children) == {auto.pk}
    runtime = StoreRuntime.for_node(manual)
    runtime.run_requested = True
    runtime.save()
    supervisor.supervise_once()
    assert set(supervisor.children) == {auto.pk, manual.pk}
    assert not supervisor.supervise_once()  # nothing to do
    supervisor.stop_all()


def test_it_restarts_a_dead_child_within_a_second_then_backs_off(fake_children) -> None:  # type: ignore[no-untyped-def]
    node = make_node(auto_start=True)
    supervisor = StoreSupervisor()
    supervisor.supervise_once()
    child = supervisor.children[node.pk]
    assert child.proc is not None
    child.proc.kill()
    child.proc.wait()
    assert supervisor.supervise_once()  # notices the death
    runtime = StoreRuntime.for_node(node)
    assert runtime.state == State.CRASHED and runtime.restarts == 1
    assert "SIGKILL" in runtime.last_error
    deadline = time.monotonic() + 5
    while child.proc is None and time.monotonic() < deadline:
        supervisor.supervise_once()
        time.sleep(0.05)
    assert child.proc is not None and child.proc.poll() is None
    assert len(fake_children) == 2
    child.proc.kill()
    child.proc.wait()
    supervisor.supervise_once()
    assert child.next_start - time.monotonic() > 0.5  # second failure waits longer
    supervisor.stop_all()


def test_it_stops_children_of_stopped_changed_or_deleted_nodes(fake_children) -> None:  # type: ignore[no-untyped-def]
    node = make_node(auto_start=True)
    supervisor = StoreSupervisor()
    supervisor.supervise_once()
    first = supervisor.children[node.pk].proc
    node.name = "renamed"  # not part of what the process runs with
    node.save()
    supervisor.supervise_once()
    assert supervisor.children[node.pk].proc is first
    node.ae_title = "CHANGED"
    node.save()
    supervisor.supervise_once()
    supervisor.supervise_once()
    assert first is not None and first.poll() is not None  # old config stopped
    assert supervisor.children[node.pk].proc is not first  # new config started
    node.auto_start = False
    node.save()
    supervisor.supervise_once()
    assert node.pk not in supervisor.children
    assert StoreRuntime.for_node(node).state == State.STOPPED
    node.auto_start = True
    node.save()
    supervisor.supervise_once()
    proc = supervisor.children[node.pk].proc
    node.delete()
    supervisor.supervise_once()
    assert supervisor.children == {} and proc is not None and proc.poll() is not None


def test_it_runs_only_this_servers_nodes_and_claims_unassigned_ones(  # type: ignore[no-untyped-def]
    fake_children, settings
) -> None:
    from nodes.models import StoreNode

    here = make_node(name="here", auto_start=True)
    elsewhere = make_node(name="elsewhere", auto_start=True, runs_on="another-server")
    legacy = make_node(name="legacy", auto_start=True)
    StoreNode.objects.filter(pk=legacy.pk).update(runs_on="")  # made before servers had names
    assert here.runs_on == settings.SERVER_NAME  # filled at creation
    supervisor = StoreSupervisor()
    supervisor.supervise_once()
    assert set(supervisor.children) == {here.pk, legacy.pk}
    legacy.refresh_from_db()
    assert legacy.runs_on == settings.SERVER_NAME  # claimed, once, by this server
    runtime = StoreRuntime.for_node(here)
    assert runtime.state == State.STARTING  # written before the child is ready
    assert runtime.server_name == settings.SERVER_NAME
    assert StoreRuntime.objects.filter(node=elsewhere).first() is None  # never touched
    # Moved to another server: this one stops it and says "stopped".
    StoreNode.objects.filter(pk=here.pk).update(runs_on="another-server")
    supervisor.supervise_once()
    assert set(supervisor.children) == {legacy.pk}
    assert StoreRuntime.for_node(here).state == State.STOPPED
    supervisor.stop_all()


def test_it_keeps_the_reason_first_and_says_stopped_once_stopped(fake_children) -> None:  # type: ignore[no-untyped-def]
    from django.utils import timezone

    from store.supervisor import mark_stopped

    node = make_node(auto_start=True)
    supervisor = StoreSupervisor()
    supervisor.supervise_once()
    child = supervisor.children[node.pk]
    StoreRuntime.objects.filter(node=node).update(
        last_error=f"port {node.port} is in use by another program: orthanc (pid 812)",
        last_error_at=timezone.now(),
    )
    assert child.proc is not None
    child.proc.kill()  # before it was ready: a failed start
    child.proc.wait()
    supervisor.supervise_once()
    runtime = StoreRuntime.for_node(node)
    assert runtime.state == State.CRASHED
    assert runtime.last_error.startswith(f"port {node.port} is in use by another program")
    assert "backing off, next start in" in runtime.last_error
    mark_stopped(node.pk)
    runtime = StoreRuntime.for_node(node)
    assert runtime.state == State.STOPPED
    assert "next start" not in runtime.last_error and "stopped on request" in runtime.last_error
    supervisor.stop_all()
