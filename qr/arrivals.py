"""Link imports to the move that requested them, by SOP Instance UID (not by study)."""

from __future__ import annotations

from imports.models import ImportRecord
from qr.models import Move, QueryImage


def link_arrivals(move: Move) -> int:
    """Set `arrival` on the move's wanted instances that were imported since it started."""
    images = QueryImage.objects.filter(
        series__study__query=move.query, series__study__excluded=False,
        series__excluded=False, excluded=False,
    )
    waiting = {i.sop_instance_uid: i for i in images.filter(arrival__isnull=True)}
    uids = list(waiting)
    since = move.started_at or move.created_at
    for start in range(0, len(uids), 500):
        records = ImportRecord.objects.filter(
            sop_instance_uid__in=uids[start:start + 500], created_at__gte=since
        ).order_by("created_at")
        for record in records:
            image = waiting.get(record.sop_instance_uid)
            if image is not None:
                image.arrival = record
        QueryImage.objects.bulk_update(
            [waiting[u] for u in uids[start:start + 500] if waiting[u].arrival_id], ["arrival"]
        )
    move.arrived = images.filter(arrival__isnull=False).count()
    Move.objects.filter(pk=move.pk).update(arrived=move.arrived)
    return move.arrived
