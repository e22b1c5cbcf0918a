"""What /metrics reports, read at each scrape from the database, the task queues and this
server's quarantine, so that it is right with any number of processes (no in-process
counters: a store node, a worker and the web server each see the same numbers).

prometheus_client does the text format (escaping, types, HELP); one custom collector
yields the families, each from one query (GROUP BY where there is more than one row).
"""

from __future__ import annotations

import logging
import os
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

from django.core.cache import cache
from django.db.models import Count
from django.utils import timezone
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from imports.models import ImportRecord
from nodes.models import RemoteNode, StoreNode
from store import control
from store.models import StoreRuntime

logger = logging.getLogger(__name__)

NODE = ["node_id", "node"]
# Import tasks read per scrape to count waiting objects per node (and find the oldest).
QUEUE_SCAN_LIMIT = 5000
OLDEST_SCAN_TASKS = 20
IMPORTS_CACHE_KEY = "doseport.metrics.imports"
IMPORTS_CACHE_S = 30


def _gauge(name: str, doc: str, labels: list[str] | None = None) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, labels=labels or [])


def _counter(name: str, doc: str, labels: list[str] | None = None) -> CounterMetricFamily:
    return CounterMetricFamily(name, doc, labels=labels or [])


def store_nodes() -> Iterator[Metric]:
    up = _gauge("doseport_store_node_up",
                "1 when the node's process is listening with a fresh heartbeat.", NODE)
    wanted = _gauge("doseport_store_node_should_run",
                    "1 when the node should run (started, or auto-start and not stopped).", NODE)
    open_ = _gauge("doseport_store_associations_open", "Associations open now.", NODE)
    assocs = _counter("doseport_store_associations", "Associations accepted since the "
                      "node process started.", NODE)
    rejected = _counter("doseport_store_associations_rejected", "Associations rejected "
                        "since the node process started.", NODE)
    objects = _counter(
        "doseport_store_objects", "C-STORE requests since the node process started, by "
        "result: stored (answered Success, spooled), discarded (Success, deleted by the "
        "delete settings), failed (answered a failure status).", [*NODE, "result"])
    size = _counter("doseport_store_received_bytes", "Bytes of objects stored since the "
                    "node process started.", NODE)
    restarts = _counter("doseport_store_restarts", "Restarts by the supervisor.", NODE)
    heartbeat = _gauge("doseport_store_heartbeat_age_seconds",
                       "Seconds since the node process last wrote its heartbeat.", NODE)
    now = timezone.now()
    for node in StoreNode.objects.filter(controlled=True).select_related("runtime"):
        runtime: StoreRuntime | None = getattr(node, "runtime", None)
        labels = [str(node.pk), node.name]
        wanted.add_metric(labels, float(control.should_run(node, runtime)))
        if runtime is None:
            up.add_metric(labels, 0.0)
            continue
        up.add_metric(labels, float(runtime.is_running))
        open_.add_metric(labels, float(runtime.associations_open if runtime.is_running else 0))
        assocs.add_metric(labels, float(runtime.associations_total))
        rejected.add_metric(labels, float(runtime.associations_rejected))
        objects.add_metric([*labels, "stored"], float(runtime.objects_received))
        objects.add_metric([*labels, "discarded"], float(runtime.objects_discarded))
        objects.add_metric([*labels, "failed"], float(runtime.objects_failed))
        size.add_metric(labels, float(runtime.bytes_received))
        restarts.add_metric(labels, float(runtime.restarts))
        if runtime.last_heartbeat is not None:
            heartbeat.add_metric(labels, (now - runtime.last_heartbeat).total_seconds())
    yield from (up, wanted, open_, assocs, rejected, objects, size, restarts, heartbeat)


def echoes() -> Iterator[Metric]:
    labels = ["kind", *NODE]
    alive = _gauge("doseport_echo_up", "Last C-ECHO of the node: 1 answered, 0 not "
                   "(absent before the first check).", labels)
    rtt = _gauge("doseport_echo_rtt_seconds", "Round-trip time of the last answered C-ECHO "
                 "(association, echo, release).", labels)
    age = _gauge("doseport_echo_age_seconds", "Seconds since the node was last echoed.", labels)
    now = timezone.now()
    for kind, model in (("store", StoreNode), ("remote", RemoteNode)):
        rows = model.objects.values_list(
            "pk", "name", "echo_alive", "echo_rtt_ms", "echo_checked_at")
        for pk, name, ok, rtt_ms, checked in rows:
            key = [kind, str(pk), name]
            if ok is not None:
                alive.add_metric(key, float(ok))
            if ok and rtt_ms is not None:
                rtt.add_metric(key, rtt_ms / 1000)
            if checked is not None:
                age.add_metric(key, (now - checked).total_seconds())
    yield from (alive, rtt, age)


def _import_counts() -> list[tuple[str, str, int]]:
    """Records by outcome and kind: a scan of the whole table (~1 s per million rows on
    SQLite), so kept IMPORTS_CACHE_S whatever the number of scrapers."""
    found = cache.get(IMPORTS_CACHE_KEY)
    if isinstance(found, list):
        return found
    rows = ImportRecord.objects.order_by().values_list("outcome", "kind").annotate(n=Count("id"))
    found = [(outcome, kind, n) for outcome, kind, n in rows]
    cache.set(IMPORTS_CACHE_KEY, found, IMPORTS_CACHE_S)
    return found


