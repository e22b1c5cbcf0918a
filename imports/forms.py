from __future__ import annotations

from django import forms

from imports.classify import KIND_LABELS, KINDS
from imports.models import Outcome
from imports.queries import ImportFilter
from nodes.models import StoreNode


class ImportFilterForm(forms.Form):
    outcome = forms.ChoiceField(choices=[("", "any"), *Outcome.choices], required=False)
    kind = forms.ChoiceField(
        choices=[("", "any"), *((k, KIND_LABELS[k]) for k in KINDS)], required=False
    )
    node = forms.ModelChoiceField(
        queryset=StoreNode.objects.order_by("name"), required=False, empty_label="any",
        label="store node",
    )
    date_from = forms.DateField(
        required=False, label="from", widget=forms.DateInput(attrs={"type": "date"})
    )
    date_to = forms.DateField(
        required=False, label="to", widget=forms.DateInput(attrs={"type": "date"})
    )
    q = forms.CharField(
        required=False, max_length=1024, label="UID or path contains",
        widget=forms.TextInput(attrs={"type": "search", "size": 24}),
    )

    def clean(self) -> dict[str, object]:
        data = super().clean() or {}
        start, end = data.get("date_from"), data.get("date_to")
        if start and end and start > end:
            raise forms.ValidationError("The 'from' date is after the 'to' date.")
        return data

    def import_filter(self) -> ImportFilter:
        """The filter from the valid fields (invalid ones are shown and ignored)."""
        data = getattr(self, "cleaned_data", {})
        node = data.get("node")
        return ImportFilter(
            outcome=data.get("outcome") or "",
            kind=data.get("kind") or "",
            node_id=node.pk if node is not None else None,
            since=data.get("date_from"),
            until=data.get("date_to"),
            text=(data.get("q") or "").strip(),
        )
