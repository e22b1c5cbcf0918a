"""Which SOP Instance UIDs are already imported: the one place that asks (easy to swap)."""

from __future__ import annotations

from collections.abc import Iterable

from imports.models import ImportRecord, Outcome


def imported_sop_uids(uids: Iterable[str]) -> set[str]:
    try:
        from imports.service import imported_sop_uids as from_service  # type: ignore[attr-defined]
    except ImportError:
        from_service = None
    wanted = [u for u in set(uids) if u]
    if from_service is not None:
        return set(from_service(wanted))
    found: set[str] = set()
    for start in range(0, len(wanted), 500):
        chunk = wanted[start:start + 500]
        found.update(
            ImportRecord.objects.filter(sop_instance_uid__in=chunk, outcome=Outcome.IMPORTED)
            .values_list("sop_instance_uid", flat=True)
        )
    return found
