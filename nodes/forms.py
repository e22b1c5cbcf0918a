"""Forms for node settings; every rule lives on the model so the CLI validates the same way."""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings

from lib import tls
from nodes import validators as v
from nodes.models import DeleteSettings, RemoteNode, StoreNode

ADVANCED_STORE_FIELDS = (
    "controlled", "auto_start", "allowed_calling_aets", "host", "tls", "runs_on",
)


class TLSFieldMixin:
    """The DICOM TLS box can be ticked only when the site has a certificate (lib/tls.py)."""

    cleaned_data: dict[str, Any]

    def clean_tls(self) -> bool:
        value = bool(self.cleaned_data.get("tls"))
        if value and tls.configured() is None:
            raise forms.ValidationError(
                f"DICOM TLS: set {tls.CERT}, {tls.KEY} and {tls.CA} for every Doseport "
                "process first (docs/configuration.md, 'DICOM TLS')."
            )
        return value


class PortWarningMixin:
    """A port below 1024 is accepted; the form carries a warning to show next to it.

    Submitted forms warn about the port submitted, unsubmitted ones (edit page) about the
    node's current port.
    """

    cleaned_data: dict[str, Any]
    is_bound: bool

    @property
    def port_warning(self) -> str:
        if self.is_bound:
            return v.port_warning(getattr(self, "cleaned_data", {}).get("port"))
        return v.port_warning(getattr(self, "initial", {}).get("port"))


def typed_port_warning(raw: str) -> str:
    """The warning for a port being typed (empty while it is not a whole number)."""
    try:
        return v.port_warning(int(raw.strip()))
    except ValueError:
        return ""


class StoreNodeForm(TLSFieldMixin, PortWarningMixin, forms.ModelForm):
    class Meta:
        model = StoreNode
        fields = [
            "name", "ae_title", "port", "bind_address",
            "controlled", "auto_start", "allowed_calling_aets", "host", "tls", "runs_on",
        ]
        widgets = {
            "allowed_calling_aets": forms.Textarea(attrs={"rows": 2, "placeholder": "any"}),
            "bind_address": forms.TextInput(attrs={"placeholder": "all interfaces"}),
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        runs_on = self.fields["runs_on"]
        runs_on.widget.attrs["placeholder"] = settings.SERVER_NAME
        runs_on.help_text = (
            "The server whose supervisor runs this node and whose worker imports what it "
            f"receives (DOSEPORT_SERVER_NAME). Empty = this server ({settings.SERVER_NAME})."
        )
        if self.instance.pk is None:
            runs_on.initial = settings.SERVER_NAME

    def clean_runs_on(self) -> str:
        from doseport.queue import validate_server_name

        value = str(self.cleaned_data.get("runs_on") or "").strip() or settings.SERVER_NAME
        validate_server_name(value)
        return value

    def basic_fields(self) -> list[forms.BoundField]:
        return [self[name] for name in self.fields if name not in ADVANCED_STORE_FIELDS]

    def advanced_fields(self) -> list[forms.BoundField]:
        return [self[name] for name in ADVANCED_STORE_FIELDS]


class RemoteNodeForm(TLSFieldMixin, forms.ModelForm):
    class Meta:
        model = RemoteNode
        fields = [
            "name", "ae_title", "host", "port", "calling_ae_title", "use_modality_tag",
            "retrieve_method", "connect_timeout", "acse_timeout", "dimse_timeout",
            "network_timeout", "tls",
        ]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        calling = self.fields["calling_ae_title"]
        if self.instance.pk is None:
            calling.initial = settings.AE_TITLE
        calling.widget.attrs["placeholder"] = settings.AE_TITLE
        calling.help_text = (
            "AE title we use when calling this node; the remote must know it. "
            f"Empty = the site AE title ({settings.AE_TITLE})."
        )
        self.fields["port"].help_text = (
            "The remote's DICOM port (often 104 or 11112). The firewalls between us must "
            "allow connections to it."
        )


class DeleteSettingsForm(forms.ModelForm):
    class Meta:
        model = DeleteSettings
        fields = ["del_no_match", "del_rdsr", "del_dx_im", "del_mg_im", "del_ct_phil", "del_nm_im"]
