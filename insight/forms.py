from __future__ import annotations

from django import forms

from insight.filters import DEFAULT_PERIOD, PERIODS, InsightFilter, period_dates
from lib import format as fmt

INTERVALS = [("month", "month"), ("week", "week")]
FILTERS = ("station", "manufacturer", "model", "protocol")


class PeriodForm(forms.Form):
    """A preset period ending today, or from/to dates (which win over the preset)."""

    period = forms.ChoiceField(
        choices=[(k, label) for k, (label, _) in PERIODS.items()], required=False,
        initial=DEFAULT_PERIOD,
    )
    date_from = forms.DateField(
        required=False, label="from", widget=forms.DateInput(attrs={"type": "date"})
    )
    date_to = forms.DateField(
        required=False, label="to", widget=forms.DateInput(attrs={"type": "date"})
    )

    def clean(self) -> dict[str, object]:
        data = super().clean() or {}
        start, end = data.get("date_from"), data.get("date_to")
        if start and end and start > end:
            raise forms.ValidationError("The 'from' date is after the 'to' date.")
        return data

    def _data(self) -> dict[str, object]:
        return getattr(self, "cleaned_data", {})

    def insight_filter(self, modality: str = "") -> InsightFilter:
        """The filter from the valid fields (invalid ones are shown and ignored)."""
        data = self._data()
        since, until = period_dates(str(data.get("period") or DEFAULT_PERIOD))
        if data.get("date_from") or data.get("date_to"):
            since = data.get("date_from")  # type: ignore[assignment]
            until = data.get("date_to")  # type: ignore[assignment]
        return InsightFilter(modality=modality, since=since, until=until)

    def period_label(self) -> str:
        data = self._data()
        if data.get("date_from") or data.get("date_to"):
            return "chosen dates"
        return PERIODS.get(str(data.get("period") or DEFAULT_PERIOD), PERIODS[DEFAULT_PERIOD])[0]


class ChartFilterForm(PeriodForm):
    """The period plus equipment and protocol, offered from what the modality has."""

    station = forms.ChoiceField(required=False)
    manufacturer = forms.ChoiceField(required=False)
    model = forms.ChoiceField(required=False)
    protocol = forms.ChoiceField(required=False)
    interval = forms.ChoiceField(choices=INTERVALS, required=False, label="DLP over time per")

    def __init__(self, *args: object, options: dict[str, list[str]], **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        for name, values in options.items():
            field = self.fields[name]
            assert isinstance(field, forms.ChoiceField)
            field.choices = [("", "any"), *((v, fmt.dicom_text(v)) for v in values)]

    def insight_filter(self, modality: str = "") -> InsightFilter:
        data = self._data()
        return super().insight_filter(modality).with_(**{
            name: str(data.get(name) or "")
            for name in FILTERS
        })

    def chosen_interval(self) -> str:
        return str(self._data().get("interval") or "month")
