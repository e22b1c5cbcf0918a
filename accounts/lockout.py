"""Failed logins: django-axes counts them per user name and per address independently.

Axes (settings AXES_*) refuses a login, before any password hashing, once a user name or an
address has AXES_FAILURE_LIMIT failures within AXES_COOLOFF_TIME; every further try restarts
that time. This module holds the hooks axes calls (address, log text, the locked page), our
own log line per failure, what the Users page shows and the unlock used by page and command.
"""

from __future__ import annotations

import ipaddress
import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from axes.helpers import get_cool_off, get_failure_limit
from axes.models import AccessAttempt
from axes.utils import reset
from django.conf import settings
from django.contrib.auth.forms import AuthenticationForm
from django.db.models import Max, Sum
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

log = logging.getLogger(__name__)
MAX_LOGGED_NAME = 150  # the longest user name Django accepts


def escape_controls(text: str) -> str:
    """Control characters as Python escapes, so a crafted user name stays on one log line."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def client_address(request: HttpRequest) -> str:
    """The peer address; behind a proxy listed in DOSEPORT_TRUSTED_PROXIES, the address that
    proxy appended to X-Forwarded-For (anything left of it was written by the client)."""
    peer = request.META.get("REMOTE_ADDR", "") or ""
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    if forwarded and peer in getattr(settings, "TRUSTED_PROXIES", ()):
        last = forwarded.split(",")[-1].strip()
        try:
            return str(ipaddress.ip_address(last))
        except ValueError:
            return peer
    return peer


def client_str(
    username: str | None, ip_address: str | None, user_agent: str | None, path_info: Any,
    request: HttpRequest | None,
) -> str:
    """How axes names a client in its own log lines."""
    name = escape_controls((username or "")[:MAX_LOGGED_NAME])
    return f"user '{name}' from {ip_address or '?'}"


def log_login_failure(
    sender: Any, credentials: dict[str, Any], request: HttpRequest | None = None, **kwargs: Any
) -> None:
    """One line per failed login: user name (escaped) and address, never the password."""
    name = escape_controls(str(credentials.get("username") or "")[:MAX_LOGGED_NAME])
    address = client_address(request) if request is not None else "?"
    if request is not None and getattr(request, "axes_locked_out", False):
        log.warning("login failed for user '%s' from %s; the user name or the address is "
                    "locked after repeated failures", name, address)
    else:
        log.warning("login failed for user '%s' from %s", name, address)


def lockout_message() -> str:
    minutes = int((get_cool_off() or timedelta(0)).total_seconds() // 60)
    return (
        "Too many failed logins for this user name or from this address: logins are refused "
        f"for {minutes} minutes after the last try. An admin can unlock the account on the "
        "Users page, or with the command doseport users unlock NAME."
    )


def lockout_response(
    request: HttpRequest, original_response: HttpResponse | None = None,
    credentials: dict[str, Any] | None = None,
) -> HttpResponse:
    """The login page again, with the reason instead of 'did not match' (429)."""
    form = AuthenticationForm(request, initial={"username": (credentials or {}).get("username")})
    context = {"form": form, "locked": lockout_message(), "next": request.POST.get("next", "")}
    return render(request, "registration/login.html", context, status=429)


@dataclass(frozen=True)
class Lock:
    key: str  # a user name or an address
    failures: int
    last_try: Any


def _recent() -> Any:
    attempts = AccessAttempt.objects.all()
    cool_off = get_cool_off()
    if cool_off is not None:
        attempts = attempts.filter(attempt_time__gte=timezone.now() - cool_off)
    return attempts


def _locks(field: str) -> list[Lock]:
    limit = get_failure_limit(HttpRequest(), None)
    rows = (
        _recent().exclude(**{f"{field}__isnull": True}).values(field)
        .annotate(failures=Sum("failures_since_start"), last_try=Max("attempt_time"))
    )
    return [Lock(r[field], r["failures"], r["last_try"]) for r in rows if r["failures"] >= limit]


def locked_usernames() -> dict[str, Lock]:
    return {lock.key: lock for lock in _locks("username")}


def locked_addresses() -> list[Lock]:
    return sorted(_locks("ip_address"), key=lambda lock: lock.key)


def unlock_user(username: str) -> int:
    """Forget the failed logins for a user name (from every address); return how many."""
    return int(reset(username=username))


def unlock_address(address: str) -> int:
    return int(reset(ip=address))
