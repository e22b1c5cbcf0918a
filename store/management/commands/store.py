from __future__ import annotations

import argparse
import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

import audit
import store.control as control
from nodes.models import StoreNode
from store.models import StoreRuntime


class Command(BaseCommand):
    help = "Run, start, stop or show one store node: doseport store run|start|stop|status NODE_ID"

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("action", choices=["run", "start", "stop", "status"])
        parser.add_argument("node_id", type=int)
        parser.add_argument(
            "--wait", type=float, default=10.0,
            help="start/stop: seconds to wait for the supervisor to act (default 10)",
        )
        parser.add_argument(
            "--processes", type=int, default=1,
            help="run: processes accepting associations on the node's port (default 1)",
        )
        parser.add_argument("--helper", action="store_true", help=argparse.SUPPRESS)
        parser.add_argument("--listen-fd", type=int, default=None, help=argparse.SUPPRESS)

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            node = StoreNode.objects.get(pk=options["node_id"])
        except StoreNode.DoesNotExist:
            raise CommandError(f"no store node with id {options['node_id']}") from None
        action = options["action"]
        if action == "run":
            if not node.controlled:
                raise CommandError(f"{node.name} is a third-party store; Doseport does not run it")
            control.run_foreground(
                node, processes=max(1, options["processes"]), helper=options["helper"],
                listen_fd=options["listen_fd"],
            )
            return
        if action == "status":
            self.status(node)
            return
        try:
            message = control.start(node) if action == "start" else control.stop(node)
        except control.ControlError as exc:
            raise CommandError(str(exc)) from None
        audit.record("node.start" if action == "start" else "node.stop", node)
        self.stdout.write(message)
        want_running = action == "start"
        deadline = time.monotonic() + options["wait"]
        while time.monotonic() < deadline:
            if StoreRuntime.for_node(node).is_running == want_running:
                self.status(node, exit_on_state=False)
                return
            time.sleep(0.2)
        runtime = StoreRuntime.for_node(node)
        if not runtime.supervisor_alive:
            raise CommandError(
                f"{action} requested, but no store supervisor is running "
                "(start `doseport run` or `doseport stores`)"
            )
        raise CommandError(f"{action} requested; node still {runtime.shown_state}")

    def status(self, node: StoreNode, exit_on_state: bool = True) -> None:
        runtime = StoreRuntime.for_node(node)
        for key, value in control.status_fields(node, runtime):
            self.stdout.write(f"{key}: {value}")
        if exit_on_state and not runtime.is_running:
            raise SystemExit(1)
