"""A light view of an SR content tree: find items by concept code, read typed values."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from pydicom import Dataset

from lib.dates import parse_datetime
from lib.units import UnitError, convert

_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


class ExtractError(ValueError):
    """The object cannot be imported; the message says why (shown to users)."""


@dataclass
class Node:
    """One content item. Read-only: the raw-bytes reader shares equal subtrees."""

    code: str
    meaning: str
    vt: str
    text: str = ""
    value_code: str = ""
    value_meaning: str = ""
    number: float | None = None
    values: list[float] = field(default_factory=list)  # all values of a multi-valued DS
    unit: str = ""
    children: list[Node] = field(default_factory=list)

    # -- navigation -------------------------------------------------------------------
    def all(self, *codes: str) -> Iterator[Node]:
        for child in self.children:
            if child.code in codes:
                yield child

    def first(self, *codes: str) -> Node | None:
        return next(self.all(*codes), None)

    def walk(self) -> Iterator[Node]:
        for child in self.children:
            yield child
            yield from child.walk()

    def find_deep(self, code: str) -> Node | None:
        return next((n for n in self.walk() if n.code == code), None)

    # -- values -----------------------------------------------------------------------
    def num(self, code: str, target: str) -> float | None:
        node = self.first(code)
        return node.as_number(target) if node else None

    def as_number(self, target: str, mean: bool = False) -> float | None:
        """The value in `target` units; `mean` averages a multi-valued (per pulse) item."""
        if self.number is None:
            return None
        value = sum(self.values) / len(self.values) if mean and self.values else self.number
        try:
            return convert(value, self.unit, target)
        except UnitError as exc:
            raise ExtractError(f"{exc} in '{self.meaning}'") from None

    def txt(self, *codes: str) -> str:
        """TEXT/UIDREF/PNAME value, or the meaning of a CODE value."""
        node = self.first(*codes)
        if node is None:
            return ""
        return node.as_text()

    def as_text(self) -> str:
        return self.value_meaning if self.vt == "CODE" else self.text

    def datetime(self, code: str) -> dt.datetime | None:
        node = self.first(code)
        return parse_datetime(node.text) if node and node.text else None


def _text(value: object) -> str:
    return str(value).strip() if value is not None else ""


def node_from_item(item: Dataset) -> Node:
    name = item.get("ConceptNameCodeSequence")
    code = _text(name[0].get("CodeValue", "")) if name else ""
    if name and not code:
        code = _text(name[0].get("LongCodeValue", ""))
    meaning = _text(name[0].get("CodeMeaning", "")) if name else ""
    vt = _text(item.get("ValueType", ""))
    node = Node(code=code, meaning=meaning, vt=vt)
    if vt == "NUM":
        measured = item.get("MeasuredValueSequence")
        if measured:
            mv = measured[0]
            raw = mv.get("NumericValue")
            if raw is not None and str(raw).strip() != "":
                node.values = numbers(raw)
                node.number = node.values[0]
                units = mv.get("MeasurementUnitsCodeSequence")
                node.unit = _text(units[0].get("CodeValue", "")) if units else ""
    elif vt == "CODE":
        concept = item.get("ConceptCodeSequence")
        if concept:
            node.value_code = _text(concept[0].get("CodeValue", ""))
            node.value_meaning = _text(concept[0].get("CodeMeaning", ""))
    elif vt in ("TEXT", "UIDREF", "PNAME", "DATETIME", "DATE", "TIME"):
        keyword = {
            "TEXT": "TextValue", "UIDREF": "UID", "PNAME": "PersonName",
            "DATETIME": "DateTime", "DATE": "Date", "TIME": "Time",
        }[vt]
        node.text = _text(item.get(keyword, ""))
    for child in item.get("ContentSequence", []):
        node.children.append(node_from_item(child))
    return node


def numbers(raw: object) -> list[float]:
    """DS may be multi-valued (per pulse) or malformed ('10.50/ 15.00', Toshiba)."""
    items = list(raw) if not isinstance(raw, str | int | float) and hasattr(raw, "__iter__") \
        else [raw]  # type: ignore[call-overload]
    out: list[float] = []
    for item in items:
        try:
            out.append(float(item))
        except (TypeError, ValueError):
            match = _NUMBER.search(str(item))
            if match is None:
                raise ExtractError(f"numeric value {str(item)[:40]!r} is not a number") from None
            out.append(float(match.group(0)))
    if not out:
        raise ExtractError("numeric value missing")
    return out


TREE = "_doseport_tree"  # Dataset attribute: the tree, built once per dataset


def tree(ds: Dataset) -> Node:
    """The content tree; the raw-bytes reader when it can, pydicom otherwise.

    Built once per dataset (classification and extraction both read it): any access to
    ds.ContentSequence would make pydicom decode every content item first.
    """
    from imports.extractors.sr_fast import Unsupported, fast_children

    root: Node | None = getattr(ds, TREE, None)
    if root is not None:
        return root
    try:
        children = fast_children(ds)
    except Unsupported:
        root = node_from_item(ds)
    else:
        root = node_from_item(_without_content(ds))
        root.children = children
    setattr(ds, TREE, root)
    return root


def _without_content(ds: Dataset) -> Dataset:
    """The root item's own elements (concept name, value type) without its content."""
    shell = Dataset()
    for keyword in ("ConceptNameCodeSequence", "ValueType"):
        if keyword in ds:
            setattr(shell, keyword, ds.get(keyword))
    return shell
