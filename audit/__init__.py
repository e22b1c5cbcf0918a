"""Audit log: who did what and when. `audit.record(...)` is the one way in.

The function lives in audit.service; this wrapper imports it lazily because Django imports
an app's package before its models are ready.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from django.http import HttpRequest

    from audit.models import AuditEntry


def record(
    action: str, target: Any, *, request: HttpRequest | None = None, user: Any = None,
    detail: dict[str, Any] | None = None, source: str | None = None,
) -> AuditEntry | None:
    """Store one audit entry; never raises (a failure is logged as a warning)."""
    from audit.service import record as _record

    return _record(action, target, request=request, user=user, detail=detail, source=source)


def changes(form: Any) -> dict[str, Any]:
    """{field: [old, new]} for each field a bound, valid Django form changed."""
    from audit.service import changes as _changes

    return _changes(form)
