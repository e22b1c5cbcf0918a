"""Reference levels (e.g. national DRLs), alert rules and the alerts they raised.

Levels and thresholds are stored in the schema's units (alerts/quantities.py); which studies
a level or rule applies to is decided in alerts/matching.py.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from alerts.quantities import QUANTITIES, QUANTITY_CHOICES, Quantity
from dose.models import Study


class PatternOn(models.TextChoices):
    DESCRIPTION = "description", "study description"
    PROTOCOL = "protocol", "acquisition protocol (NM: radiopharmaceutical)"


class PatternKind(models.TextChoices):
    CONTAINS = "contains", "contains (any case)"
    GLOB = "glob", "glob: * any text, ? one character (any case)"


class Criteria(models.Model):
    """Which studies (or events) and which quantity: shared by levels and rules."""

    name = models.CharField(max_length=100)
    modality = models.CharField(max_length=2, choices=Study.MODALITY_CHOICES)
    quantity = models.CharField(max_length=16, choices=QUANTITY_CHOICES)
    pattern_on = models.CharField(
        max_length=16, choices=PatternOn.choices, default=PatternOn.DESCRIPTION
    )
    pattern = models.CharField(
        max_length=200, blank=True, default="", help_text="empty: every study of the modality"
    )
    pattern_kind = models.CharField(
        max_length=8, choices=PatternKind.choices, default=PatternKind.CONTAINS
    )
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True

    @property
    def quantity_def(self) -> Quantity:
        return QUANTITIES[self.quantity]


class ReferenceLevel(Criteria):
    value = models.FloatField(help_text="in the schema unit of the quantity")
    # Bands: lower bound inclusive, upper bound exclusive; a study without the value does
    # not match a level that has the band.
    age_min_years = models.FloatField(null=True, blank=True)
    age_max_years = models.FloatField(null=True, blank=True)
    weight_min_kg = models.FloatField(null=True, blank=True)
    weight_max_kg = models.FloatField(null=True, blank=True)
    size_min_m = models.FloatField(null=True, blank=True)
    size_max_m = models.FloatField(null=True, blank=True)

    class Meta:
        ordering = ["modality", "name", "pk"]

    def __str__(self) -> str:
        return self.name

    def bands(self) -> dict[str, tuple[float | None, float | None]]:
        return {
            "patient_age_decimal_years": (self.age_min_years, self.age_max_years),
            "patient_weight_kg": (self.weight_min_kg, self.weight_max_kg),
            "patient_size_m": (self.size_min_m, self.size_max_m),
        }


class RuleKind(models.TextChoices):
    STUDY = "study", "one study"
    CUMULATIVE = "cumulative", "cumulative per patient over a window"


class AlertRule(Criteria):
    kind = models.CharField(max_length=12, choices=RuleKind.choices, default=RuleKind.STUDY)
    threshold = models.FloatField(help_text="in the schema unit of the quantity")
    window_days = models.PositiveIntegerField(
        null=True, blank=True, help_text="cumulative rules: days up to and including the study"
    )
    recipients = models.TextField(
        blank=True, default="", help_text="e-mail addresses, comma-separated"
    )

    class Meta:
        ordering = ["modality", "name", "pk"]

    def __str__(self) -> str:
        return self.name

    @property
    def cumulative(self) -> bool:
        return self.kind == RuleKind.CUMULATIVE

    def recipient_list(self) -> list[str]:
        return [a.strip() for a in self.recipients.split(",") if a.strip()]


class Alert(models.Model):
    """A crossed threshold. Rule and study facts are copied so the alert outlives both."""

    rule = models.ForeignKey(AlertRule, null=True, on_delete=models.SET_NULL, related_name="alerts")
    study = models.ForeignKey(Study, null=True, on_delete=models.SET_NULL, related_name="+")
    rule_name = models.CharField(max_length=100)
    quantity = models.CharField(max_length=16, choices=QUANTITY_CHOICES)
    kind = models.CharField(max_length=12, choices=RuleKind.choices)
    # A study rebuilt from a cumulative report gets a new row; its UID stays.
    study_instance_uid = models.CharField(max_length=64)
    modality = models.CharField(max_length=2)
    study_date = models.DateField(null=True, blank=True)
    station_name = models.CharField(max_length=64, blank=True, default="")
    value = models.FloatField(help_text="schema unit; cumulative rules: the window's sum")
    threshold = models.FloatField()
    window_days = models.PositiveIntegerField(null=True, blank=True)
    studies_counted = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    acknowledged_at = models.DateTimeField(null=True, blank=True, db_index=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
        related_name="+",
    )
    acknowledged_by_name = models.CharField(max_length=150, blank=True, default="")
    note = models.TextField(blank=True, default="")
    recipients = models.TextField(blank=True, default="")
    emailed_at = models.DateTimeField(null=True, blank=True)
    email_error = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["rule", "study_instance_uid"], name="alerts_one_per_rule_and_study"
            )
        ]

    def __str__(self) -> str:
        return f"alert {self.pk} ({self.rule_name})"

    @property
    def quantity_def(self) -> Quantity:
        return QUANTITIES[self.quantity]

    @property
    def acknowledged(self) -> bool:
        return self.acknowledged_at is not None

    def acknowledge(self, user: object, note: str) -> None:
        self.acknowledged_at = timezone.now()
        self.acknowledged_by = user  # type: ignore[assignment]
        self.acknowledged_by_name = str(getattr(user, "get_username", lambda: "")())[:150]
        self.note = note
        self.save(update_fields=[
            "acknowledged_at", "acknowledged_by", "acknowledged_by_name", "note",
        ])
