"""`doseport probe QR_ID`: a few harmless C-FINDs that show what a remote node supports."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

import audit
from nodes.models import RemoteNode
from qr.probe import ProbeResult, probe


class Command(BaseCommand):
    help = ("Probe a remote node with a few harmless C-FINDs (no retrieve) and suggest "
            "query options; the result is stored on the node: doseport probe QR_ID")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("node_id", type=int, help="the remote node's database id")
        parser.add_argument("--json", action="store_true",
                            help="print the stored result as JSON (default: text)")

    def handle(self, *args: Any, **options: Any) -> None:
        node = RemoteNode.objects.filter(pk=options["node_id"]).first()
        if node is None:
            raise CommandError(
                f"no remote node with id {options['node_id']} (see doseport nodes list)")
        result = probe(node)
        audit.record("node.probe", node, detail={"ok": result.ok})
        if options["json"]:
            self.stdout.write(json.dumps(result.to_json(), indent=2))
        else:
            self.stdout.write(render_text(node, result))
        if not result.ok:
            raise CommandError(f"cannot probe {node.name}: {result.error}")


def render_text(node: RemoteNode, result: ProbeResult) -> str:
    lines = [f"probe of remote node {node.pk} ({node.name}, {node.ae_title} at "
             f"{node.host}:{node.port}): {result.finds} C-FIND requests, "
             f"{result.studies_seen} recent studies seen"]
    width = max(len(c.label) for c in result.checks)
    for check in result.checks:
        lines.append(f"  {check.label:<{width}}  {check.result:<7}  {check.detail}".rstrip())
    if result.suggestions:
        lines.append("suggested:")
        lines.extend(f"  - {s}" for s in result.suggestions)
    return "\n".join(lines)
