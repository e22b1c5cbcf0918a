"""`@api_view(role)`: token or session authentication, the pages' role checks, JSON out.

- `Authorization: Token KEY` (api/tokens.py) authenticates a script. A request with a
  header that is malformed, or a key that is unknown, revoked or of a disabled user, is
  refused (401) even when a session cookie is also sent.
- Without the header, a logged-in browser session is accepted: the API is read-only
  (GET and HEAD), so there is no state change for a forged request to cause, and no CSRF
  check is needed for either kind.
- 401 and 403 answers are JSON with the reason in `detail`; the 403 reason is the one the
  pages give (doseport.auth.denial_reason).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth.decorators import login_not_required
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from api import tokens
from doseport.auth import denial_reason, has_role, role_of

ApiView = Callable[..., dict[str, Any]]
NO_CREDENTIALS = (
    "Authentication credentials were not provided: send the header `Authorization: Token KEY` "
    "(make a key on /api/tokens/ or with `doseport tokens add USER`)."
)
BAD_HEADER = "Malformed Authorization header: use `Authorization: Token KEY`."
BAD_KEY = "Invalid token: unknown, revoked, or its user is disabled."


class ApiError(Exception):
    def __init__(self, status: int, detail: str, errors: dict[str, Any] | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.errors = errors


def error(status: int, detail: str, errors: dict[str, Any] | None = None) -> JsonResponse:
    body: dict[str, Any] = {"detail": detail, "status": status}
    if errors:
        body["errors"] = errors
    response = JsonResponse(body, status=status)
    if status == 401:
        response["WWW-Authenticate"] = 'Token realm="doseport"'
    return response


def api_user(request: HttpRequest) -> tuple[Any, str]:
    """(user, "") or (None, why not)."""
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if not header:
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            return user, ""
        return None, NO_CREDENTIALS
    scheme, _, key = header.partition(" ")
    if scheme.lower() != "token" or not key.strip():
        return None, BAD_HEADER
    token = tokens.authenticate(key.strip())
    if token is None:
        return None, BAD_KEY
    return token.user, ""


def api_view(role: str) -> Callable[[ApiView], Callable[..., HttpResponse]]:
    def decorate(view: ApiView) -> Callable[..., HttpResponse]:
        @wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if request.method not in ("GET", "HEAD"):
                response = error(405, "The API is read-only: use GET.")
                response["Allow"] = "GET, HEAD"
                return response
            user, why = api_user(request)
            if user is None:
                return error(401, why)
            if not has_role(user, role):
                return error(403, denial_reason(role_of(user), role))
            request.user = user
            try:
                data = view(request, *args, **kwargs)
            except Http404:
                return error(404, "Not found.")
            except ApiError as exc:
                return error(exc.status, exc.detail, exc.errors)
            return JsonResponse(data, json_dumps_params={"ensure_ascii": False})

        # The API answers 401 itself instead of the login redirect of the pages.
        return login_not_required(csrf_exempt(wrapper))

    return decorate
