"""Node controls that say what they do: Stop holds over auto-start, who stopped a node and
when, the states a panel shows, no echo of a stopped node, the holder of a taken port,
and the question before unticking auto-start (issue 15, item 4)."""

from __future__ import annotations

import getpass
import os
import socket
from collections.abc import Iterator
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django.utils import timezone

from lib import ports
from lib.dicom import EchoResult
from nodes.models import StoreNode
from nodes.tasks import echo_due_nodes_task, echo_node_task
from store import control
from store.models import State, StoreRuntime
from store.supervisor import StoreSupervisor
from tests.store_helpers import make_node

pytestmark = pytest.mark.django_db


@pytest.fixture
def held_port() -> Iterator[int]:
    """A plain Python socket listening on a loopback port: "another program"."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        yield sock.getsockname()[1]


def test_it_names_the_program_that_holds_a_port(held_port: int) -> None:
    holder = ports.holder_of(held_port)
    assert holder is not None and f"(pid {os.getpid()})" in holder
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        unused = free.getsockname()[1]  # bound, not listening
    assert ports.holder_of(unused) is None
    assert ports.holder_of(0) is None and ports.holder_of(70000) is None


def test_it_says_the_port_is_in_use_when_a_node_cannot_listen(held_port: int) -> None:
    node = make_node(port=held_port)
    with pytest.raises(SystemExit):
        control.run_foreground(node)
    runtime = StoreRuntime.for_node(node)
    assert runtime.state == State.CRASHED
    assert f"port {held_port} is in use by another program: " in runtime.last_error
    assert f"pid {os.getpid()}" in runtime.last_error
    shown = control.shown(node, runtime)
    assert shown.label == "Stopped"  # nobody asked it to run
    control.start(node)
    shown = control.shown(node, StoreRuntime.for_node(node))
    assert shown.label == "Crashed" and f"port {held_port} is in use" in shown.detail


def test_it_keeps_an_auto_start_node_stopped_until_started() -> None:
    node = make_node(auto_start=True)
    assert set(StoreSupervisor().wanted()) == {node.pk}
    control.stop(node, by="alice")
    runtime = StoreRuntime.for_node(node)
    assert (runtime.stopped_by, runtime.run_requested) == ("alice", False)
    assert StoreSupervisor().wanted() == {}
    shown = control.shown(node, runtime)
    assert shown.label == "Stopped" and shown.tone == "stopped"
    assert shown.detail.startswith("stopped by alice at ")
    control.start(node)
    assert set(StoreSupervisor().wanted()) == {node.pk}


def test_it_records_the_os_user_when_stopped_from_the_command_line() -> None:
    node = make_node()
    control.start(node)
    with pytest.raises(CommandError, match="no store supervisor"):
        call_command("store", "stop", str(node.pk), "--wait", "0", stdout=StringIO())
    assert StoreRuntime.for_node(node).stopped_by == f"{getpass.getuser()} (command line)"


@pytest.mark.parametrize(
    ("state", "heartbeat_s", "error", "label"),
    [
        (State.STARTING, None, "", "Starting"),
        (State.RUNNING, 0, "", "Listening"),
        (State.RUNNING, 120, "", "Not responding"),
        (State.CRASHED, None, "node process killed by signal SIGKILL; restarting at once",
         "Restarting"),
        (State.CRASHED, None, "node process exited with code 2; it never became ready "
         "(3 failed starts in a row); backing off, next start in 4.0 s: port 1 is in use",
         "Crashed"),
        (State.STOPPED, None, "", "Starting"),  # wanted, the supervisor has not acted yet
    ],
)
def test_it_shows_each_state_of_a_node_that_should_run(
    state: str, heartbeat_s: int | None, error: str, label: str
) -> None:
    node = make_node()
    runtime = StoreRuntime.objects.create(
        node=node, run_requested=True, state=state, last_error=error,
        last_heartbeat=None if heartbeat_s is None else timezone.now() - timedelta(
            seconds=heartbeat_s),
    )
    assert control.shown(node, runtime).label == label


def test_it_does_not_echo_a_stopped_or_starting_node_and_clears_alive() -> None:
    node = make_node(auto_start=True)
    node.record_echo(EchoResult(True, rtt_ms=1.0, status=0))
    StoreRuntime.objects.create(node=node, state=State.STARTING)
    node.request_echo()
    assert echo_node_task.call_local("store", node.pk) is None  # no C-ECHO while starting
    node.refresh_from_db()
    assert node.echo_alive is None and node.echo_reason == "starting"
    assert not node.echo_pending
    control.stop(node, by="alice")
    node.refresh_from_db()
    assert node.echo_alive is None
    StoreNode.objects.filter(pk=node.pk).update(echo_checked_at=None)
    assert echo_due_nodes_task.call_local() == 0


def test_it_asks_before_unticking_auto_start_of_a_running_node(admin_client: Client) -> None:
    node = make_node(auto_start=True)
    form = {
        "name": node.name, "ae_title": node.ae_title, "port": str(node.port),
        "bind_address": "127.0.0.1", "controlled": "on", "allowed_calling_aets": "",
        "host": "",
    }
    url = f"/config/dicom/store/{node.pk}/edit/"
    page = admin_client.post(url, form).content.decode()
    assert "Untick auto-start of" in page and 'name="untick" value="stop"' in page
    assert f'name="port" value="{node.port}"' in page
    node.refresh_from_db()
    assert node.auto_start  # nothing saved yet
    assert admin_client.post(url, {**form, "untick": "keep"}).status_code == 302
    node.refresh_from_db()
    runtime = StoreRuntime.for_node(node)
    assert not node.auto_start and control.should_run(node, runtime)
    # Running by hand now: unticking again has nothing to ask. Tick and untick + stop.
    admin_client.post(url, {**form, "auto_start": "on"})
    control.stop(node, by="x")
    StoreRuntime.objects.filter(node=node).update(stopped_at=None, stopped_by="")
    page = admin_client.post(url, form).content.decode()
    assert "Untick auto-start of" in page
    admin_client.post(url, {**form, "untick": "stop"})
    runtime = StoreRuntime.for_node(node)
    assert runtime.stopped_by == "boss" and not control.should_run(node, runtime)


def test_it_starts_a_stopped_node_when_auto_start_is_ticked(admin_client: Client) -> None:
    node = make_node(auto_start=True)
    control.stop(node, by="alice")
    form = {
        "name": node.name, "ae_title": node.ae_title, "port": str(node.port),
        "bind_address": "127.0.0.1", "controlled": "on", "allowed_calling_aets": "",
        "host": "",
    }
    url = f"/config/dicom/store/{node.pk}/edit/"
    admin_client.post(url, form)  # untick: it is stopped, nothing to ask
    node.refresh_from_db()
    assert not node.auto_start
    admin_client.post(url, {**form, "auto_start": "on"})
    node.refresh_from_db()
    assert control.should_run(node, StoreRuntime.for_node(node))


def test_the_home_page_shows_a_stopped_node_as_stopped(admin_client: Client) -> None:
    node = make_node(auto_start=True)
    node.record_echo(EchoResult(False, reason="connection refused by 127.0.0.1"))
    control.stop(node, by="alice")
    row = admin_client.get("/").content.decode().split(f'id="home-store-{node.pk}"')[1]
    row = row.split("</tr>")[0]
    assert ">Stopped<" in row and "Not responding" not in row


def test_store_status_says_who_stopped_the_node() -> None:
    node = make_node(auto_start=True)
    control.stop(node, by="alice")
    out = StringIO()
    with pytest.raises(SystemExit):
        call_command("store", "status", str(node.pk), stdout=out)
    text = out.getvalue()
    assert "should run: False" in text and "status: Stopped (stopped by alice at " in text
    assert "stopped by: alice at " in text
