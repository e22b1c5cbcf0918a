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
