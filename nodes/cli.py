"""Helpers for the `nodes` and `echo` commands: one-line errors, node lookup, output rows."""

from __future__ import annotations

from typing import Any, NoReturn

from django.core.exceptions import ValidationError
from django.core.management.base import CommandError, CommandParser

from nodes import services
from nodes.models import RemoteNode, StoreNode

BAD_ARGS = 2


class OneLineParser(CommandParser):
    """Argument errors as one line on stderr (no usage block), exit status 2."""

    def error(self, message: str) -> NoReturn:
        if self.called_from_command_line:
            self.exit(BAD_ARGS, f"{self.prog}: error: {message}\n")
        raise CommandError(f"Error: {message}", returncode=BAD_ARGS)


def use_one_line_errors(parser: CommandParser) -> OneLineParser:
    parser.__class__ = OneLineParser
    return parser  # type: ignore[return-value]


# Model field -> command-line option, so validation messages name what the user typed.
OPTIONS = {
    "name": "--name", "ae_title": "--ae-title", "port": "--port", "host": "--host",
    "bind_address": "--bind-address", "allowed_calling_aets": "--allow-aet",
    "calling_ae_title": "--calling-aet", "retrieve_method": "--retrieve-method", "tls": "--tls",
}


def tls_option(wanted: bool) -> bool:
    """--tls: only when the site has a certificate (lib/tls.py), else one line naming it."""
    from lib import tls

    if wanted and tls.configured() is None:
        raise CommandError(
            f"--tls: set {tls.CERT}, {tls.KEY} and {tls.CA} first "
            "(docs/configuration.md, 'DICOM TLS')", returncode=BAD_ARGS,
        )
    return wanted


def validation_line(exc: ValidationError) -> str:
    """The first problem of a full_clean() failure, as `--option: message`."""
    if hasattr(exc, "error_dict"):
        for field, errors in exc.message_dict.items():
            option = OPTIONS.get(field, field.replace("_", "-"))
            prefix = "" if field == "__all__" else f"{option}: "
            return prefix + errors[0]
    return exc.messages[0]


def save_validated(node: StoreNode | RemoteNode) -> None:
    """Validate exactly like the web forms, then save; a failure is one CommandError line."""
    try:
        node.full_clean()
    except ValidationError as exc:
        raise CommandError(validation_line(exc), returncode=BAD_ARGS) from None
    node.save()


def find_node(node_id: int, kind: str | None) -> StoreNode | RemoteNode:
    """A node by database id; without `kind` a remote node wins over a store node."""
    kinds = [kind] if kind else [services.REMOTE, services.STORE]
    for name in kinds:
        node = services.KINDS[name].objects.filter(pk=node_id).first()
        if node is not None:
            return node
    what = f"{kind} node" if kind else "remote or store node"
    raise CommandError(
        f"no {what} with id {node_id} (see `doseport nodes list`)", returncode=BAD_ARGS
    )


def describe(node: StoreNode | RemoteNode) -> str:
    kind = services.kind_of(node)
    host = node.peer(short=True).host
    return f"{kind} node {node.pk} '{node.name}' ({node.ae_title}@{host}:{node.port})"


def as_dict(node: StoreNode | RemoteNode) -> dict[str, Any]:
    row: dict[str, Any] = {
        "kind": services.kind_of(node),
        "id": node.pk,
        "name": node.name,
        "ae_title": node.ae_title,
        "host": node.host if isinstance(node, RemoteNode) else (node.host or node.bind_address),
        "port": node.port,
        "status": node.status_text,
        "alive": node.echo_alive,
        "reason": node.echo_reason,
        "rtt_ms": node.echo_rtt_ms,
        "checked_at": node.echo_checked_at.isoformat() if node.echo_checked_at else None,
    }
    if isinstance(node, StoreNode):
        row.update(
            controlled=node.controlled, auto_start=node.auto_start,
            allowed_calling_aets=node.allowed_calling_aet_list,
        )
    else:
        row.update(
            calling_ae_title=node.effective_calling_aet, retrieve_method=node.retrieve_method,
            use_modality_tag=node.use_modality_tag,
        )
    return row