def imports() -> Iterator[Metric]:
    total = _counter("doseport_imports", "Import records by outcome and kind of object "
                     f"(at most {IMPORTS_CACHE_S} s old).", ["outcome", "kind"])
    for outcome, kind, n in _import_counts():
        total.add_metric([outcome, kind or "unknown"], float(n))
    yield total


def qr_jobs() -> Iterator[Metric]:
    from qr.models import Move, Query, Status

    jobs = _gauge("doseport_qr_jobs", "Query and retrieve jobs by status.", ["job", "status"])
    for job, model in (("query", Query), ("retrieve", Move)):
        counts = dict(model.objects.order_by().values_list("status").annotate(n=Count("id")))
        for status in Status.values:
            jobs.add_metric([job, status], float(counts.get(status, 0)))
    yield jobs


def _import_queue() -> Any:
    """This server's import queue (doseport/queue.py), or the shared queue before it."""
    from huey.contrib.djhuey import HUEY

    from doseport import queue

    imports_huey = getattr(queue, "imports_huey", None)
    return imports_huey(None).huey if imports_huey is not None else HUEY


def _task_paths(task: Any) -> tuple[list[str], int | None]:
    """(paths, store node id) of an import task; anything else gives ([], None)."""
    args = list(getattr(task, "args", ()) or ())
    kwargs = getattr(task, "kwargs", {}) or {}
    first = args[0] if args else kwargs.get("path") or kwargs.get("paths")
    node = args[2] if len(args) > 2 else kwargs.get("store_node_id")
    if isinstance(first, str):
        paths = [first]
    elif isinstance(first, list | tuple):
        paths = [p for p in first if isinstance(p, str)]
    else:
        paths = []
    return paths, node if isinstance(node, int) else None


def import_queue() -> Iterator[Metric]:
    huey = _import_queue()
    depth = _gauge("doseport_import_queue_tasks", "Import tasks waiting on this server's "
                   "import queue.")
    objects = _gauge("doseport_import_queue_objects", "Received objects waiting for import on "
                     f"this server (read from the first {QUEUE_SCAN_LIMIT} queued tasks).")
    backlog = _gauge("doseport_spool_backlog_objects", "Objects of the node waiting in this "
                     "server's spool for import (from the same tasks).", ["node_id"])
    oldest = _gauge("doseport_import_queue_oldest_seconds", "Age of the oldest object waiting "
                    "for import (since it was spooled); 0 when none waits.")
    count = huey.pending_count()
    depth.add_metric([], float(count))
    tasks = huey.pending(limit=QUEUE_SCAN_LIMIT) if count else []
    per_node: Counter[int] = Counter()
    waiting = 0
    first_paths: list[str] = []
    for task in tasks:
        paths, node = _task_paths(task)
        waiting += len(paths)
        if node is not None:
            per_node[node] += len(paths)
        if paths and len(first_paths) < OLDEST_SCAN_TASKS:
            first_paths.append(paths[0])
    objects.add_metric([], float(waiting))
    for node, n in sorted(per_node.items()):
        backlog.add_metric([str(node)], float(n))
    oldest.add_metric([], _oldest_age(first_paths))
    shared = _gauge("doseport_task_queue_tasks", "Tasks waiting on the shared queue "
                    "(queries, retrieves, echoes, exports).")
    from huey.contrib.djhuey import HUEY

    shared.add_metric([], float(HUEY.pending_count()) if HUEY is not huey else float(count))
    yield from (depth, objects, backlog, oldest, shared)


def _oldest_age(paths: list[str]) -> float:
    times = []
    for path in paths:
        try:
            times.append(os.stat(path).st_mtime)
        except OSError:
            continue  # imported (and deleted) meanwhile
    return max(0.0, time.time() - min(times)) if times else 0.0


def quarantine() -> Iterator[Metric]:
    from imports.quarantine import cached_summary

    found = cached_summary()
    count = _gauge("doseport_quarantine_objects", "Objects in this server's quarantine.")
    count.add_metric([], float(found.count))
    size = _gauge("doseport_quarantine_bytes", "Bytes in this server's quarantine.")
    size.add_metric([], float(found.size))
    yield from (count, size)


SECTIONS = (store_nodes, echoes, imports, qr_jobs, import_queue, quarantine)


class DoseportCollector(Collector):
    def collect(self) -> Iterator[Metric]:
        started = time.perf_counter()
        failed = _gauge("doseport_metrics_section_failed",
                        "1 when a section of these metrics could not be read.", ["section"])
        for section in SECTIONS:
            try:
                yield from list(section())
                failed.add_metric([section.__name__], 0.0)
            except Exception:  # one unreadable source must not hide the others
                logger.exception("metrics: %s could not be read", section.__name__)
                failed.add_metric([section.__name__], 1.0)
        yield failed
        took = _gauge("doseport_metrics_scrape_seconds", "Time taken to read these metrics.")
        took.add_metric([], time.perf_counter() - started)
        yield took


def render() -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(DoseportCollector())
    return generate_latest(registry)
