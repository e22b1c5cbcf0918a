"""AuditEntry: one row per change someone made, from the web or the command line."""

from __future__ import annotations

import json

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.utils import timezone


class Source(models.TextChoices):
    WEB = "web", "web"
    CLI = "cli", "command line"


# The actions Doseport records, for the page's filter and the docs. record() takes any code
# ("<what>.<verb>"), so an app can add one without a migration.
ACTIONS: dict[str, str] = {
    "node.add": "node added",
    "node.edit": "node changed",
    "node.delete": "node deleted",
    "node.start": "store node started",
    "node.stop": "store node stopped",
    "node.probe": "remote node probed",
    "delete_settings.edit": "delete settings changed",
    "user.add": "user added",
    "user.role": "user role changed",
    "user.disable": "user disabled",
    "user.enable": "user enabled",
    "user.password": "user password set or reset",
    "user.unlock": "user login unlocked",
    "query.run": "query started",
    "query.delete": "queries deleted",
    "retrieve.run": "retrieve started",
    "import.retry": "import retried",
    "study.delete": "study deleted",
    "export.run": "studies exported",
    "export.download": "export downloaded",
    "token.add": "API token created",
    "token.revoke": "API token revoked",
}


class AuditEntry(models.Model):
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
        related_name="+",
    )
    username = models.CharField(
        max_length=150, blank=True, default="",
        help_text="kept when the user is deleted; the OS user for the command line",
    )
    address = models.CharField(
        max_length=64, blank=True, default="",
        help_text="client IP address (web) or host name (command line)",
    )
    action = models.CharField(max_length=40)
    target = models.CharField(max_length=255, blank=True, default="")
    detail = models.JSONField(default=dict, blank=True, encoder=DjangoJSONEncoder)
    source = models.CharField(max_length=4, choices=Source.choices, default=Source.WEB)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["action", "-created_at"])]
        verbose_name_plural = "audit entries"

    def __str__(self) -> str:
        when = f"{self.created_at:%Y-%m-%d %H:%M:%S}"
        return f"{when} {self.username or '-'} {self.action} {self.target}"

    @property
    def detail_text(self) -> str:
        """`key=value; ...` for the page (a template's `detail.items` would read a key 'items')."""
        pairs = self.detail.items()
        return "; ".join(f"{k}={json.dumps(v, cls=DjangoJSONEncoder)}" for k, v in pairs)

    @property
    def label(self) -> str:
        return ACTIONS.get(self.action, self.action)

    def as_dict(self) -> dict[str, object]:
        return {
            "id": self.pk, "when": self.created_at.isoformat(), "user": self.username,
            "address": self.address, "source": self.source, "action": self.action,
            "target": self.target, "detail": self.detail,
        }
