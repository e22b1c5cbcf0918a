from __future__ import annotations

from django import forms
from django.conf import settings

from dose.models import Study
from dose.queries import DEFAULT_SORT, DOSE_MEASURES, SORTS, StudyFilter
from lib.format import dap_unit

MAX_AGE_YEARS = 150
# What the list shows a headline dose in, where it differs from the schema unit.
DOSE_INPUT = {"DX": "dap", "RF": "dap"}


def dose_label(modality: str) -> str:
    """'DLP (mGy·cm)': what the dose range means for `modality`, in the unit the list shows."""
    measure, unit = DOSE_MEASURES.get(modality.upper(), ("Dose (choose a modality)", ""))
    if DOSE_INPUT.get(modality.upper()) == "dap":
        unit = dap_unit(settings.DAP_UNIT).label
    return f"{measure} ({unit})" if unit else measure


def _number(label: str, **attrs: str) -> forms.FloatField:
    return forms.FloatField(
        required=False, min_value=0, label=label,
        widget=forms.NumberInput(attrs={"step": "any", "min": "0", "class": "short", **attrs}),
    )


class StudyFilterForm(forms.Form):
    modality = forms.ChoiceField(
        choices=[("", "any"), *Study.MODALITY_CHOICES], required=False
    )
    date_from = forms.DateField(
        required=False, label="from", widget=forms.DateInput(attrs={"type": "date"})
    )
    date_to = forms.DateField(
        required=False, label="to", widget=forms.DateInput(attrs={"type": "date"})
    )
    station = forms.CharField(required=False, max_length=64, label="station name",
                              widget=forms.TextInput(attrs={"size": 10}))
    accession = forms.CharField(
        required=False, max_length=64, label="accession number starts with",
        widget=forms.TextInput(attrs={"size": 12, "title": "An accession number, or its "
                                      "first characters (as typed or in capitals)"}),
    )
    q = forms.CharField(
        required=False, max_length=256, label="description, protocol or station contains",
        widget=forms.TextInput(attrs={"type": "search", "size": 18}),
    )
    equipment = forms.CharField(
        required=False, max_length=128, label="manufacturer or model contains",
        widget=forms.TextInput(attrs={"size": 12}),
    )
    age_min = _number("age from (years)")
    age_max = _number("age to (years)")
    dose_min = _number("dose from")
    dose_max = _number("dose to")
    # Exact values that the dose insight pages link with; shown only when set.
    manufacturer = forms.CharField(required=False, max_length=128, widget=forms.HiddenInput)
    model = forms.CharField(required=False, max_length=128, widget=forms.HiddenInput)
    protocol = forms.CharField(required=False, max_length=1024, widget=forms.HiddenInput)
    description = forms.CharField(required=False, max_length=256, widget=forms.HiddenInput)
    sort = forms.ChoiceField(
        choices=[(p + k, p + k) for k in SORTS for p in ("", "-")], required=False,
        widget=forms.HiddenInput,
    )

    def clean(self) -> dict[str, object]:
        data = super().clean() or {}
        start, end = data.get("date_from"), data.get("date_to")
        if start and end and start > end:
            raise forms.ValidationError("The 'from' date is after the 'to' date.")
        for name in ("age_min", "age_max"):
            age = data.get(name)
            if age is not None and age > MAX_AGE_YEARS:
                self.add_error(name, f"Enter an age in years, at most {MAX_AGE_YEARS}.")
                data.pop(name, None)
        self._check_range(data, "age_min", "age_max", "age")
        self._check_range(data, "dose_min", "dose_max", "dose")
        has_dose = data.get("dose_min") is not None or data.get("dose_max") is not None
        if has_dose and not data.get("modality"):
            self.add_error("modality", "Choose a modality for a dose range (DLP for CT, DAP "
                           "for DX and RF, AGD for MG, activity for NM).")
        return data

    def _check_range(self, data: dict[str, object], low: str, high: str, what: str) -> None:
        start, end = data.get(low), data.get(high)
        if isinstance(start, float) and isinstance(end, float) and start > end:
            self.add_error(high, f"The {what} 'to' is below its 'from': swap them.")
            data.pop(high, None)

    def _dose(self, name: str) -> float | None:
        """A dose bound in schema units (the form takes DAP in the site's unit)."""
        data = getattr(self, "cleaned_data", {})
        value = data.get(name)
        if value is None:
            return None
        if DOSE_INPUT.get((data.get("modality") or "").upper()) == "dap":
            return float(value) / dap_unit(settings.DAP_UNIT).per_Gym2
        return float(value)

    def study_filter(self) -> StudyFilter:
        """The filter from the valid fields (invalid ones are shown and ignored)."""
        data = getattr(self, "cleaned_data", {})
        return StudyFilter(
            modality=data.get("modality") or "",
            since=data.get("date_from"),
            until=data.get("date_to"),
            station=(data.get("station") or "").strip(),
            accession=(data.get("accession") or "").strip(),
            manufacturer=data.get("manufacturer") or "",
            model=data.get("model") or "",
            protocol=data.get("protocol") or "",
            description=data.get("description") or "",
            text=(data.get("q") or "").strip(),
            equipment=(data.get("equipment") or "").strip(),
            age_min=data.get("age_min"),
            age_max=data.get("age_max"),
            dose_min=self._dose("dose_min"),
            dose_max=self._dose("dose_max"),
        )

    def dose_label(self) -> str:
        data = getattr(self, "cleaned_data", {})
        return dose_label(data.get("modality") or "")

    def exact_filters(self) -> list[tuple[str, str]]:
        """(label, value) of the hidden exact filters that are set."""
        data = getattr(self, "cleaned_data", {})
        names = (("manufacturer", "manufacturer"), ("model", "model"),
                 ("protocol", "acquisition protocol"), ("description", "study description"))
        return [(label, data[name]) for name, label in names if data.get(name)]

    def sort_key(self) -> str:
        data = getattr(self, "cleaned_data", {})
        return data.get("sort") or DEFAULT_SORT
