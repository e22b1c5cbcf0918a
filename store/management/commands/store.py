from __future__ import annotations

import argparse
import logging
import os
import time
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

import audit
import store.control as control
from nodes.models import StoreNode
from store.ae import store_run_argv
from store.models import StoreRuntime

LOG_LEVELS = {"quiet": "WARNING", "verbose": "INFO", "debug": "DEBUG"}


def bounded(kind: Callable[[str], Any], low: float, high: float) -> Callable[[str], Any]:
    """An argparse type: a number of `kind` within [low, high], else a one-line error."""
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{text} is outside {low:n}-{high:n}")
        return value
    return parse


class Command(BaseCommand):
    help = ("Run, start, stop or show one store node: doseport store run|start|stop|status "
            "NODE_ID; doseport store sweep [NODE_ID] queues un-imported spool files")

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> CommandParser:
        # DCMTK's -v (verbose) replaces Django's -v (verbosity; --verbosity still works).
        return super().create_parser(prog_name, subcommand, conflict_handler="resolve", **kwargs)

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("action", choices=["run", "start", "stop", "status", "sweep"])
        parser.add_argument(
            "node_id", type=int, nargs="?",
            help="the node's id; sweep: leave out to sweep every spool on this server",
        )
        parser.add_argument(
            "--min-age", type=float, default=60.0, metavar="SECONDS",
            help="sweep: leave files younger than this to the queue (default 60)",
        )
        parser.add_argument(
            "--wait", type=float, default=10.0,
            help="start/stop: seconds to wait for the supervisor to act (default 10)",
        )
        parser.add_argument(
            "--processes", type=int, default=1,
            help="run: processes accepting associations on the node's port (default 1)",
        )
        ae = parser.add_argument_group("run: network (DCMTK names; lib/aeconfig.py)")
        ae.add_argument(
            "--max-pdu", type=bounded(int, 4096, 16 * 1024 * 1024), metavar="BYTES",
            help="largest PDU we accept, 4096-16777216 "
                 f"(default DOSEPORT_STORE_MAX_PDU, now {settings.STORE_MAX_PDU})",
        )
        ae.add_argument(
            "--acse-timeout", type=bounded(float, 0.1, 3600), metavar="SECONDS",
            help="wait for association messages "
                 f"(default DOSEPORT_STORE_ACSE_TIMEOUT, now {settings.STORE_ACSE_TIMEOUT})",
        )
        ae.add_argument(
            "--dimse-timeout", type=bounded(float, 0.1, 3600), metavar="SECONDS",
            help="wait for DIMSE messages "
                 f"(default DOSEPORT_STORE_DIMSE_TIMEOUT, now {settings.STORE_DIMSE_TIMEOUT})",
        )
        logs = ae.add_mutually_exclusive_group()
        default_level = logging.getLevelName(logging.getLogger().level)
        for flag, name in (("-q", "quiet"), ("-v", "verbose"), ("-d", "debug")):
            logs.add_argument(
                flag, f"--{name}", dest="log_level", action="store_const",
                const=LOG_LEVELS[name],
                help=f"log level {LOG_LEVELS[name]} (default DOSEPORT_LOG_LEVEL, "
                     f"now {default_level})",
            )
        parser.add_argument("--helper", action="store_true", help=argparse.SUPPRESS)
        parser.add_argument("--listen-fd", type=int, default=None, help=argparse.SUPPRESS)

    def handle(self, *args: Any, **options: Any) -> None:
        if options["action"] == "sweep":
            self.sweep(options["node_id"], max(0.0, options["min_age"]))
            return
        if options["node_id"] is None:
            raise CommandError(f"store {options['action']}: give the node's id")
        try:
            node = StoreNode.objects.get(pk=options["node_id"])
        except StoreNode.DoesNotExist:
            raise CommandError(f"no store node with id {options['node_id']}") from None
        action = options["action"]
        if action == "run":
            if not node.controlled:
                raise CommandError(f"{node.name} is a third-party store; Doseport does not run it")
            set_log_level(options["log_level"])
            control.run_foreground(
                node, processes=max(1, options["processes"]), helper=options["helper"],
                listen_fd=options["listen_fd"], ae_options=store_run_argv(options),
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

    def sweep(self, node_id: int | None, min_age_s: float) -> None:
        """Queue this server's un-imported spool files (store/sweep.py)."""
        from store import sweep

        if node_id is not None and not sweep.spool_of(node_id).spool.root.is_dir():
            raise CommandError(
                f"node {node_id} has no spool on this server ({settings.SERVER_NAME})"
            )
        queued = sweep.sweep(node_id, min_age_s=min_age_s)
        for name, count in queued.items():
            self.stdout.write(f"spool {name}: {count} files queued for import")
        self.stdout.write(
            f"{sum(queued.values())} files queued on this server's import queue; "
            f"`doseport worker` on {settings.SERVER_NAME} imports them"
        )

    def status(self, node: StoreNode, exit_on_state: bool = True) -> None:
        runtime = StoreRuntime.for_node(node)
        for key, value in control.status_fields(node, runtime):
            self.stdout.write(f"{key}: {value}")
        if exit_on_state and not runtime.is_running:
            raise SystemExit(1)


def set_log_level(level: str | None) -> None:
    """-q/-v/-d: this process and its helpers (they read DOSEPORT_LOG_LEVEL at start)."""
    if level is None:
        return
    os.environ["DOSEPORT_LOG_LEVEL"] = level
    logging.getLogger().setLevel(level)
    if level == "DEBUG":
        logging.getLogger("pynetdicom").setLevel(level)
