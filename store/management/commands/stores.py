from __future__ import annotations

import signal
import time
from types import FrameType
from typing import Any

from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Store supervisor: one child process per store node that should run."

    def handle(self, *args: Any, **options: Any) -> None:
        # Placeholder until the store issue: keeps the process layout of `doseport run`.
        stopping = False

        def stop(signum: int, frame: FrameType | None) -> None:
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        while not stopping:
            time.sleep(0.5)
