"""Recording audit entries and selecting them for the page and the command."""

from __future__ import annotations

import datetime as dt
import getpass
import json
import logging
import socket
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import models, transaction
from django.db.models import QuerySet
from django.http import HttpRequest

from audit.models import AuditEntry, Source

logger = logging.getLogger(__name__)

# Model label -> the word the log uses for it (otherwise the model's verbose name).
NOUNS = {
    "nodes.storenode": "store node",
    "nodes.remotenode": "remote node",
    "qr.query": "query",
    "qr.move": "retrieve",
    "imports.importrecord": "import",
}
TARGET_MAX = 255


def describe(target: Any) -> str:
    """'store node 3 DOSEPORT', 'user 7 alice', 'retrieve 4 of query 12'; text passes through.

    Only names and database ids: nothing that could identify a patient.
    """
    if not isinstance(target, models.Model):
        return str(target)
    meta = target._meta
    words = [NOUNS.get(meta.label_lower, str(meta.verbose_name)), str(target.pk)]
    for attr in ("name", "remote_name"):
        value = getattr(target, attr, "")
        if isinstance(value, str) and value:
            words.append(value)
            break
    if meta.label_lower == "qr.move":
        words.append(f"of query {getattr(target, 'query_id', '?')}")
    elif hasattr(target, "get_username"):
        words.append(target.get_username())
    return " ".join(words)


def _plain(detail: dict[str, Any] | None) -> dict[str, Any]:
    """JSON-safe copy: dates and decimals as Django encodes them, anything else as text."""
    if not detail:
        return {}
    encoder = DjangoJSONEncoder()

    def default(value: Any) -> Any:
        try:
            return encoder.default(value)
        except TypeError:
            return str(value)

    loaded: dict[str, Any] = json.loads(json.dumps(detail, default=default))
    return loaded


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no login name in containers without a passwd entry
        return ""


def client_address(request: HttpRequest) -> str:
    """The address the login lock-out counts (X-Forwarded-For of a trusted proxy), so the two
    logs agree; the peer address when the accounts app is absent."""
    try:
        from accounts.lockout import client_address as proxied
    except ImportError:
        return str(request.META.get("REMOTE_ADDR", ""))
    return proxied(request)


def build(
    action: str, target: Any, *, request: HttpRequest | None, user: Any,
    detail: dict[str, Any] | None, source: str | None,
) -> AuditEntry:
    source = source or (Source.WEB if request is not None else Source.CLI)
    if user is None and request is not None:
        user = getattr(request, "user", None)
    if user is not None and not getattr(user, "is_authenticated", False):
        user = None
    address = client_address(request) if request is not None else socket.gethostname()
    if user is not None:
        username = user.get_username()
    else:
        username = _os_user() if source == Source.CLI else ""
    return AuditEntry(
        user=user, username=username[:150], address=address[:64], action=action[:40],
        target=describe(target)[:TARGET_MAX], detail=_plain(detail), source=source,
    )


def record(
    action: str, target: Any, *, request: HttpRequest | None = None, user: Any = None,
    detail: dict[str, Any] | None = None, source: str | None = None,
) -> AuditEntry | None:
    """Store one entry. An audit failure must never undo or fail what the user did."""
    try:
        entry = build(action, target, request=request, user=user, detail=detail, source=source)
        # A savepoint, so a failed insert leaves a surrounding transaction usable.
        with transaction.atomic():
            entry.save()
    except Exception as exc:  # the caller's action has already happened; report, go on
        logger.warning("audit entry %s not recorded: %s", action, exc)
        return None
    logger.debug(
        "audit: %s %s %s from %s (%s)", entry.username or "-", entry.action, entry.target,
        entry.address or "-", entry.source,
    )
    return entry


def changes(form: Any) -> dict[str, Any]:
    """{field: [old, new]} for the fields a bound, valid form changed (a field left empty
    that its clean method fills with the value it had is not a change)."""
    found = {
        name: [form.initial.get(name), form.cleaned_data.get(name)]
        for name in form.changed_data
    }
    return {name: pair for name, pair in found.items() if pair[0] != pair[1]}


def action_filter(queryset: QuerySet[AuditEntry], action: str) -> QuerySet[AuditEntry]:
    """'node.add' matches that action; 'node' matches every 'node.*' action."""
    if not action:
        return queryset
    if "." in action:
        return queryset.filter(action=action)
    return queryset.filter(action__startswith=action + ".")


def select(
    *, action: str = "", username: str = "", since: dt.date | dt.datetime | None = None,
    until: dt.date | None = None,
) -> QuerySet[AuditEntry]:
    """Entries matching every given filter; dates are days in the site's time zone."""
    entries = action_filter(AuditEntry.objects.all(), action)
    if username:
        entries = entries.filter(username__iexact=username)
    if isinstance(since, dt.datetime):
        entries = entries.filter(created_at__gte=since)
    elif since is not None:
        entries = entries.filter(created_at__date__gte=since)
    if until is not None:
        entries = entries.filter(created_at__date__lte=until)
    return entries
