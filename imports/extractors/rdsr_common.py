"""Pieces shared by the dose SR extractors (TID 10001, 10011, 10021)."""

from __future__ import annotations

from typing import Any

from pydicom import Dataset

from imports.extractors import header
from imports.extractors.sr import Node, tree

PATIENT_CHARACTERISTICS = "121118"
PATIENT_HEIGHT = "8302-2"
PATIENT_WEIGHT = "29463-7"
DEVICE_SERIAL = "121016"


def read_report(ds: Dataset, modality_type: str = "") -> tuple[Node, dict[str, Any]]:
    """The content tree and its study fields: how every dose SR extractor starts.

    `modality_type` is set when the report kind fixes it (CT, NM); projection reports
    decide it later from their events.
    """
    root = tree(ds)
    study = report_study_fields(ds, root)
    if modality_type:
        study["modality_type"] = modality_type
    return root, study


def report_study_fields(ds: Dataset, root: Node) -> dict[str, Any]:
    """Header study fields, completed from the report's patient characteristics."""
    fields = header.study_fields(ds)
    characteristics = root.first(PATIENT_CHARACTERISTICS)
    if characteristics is not None:
        if fields["patient_size_m"] is None:
            fields["patient_size_m"] = characteristics.num(PATIENT_HEIGHT, "m")
        if fields["patient_weight_kg"] is None:
            fields["patient_weight_kg"] = characteristics.num(PATIENT_WEIGHT, "kg")
    return fields


def limit(value: str, size: int) -> str:
    return value[:size]


def dose_check(container: Node) -> dict[str, Any] | None:
    """Alert (113900) and notification (113908) details, keyed by code meaning."""
    found: dict[str, Any] = {}
    for code, name in (("113900", "alert"), ("113908", "notification")):
        node = container.find_deep(code)
        if node is None:
            continue
        values: dict[str, Any] = {}
        for child in node.children:
            if child.vt == "NUM":
                values[child.meaning] = child.number
            elif child.vt in ("TEXT", "CODE", "PNAME"):
                values[child.meaning] = child.as_text()
        found[name] = values
    return found or None
