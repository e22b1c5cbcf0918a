"""Plain dicts for the API's JSON (dates ISO 8601; absent values null)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.http import HttpRequest
from django.urls import reverse

from dose.models import Study
from dose.queries import headline
from imports.models import ImportRecord
from nodes.models import EchoStatus, RemoteNode, StoreNode
from qr.models import Move, Query
from store.models import StoreRuntime

IDENTITY_KEYS = ("patient_name", "patient_id", "patient_birth_date")


def _iso(value: dt.date | dt.time | dt.datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _text(value: str) -> str | None:
    return value or None


def study_summary(request: HttpRequest, study: Study) -> dict[str, Any]:
    """A row of the Studies list: a study read through dose.queries.with_summary()."""
    h = headline(study)
    return {
        "id": study.pk,
        "url": request.build_absolute_uri(reverse("api:study", args=[study.pk])),
        "study_instance_uid": study.study_instance_uid,
        "modality_type": study.modality_type,
        "study_date": _iso(study.study_date),
        "study_time": _iso(study.study_time),
        "accession_number": _text(study.accession_number),
        "study_description": _text(study.study_description),
        "station_name": _text(study.station_name),
        "manufacturer": _text(study.manufacturer),
        "manufacturer_model_name": _text(study.manufacturer_model_name),
        "number_of_events": h.events,
        "dlp_total_mGycm": h.dlp_mGycm,
        "dap_total_Gym2": h.dap_Gym2,
        "dose_rp_total_Gy": h.dose_rp_Gy,
        "accumulated_agd_by_side_mGy": h.agd_mGy_by_side or None,
        "administered_activity_total_MBq": h.activity_MBq,
    }


def _echo(node: EchoStatus) -> dict[str, Any]:
    state = "unknown" if node.echo_alive is None else "alive" if node.echo_alive else "failed"
    return {
        "status": state,
        "text": node.status_text,
        "reason": _text(node.echo_reason),
        "checked_at": _iso(node.echo_checked_at),
        "rtt_ms": node.echo_rtt_ms,
        "pending": node.echo_pending,
    }


def _runtime(runtime: StoreRuntime | None) -> dict[str, Any] | None:
    if runtime is None:
        return None
    return {
        "state": runtime.shown_state,
        "running": runtime.is_running,
        "run_requested": runtime.run_requested,
        "started_at": _iso(runtime.started_at),
        "last_heartbeat": _iso(runtime.last_heartbeat),
        "restarts": runtime.restarts,
        "associations_open": runtime.associations_open,
        "associations_total": runtime.associations_total,
        "associations_rejected": runtime.associations_rejected,
        "objects_received": runtime.objects_received,
        "objects_discarded": runtime.objects_discarded,
        "objects_failed": runtime.objects_failed,
        "bytes_received": runtime.bytes_received,
        "last_object_at": _iso(runtime.last_object_at),
        "last_error": _text(runtime.last_error),
        "last_error_at": _iso(runtime.last_error_at),
    }


def store_node(node: StoreNode, runtime: StoreRuntime | None) -> dict[str, Any]:
    return {
        "id": node.pk, "name": node.name, "ae_title": node.ae_title, "port": node.port,
        "bind_address": _text(node.bind_address), "controlled": node.controlled,
        "auto_start": node.auto_start, "echo": _echo(node),
        "runtime": _runtime(runtime) if node.controlled else None,
    }


def remote_node(node: RemoteNode) -> dict[str, Any]:
    return {
        "id": node.pk, "name": node.name, "ae_title": node.ae_title, "host": node.host,
        "port": node.port, "calling_ae_title": node.effective_calling_aet,
        "retrieve_method": node.retrieve_method, "echo": _echo(node),
    }


def import_record(record: ImportRecord) -> dict[str, Any]:
    return {
        "id": record.pk,
        "sop_instance_uid": _text(record.sop_instance_uid),
        "sop_class_uid": _text(record.sop_class_uid),
        "study_instance_uid": _text(record.study_instance_uid),
        "kind": _text(record.kind),
        "source": record.source,
        "store_node": record.store_node.name if record.store_node else None,
        "outcome": record.outcome,
        "error": _text(record.error),
        "received_at": _iso(record.received_at),
        "started_at": _iso(record.started_at),
        "finished_at": _iso(record.finished_at),
        "duration_ms": record.duration_ms,
        "created_at": _iso(record.created_at),
    }


def _job(job: Query | Move) -> dict[str, Any]:
    return {
        "id": job.pk, "status": job.status, "message": _text(job.message),
        "errors": job.errors, "created_at": _iso(job.created_at),
        "started_at": _iso(job.started_at), "finished_at": _iso(job.finished_at),
    }


def move(job: Move) -> dict[str, Any]:
    return {
        **_job(job), "method": job.method, "destination_aet": _text(job.destination_aet),
        "completed": job.completed, "failed": job.failed, "warning": job.warning,
        "remaining": job.remaining, "expected": job.expected, "arrived": job.arrived,
    }


def query(job: Query) -> dict[str, Any]:
    return {
        **_job(job),
        "remote": job.remote_name or (job.remote.name if job.remote else None),
        "store": job.store.name if job.store else None,
        "user": job.user.get_username() if job.user else None,
        "scheduled": job.scheduled_id is not None,
        "params": job.params,
        "find_count": job.find_count,
        "auto_move": job.auto_move,
        "moves": [move(m) for m in job.moves.all()],
    }
