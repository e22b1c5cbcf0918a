"""Receiving C-GET sub-operations: write each object, then import it in the job's thread."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from django.conf import settings

from qr.models import Move

logger = logging.getLogger(__name__)

# Dose objects and the images the dose rules may fetch (pynetdicom lacks some RDSR classes).
GET_STORAGE_CLASSES = [
    "1.2.840.10008.5.1.4.1.1.88.67", "1.2.840.10008.5.1.4.1.1.88.68",
    "1.2.840.10008.5.1.4.1.1.88.73", "1.2.840.10008.5.1.4.1.1.88.76",
    "1.2.840.10008.5.1.4.1.1.88.22", "1.2.840.10008.5.1.4.1.1.88.33",
    "1.2.840.10008.5.1.4.1.1.88.11", "1.2.840.10008.5.1.4.1.1.7",
    "1.2.840.10008.5.1.4.1.1.2", "1.2.840.10008.5.1.4.1.1.2.1",
    "1.2.840.10008.5.1.4.1.1.1", "1.2.840.10008.5.1.4.1.1.1.1",
    "1.2.840.10008.5.1.4.1.1.1.1.1", "1.2.840.10008.5.1.4.1.1.1.2",
    "1.2.840.10008.5.1.4.1.1.1.2.1", "1.2.840.10008.5.1.4.1.1.12.1",
    "1.2.840.10008.5.1.4.1.1.12.2", "1.2.840.10008.5.1.4.1.1.20",
    "1.2.840.10008.5.1.4.1.1.128",
]


class GetReceiver:
    def __init__(self, move: Move) -> None:
        self.move = move
        self.folder = Path(settings.HOME) / "qr-get" / str(move.pk)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.pending: list[Path] = []

    def storage_classes(self) -> list[str]:
        return GET_STORAGE_CLASSES

    def handle(self, event: Any) -> int:
        """C-STORE handler: durable write of the received bytes; import happens later."""
        try:
            uid = str(event.request.AffectedSOPInstanceUID)
            path = self.folder / f"{uid}.dcm"
            with open(path, "wb") as fh:
                fh.write(event.encoded_dataset())
        except OSError:
            logger.exception("cannot write C-GET object")
            return 0xA700
        self.pending.append(path)
        return 0x0000

    def import_received(self) -> None:
        from imports.models import Source
        from imports.service import import_file

        paths, self.pending = self.pending, []
        for path in paths:
            self.move.beat()  # a large series takes a while to import
            import_file(path, Source.QUERY, self.move.store_id)
