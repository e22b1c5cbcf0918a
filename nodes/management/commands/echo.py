"""`doseport echo NODE_ID`: exit 0 when the node answers, 1 when not."""

from __future__ import annotations

import logging
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from nodes import cli, services

NOT_ALIVE = 1


class Command(BaseCommand):
    help = (
        "C-ECHO a node now and store the result. NODE_ID is a remote node id if one exists, "
        "else a store node id; --store/--remote choose explicitly. Exit 0 alive, 1 not."
    )

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> CommandParser:
        return cli.use_one_line_errors(super().create_parser(prog_name, subcommand, **kwargs))

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("node_id", type=int, metavar="NODE_ID", help="database id of the node")
        which = parser.add_mutually_exclusive_group()
        which.add_argument(
            "--store", dest="kind", action="store_const", const=services.STORE,
            help="NODE_ID is a store node id",
        )
        which.add_argument(
            "--remote", dest="kind", action="store_const", const=services.REMOTE,
            help="NODE_ID is a remote node id (default when both exist)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["verbosity"] < 2:
            # The reason is printed below; pynetdicom's own log lines would repeat it.
            logging.getLogger("pynetdicom").setLevel(logging.CRITICAL)
        node = cli.find_node(options["node_id"], options["kind"])
        result = services.echo_node(node)
        if result.ok:
            self.stdout.write(f"Alive: {cli.describe(node)} answered in {result.rtt_ms:.1f} ms")
            return
        self.stderr.write(f"Not responding: {cli.describe(node)}: {result.reason}")
        raise SystemExit(NOT_ALIVE)
