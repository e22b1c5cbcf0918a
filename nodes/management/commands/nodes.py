"""`doseport nodes list|add-store|add-remote`."""

from __future__ import annotations

import argparse
import json
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

import audit
from nodes import cli
from nodes.models import RemoteNode, StoreNode
from nodes.validators import port_warning


class Command(BaseCommand):
    help = "List and add DICOM nodes (ids are those on the DICOM network configuration page)."

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> CommandParser:
        return cli.use_one_line_errors(super().create_parser(prog_name, subcommand, **kwargs))

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(
            dest="action", required=True, metavar="{list,add-store,add-remote}",
            parser_class=cli.OneLineParser,
        )
        listing = sub.add_parser("list", help="list store and remote nodes with their status")
        listing.add_argument("--json", action="store_true", help="JSON output (default: table)")

        store = sub.add_parser("add-store", help="add a local store node")
        store.add_argument("--name", required=True, help="unique name (required)")
        store.add_argument("--ae-title", required=True, help="1-16 letters/digits (required)")
        store.add_argument("--port", required=True, type=int, help="TCP port (required)")
        store.add_argument(
            "--controlled", action=argparse.BooleanOptionalAction, default=True,
            help="Doseport runs this node (default: --controlled)",
        )
        store.add_argument(
            "--auto-start", action="store_true", help="start it when found stopped (default: no)"
        )
        store.add_argument(
            "--allow-aet", action="extend", nargs="+", default=[], metavar="AET",
            help="allowed calling AE title, repeatable (default: any caller)",
        )
        store.add_argument(
            "--bind-address", default="", help="IP address to listen on (default: all)"
        )
        store.add_argument(
            "--host", default="", help="third-party store only: its host, for echo (default: none)"
        )
        store.add_argument(
            "--tls", action="store_true",
            help="accept only DICOM TLS (needs DOSEPORT_TLS_CERT/KEY/CA; default: no)",
        )

        remote = sub.add_parser("add-remote", help="add a remote query/retrieve node")
        remote.add_argument("--name", required=True, help="unique name (required)")
        remote.add_argument("--ae-title", required=True, help="the remote's AE title (required)")
        remote.add_argument("--host", required=True, help="hostname or IP address (required)")
        remote.add_argument("--port", required=True, type=int, help="TCP port (required)")
        remote.add_argument(
            "--calling-aet", default="",
            help="our AE title towards this node (default: DOSEPORT_AE_TITLE)",
        )
        remote.add_argument(
            "--retrieve-method", choices=[RemoteNode.RETRIEVE_MOVE, RemoteNode.RETRIEVE_GET],
            default=RemoteNode.RETRIEVE_MOVE, help="C-MOVE or C-GET (default: move)",
        )
        remote.add_argument(
            "--use-modality-tag", action="store_true",
            help="send Modality at study level (default: no)",
        )
        remote.add_argument(
            "--tls", action="store_true",
            help="connect with DICOM TLS, verify the remote against DOSEPORT_TLS_CA "
                 "(default: no)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        action = options["action"]
        if action == "list":
            self.list_nodes(options["json"])
        elif action == "add-store":
            self.add_store(options)
        else:
            self.add_remote(options)

    def list_nodes(self, as_json: bool) -> None:
        nodes: list[StoreNode | RemoteNode] = [*StoreNode.objects.all(), *RemoteNode.objects.all()]
        rows = [cli.as_dict(node) for node in nodes]
        if as_json:
            self.stdout.write(json.dumps(rows, indent=2))
            return
        header = f"{'KIND':6} {'ID':>4} {'NAME':20} {'AE TITLE':16} {'ADDRESS':26} STATUS"
        self.stdout.write(header)
        for row in rows:
            address = f"{row['host'] or '*'}:{row['port']}"
            self.stdout.write(
                f"{row['kind']:6} {row['id']:>4} {row['name'][:20]:20} {row['ae_title']:16} "
                f"{address[:26]:26} {row['status']}"
            )

    def add_store(self, options: dict[str, Any]) -> None:
        node = StoreNode(
            name=options["name"], ae_title=options["ae_title"], port=options["port"],
            controlled=options["controlled"], auto_start=options["auto_start"],
            allowed_calling_aets="\n".join(options["allow_aet"]),
            bind_address=options["bind_address"], host=options["host"],
            tls=cli.tls_option(options["tls"]),
        )
        cli.save_validated(node)
        audit.record("node.add", node)
        self.stdout.write(f"Added {cli.describe(node)}")
        warning = port_warning(node.port)
        if warning:
            self.stderr.write(f"warning: {warning}")

    def add_remote(self, options: dict[str, Any]) -> None:
        node = RemoteNode(
            name=options["name"], ae_title=options["ae_title"], host=options["host"],
            port=options["port"], calling_ae_title=options["calling_aet"],
            retrieve_method=options["retrieve_method"],
            use_modality_tag=options["use_modality_tag"],
            tls=cli.tls_option(options["tls"]),
        )
        cli.save_validated(node)
        audit.record("node.add", node)
        self.stdout.write(f"Added {cli.describe(node)}")
