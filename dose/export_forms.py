from __future__ import annotations

from django import forms

from dose.web_export import FORMATS, LAYOUTS


class ExportForm(forms.Form):
    """`format` and `layout` of /studies/export/; the filters are the Studies page's form."""

    format = forms.ChoiceField(
        choices=[("csv", "CSV"), ("xlsx", "XLSX")], required=False,
        error_messages={"invalid_choice": "format must be one of " + ", ".join(FORMATS)},
    )
    layout = forms.ChoiceField(
        choices=[("event", "one row per event"), ("study", "one row per study")],
        required=False,
        error_messages={"invalid_choice": "layout must be one of " + ", ".join(LAYOUTS)},
    )

    def choice(self, name: str) -> str:
        return str(self.cleaned_data.get(name) or self.fields[name].choices[0][0])  # type: ignore[attr-defined]
