"""DICOM nodes: local store nodes, remote query/retrieve nodes, delete policy."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import models
from django.utils import timezone

from lib.dicom import EchoResult, Peer
from nodes import validators as v

# An echo takes at most ~20 s (capped timeouts); a request older than this was not picked up.
ECHO_OVERDUE_S = 60


class EchoStatus(models.Model):
    """Result of the last C-ECHO, stored on the node and shown in its panel title."""

    echo_alive = models.BooleanField(null=True, blank=True, default=None)
    echo_reason = models.CharField(max_length=500, blank=True, default="")
    echo_checked_at = models.DateTimeField(null=True, blank=True)
    echo_rtt_ms = models.FloatField(null=True, blank=True)
    echo_requested_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True

    @property
    def status_text(self) -> str:
        if self.echo_alive is None:
            return "Unknown"
        if self.echo_alive:
            return "Alive"
        return f"Not responding: {self.echo_reason}"

    @property
    def echo_pending(self) -> bool:
        requested = self.echo_requested_at
        return requested is not None and (
            self.echo_checked_at is None or self.echo_checked_at < requested
        )

    @property
    def echo_overdue(self) -> bool:
        """Queued long ago without a result: no worker is taking tasks; stop polling."""
        requested = self.echo_requested_at
        return (
            self.echo_pending
            and requested is not None
            and timezone.now() - requested > timedelta(seconds=ECHO_OVERDUE_S)
        )

    def record_echo(self, result: EchoResult) -> None:
        self.echo_alive = result.ok
        self.echo_reason = result.reason[:500]
        self.echo_rtt_ms = result.rtt_ms
        self.echo_checked_at = timezone.now()
        self.save(
            update_fields=["echo_alive", "echo_reason", "echo_rtt_ms", "echo_checked_at"]
        )

    def request_echo(self) -> None:
        """Mark a check as queued; the panel polls while `echo_pending`."""
        self.echo_requested_at = timezone.now()
        self.save(update_fields=["echo_requested_at"])

    def peer(self, short: bool = False) -> Peer:
        raise NotImplementedError


class StoreNode(EchoStatus):
    name = models.CharField(
        max_length=64, unique=True,
        error_messages={
            "unique": "Name: another store node already has this name; choose another."
        },
    )
    ae_title = models.CharField(
        "AE title", max_length=16, validators=[v.validate_store_ae_title],
        help_text="1-16 letters or digits, no spaces. Remote systems send to this title.",
    )
    port = models.PositiveIntegerField(
        validators=[v.validate_port],
        help_text="TCP port to listen on. Ports below 1024 need privileges; the firewall "
        "of this host must allow incoming connections on this port.",
    )
    bind_address = models.CharField(
        max_length=45, blank=True, default="", validators=[v.validate_bind_address],
        help_text="IP address to listen on; empty = all interfaces.",
    )
    controlled = models.BooleanField(
        default=True,
        help_text="Doseport runs this node and it can be started and stopped here. "
        "Untick for a third-party store (Conquest, Orthanc) used only as a retrieve destination.",
    )
    auto_start = models.BooleanField(
        default=False, help_text="Start this node whenever it is found not running."
    )
    allowed_calling_aets = models.TextField(
        "allowed calling AE titles", blank=True, default="", validators=[v.validate_ae_list],
        help_text="Only these callers may send (commas or new lines); empty = any caller.",
    )
    host = models.CharField(
        max_length=253, blank=True, default="",
        help_text="Third-party store only: host where it listens (for echo).",
    )
    runs_on = models.CharField(
        "runs on server", max_length=64, blank=True, default="",
        help_text="Server name (DOSEPORT_SERVER_NAME) whose supervisor runs this node; "
        "empty = the server that created it.",
    )
    tls = models.BooleanField(
        "DICOM TLS", default=False,
        help_text="Accept only TLS connections (DOSEPORT_TLS_CERT/KEY/CA).",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["port", "bind_address"],
                condition=models.Q(controlled=True),
                name="unique_controlled_store_port",
                violation_error_message="Another store node already listens on this port.",
            )
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.ae_title}:{self.port})"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self._state.adding and not self.runs_on:
            self.runs_on = settings.SERVER_NAME  # the server that creates it runs it
        super().save(*args, **kwargs)

    @property
    def allowed_calling_aet_list(self) -> list[str]:
        return v.parse_ae_list(self.allowed_calling_aets)

    @property
    def port_warning(self) -> str:
        return v.port_warning(self.port)

    def peer(self, short: bool = False) -> Peer:
        """Where to echo this node; its timeouts are always short (`short` for symmetry)."""
        host = self.host or self.bind_address or "127.0.0.1"
        if host in ("0.0.0.0", "::"):
            host = "127.0.0.1"
        return Peer(
            ae_title=self.ae_title, host=host, port=self.port,
            # The health check's own AE title, which a node admits from this host only.
            calling_ae_title=settings.HEALTH_AE,
            connect_timeout=3, acse_timeout=5, dimse_timeout=5, network_timeout=10,
            tls=self.tls,
        )


class RemoteNode(EchoStatus):
    RETRIEVE_MOVE = "move"
    RETRIEVE_GET = "get"
    name = models.CharField(
        max_length=64, unique=True,
        error_messages={
            "unique": "Name: another remote node already has this name; choose another."
        },
    )
    ae_title = models.CharField(
        "remote AE title", max_length=16, validators=[v.validate_remote_ae_title],
        help_text="The AE title of the PACS or modality, exactly as configured there.",
    )
    host = models.CharField(max_length=253, validators=[v.validate_host])
    port = models.PositiveIntegerField(validators=[v.validate_port])
    calling_ae_title = models.CharField(
        "our calling AE title", max_length=16, blank=True, default="",
        validators=[v.validate_remote_ae_title],
        help_text="AE title we use when calling this node; empty = the site AE title.",
    )
    use_modality_tag = models.BooleanField(
        default=False,
        help_text="Send Modality at study level (for archives that need it).",
    )
    retrieve_method = models.CharField(
        max_length=4, default=RETRIEVE_MOVE,
        choices=[(RETRIEVE_MOVE, "C-MOVE to a store node"), (RETRIEVE_GET, "C-GET")],
    )
    connect_timeout = models.PositiveIntegerField(
        "connect timeout (s)", default=5, validators=v.timeout_validators("Connect timeout", 60),
        help_text="Seconds to wait for the TCP connection (1-60; default 5).",
    )
    acse_timeout = models.PositiveIntegerField(
        "association timeout (s)", default=10,
        validators=v.timeout_validators("Association timeout", 300),
        help_text="Seconds to wait for the association to be accepted (1-300; default 10).",
    )
    dimse_timeout = models.PositiveIntegerField(
        "response timeout (s)", default=60,
        validators=v.timeout_validators("Response timeout", 3600),
        help_text="Seconds to wait for each query or move response (1-3600; default 60).",
    )
    network_timeout = models.PositiveIntegerField(
        "network timeout (s)", default=120,
        validators=v.timeout_validators("Network timeout", 3600),
        help_text="Seconds of silence before the connection is dropped (1-3600; default 120).",
    )
    tls = models.BooleanField(
        "DICOM TLS", default=False,
        help_text="Connect with TLS and verify the peer against DOSEPORT_TLS_CA.",
    )
    probe_result = models.JSONField(
        null=True, blank=True, default=None,
        help_text="What the last probe found this PACS supports.",
    )
    probed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.ae_title}@{self.host}:{self.port})"

    @property
    def effective_calling_aet(self) -> str:
        return self.calling_ae_title or settings.AE_TITLE

    def peer(self, short: bool = False) -> Peer:
        """Connection settings; `short` caps timeouts for health checks."""
        def cap(value: int, limit: int) -> float:
            return float(min(value, limit) if short else value)

        return Peer(
            ae_title=self.ae_title, host=self.host, port=self.port,
            calling_ae_title=self.effective_calling_aet,
            connect_timeout=cap(self.connect_timeout, 3),
            acse_timeout=cap(self.acse_timeout, 5),
            dimse_timeout=cap(self.dimse_timeout, 5),
            network_timeout=cap(self.network_timeout, 10),
            tls=self.tls,
        )


class DeleteSettings(models.Model):
    """One row: what to delete after receipt or import. Defaults keep everything."""

    del_no_match = models.BooleanField(
        "delete objects that match no importer", default=False,
        help_text="Objects Doseport cannot extract dose from (e.g. CT images) are discarded "
        "on arrival instead of being kept in the spool.",
    )
    del_rdsr = models.BooleanField(
        "delete dose SRs after import", default=False,
        help_text="Radiation dose structured reports are removed once imported.",
    )
    del_dx_im = models.BooleanField(
        "delete DX/CR images after import", default=False,
        help_text="Radiography images are removed once their dose fields are imported.",
    )
    del_mg_im = models.BooleanField(
        "delete mammography images after import", default=False,
        help_text="MG images are removed once their dose fields are imported.",
    )
    del_ct_phil = models.BooleanField(
        "delete Philips CT dose screens after import", default=False,
        help_text="Philips 'dose info' secondary captures are removed once imported.",
    )
    del_nm_im = models.BooleanField(
        "delete NM/PET images after import", default=False,
        help_text="NM and PET images are removed once activity data is imported.",
    )

    class Meta:
        verbose_name_plural = "delete settings"

    def __str__(self) -> str:
        return "Delete settings"

    @classmethod
    def get(cls) -> DeleteSettings:
        obj, _ = cls.objects.get_or_create(pk=1)
        return obj
