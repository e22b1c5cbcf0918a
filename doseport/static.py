"""Serve /static/ from the app itself: hospitals often run without a separate web server."""

from __future__ import annotations

import mimetypes
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from django.conf import settings

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def find_static(rel: str) -> Path | None:
    for root in settings.STATICFILES_DIRS:
        base = Path(root).resolve()
        candidate = (base / rel).resolve()
        if candidate.is_file() and base in candidate.parents:
            return candidate
    return None


def with_static(app: WSGIApp) -> WSGIApp:
    prefix = settings.STATIC_URL

    def wrapped(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path.startswith(prefix):
            found = find_static(path[len(prefix):])
            if found is None:
                start_response("404 Not Found", [("Content-Type", "text/plain")])
                return [b"not found"]
            kind = mimetypes.guess_type(found.name)[0] or "application/octet-stream"
            start_response(
                "200 OK",
                [("Content-Type", kind), ("Cache-Control", "max-age=3600")],
            )
            return [found.read_bytes()]
        return app(environ, start_response)

    return wrapped
