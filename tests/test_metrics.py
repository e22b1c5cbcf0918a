"""/metrics: Prometheus text that parses, values read from the database and the queues,
loopback-only without an API token (a proxy's forwarded request is not loopback)."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.test import Client, RequestFactory
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from api import tokens
from imports.models import ImportRecord, Outcome, Source
from metrics.views import metrics
from nodes.models import RemoteNode, StoreNode
from qr.models import Move, Query
from store.models import State, StoreRuntime

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_counts() -> None:
    from django.core.cache import cache

    from metrics.collector import IMPORTS_CACHE_KEY

    cache.delete(IMPORTS_CACHE_KEY)


def _scrape(client: Client | None = None) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = (client or Client()).get("/metrics", REMOTE_ADDR="127.0.0.1")
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")
    values = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            values[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return values


def _node(name: str, port: int, **runtime: Any) -> StoreNode:
    node = StoreNode.objects.create(name=name, ae_title=name.upper()[:16], port=port,
                                    bind_address="127.0.0.1", **runtime.pop("node", {}))
    if runtime:
        StoreRuntime.objects.create(node=node, **runtime)
    return node


def test_it_reports_nodes_imports_jobs_and_echoes() -> None:
    now = timezone.now()
    up = _node("ct store", 11301, state=State.RUNNING, last_heartbeat=now, run_requested=True,
               associations_open=2, associations_total=40, associations_rejected=3,
               objects_received=1000, objects_discarded=7, objects_failed=5,
               bytes_received=123456, restarts=1, node={"echo_alive": True, "echo_rtt_ms": 12.5,
                                                        "echo_checked_at": now})
    stale = _node("mg store", 11302, state=State.RUNNING, run_requested=True,
                  last_heartbeat=now - timedelta(minutes=5), associations_open=4)
    never = _node("spare", 11303, node={"auto_start": False})
    remote = RemoteNode.objects.create(name="PACS", ae_title="PACS", host="10.0.0.1", port=104,
                                       echo_alive=False, echo_checked_at=now)
    for outcome, kind, n in ((Outcome.IMPORTED, "ct_rdsr", 3), (Outcome.FAILED, "ct_rdsr", 2),
                             (Outcome.DUPLICATE, "dx_image", 1), (Outcome.FAILED, "", 1)):
        for _ in range(n):
            ImportRecord.objects.create(source=Source.STORE, outcome=outcome, kind=kind)
    query = Query.objects.create(remote=remote, status="complete")
    Query.objects.create(remote=remote, status="running")
    Move.objects.create(query=query, status="queued")

    m = _scrape()

    def v(name: str, **labels: str) -> float:
        return m[(name, tuple(sorted(labels.items())))]

    a, b, c = (dict(node_id=str(n.pk), node=n.name) for n in (up, stale, never))
    assert (v("doseport_store_node_up", **a), v("doseport_store_node_up", **b),
            v("doseport_store_node_up", **c)) == (1, 0, 0)
    assert v("doseport_store_node_should_run", **c) == 0
    assert v("doseport_store_associations_open", **a) == 2
    assert v("doseport_store_associations_open", **b) == 0  # not running: nothing open
    assert v("doseport_store_associations_total", **a) == 40
    assert v("doseport_store_associations_rejected_total", **a) == 3
    assert v("doseport_store_objects_total", **a, result="stored") == 1000
    assert v("doseport_store_objects_total", **a, result="failed") == 5
    assert v("doseport_store_received_bytes_total", **a) == 123456
    assert v("doseport_store_heartbeat_age_seconds", **b) >= 299
    assert v("doseport_echo_up", kind="store", **a) == 1
    assert v("doseport_echo_rtt_seconds", kind="store", **a) == pytest.approx(0.0125)
    assert v("doseport_echo_up", kind="remote", node_id=str(remote.pk), node="PACS") == 0
    assert ("doseport_echo_up", tuple(sorted(dict(kind="store", **c).items()))) not in m
    assert v("doseport_imports_total", outcome="imported", kind="ct_rdsr") == 3
    assert v("doseport_imports_total", outcome="failed", kind="ct_rdsr") == 2
    assert v("doseport_imports_total", outcome="failed", kind="unknown") == 1
    assert v("doseport_qr_jobs", job="query", status="running") == 1
    assert v("doseport_qr_jobs", job="retrieve", status="queued") == 1
    assert v("doseport_qr_jobs", job="retrieve", status="failed") == 0
    assert v("doseport_import_queue_tasks") == 0 and v("doseport_import_queue_oldest_seconds") == 0
    assert all(value == 0 for (name, _), value in m.items()
               if name == "doseport_metrics_section_failed")


def test_it_reports_the_import_queue_and_the_oldest_waiting_object(tmp_path: Path) -> None:
    from huey.contrib.djhuey import HUEY

    from imports.tasks import import_files_task
    from metrics.collector import _import_queue

    node = _node("ct store", 11304)
    old, new = tmp_path / "old.dcm", tmp_path / "new.dcm"
    for path in (old, new):
        path.write_bytes(b"x")
    ten_min = time.time() - 600
    import os

    os.utime(old, (ten_min, ten_min))
    # Not immediate first: in immediate mode Huey swaps in memory storage, and flush()
    # would empty that instead of the real queue.
    HUEY.immediate = False
    queue = _import_queue()
    queue.flush()
    try:
        import_files_task([str(old), str(new)], "store", node.pk)
        import_files_task([str(new)], "store", node.pk)
        m = _scrape()
        pending = [(t.name, t.args) for t in queue.pending()]
    finally:
        queue.flush()
        HUEY.immediate = True
    assert m[("doseport_import_queue_tasks", ())] == 2, pending
    assert m[("doseport_import_queue_objects", ())] == 3
    assert m[("doseport_spool_backlog_objects", (("node_id", str(node.pk)),))] == 3
    assert 599 <= m[("doseport_import_queue_oldest_seconds", ())] < 700


def test_it_refuses_other_addresses_without_a_token(viewer: Any) -> None:
    factory = RequestFactory()
    outside = factory.get("/metrics", REMOTE_ADDR="10.20.30.40")
    assert metrics(outside).status_code == 403
    proxied = factory.get("/metrics", REMOTE_ADDR="127.0.0.1",
                          HTTP_X_FORWARDED_FOR="203.0.113.9")
    assert metrics(proxied).status_code == 403
    assert metrics(factory.get("/metrics", REMOTE_ADDR="::1")).status_code == 200
    key = tokens.create(viewer, "prometheus").key
    with_token = factory.get("/metrics", REMOTE_ADDR="10.20.30.40",
                             HTTP_AUTHORIZATION=f"Token {key}")
    assert metrics(with_token).status_code == 200
    wrong = factory.get("/metrics", REMOTE_ADDR="127.0.0.1",
                        HTTP_AUTHORIZATION="Token dp_wrong")
    assert metrics(wrong).status_code == 403
    # Through the whole middleware stack too (no login redirect, no CSRF for GET).
    assert Client().get("/metrics", REMOTE_ADDR="10.20.30.40").status_code == 403


def test_it_can_be_closed_to_loopback(settings: Any) -> None:
    settings.METRICS_LOOPBACK = False
    assert Client().get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 403
