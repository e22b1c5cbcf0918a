"""Forms for levels and rules: values typed in the unit pages show, stored in schema units."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django import forms
from django.core.validators import validate_email

from alerts.models import AlertRule, ReferenceLevel
from alerts.quantities import QUANTITIES, shown_unit, to_schema, to_shown

DATE = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
CRITERIA = ["name", "modality", "quantity", "pattern_on", "pattern", "pattern_kind"]


def unit_help(field: str) -> str:
    units = "; ".join(
        f"{q.label}: {shown_unit(q.code).label}"
        + ("" if shown_unit(q.code).label == q.unit else f" (stored in {q.unit})")
        for q in QUANTITIES.values()
    )
    return f"The {field} in the unit pages show for the chosen quantity — {units}."


class CriteriaForm(forms.ModelForm):
    """`amount` is the model's value or threshold as typed, in the shown unit."""

    amount_field = "value"
    amount = forms.FloatField(min_value=0)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        stored = getattr(self.instance, self.amount_field, None)
        if self.instance.pk and stored is not None:
            self.initial["amount"] = f"{to_shown(self.instance.quantity, stored):.6g}"

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        modality, code = data.get("modality"), data.get("quantity")
        if modality and code and modality not in QUANTITIES[code].modalities:
            quantity = QUANTITIES[code]
            self.add_error("quantity", f"{quantity.label} is not a quantity of {modality} "
                           f"studies (it is for {', '.join(quantity.modalities)}).")
        return data

    def save(self, commit: bool = True) -> Any:
        setattr(self.instance, self.amount_field,
                to_schema(self.cleaned_data["quantity"], self.cleaned_data["amount"]))
        return super().save(commit)


class ReferenceLevelForm(CriteriaForm):
    amount = forms.FloatField(min_value=0, label="Level", help_text=unit_help("level"))

    class Meta:
        model = ReferenceLevel
        fields = [*CRITERIA, "age_min_years", "age_max_years", "weight_min_kg", "weight_max_kg",
                  "size_min_m", "size_max_m", "active"]
        labels = {
            "age_min_years": "Age from (years)", "age_max_years": "Age below (years)",
            "weight_min_kg": "Weight from (kg)", "weight_max_kg": "Weight below (kg)",
            "size_min_m": "Height from (m)", "size_max_m": "Height below (m)",
        }
        help_texts = {
            "age_min_years": "Optional bands (lower bound included, upper excluded); the age is "
            "the study's patient age in decimal years. A study without the value does not "
            "match a level that has the band.",
        }

    field_order = ["name", "modality", "quantity", "amount"]

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        for low, high in (("age_min_years", "age_max_years"), ("weight_min_kg", "weight_max_kg"),
                          ("size_min_m", "size_max_m")):
            if data.get(low) is not None and data.get(high) is not None \
                    and data[low] >= data[high]:
                self.add_error(high, "The upper bound must be above the lower bound.")
        return data


class AlertRuleForm(CriteriaForm):
    amount_field = "threshold"
    amount = forms.FloatField(min_value=0, label="Threshold", help_text=unit_help("threshold"))

    class Meta:
        model = AlertRule
        fields = [*CRITERIA, "kind", "window_days", "recipients", "active"]
        widgets = {"recipients": forms.TextInput(attrs={"size": 60})}
        labels = {"kind": "Rule", "window_days": "Window (days)"}

    field_order = ["name", "modality", "quantity", "amount", "kind", "window_days"]

    def clean_recipients(self) -> str:
        addresses = [a.strip() for a in self.cleaned_data["recipients"].split(",") if a.strip()]
        for address in addresses:
            try:
                validate_email(address)
            except forms.ValidationError:
                raise forms.ValidationError(f"{address!r} is not an e-mail address.") from None
        return ", ".join(addresses)

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if data.get("kind") == "cumulative":
            if not data.get("window_days"):
                self.add_error("window_days", "A cumulative rule needs a window in days.")
            code = data.get("quantity")
            if code and not QUANTITIES[code].cumulative_ok:
                self.add_error("quantity", f"{QUANTITIES[code].label} cannot be summed over "
                               "studies; choose a study total (DLP, DAP, dose at the reference "
                               "point, activity).")
        return data


class PeriodForm(forms.Form):
    since = forms.DateField(required=False, widget=DATE, label="Studies from")
    until = forms.DateField(required=False, widget=DATE, label="to")

    def period(self, today: dt.date) -> tuple[dt.date | None, dt.date | None]:
        """The chosen period; the last 12 months without one."""
        if self.is_bound and self.is_valid():
            data = self.cleaned_data
            if data["since"] or data["until"]:
                return data["since"], data["until"]
        return today - dt.timedelta(days=365), today


class AcknowledgeForm(forms.Form):
    note = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}), max_length=2000,
        help_text="What was done or decided (follow-up booked, reviewed, not clinical ...).",
    )


class AlertFilterForm(forms.Form):
    show = forms.ChoiceField(
        choices=[("open", "not acknowledged"), ("all", "all")], required=False
    )
