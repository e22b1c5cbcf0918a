from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand

from doseport import bootstrap
from doseport.processes import Child, Supervisor, doseport_argv


class Command(BaseCommand):
    help = "Start everything on one machine: web, one worker and the store supervisor."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--no-migrate", action="store_true", help="skip applying migrations (default: apply)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if not options["no_migrate"]:
            call_command("migrate", interactive=False, verbosity=0)
        bootstrap.ensure_roles()
        password = bootstrap.ensure_admin()
        store = bootstrap.ensure_default_store()
        bind = settings.BIND
        self.stdout.write(f"Doseport data folder: {settings.HOME}")
        if password:
            self.stdout.write(
                "First run: created user 'admin' with password "
                f"{password}\n  (shown only this once; change it under your account menu)"
            )
        if store:
            self.stdout.write(
                f"Created store node '{store.name}': AE title {store.ae_title}, port {store.port}"
            )
        self.stdout.write(f"Open http://{bind.host}:{bind.port}/ - press Ctrl-C to stop.")
        self.stdout.flush()
        Supervisor(
            [
                Child("web", doseport_argv("web")),
                Child("worker", doseport_argv("worker")),
                Child("stores", doseport_argv("stores")),
            ]
        ).run()
