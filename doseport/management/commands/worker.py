from __future__ import annotations

from typing import Any

from django.core.management import call_command
from django.core.management.base import BaseCommand
from huey.contrib.djhuey import HUEY

from doseport.processes import use_prompt_consumer
from imports.reading import configure_pydicom
from lib import malloc


class Command(BaseCommand):
    help = "Run the Huey worker: imports, queries, moves, echoes and periodic jobs."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--workers", type=int, default=2, help="worker threads (default 2)")

    def handle(self, *args: Any, **options: Any) -> None:
        malloc.use_one_arena()  # before Huey's threads start (lib/malloc.py says why)
        configure_pydicom()  # the same reading settings as `doseport import`
        use_prompt_consumer(HUEY)  # SIGTERM: tasks in hand finish or go back, exit within 5 s
        call_command("run_huey", workers=options["workers"], worker_type="thread")
