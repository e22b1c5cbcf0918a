"""Validation rules for DICOM node settings; messages name the field and the fix."""

from __future__ import annotations

import ipaddress
import re

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator

_STORE_AET = re.compile(r"^[A-Za-z0-9]{1,16}$")
_HOST_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")


def validate_store_ae_title(value: str) -> None:
    if not value:
        raise ValidationError("AE title is required: 1-16 letters or digits, e.g. DOSEPORT.")
    if len(value) > 16:
        raise ValidationError(f"AE title is {len(value)} characters long; use at most 16.")
    if not _STORE_AET.match(value):
        raise ValidationError(
            "AE title may contain only letters A-Z and digits 0-9, no spaces or symbols."
        )


def validate_remote_ae_title(value: str) -> None:
    """DICOM default character repertoire, no backslash or control characters."""
    if not value or not value.strip():
        raise ValidationError("AE title is required: 1-16 characters, as set on the remote.")
    if len(value) > 16:
        raise ValidationError(f"AE title is {len(value)} characters long; use at most 16.")
    if value != value.strip(" "):
        raise ValidationError("AE title must not start or end with a space; remove them.")
    if "\\" in value:
        raise ValidationError("AE title must not contain a backslash (\\).")
    if any(not (0x20 <= ord(ch) <= 0x7E) for ch in value):
        raise ValidationError(
            "AE title may use only printable ASCII characters (no accents, tabs or line breaks)."
        )


def validate_port(value: int) -> None:
    if not 1 <= value <= 65535:
        raise ValidationError(
            f"Port {value} is out of range; use 1-65535 (DICOM often 104 or 11112)."
        )


def port_warning(value: int | None) -> str:
    """A warning (not an error) shown next to ports that need privileges."""
    if value is not None and 0 < value < 1024:
        return (
            f"Port {value} is below 1024: the store process needs root or the "
            "CAP_NET_BIND_SERVICE capability to listen on it."
        )
    return ""


def validate_host(value: str) -> None:
    if not value or not value.strip():
        raise ValidationError("Host is required: a hostname or an IP address.")
    if len(value) > 253:
        raise ValidationError(f"Host is {len(value)} characters long; use at most 253.")
    try:
        ipaddress.ip_address(value)
        return
    except ValueError:
        pass
    labels = value.rstrip(".").split(".")
    if not all(_HOST_LABEL.match(label) for label in labels):
        raise ValidationError(
            f"{value!r} is neither an IP address nor a valid hostname "
            "(letters, digits and hyphens separated by dots)."
        )


def validate_bind_address(value: str) -> None:
    if value in ("", "0.0.0.0", "::"):
        return
    try:
        ipaddress.ip_address(value)
    except ValueError:
        raise ValidationError(
            f"Bind address {value!r} is not an IP address; leave it empty for all interfaces."
        ) from None


def parse_ae_list(value: str) -> list[str]:
    """Allowed calling AE titles: separated by commas, spaces or new lines."""
    return [part for part in re.split(r"[\s,]+", value.strip()) if part]


def validate_ae_list(value: str) -> None:
    for aet in parse_ae_list(value):
        try:
            validate_remote_ae_title(aet)
        except ValidationError as exc:
            raise ValidationError(f"Allowed calling AE title {aet!r}: {exc.messages[0]}") from None


def timeout_validators(label: str, maximum: int) -> list[MinValueValidator | MaxValueValidator]:
    """Bounds for a timeout in seconds; the messages name the field."""
    return [
        MinValueValidator(1, f"{label} must be at least 1 second."),
        MaxValueValidator(maximum, f"{label} must be at most {maximum} seconds."),
    ]
