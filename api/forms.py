from __future__ import annotations

from django import forms


class TokenForm(forms.Form):
    name = forms.CharField(
        max_length=100, required=False, label="What it is for",
        widget=forms.TextInput(attrs={"placeholder": "e.g. monthly report script"}),
    )
