"""Alert evaluation after an import.

imports/service.py calls after_import() inside its transaction; evaluation runs once the
transaction has committed (in the worker's task queue), so it can neither fail nor slow
the import. Each rule fires at most once per study (unique rule + Study Instance UID), so a
re-import, a duplicate or a continued report never repeats an alert or its e-mail.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from django.conf import settings
from django.db import IntegrityError, transaction

from alerts.matching import values
from alerts.models import Alert, AlertRule
from dose.models import Study

log = logging.getLogger(__name__)


def identity_stored() -> bool:
    """Cumulative rules need a patient identity on each study (DOSEPORT_PATIENT_IDENTITY)."""
    return settings.PATIENT_IDENTITY in ("hashed", "plain")


def after_import(study_id: int) -> None:
    """Queue the evaluation of a study for when the import's transaction commits."""
    transaction.on_commit(lambda: _queue(study_id))


def _queue(study_id: int) -> None:
    try:
        from alerts.tasks import evaluate_study_task

        # Without rules an import costs one indexed read here, not a queued task.
        if AlertRule.objects.filter(active=True).exists():
            evaluate_study_task(study_id)
    except Exception:  # an alert problem must never fail an import; it is logged
        log.exception("alert evaluation of study %s could not be queued", study_id)


@dataclass(frozen=True)
class Crossing:
    value: float
    studies: int = 1


def study_value(rule: AlertRule, study: Study) -> float | None:
    """The rule's quantity for one study (per-event quantities: the highest event)."""
    found = [float(v) for _, v in values(rule, Study.objects.filter(pk=study.pk))]
    return max(found) if found else None


def window_start(study_date: dt.date, days: int) -> dt.date:
    return study_date - dt.timedelta(days=days)


def cumulative(rule: AlertRule, study: Study) -> Crossing | None:
    """Sum over the patient's matching studies in the window ending on this study's date.

    Needs a stored identity; studies hashed with another scheme or key never match."""
    if not identity_stored() or not study.patient_id or study.study_date is None:
        return None
    same_patient = Study.objects.filter(
        patient_id=study.patient_id, identity_hash=study.identity_hash,
        study_date__gte=window_start(study.study_date, rule.window_days or 0),
        study_date__lte=study.study_date,
    )
    found = dict(values(rule, same_patient))
    if study.pk not in found:
        return None  # this study adds nothing to the sum: it does not trigger the rule
    return Crossing(sum(float(v) for v in found.values()), len(found))


def crossing(rule: AlertRule, study: Study) -> Crossing | None:
    if rule.cumulative:
        found = cumulative(rule, study)
    else:
        value = study_value(rule, study)
        found = None if value is None else Crossing(value)
    return found if found is not None and found.value > rule.threshold else None


def evaluate_study(study_id: int) -> list[Alert]:
    """Create the alerts a study's import raised; returns only the new ones."""
    study = Study.objects.filter(pk=study_id).first()
    if study is None:
        return []
    new = []
    for rule in AlertRule.objects.filter(active=True, modality=study.modality_type):
        found = crossing(rule, study)
        if found is None:
            continue
        alert = _record(rule, study, found)
        if alert is not None:
            new.append(alert)
    return new


def _record(rule: AlertRule, study: Study, found: Crossing) -> Alert | None:
    existing = Alert.objects.filter(rule=rule, study_instance_uid=study.study_instance_uid)
    if existing.exists():
        # A report added to the study may raise its value: keep the alert current, no mail.
        existing.filter(value__lt=found.value).update(
            value=found.value, studies_counted=found.studies, study=study
        )
        return None
    alert = Alert(
        rule=rule, study=study, rule_name=rule.name, quantity=rule.quantity, kind=rule.kind,
        study_instance_uid=study.study_instance_uid, modality=study.modality_type,
        study_date=study.study_date, station_name=study.station_name, value=found.value,
        threshold=rule.threshold, window_days=rule.window_days if rule.cumulative else None,
        studies_counted=found.studies, recipients=", ".join(rule.recipient_list()),
    )
    try:
        with transaction.atomic():
            alert.save()
    except IntegrityError:  # another worker recorded it first
        return None
    log.info("alert %s: rule %s, study %s", alert.pk, rule.pk, study.study_instance_uid)
    return alert
