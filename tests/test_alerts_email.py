"""Alert e-mail through Django's SMTP backend to a local SMTP sink on a free loopback port;
the message names the study, never the patient."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import socketserver
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage

import pytest
from pytest_django.fixtures import Settings

from alerts.mail import send_alert
from alerts.models import Alert, AlertRule
from alerts.service import evaluate_study
from alerts.tasks import evaluate_study_task
from dose.models import AccumulatedPlane, Study

pytestmark = pytest.mark.django_db


@dataclass
class Received:
    sender: str
    recipients: list[str]
    message: EmailMessage


@dataclass
class Sink:
    port: int
    mail: list[Received] = field(default_factory=list)


class SmtpHandler(socketserver.StreamRequestHandler):
    """Just enough SMTP (RFC 5321) for smtplib: greeting, EHLO, MAIL, RCPT, DATA, QUIT."""

    def reply(self, line: str) -> None:
        self.wfile.write(line.encode() + b"\r\n")

    def handle(self) -> None:
        sink: Sink = self.server.sink  # type: ignore[attr-defined]
        sender, recipients = "", list[str]()
        self.reply("220 sink ready")
        while line := self.rfile.readline():
            verb = line.decode().strip()
            upper = verb.upper()
            if upper.startswith(("EHLO", "HELO")):
                self.reply("250 sink")
            elif upper.startswith("MAIL FROM:"):
                sender, recipients = verb[10:].strip(" <>"), []
                self.reply("250 OK")
            elif upper.startswith("RCPT TO:"):
                recipients.append(verb[8:].strip(" <>"))
                self.reply("250 OK")
            elif upper == "DATA":
                self.reply("354 end with <CRLF>.<CRLF>")
                lines = []
                while (data := self.rfile.readline()) not in (b".\r\n", b""):
                    lines.append(data[1:] if data.startswith(b"..") else data)
                parsed = email.message_from_bytes(b"".join(lines), policy=email.policy.default)
                sink.mail.append(Received(sender, recipients, parsed))  # type: ignore[arg-type]
                self.reply("250 queued")
            elif upper == "QUIT":
                self.reply("221 bye")
                return
            else:
                self.reply("250 OK")


@pytest.fixture
def smtp_sink(settings: Settings) -> Iterator[Sink]:
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), SmtpHandler)
    server.daemon_threads = True
    sink = Sink(port=server.server_address[1])
    server.sink = sink  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", sink.port
    settings.EMAIL_TIMEOUT = 5
    settings.DEFAULT_FROM_EMAIL = "doseport@hospital.example"
    settings.SITE_URL = "https://doseport.hospital.example"
    try:
        yield sink
    finally:
        server.shutdown()
        server.server_close()


PATIENT = {"patient_name": "DOE^JANE", "patient_id": "PID-4711",
           "patient_birth_date": "19610203"}


def rf_study(rp_Gy: float) -> Study:
    study = Study.objects.create(
        study_instance_uid="1.2.826.0.1.3680043.10.88.1", modality_type=Study.RF,
        study_date=dt.date(2024, 6, 1), station_name="ANGIO2", accession_number="ACC-99881",
        **PATIENT,
    )
    AccumulatedPlane.objects.create(study=study, dose_rp_total_Gy=rp_Gy, dap_total_Gym2=0.02)
    return study


def test_it_mails_a_new_alert_without_patient_identifiers(smtp_sink: Sink) -> None:
    AlertRule.objects.create(
        name="RF high dose", modality="RF", quantity="dose_rp", threshold=2.0,
        recipients="physics@hospital.example, radiology@hospital.example",
    )
    study = rf_study(3.25)
    assert evaluate_study_task(study.pk) is not None  # immediate Huey in tests: runs now
    [received] = smtp_sink.mail
    assert received.recipients == ["physics@hospital.example", "radiology@hospital.example"]
    assert received.sender == "doseport@hospital.example"
    subject = str(received.message["Subject"])
    body = received.message.get_content()
    assert subject == (
        "[Doseport] RF alert: Dose at the reference point per study 3250 mGy above "
        "2000 mGy (RF high dose)"
    )
    assert "Study date: 01 Jun 2024" in body and "Station: ANGIO2" in body
    assert "Study Instance UID: 1.2.826.0.1.3680043.10.88.1" in body
    assert f"https://doseport.hospital.example/studies/{study.pk}/" in body
    whole = received.message.as_string()
    for secret in (*PATIENT.values(), "DOE", "JANE", "4711", "1961", "ACC-99881"):
        assert secret not in whole, secret
    alert = Alert.objects.get()
    assert alert.emailed_at is not None and alert.email_error == ""
    # A second evaluation (another report of the study) sends nothing more.
    evaluate_study_task(study.pk)
    assert len(smtp_sink.mail) == 1


def test_a_failed_send_is_stored_on_the_alert(settings: Settings, port: int) -> None:
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", port, 2
    AlertRule.objects.create(name="RF", modality="RF", quantity="dose_rp", threshold=1.0,
                             recipients="physics@hospital.example")
    study = rf_study(3.0)
    [alert] = evaluate_study(study.pk)
    assert send_alert(alert) is False  # nothing listens on the port
    alert.refresh_from_db()
    assert alert.emailed_at is None and "ConnectionRefusedError" in alert.email_error


def test_no_recipients_means_no_mail(smtp_sink: Sink) -> None:
    AlertRule.objects.create(name="RF", modality="RF", quantity="dose_rp", threshold=1.0)
    evaluate_study_task(rf_study(3.0).pk)
    assert smtp_sink.mail == []
