"""Query remote, query details with live progress, history, scheduled queries."""

from __future__ import annotations

from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import Count, Prefetch, Q, QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

import audit
from doseport.auth import IMPORTER, role_required
from nodes.models import RemoteNode, StoreNode
from nodes.tasks import queue_echo
from qr import jobs, tasks, words
from qr.forms import HistoryFilter, QueryForm, ScheduleForm
from qr.models import Move, Query, QueryImage, QuerySeries, QueryStudy, ScheduledQuery, Status


@require_http_methods(["GET", "POST"])
@role_required(IMPORTER)
def query_page(request: HttpRequest) -> HttpResponse:
    form = QueryForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        query = jobs.new_query(data["remote"], data["store"], data["params"],
                               user=request.user, auto_move=data["auto_move"])
        audit.record("query.run", query, request=request, detail={"params": query.params})
        tasks.query_task(query.pk)
        return redirect("qr:detail", query.pk)
    return render(request, "qr/query.html", {"form": form})


def _selected(request: HttpRequest) -> tuple[RemoteNode | None, StoreNode | None]:
    remote_id, store_id = request.GET.get("remote", ""), request.GET.get("store", "")
    remote = RemoteNode.objects.filter(pk=remote_id).first() if remote_id.isdigit() else None
    store = StoreNode.objects.filter(pk=store_id).first() if store_id.isdigit() else None
    return remote, store


@require_GET
@role_required(IMPORTER)
def node_status(request: HttpRequest) -> HttpResponse:
    remote, store = _selected(request)
    return render(request, "qr/query_nodes.html", {"remote": remote, "store": store})


@require_POST
@role_required(IMPORTER)
def echo_nodes(request: HttpRequest) -> HttpResponse:
    """Queue C-ECHOes of the chosen nodes; the worker does the I/O, the panel polls."""
    remote = RemoteNode.objects.filter(pk=request.POST.get("remote") or 0).first()
    store = StoreNode.objects.filter(pk=request.POST.get("store") or 0).first()
    for node in (remote, store):
        if node is not None:
            queue_echo(node)
    return render(request, "qr/query_nodes.html", {"remote": remote, "store": store})


def _tree(query: Query) -> QuerySet[QueryStudy]:
    images = Prefetch("images", QueryImage.objects.select_related("arrival"))
    series = Prefetch("series", QuerySeries.objects.prefetch_related(images))
    return query.studies.prefetch_related(series)


def _live_context(query: Query) -> dict[str, object]:
    move = query.latest_move()
    polling = not query.done or (move is not None and not move.done)
    summary = query.summary() if query.done else None
    return {
        "query": query, "move": move, "polling": polling,
        "summary": summary, "hints": words.hints(query, summary),
        "sentence": words.sentence(query.params, query.remote_name),
        "studies": _tree(query) if query.done else None,
        "stores": StoreNode.objects.all(),
    }


@require_GET
@role_required(IMPORTER)
def detail(request: HttpRequest, pk: int) -> HttpResponse:
    query = get_object_or_404(Query.objects.select_related("remote", "store"), pk=pk)
    return render(request, "qr/detail.html", _live_context(query))


@require_GET
@role_required(IMPORTER)
def live(request: HttpRequest, pk: int) -> HttpResponse:
    query = get_object_or_404(Query.objects.select_related("remote", "store"), pk=pk)
    return render(request, "qr/detail_live.html", _live_context(query))


@require_POST
@role_required(IMPORTER)
def retrieve(request: HttpRequest, pk: int) -> HttpResponse:
    query = get_object_or_404(Query, pk=pk)
    store = StoreNode.objects.filter(pk=request.POST.get("store") or 0).first() or query.store
    move = query.latest_move()
    if not query.done or query.status not in (Status.COMPLETE, Status.PARTIAL):
        messages.error(request, "Only a finished query can be retrieved.")
    elif move is not None and not move.done:
        messages.error(request, "A retrieve of this query is already running.")
    elif store is None:
        messages.error(request, "Choose the store node to retrieve to.")
    else:
        move = jobs.new_move(query, store)
        audit.record("retrieve.run", move, request=request, detail={"store": store.name})
        tasks.move_task(move.pk)
    return redirect("qr:detail", query.pk)


