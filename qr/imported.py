"""Which SOP Instance UIDs are already imported: the one place that asks (easy to swap)."""

from __future__ import annotations

from collections.abc import Iterable

from imports import service


def imported_sop_uids(uids: Iterable[str]) -> set[str]:
    return set(service.imported_sop_uids([u for u in set(uids) if u]))
