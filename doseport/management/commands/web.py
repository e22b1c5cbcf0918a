from __future__ import annotations

import logging
import signal
import sys
from types import FrameType
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand

logger = logging.getLogger(__name__)


class Command(BaseCommand):
    help = "Serve the web app with waitress on DOSEPORT_BIND (default 127.0.0.1:8000)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--threads", type=int, default=8, help="worker threads (default 8)")

    def handle(self, *args: Any, **options: Any) -> None:
        from waitress import create_server  # type: ignore[attr-defined]

        from doseport.static import with_static
        from doseport.wsgi import application

        server = create_server(
            with_static(application), host=settings.BIND.host, port=settings.BIND.port,
            threads=options["threads"], ident="doseport",
        )

        def stop(signum: int, frame: FrameType | None) -> None:
            server.close()
            sys.exit(0)

        signal.signal(signal.SIGTERM, stop)
        logger.info("web listening on http://%s:%d/", settings.BIND.host, settings.BIND.port)
        try:
            server.run()
        except KeyboardInterrupt:
            server.close()
