"""/studies/export/: the Studies page's filters as CSV or XLSX; large exports go to the worker.

Who may export: every role that may read the list (viewer and up), since the export holds
what the pages show. Patient identity columns (name, id, birth date) only for admins, and
only when the site stores identity (DOSEPORT_PATIENT_IDENTITY is not `none`).
"""

from __future__ import annotations

import io
from typing import cast

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET

import audit
from dose import export_jobs
from dose.export_forms import ExportForm
from dose.export_job import ExportJob
from dose.forms import StudyFilterForm
from dose.tasks import queue_export
from dose.web_export import ExportSpec, export_size, write_export
from doseport.auth import ADMIN, VIEWER, has_role, role_required


def may_see_identity(user: object) -> bool:
    return settings.PATIENT_IDENTITY != "none" and has_role(user, ADMIN)  # type: ignore[arg-type]


@require_GET
@role_required(VIEWER)
def export(request: HttpRequest) -> HttpResponse:
    choice = ExportForm(request.GET)
    filters = StudyFilterForm(request.GET)
    if not (choice.is_valid() and filters.is_valid()):
        context = {"choice": choice, "filters": filters}
        return render(request, "dose/export_invalid.html", context, status=400)
    spec = ExportSpec(filters.study_filter(), choice.choice("format"), choice.choice("layout"),
                      identity=may_see_identity(request.user))
    size = export_size(spec.flt)
    query = export_jobs.filter_query(request.GET)
    detail = {"format": spec.fmt, "layout": spec.layout, "filters": query,
              "studies": size.studies, "events": size.events, "identity": spec.identity}
    if size.rows("event") > settings.EXPORT_DIRECT_MAX_ROWS:
        job = export_jobs.create_job(spec, query, request.user, size.rows(spec.layout))
        queue_export(job)
        audit.record("export.run", f"export {job.pk}", request=request, detail=detail)
        return redirect("dose:export_job", job.pk)
    buffer = io.BytesIO()
    rows = write_export(spec, buffer)
    audit.record("export.run", "studies", request=request, detail={**detail, "rows": rows})
    response = HttpResponse(buffer.getvalue(), content_type=spec.content_type)
    name = spec.file_name(timezone.localtime())  # ASCII letters, digits, dashes: no quoting
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


def _own_job(request: HttpRequest, pk: int) -> ExportJob:
    """A user sees their own exports; admins see everyone's."""
    job = get_object_or_404(ExportJob, pk=pk)
    if job.user_id != request.user.pk and not has_role(request.user, ADMIN):
        raise PermissionDenied("This export was made by another user.")
    return job


@require_GET
@role_required(VIEWER)
def export_job(request: HttpRequest, pk: int) -> HttpResponse:
    job = _own_job(request, pk)
    return render(request, "dose/export_job.html", {"job": job})


@require_GET
@role_required(VIEWER)
def export_job_status(request: HttpRequest, pk: int) -> HttpResponse:
    job = _own_job(request, pk)
    return render(request, "dose/export_job_status.html", {"job": job})


@require_GET
@role_required(VIEWER)
def export_download(request: HttpRequest, pk: int) -> HttpResponse:
    job = _own_job(request, pk)
    if not job.downloadable() or job.path is None:
        raise Http404("This export has expired or is not ready.")
    audit.record("export.download", f"export {job.pk}", request=request,
                 detail={"rows": job.rows_done, "bytes": job.size_bytes})
    response = FileResponse(job.path.open("rb"), as_attachment=True, filename=job.download_name,
                            content_type=export_jobs.spec_of(job).content_type)
    # Streamed from the file (exports can be large); role_required is typed for HttpResponse.
    return cast(HttpResponse, response)
