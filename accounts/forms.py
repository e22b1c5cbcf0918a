from __future__ import annotations

from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.validators import UnicodeUsernameValidator

from doseport.auth import ROLES, VIEWER

ROLE_CHOICES = [(r, r) for r in ROLES]


class AddUserForm(forms.Form):
    username = forms.CharField(
        label="User name", max_length=150, validators=[UnicodeUsernameValidator()],
        help_text="Letters, digits and @ . + - _ only.",
    )
    role = forms.ChoiceField(choices=ROLE_CHOICES, initial=VIEWER)
    password = forms.CharField(
        required=False, strip=False, widget=forms.PasswordInput(render_value=False),
        help_text="Leave empty to generate one (shown once, on the next page).",
    )

    def clean_username(self) -> str:
        name: str = self.cleaned_data["username"]
        if get_user_model().objects.filter(username=name).exists():
            raise forms.ValidationError(f"A user named {name} exists already.")
        return name


class RoleForm(forms.Form):
    role = forms.ChoiceField(choices=ROLE_CHOICES)


class AddressForm(forms.Form):
    address = forms.GenericIPAddressField()
