"""`doseport store start|stop|status NODE_ID`: requests, refusals, exit codes."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from store.models import State, StoreRuntime
from tests.store_helpers import make_node

pytestmark = pytest.mark.django_db


def _status(node_id: int) -> tuple[int, str]:
    out = StringIO()
    try:
        call_command("store", "status", str(node_id), stdout=out)
    except SystemExit as exc:
        return int(exc.code or 0), out.getvalue()
    return 0, out.getvalue()


def test_it_exits_1_for_a_stopped_node_and_0_for_a_running_one() -> None:
    node = make_node()
    code, text = _status(node.pk)
    assert code == 1 and "state: stopped" in text
    StoreRuntime.objects.filter(node=node).update(
        state=State.RUNNING, pid=4242, started_at=timezone.now(),
        last_heartbeat=timezone.now(), objects_received=12, bytes_received=3456,
    )
    code, text = _status(node.pk)
    assert code == 0
    for line in ("state: running", "pid: 4242", "objects received: 12", "bytes received: 3456"):
        assert line in text


def test_it_reports_a_stale_heartbeat_as_not_running() -> None:
    node = make_node()
    StoreRuntime.for_node(node)
    StoreRuntime.objects.filter(node=node).update(
        state=State.RUNNING, last_heartbeat=timezone.now() - timedelta(minutes=5)
    )
    code, text = _status(node.pk)
    assert code == 1 and "state: not responding" in text


def test_it_records_start_and_stop_requests_and_says_when_no_supervisor_acts() -> None:
    node = make_node()
    with pytest.raises(CommandError, match="no store supervisor is running"):
        call_command("store", "start", str(node.pk), "--wait", "0.3", stdout=StringIO())
    assert StoreRuntime.for_node(node).run_requested
    out = StringIO()
    call_command("store", "stop", str(node.pk), "--wait", "0.3", stdout=out)
    assert "stop requested" in out.getvalue() and "state: stopped" in out.getvalue()
    assert not StoreRuntime.for_node(node).run_requested


def test_it_refuses_third_party_nodes_and_unknown_ids() -> None:
    third = make_node(name="orthanc", controlled=False)
    for action in ("start", "run"):
        with pytest.raises(CommandError, match="third-party"):
            call_command("store", action, str(third.pk), stdout=StringIO())
    with pytest.raises(CommandError, match="no store node"):
        call_command("store", "status", "99999", stdout=StringIO())
