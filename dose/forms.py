from __future__ import annotations

from django import forms

from dose.models import Study
from dose.queries import DEFAULT_SORT, SORTS, StudyFilter


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
    station = forms.CharField(required=False, max_length=64, label="station name")
    accession = forms.CharField(required=False, max_length=64, label="accession number")
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
        return data

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
        )

    def exact_filters(self) -> list[tuple[str, str]]:
        """(label, value) of the hidden exact filters that are set."""
        data = getattr(self, "cleaned_data", {})
        names = (("manufacturer", "manufacturer"), ("model", "model"),
                 ("protocol", "acquisition protocol"), ("description", "study description"))
        return [(label, data[name]) for name, label in names if data.get(name)]

    def sort_key(self) -> str:
        data = getattr(self, "cleaned_data", {})
        return data.get("sort") or DEFAULT_SORT
