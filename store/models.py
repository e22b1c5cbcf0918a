"""Runtime state of store nodes: what the supervisor and the node process report.

The node process writes its heartbeat and counters; the supervisor writes the state it
decided (running, stopped, crashed-restarting) and why. The page and `doseport store
status` only read this row, so what they show is what the processes last said.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import models
from django.utils import timezone

from nodes.models import StoreNode

# A node whose heartbeat is older than this is not shown as running, whatever its state.
HEARTBEAT_S = 1.0
STALE_AFTER_S = 10.0


class State(models.TextChoices):
    STOPPED = "stopped", "stopped"
    STARTING = "starting", "starting"
    RUNNING = "running", "running"
    CRASHED = "crashed", "crashed, restarting"


class StoreRuntime(models.Model):
    node = models.OneToOneField(StoreNode, on_delete=models.CASCADE, related_name="runtime")
    run_requested = models.BooleanField(
        default=False, help_text="A user started this controlled node (and has not stopped it)."
    )
    state = models.CharField(max_length=16, choices=State.choices, default=State.STOPPED)
    pid = models.IntegerField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    last_heartbeat = models.DateTimeField(null=True, blank=True)
    supervised_at = models.DateTimeField(
        null=True, blank=True, help_text="last time a supervisor looked at this node"
    )
    restarts = models.PositiveIntegerField(default=0)
    associations_open = models.PositiveIntegerField(default=0)
    associations_total = models.PositiveBigIntegerField(default=0)
    associations_rejected = models.PositiveBigIntegerField(default=0)
    objects_received = models.PositiveBigIntegerField(default=0)
    objects_discarded = models.PositiveBigIntegerField(default=0)
    objects_failed = models.PositiveBigIntegerField(default=0)
    bytes_received = models.PositiveBigIntegerField(default=0)
    last_object_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")
    last_error_at = models.DateTimeField(null=True, blank=True)
    stopped_by = models.CharField(max_length=150, blank=True, default="")
    stopped_at = models.DateTimeField(null=True, blank=True)
    server_name = models.CharField(
        max_length=64, blank=True, default="",
        help_text="server whose supervisor last wrote this row",
    )

    def __str__(self) -> str:
        return f"{self.node_id} {self.state}"

    @classmethod
    def for_node(cls, node: StoreNode | int) -> StoreRuntime:
        node_id = node if isinstance(node, int) else node.pk
        runtime, _ = cls.objects.get_or_create(node_id=node_id)
        return runtime

    def heartbeat_fresh(self, now: datetime | None = None) -> bool:
        if self.last_heartbeat is None:
            return False
        now = now or timezone.now()
        return now - self.last_heartbeat <= timedelta(seconds=STALE_AFTER_S)

    @property
    def is_running(self) -> bool:
        """Honest: running only while the process keeps its heartbeat fresh."""
        return self.state == State.RUNNING and self.heartbeat_fresh()

    @property
    def shown_state(self) -> str:
        if self.is_running:
            return State.RUNNING
        if self.state == State.RUNNING:
            return "not responding"
        return str(self.state)

    @property
    def uptime(self) -> timedelta | None:
        if not self.is_running or self.started_at is None:
            return None
        return timezone.now() - self.started_at

    @property
    def supervisor_alive(self) -> bool:
        if self.supervised_at is None:
            return False
        return timezone.now() - self.supervised_at <= timedelta(seconds=STALE_AFTER_S)

    def record_error(self, message: str) -> None:
        self.last_error = message[:2000]
        self.last_error_at = timezone.now()
