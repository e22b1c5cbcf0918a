"""DICOM network configuration: node panels, add/edit/delete, echo, delete settings."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.db.models import ProtectedError, RestrictedError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

import audit
from doseport.auth import ADMIN, IMPORTER, VIEWER, role_required
from nodes import services
from nodes.forms import DeleteSettingsForm, RemoteNodeForm, StoreNodeForm, typed_port_warning
from nodes.models import DeleteSettings, RemoteNode, StoreNode
from nodes.tasks import queue_echo
from qr import probe
from qr.tasks import probe_task
from store import control

FORMS: dict[str, type[StoreNodeForm] | type[RemoteNodeForm]] = {
    services.STORE: StoreNodeForm,
    services.REMOTE: RemoteNodeForm,
}
LABELS = {services.STORE: "store node", services.REMOTE: "remote node"}


def _page_context(request: HttpRequest) -> dict[str, object]:
    stores = list(StoreNode.objects.all())
    return {
        "stores": stores,
        "remotes": list(RemoteNode.objects.all()),
        "move_destinations": stores,
        "host_name": services.this_host_name(),
        "server_name": settings.SERVER_NAME,  # DOSEPORT_SERVER_NAME: which nodes run here
        "request_host": request.get_host().rsplit(":", 1)[0],
    }


@require_GET
@role_required(VIEWER)
def dicom_config(request: HttpRequest) -> HttpResponse:
    context = _page_context(request)
    context["delete_form"] = DeleteSettingsForm(instance=DeleteSettings.get())
    return render(request, "nodes/dicom_config.html", context)


@require_http_methods(["GET", "POST"])
@role_required(ADMIN)
def node_add(request: HttpRequest, kind: str) -> HttpResponse:
    return _node_form(request, kind, FORMS[kind](request.POST or None))


@require_http_methods(["GET", "POST"])
@role_required(ADMIN)
def node_edit(request: HttpRequest, kind: str, pk: int) -> HttpResponse:
    node = services.get_node_or_404(kind, pk)
    return _node_form(request, kind, FORMS[kind](request.POST or None, instance=node))


def _node_form(
    request: HttpRequest, kind: str, form: StoreNodeForm | RemoteNodeForm
) -> HttpResponse:
    if kind == services.STORE and request.headers.get("HX-Request") and "port" in request.GET:
        # The port field asks while the user types; the same warning shows after saving.
        warning = typed_port_warning(request.GET["port"])
        return render(request, "nodes/node_form_port_warning.html", {"warning": warning})
    adding = form.instance.pk is None
    untick = _untick_question(request, kind, form)
    if request.method == "POST" and form.is_valid():
        choice = request.POST.get("untick", "")
        if untick and choice not in UNTICK_CHOICES:
            return render(request, "nodes/node_untick_confirm.html", {
                "node": form.instance, "fields": _posted_fields(request),
            })
        node = form.save()
        _apply_auto_start_change(request, untick, choice, form)
        audit.record("node.add" if adding else "node.edit", node, request=request,
                     detail=audit.changes(form))
        verb = "Added" if adding else "Saved"
        messages.success(request, f"{verb} {LABELS[kind]} {node.name} (id {node.pk}).")
        warning = getattr(form, "port_warning", "")
        if warning:
            messages.warning(request, warning)
        return redirect("nodes:dicom")
    return render(
        request, "nodes/node_form.html",
        {"form": form, "kind": kind, "label": LABELS[kind], "adding": adding},
    )


UNTICK_CHOICES = ("stop", "keep")


def _untick_question(
    request: HttpRequest, kind: str, form: StoreNodeForm | RemoteNodeForm
) -> bool:
    """Whether this save unticks auto-start on a node that is running because of it."""
    if kind != services.STORE or form.instance.pk is None or request.method != "POST":
        return False
    saved = StoreNode.objects.filter(pk=form.instance.pk).first()
    unticked = saved is not None and saved.auto_start and "auto_start" not in request.POST
    return bool(unticked and saved is not None and control.stops_on_untick(saved))


def _posted_fields(request: HttpRequest) -> list[tuple[str, str]]:
    """The submitted form, to post again from the confirmation page (token excluded)."""
    return [
        (key, value) for key, values in request.POST.lists() for value in values
        if key not in ("csrfmiddlewaretoken", "untick")
    ]


def _apply_auto_start_change(
    request: HttpRequest, untick: bool, choice: str, form: StoreNodeForm | RemoteNodeForm
) -> None:
    node = form.instance
    if not isinstance(node, StoreNode) or not node.controlled:
        return
    if untick and choice == "keep":
        control.start(node)
        audit.record("node.start", node, request=request)
    elif untick:
        control.stop(node, by=request.user.get_username())
        audit.record("node.stop", node, request=request)
        messages.info(request, f"{node.name} stops now; press Start to run it again.")
    elif "auto_start" in form.changed_data and node.auto_start:
        control.clear_stop(node)


@require_POST
@role_required(ADMIN)
def node_delete(request: HttpRequest, kind: str, pk: int) -> HttpResponse:
    node = services.get_node_or_404(kind, pk)
    name = node.name
    if isinstance(node, StoreNode):
        held = _unimported_before_delete(request, node)
        if held is not None:
            return held
    try:
        node.delete()
    except (ProtectedError, RestrictedError) as exc:
        used_by = sorted({obj._meta.verbose_name for obj in exc.args[1]})
        messages.error(
            request,
            f"{name} cannot be deleted: it is still used by {', '.join(used_by)}. "
            "Remove or reassign those first.",
        )
    else:
        audit.record("node.delete", f"{LABELS[kind]} {pk} {name}", request=request)
        messages.success(request, f"Deleted {LABELS[kind]} {name}.")
    return redirect("nodes:dicom")


def _unimported_before_delete(request: HttpRequest, node: StoreNode) -> HttpResponse | None:
    """A store node with received files not imported yet (store/sweep.py) is deleted only
    when the user says so; "import first" queues them and keeps the node."""
    from store import sweep

    choice = request.POST.get("pending", "")
    if choice == "delete":
        return None
    count, size = sweep.pending(node.pk)
    if not count:
        return None
    if choice == "import":
        queued = sum(sweep.sweep(node.pk, min_age_s=0).values())
        messages.info(request, f"Queued {queued} files of {node.name} for import; delete the "
                      "node once they are imported.")
        return redirect("nodes:dicom")
    return render(request, "nodes/node_delete_confirm.html", {
        "node": node, "pending_count": count, "pending_mb": f"{size / 1e6:.1f}",
    })


@require_POST
@role_required(IMPORTER)
def node_echo(request: HttpRequest, kind: str, pk: int) -> HttpResponse:
    node = services.get_node_or_404(kind, pk)
    queue_echo(node)
    if request.headers.get("HX-Request"):
        return panel_response(request, kind, pk)
    return redirect("nodes:dicom")


@require_POST
@role_required(IMPORTER)
def node_probe(request: HttpRequest, pk: int) -> HttpResponse:
    """Queue a probe of a remote node (a few C-FINDs in the worker, qr.probe)."""
    node = get_object_or_404(RemoteNode, pk=pk)
    probe.request_probe(node)
    audit.record("node.probe", node, request=request)
    probe_task(node.pk)
    if request.headers.get("HX-Request"):
        return panel_response(request, services.REMOTE, pk)
    return redirect("nodes:dicom")


@require_GET
@role_required(VIEWER)
def node_panel(request: HttpRequest, kind: str, pk: int) -> HttpResponse:
    return panel_response(request, kind, pk)


def panel_response(request: HttpRequest, kind: str, pk: int) -> HttpResponse:
    """One node's panel, for htmx swaps after an action and for polling."""
    node = services.get_node_or_404(kind, pk)
    context = _page_context(request)
    context["node"] = node
    return render(request, f"nodes/dicom_config_{kind}_panel.html", context)


@require_POST
@role_required(ADMIN)
def delete_settings(request: HttpRequest) -> HttpResponse:
    form = DeleteSettingsForm(request.POST, instance=DeleteSettings.get())
    if form.is_valid():
        form.save()
        audit.record("delete_settings.edit", "delete settings", request=request,
                     detail=audit.changes(form))
        messages.success(request, "Saved delete settings.")
        return redirect("nodes:dicom")
    context = _page_context(request)
    context["delete_form"] = form
    return render(request, "nodes/dicom_config.html", context, status=400)
