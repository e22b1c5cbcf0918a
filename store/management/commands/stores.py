from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand

from store.supervisor import StoreSupervisor


class Command(BaseCommand):
    help = "Store supervisor: one child process per store node that should run."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--processes", type=int, default=settings.STORE_PROCESSES,
            help="processes per node accepting associations on its port "
                 "(default DOSEPORT_STORE_PROCESSES, 1)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        extra = ["--processes", str(options["processes"])] if options["processes"] > 1 else []
        StoreSupervisor(extra_args=extra).run()
