"""Response hardening that Django 5.2 does not offer as a setting.

ContentSecurityPolicy: pages may load scripts, styles, images and fonts only from the app
itself (static/): no inline script or style, no other origin, no framing. Templates keep
their JavaScript in static files (`data-confirm` forms, static/doseport/confirm.js) and
htmx is told not to inject its indicator <style> (base.html, htmx-config).

SessionIdleRefresh: a session lives SESSION_COOKIE_AGE after the last request, not after
the login, so it ends after DOSEPORT_SESSION_IDLE_HOURS of idleness. The expiry is pushed
back at most every REFRESH_S rather than on every request (SESSION_SAVE_EVERY_REQUEST
would write the session row on each 1 s htmx poll).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
REFRESHED_KEY = "_doseport_refreshed"
MAX_REFRESH_S = 300


def refresh_interval_s(cookie_age_s: int) -> int:
    """How often the expiry is pushed back: a tenth of the idle time, at most 5 minutes."""
    return max(1, min(MAX_REFRESH_S, cookie_age_s // 10))


class ContentSecurityPolicy:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        return response


class SessionIdleRefresh:
    """Mark a signed-in user's session modified when its expiry is due to be pushed back.

    Listed after AuthenticationMiddleware, so that on the way out it runs before
    SessionMiddleware saves the session (with a new expiry) and sets the cookie.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.interval_s = refresh_interval_s(settings.SESSION_COOKIE_AGE)

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        user = getattr(request, "user", None)
        # Not for anonymous requests: that would store an empty session for each of them.
        if user is not None and user.is_authenticated:
            now = int(time.time())
            if now - int(request.session.get(REFRESHED_KEY, 0)) >= self.interval_s:
                request.session[REFRESHED_KEY] = now
        return response
