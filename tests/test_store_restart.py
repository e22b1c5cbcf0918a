"""The supervisor restarts a killed auto-start node, and it answers C-ECHO within 10 s."""

from __future__ import annotations

import os
import signal
import time

from lib.dicom import echo
from store.models import State, StoreRuntime
from tests.conftest import wait_for
from tests.store_helpers import drain, make_node


def _running_pid(node_id: int) -> int | None:
    runtime = StoreRuntime.for_node(node_id)
    return runtime.pid if runtime.is_running else None


def test_it_restarts_a_killed_auto_start_node_within_ten_seconds(spawn, tmp_path) -> None:  # type: ignore[no-untyped-def]
    node = make_node(auto_start=True)
    drain(spawn("stores"), tmp_path / "stores.log")
    first = wait_for(lambda: _running_pid(node.pk), timeout=30, interval=0.1)
    assert echo(node.peer()).ok

    os.kill(int(first), signal.SIGKILL)  # type: ignore[call-overload]
    killed_at = time.monotonic()
    wait_for(lambda: echo(node.peer()).ok, timeout=10, interval=0.2)
    assert time.monotonic() - killed_at <= 10

    second = wait_for(lambda: _running_pid(node.pk), timeout=10, interval=0.1)
    assert second != first
    runtime = StoreRuntime.for_node(node)
    assert runtime.restarts == 1
    assert "SIGKILL" in runtime.last_error or runtime.state == State.RUNNING


def test_it_starts_and_stops_a_controlled_node_on_request(spawn, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from store import control

    node = make_node()
    drain(spawn("stores"), tmp_path / "stores.log")
    time.sleep(1.5)  # a pass of the supervisor: a node nobody started stays down
    assert not echo(node.peer()).ok
    control.start(node)
    wait_for(lambda: echo(node.peer()).ok, timeout=15, interval=0.2)
    control.stop(node)
    wait_for(lambda: not echo(node.peer()).ok, timeout=15, interval=0.2)
    wait_for(lambda: StoreRuntime.for_node(node).state == State.STOPPED, timeout=10)


def test_it_restarts_a_node_whose_configuration_changed(spawn, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from tests.conftest import free_port

    node = make_node(auto_start=True)
    drain(spawn("stores"), tmp_path / "stores.log")
    wait_for(lambda: echo(node.peer()).ok, timeout=20, interval=0.2)
    old_port = node.port
    node.port = free_port()
    node.save()
    wait_for(lambda: echo(node.peer()).ok, timeout=20, interval=0.2)
    node.port = old_port
    assert not echo(node.peer()).ok


def test_it_says_why_a_node_cannot_listen_and_starts_once_the_port_is_free(
    spawn, tmp_path  # type: ignore[no-untyped-def]
) -> None:
    import socket

    node = make_node(auto_start=True)
    squatter = socket.socket()
    squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    squatter.bind(("127.0.0.1", node.port))
    squatter.listen(1)
    drain(spawn("stores"), tmp_path / "stores.log")

    def explained() -> bool:
        runtime = StoreRuntime.for_node(node)
        return runtime.state == State.CRASHED and "cannot listen" in runtime.last_error

    wait_for(explained, timeout=30, interval=0.2)
    assert not StoreRuntime.for_node(node).is_running
    squatter.close()
    wait_for(lambda: echo(node.peer()).ok, timeout=40, interval=0.3)
    wait_for(lambda: StoreRuntime.for_node(node).is_running, timeout=10, interval=0.2)