@require_POST
@role_required(IMPORTER)
def cancel(request: HttpRequest, pk: int) -> HttpResponse:
    query = get_object_or_404(Query, pk=pk)
    for job in [query, *query.moves.all()]:
        job.request_cancel()  # a state transition the worker honours (qr.models.Job)
    messages.info(request, "Cancel requested.")
    return redirect("qr:detail", query.pk)


@require_POST
@role_required(IMPORTER)
def again(request: HttpRequest, pk: int) -> HttpResponse:
    query = get_object_or_404(Query, pk=pk)
    try:
        new = jobs.run_again(query, user=request.user)
    except ValueError as exc:
        messages.error(request, str(exc))
        return redirect("qr:detail", query.pk)
    audit.record("query.run", new, request=request, detail={"again_of": query.pk})
    tasks.query_task(new.pk)
    return redirect("qr:detail", new.pk)


@require_GET
@role_required(IMPORTER)
def history(request: HttpRequest) -> HttpResponse:
    form = HistoryFilter(request.GET or None)
    queries = Query.objects.select_related("remote", "scheduled").annotate(
        n_studies=Count("studies", distinct=True),
        n_kept=Count("studies", filter=Q(studies__excluded=False), distinct=True),
    )
    if form.is_valid():
        data = form.cleaned_data
        if data["remote"]:
            queries = queries.filter(remote=data["remote"])
        if data["status"]:
            queries = queries.filter(status=data["status"])
        if data["since"]:
            queries = queries.filter(created_at__date__gte=data["since"])
        if data["until"]:
            queries = queries.filter(created_at__date__lte=data["until"])
    page = Paginator(queries.order_by("-created_at"), 50).get_page(request.GET.get("page"))
    moves = {
        m.query_id: m for m in Move.objects.filter(query__in=list(page)).order_by("created_at")
    }
    rows = [(q, moves.get(q.pk)) for q in page]
    return render(request, "qr/history.html", {"form": form, "page": page, "rows": rows})


@require_POST
@role_required(IMPORTER)
def delete(request: HttpRequest) -> HttpResponse:
    ids = [int(i) for i in request.POST.getlist("ids") if i.isdigit()]
    running = Query.objects.filter(pk__in=ids, status__in=[Status.QUEUED, Status.RUNNING])
    deleted, _ = Query.objects.filter(pk__in=ids).exclude(pk__in=running).delete()
    if ids:
        kept = list(running.values_list("pk", flat=True))
        audit.record("query.delete", "queries " + ", ".join(map(str, ids)), request=request,
                     detail={"ids": ids, "running_not_deleted": kept})
    if running.exists():
        messages.error(request, "Running queries were not deleted; cancel them first.")
    messages.success(request, f"Deleted {len(ids) - running.count()} queries.")
    return redirect("qr:history")


@require_http_methods(["GET", "POST"])
@role_required(IMPORTER)
def schedules(request: HttpRequest) -> HttpResponse:
    form = ScheduleForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        schedule = form.save()
        messages.success(request, f"Scheduled query {schedule.name!r} saved.")
        return redirect("qr:schedules")
    items = ScheduledQuery.objects.select_related("remote", "store")
    return render(request, "qr/schedules.html", {"form": form, "schedules": items})


@require_POST
@role_required(IMPORTER)
def schedule_toggle(request: HttpRequest, pk: int) -> HttpResponse:
    schedule = get_object_or_404(ScheduledQuery, pk=pk)
    if request.POST.get("action") == "delete":
        schedule.delete()
    else:
        schedule.enabled = not schedule.enabled
        schedule.save(update_fields=["enabled"])
    return redirect("qr:schedules")
