"""Helpers for the `nodes` and `echo` commands: one-line errors, node lookup, output rows."""

from __future__ import annotations

import importlib
from typing import Any, NoReturn

from django import forms
from django.apps import apps
from django.core.exceptions import ValidationError
from django.core.management.base import CommandError, CommandParser
from django.db.models import ProtectedError, RestrictedError

import audit
from nodes import services
from nodes.forms import RemoteNodeForm, StoreNodeForm
from nodes.models import RemoteNode, StoreNode

BAD_ARGS = 2
# Rows deleted with a node that users need not be told about (its process bookkeeping).
QUIET_CASCADES = ("store.StoreRuntime",)
FORMS: dict[str, type[StoreNodeForm] | type[RemoteNodeForm]] = {
    services.STORE: StoreNodeForm, services.REMOTE: RemoteNodeForm,
}


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


def server_arg(value: str) -> str:
    """--runs-on (an argparse type): a server name, or this server when empty."""
    import argparse

    from django.conf import settings

    from doseport.queue import SERVER_NAME_RE

    name = value.strip() or str(settings.SERVER_NAME)
    if not SERVER_NAME_RE.match(name):
        raise argparse.ArgumentTypeError(
            f"{value!r} is not a server name: 1 to 64 letters, digits, '.', '_' or '-' "
            "(the DOSEPORT_SERVER_NAME of the server that should run the node)"
        )
    return name


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
            allowed_calling_aets=node.allowed_calling_aet_list, runs_on=node.runs_on,
        )
    else:
        row.update(
            calling_ae_title=node.effective_calling_aet, retrieve_method=node.retrieve_method,
            use_modality_tag=node.use_modality_tag,
        )
    return row


def find_exact_node(node_id: int, kind: str | None) -> StoreNode | RemoteNode:
    """A node to change: an id that is both a store and a remote node needs --store/--remote."""
    if kind is None and all(
        model.objects.filter(pk=node_id).exists() for model in services.KINDS.values()
    ):
        raise CommandError(
            f"id {node_id} is both a store node and a remote node: add --store or --remote "
            "(see `doseport nodes list`)", returncode=BAD_ARGS,
        )
    return find_node(node_id, kind)


def form_error_line(form: forms.BaseForm) -> str:
    """The first problem of an invalid node form, as `--option: message`."""
    for field, errors in form.errors.items():
        option = OPTIONS.get(field, "--" + field.replace("_", "-"))
        prefix = "" if field == "__all__" else f"{option}: "
        return prefix + str(errors[0])
    return "invalid values"


def edit_node(node: StoreNode | RemoteNode, changes: dict[str, Any]) -> dict[str, Any]:
    """Apply `changes` {field: value} through the node's web form; return what changed.

    The form validates exactly as the DICOM network configuration page does; a field that
    form does not have for this kind of node is refused naming its option.
    """
    form_class = FORMS[services.kind_of(node)]
    data = forms.model_to_dict(node, fields=form_class._meta.fields)
    for field, value in changes.items():
        if field not in data:
            option = OPTIONS.get(field, "--" + field.replace("_", "-"))
            raise CommandError(
                f"{option}: not a setting of {services.kind_of(node)} nodes", returncode=BAD_ARGS
            )
        data[field] = value
    form = form_class(data, instance=node)
    if not form.is_valid():
        raise CommandError(form_error_line(form), returncode=BAD_ARGS)
    if not form.has_changed():
        return {}
    form.save()
    return audit.changes(form)


def unimported_files(node: StoreNode) -> tuple[int, int] | None:
    """(count, bytes) of received files of `node` on this server without an import record
    (store/sweep.py `pending`); None when that count is not available."""
    try:
        sweep = importlib.import_module("store.sweep")
    except ImportError:
        return None
    pending = getattr(sweep, "pending", None)
    if not callable(pending):
        return None
    count, size = pending(node.pk)
    return int(count), int(size)


def delete_node(node: StoreNode | RemoteNode) -> str:
    """Delete `node` as the web page does; return what went with it ("" for nothing)."""
    kind, pk, name = services.kind_of(node), node.pk, node.name
    try:
        _, deleted = node.delete()
    except (ProtectedError, RestrictedError) as exc:
        used_by = sorted({str(obj._meta.verbose_name) for obj in exc.args[1]})
        raise CommandError(
            f"{describe(node)} cannot be deleted: it is still used by {', '.join(used_by)}; "
            "remove or reassign those first", returncode=1,
        ) from None
    audit.record("node.delete", f"{kind} node {pk} {name}")
    quiet = {node._meta.label, *QUIET_CASCADES}
    return ", ".join(
        f"{n} x {apps.get_model(label)._meta.verbose_name}"
        for label, n in sorted(deleted.items()) if n and label not in quiet
    )
