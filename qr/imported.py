"""Which SOP Instance UIDs are already imported: the one place that asks (easy to swap).

A "duplicate" outcome (the same object, or the same exposure as an imported one) counts as
imported too: fetching it again could never add data.
"""

from __future__ import annotations

from collections.abc import Iterable

from imports import service
from imports.models import ImportRecord, Outcome


def imported_sop_uids(uids: Iterable[str]) -> set[str]:
    wanted = [u for u in set(uids) if u]
    found = set(service.imported_sop_uids(wanted))
    rest = [u for u in wanted if u not in found]
    for start in range(0, len(rest), 500):
        found.update(
            ImportRecord.objects.filter(
                sop_instance_uid__in=rest[start:start + 500], outcome=Outcome.DUPLICATE
            ).values_list("sop_instance_uid", flat=True)
        )
    return found
