from __future__ import annotations

from typing import Any

from django import forms

from audit.models import ACTIONS, AuditEntry

DATE = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")


def action_choices() -> list[tuple[str, str]]:
    """Known actions, any other code already in the table, and one 'all <what>' per group."""
    codes = set(ACTIONS) | set(AuditEntry.objects.values_list("action", flat=True).distinct())
    groups = sorted({code.split(".", 1)[0] for code in codes if "." in code})
    return [
        ("", "any action"),
        *[(group, f"{group}: any") for group in groups],
        *[(code, f"{code} ({ACTIONS[code]})" if code in ACTIONS else code)
          for code in sorted(codes)],
    ]


class AuditFilter(forms.Form):
    action = forms.ChoiceField(choices=[], required=False)
    user = forms.CharField(required=False, max_length=150,
                           widget=forms.TextInput(attrs={"placeholder": "user name"}))
    since = forms.DateField(required=False, widget=DATE)
    until = forms.DateField(required=False, widget=DATE)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["action"].choices = action_choices()  # type: ignore[attr-defined]
