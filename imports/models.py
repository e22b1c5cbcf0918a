"""ImportRecord: one row for every object Doseport has seen, whatever became of it."""

from __future__ import annotations

from django.db import models


class Source(models.TextChoices):
    STORE = "store", "store node"
    QUERY = "query", "query-retrieve"
    FILE = "file", "file import"


class Outcome(models.TextChoices):
    PENDING = "pending", "pending"
    IMPORTED = "imported", "imported"
    DUPLICATE = "duplicate", "duplicate"
    NOT_IMPORTABLE = "not_importable", "not importable"
    FAILED = "failed", "failed"


class RetryState(models.TextChoices):
    """A failed record's retry, claimed by one conditional UPDATE at each step
    (imports/views.retry, imports/tasks.retry_import_task): a double click, two people or
    a task delivered twice retry the file once."""

    NONE = "", "not retried"
    QUEUED = "queued", "retry queued"
    STARTED = "started", "retry started"


class ImportRecord(models.Model):
    sop_instance_uid = models.CharField(max_length=64, db_index=True, blank=True, default="")
    sop_class_uid = models.CharField(max_length=64, blank=True, default="")
    study_instance_uid = models.CharField(max_length=64, blank=True, default="", db_index=True)
    kind = models.CharField(max_length=32, blank=True, default="")
    source = models.CharField(max_length=8, choices=Source.choices)
    store_node = models.ForeignKey(
        "nodes.StoreNode", null=True, blank=True, on_delete=models.SET_NULL
    )
    path = models.CharField(
        max_length=1024, blank=True, default="", help_text="where the file was read from"
    )
    kept_path = models.CharField(
        max_length=1024, blank=True, default="", help_text="where the file is now (empty = deleted)"
    )
    outcome = models.CharField(max_length=16, choices=Outcome.choices, default=Outcome.PENDING)
    error = models.TextField(blank=True, default="")
    received_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    duration_ms = models.FloatField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    retry_state = models.CharField(
        max_length=8, choices=RetryState.choices, blank=True, default=RetryState.NONE
    )

    class Meta:
        ordering = ["-created_at"]
        # The Imports list reads each filter newest first (created_at, id descending):
        # a backward scan of these indexes, never a sort of the whole table. The other two
        # filter columns at their end let a combination of filters be counted from the
        # index alone (outcome + kind + node + dates at 1,000,000 records read ~200,000
        # rows of the table: 0.2-0.4 s on PostgreSQL).
        indexes = [
            models.Index(fields=["outcome", "created_at", "id", "kind", "store_node"],
                         name="imports_outcome_idx"),
            models.Index(fields=["kind", "created_at", "id", "outcome", "store_node"],
                         name="imports_kind_idx"),
            models.Index(fields=["store_node", "created_at", "id", "outcome", "kind"],
                         name="imports_node_idx"),
            # Covers the ids of a deep page of non-failed records (outcome read from the index).
            models.Index(fields=["created_at", "id", "outcome"], name="imports_newest_idx"),
            # The latest retry of the page's kept files (path = kept_path).
            models.Index(fields=["path"], name="imports_path_idx"),
            # Failures first counts the failed records of a kind or node from an index alone
            # (at 1,000,000 records: a read of every row of that kind, 300 ms).
            # Outcome first: a kind's or node's newest-first list still reads its own index.
            models.Index(fields=["outcome", "kind"], name="imports_outcome_kind_idx"),
            models.Index(fields=["outcome", "store_node"], name="imports_outcome_node_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.sop_instance_uid or self.path} {self.outcome}"
