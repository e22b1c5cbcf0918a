"""E-mail for a new alert, sent from the worker after the import has committed.

The message names the study by date, modality, station and UIDs with a link: never the
patient's name, id or birth date, even when the site stores them.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.mail import EmailMessage
from django.template.loader import render_to_string
from django.utils import timezone

from alerts.models import Alert
from alerts.quantities import shown_unit, text

log = logging.getLogger(__name__)
NOT_CONFIGURED = "e-mail is not configured (DOSEPORT_EMAIL_HOST is empty)"


def message(alert: Alert) -> EmailMessage:
    context = {
        "alert": alert, "site_url": settings.SITE_URL.rstrip("/"),
        "value": text(alert.quantity, alert.value),
        "threshold": text(alert.quantity, alert.threshold),
        "unit": shown_unit(alert.quantity).label,
        "quantity": alert.quantity_def.label,
    }
    subject = " ".join(render_to_string("alerts/email_subject.txt", context).split())
    body = render_to_string("alerts/email.txt", context)
    return EmailMessage(
        subject=subject, body=body, from_email=settings.DEFAULT_FROM_EMAIL,
        to=[a.strip() for a in alert.recipients.split(",") if a.strip()],
    )


def send_alert(alert: Alert) -> bool:
    """Send, and store the outcome on the alert (the Alerts page shows a failure)."""
    if not alert.recipients.strip():
        return False
    if not settings.EMAIL_HOST:
        alert.email_error = NOT_CONFIGURED
        alert.save(update_fields=["email_error"])
        return False
    try:
        message(alert).send()
    except Exception as exc:  # SMTP, DNS, TLS: stored where people look, never raised
        log.warning("alert %s: e-mail not sent: %s", alert.pk, exc)
        alert.email_error = f"{type(exc).__name__}: {exc}"[:1000]
        alert.save(update_fields=["email_error"])
        return False
    alert.emailed_at = timezone.now()
    alert.email_error = ""
    alert.save(update_fields=["emailed_at", "email_error"])
    return True
