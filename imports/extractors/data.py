"""What an extractor returns: plain values keyed by dose model field names."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class EventData:
    fields: dict[str, Any] = field(default_factory=dict)
    sources: list[dict[str, Any]] = field(default_factory=list)
    filters: list[dict[str, Any]] = field(default_factory=list)

    def key(self) -> str:
        return str(self.fields.get("irradiation_event_uid") or "")


@dataclass
class ReportData:
    kind: str
    study: dict[str, Any] = field(default_factory=dict)
    events: list[EventData] = field(default_factory=list)
    planes: list[dict[str, Any]] = field(default_factory=list)
    breasts: list[dict[str, Any]] = field(default_factory=list)
    administrations: list[dict[str, Any]] = field(default_factory=list)

    @property
    def modality_type(self) -> str:
        return str(self.study.get("modality_type", ""))

