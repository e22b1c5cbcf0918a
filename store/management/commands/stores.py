from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from store.supervisor import StoreSupervisor


class Command(BaseCommand):
    help = "Store supervisor: one child process per store node that should run."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--processes", type=int, default=1,
            help="listening processes per node, sharing the port (default 1)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        extra = ["--processes", str(options["processes"])] if options["processes"] > 1 else []
        StoreSupervisor(extra_args=extra).run()
