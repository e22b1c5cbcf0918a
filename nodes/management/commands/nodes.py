"""`doseport nodes list|add-store|add-remote|edit|delete`."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

import audit
from nodes import cli, services
from nodes.models import RemoteNode, StoreNode
from nodes.validators import port_warning


class Command(BaseCommand):
    help = (
        "List, add, edit and delete DICOM nodes (ids as on the DICOM network configuration "
        "page)."
    )

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> CommandParser:
        return cli.use_one_line_errors(super().create_parser(prog_name, subcommand, **kwargs))

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(
            dest="action", required=True, metavar="{list,add-store,add-remote,edit,delete}",
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
            help="Doseport runs this node; --no-controlled for a third-party store that "
            "Doseport only echoes and retrieves to (default: --controlled)",
        )
        store.add_argument(
            "--third-party", dest="controlled", action="store_false",
            help="the same as --no-controlled",
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
        store.add_argument(
            "--runs-on", default="", type=cli.server_arg, metavar="SERVER",
            help="the server (DOSEPORT_SERVER_NAME) whose supervisor runs it and whose "
            "worker imports what it receives (default: this server)",
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

        add_edit_arguments(sub.add_parser(
            "edit", help="change a node's settings: only the options given change, validated "
            "as on the DICOM network configuration page",
        ))
        delete = sub.add_parser("delete", help="delete a node")
        add_node_id(delete)
        delete.add_argument(
            "--yes", action="store_true",
            help="do not ask, also when a store node has received files not imported yet "
            "(default: ask; without a terminal, refuse)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        action = options["action"]
        if action == "list":
            self.list_nodes(options["json"])
        elif action == "add-store":
            self.add_store(options)
        elif action == "add-remote":
            self.add_remote(options)
        elif action == "edit":
            self.edit(options)
        else:
            self.delete(options)

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
            tls=cli.tls_option(options["tls"]), runs_on=options["runs_on"],
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

    def edit(self, options: dict[str, Any]) -> None:
        node = cli.find_exact_node(options["node_id"], options["kind"])
        changes = {field: options[field] for field in EDITABLE if options[field] is not None}
        if options["allow_any"]:
            changes["allowed_calling_aets"] = ""
        elif options["allowed_calling_aets"] is not None:
            changes["allowed_calling_aets"] = "\n".join(options["allowed_calling_aets"])
        if not changes:
            raise CommandError("nothing to change: give at least one option such as --port "
                               "(see `doseport nodes edit --help`)", returncode=cli.BAD_ARGS)
        changed = cli.edit_node(node, changes)
        if not changed:
            self.stdout.write(f"No change: {cli.describe(node)}")
            return
        audit.record("node.edit", node, detail=changed)
        self.stdout.write(f"Saved {cli.describe(node)}; changed: {', '.join(sorted(changed))}")
        warning = port_warning(node.port) if "port" in changed else ""
        if warning:
            self.stderr.write(f"warning: {warning}")

    def delete(self, options: dict[str, Any]) -> None:
        node = cli.find_exact_node(options["node_id"], options["kind"])
        what = cli.describe(node)
        pending = cli.unimported_files(node) if isinstance(node, StoreNode) else None
        left = ""
        if pending and pending[0]:
            left = (f"it has {pending[0]} received file(s) ({pending[1] / 1e6:.1f} MB) not "
                    "imported yet")
        if not options["yes"]:
            self.confirm(what, left)
        gone_too = cli.delete_node(node)
        self.stdout.write(f"Deleted {what}" + (f"; also deleted: {gone_too}" if gone_too else ""))
        if left:
            self.stderr.write(
                f"warning: {left}: `doseport store sweep {options['node_id']}` queues them for "
                "import now (the worker's periodic spool sweep does too)"
            )

    def confirm(self, what: str, left: str) -> None:
        if not sys.stdin.isatty():
            raise CommandError(
                f"not deleted: {what}{'; ' + left if left else ''}; add --yes to delete "
                "without being asked", returncode=cli.BAD_ARGS,
            )
        warning = f" Warning: {left}." if left else ""
        self.stdout.write(f"Delete {what}?{warning} [y/N] ", ending="")
        self.stdout.flush()
        if sys.stdin.readline().strip().lower() not in ("y", "yes"):
            raise CommandError("not deleted", returncode=1)


# `nodes edit` option dest -> model field (the same name); None means "leave as it is".
EDITABLE = (
    "name", "ae_title", "port", "bind_address", "host", "controlled", "auto_start",
    "calling_ae_title", "retrieve_method", "use_modality_tag", "connect_timeout",
    "acse_timeout", "dimse_timeout", "network_timeout", "runs_on",
)


def add_node_id(parser: CommandParser) -> None:
    parser.add_argument("node_id", type=int, metavar="NODE_ID", help="database id of the node")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--store", dest="kind", action="store_const", const=services.STORE,
                       help="NODE_ID is a store node id (needed when a remote node has it too)")
    which.add_argument("--remote", dest="kind", action="store_const", const=services.REMOTE,
                       help="NODE_ID is a remote node id (needed when a store node has it too)")


def add_edit_arguments(edit: CommandParser) -> None:
    add_node_id(edit)
    edit.add_argument("--name", help="unique name")
    edit.add_argument("--ae-title", help="AE title (store: 1-16 letters/digits)")
    edit.add_argument("--port", type=int, help="TCP port")
    edit.add_argument("--host", help="remote: hostname or IP; store: third-party store's host")
    edit.add_argument("--bind-address", help="store: IP address to listen on ('' = all)")
    edit.add_argument("--controlled", action=argparse.BooleanOptionalAction, default=None,
                      help="store: Doseport runs this node")
    edit.add_argument("--third-party", dest="controlled", action="store_false",
                      help="store: the same as --no-controlled")
    edit.add_argument("--auto-start", action=argparse.BooleanOptionalAction, default=None,
                      help="store: start it when found stopped")
    edit.add_argument("--allow-aet", dest="allowed_calling_aets", action="extend", nargs="+",
                      metavar="AET",
                      help="store: the allowed calling AE titles (replaces the list)")
    edit.add_argument("--allow-any", action="store_true",
                      help="store: any caller may send (clears the list)")
    edit.add_argument("--runs-on", dest="runs_on", type=cli.server_arg, metavar="SERVER",
                      help="store: the server (DOSEPORT_SERVER_NAME) that runs it")
    edit.add_argument("--calling-aet", dest="calling_ae_title",
                      help="remote: our AE title towards it ('' = DOSEPORT_AE_TITLE)")
    edit.add_argument("--retrieve-method",
                      choices=[RemoteNode.RETRIEVE_MOVE, RemoteNode.RETRIEVE_GET],
                      help="remote: C-MOVE or C-GET")
    edit.add_argument("--use-modality-tag", action=argparse.BooleanOptionalAction, default=None,
                      help="remote: send Modality at study level")
    for name, limit in (("connect", 60), ("acse", 300), ("dimse", 3600), ("network", 3600)):
        edit.add_argument(f"--{name}-timeout", dest=f"{name}_timeout", type=int,
                          help=f"remote: {name} timeout in seconds (1-{limit})")
