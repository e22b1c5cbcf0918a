"""Receiving C-GET sub-operations: through the store spool, then imported in the job.

An object that arrives by C-GET is written exactly like one that arrives by C-STORE
(store.spool: file meta header plus the bytes as sent, unnamed file named in
spool/<store node>/in/<day>, fsync of file and folder) before the sub-operation is
answered Success, and is imported by the same `import_file` from that path. If the job
dies before it imports them, the node's recovery sweep finds them like any other
spooled object without an import record.
"""

from __future__ import annotations

import logging
from pathlib import Path

from django.conf import settings

from lib.dicom import Received
from qr.models import Move
from store.spool import Spool
from store.wire import OUT_OF_RESOURCES, PREAMBLE, SUCCESS, file_meta_bytes

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
# The spool of a retrieve whose store node was deleted (move.store is then NULL).
NO_NODE_SPOOL = "get"


def spool_for(move: Move) -> Spool:
    """The spool of the move's store node, where its C-STORE objects go too."""
    if move.store_id is not None:
        return Spool.for_node(move.store_id)
    return Spool(Path(settings.SPOOL_DIR) / NO_NODE_SPOOL)


class GetReceiver:
    def __init__(self, move: Move) -> None:
        self.move = move
        self.spool = spool_for(move)
        self.pending: list[Path] = []

    def storage_classes(self) -> list[str]:
        return GET_STORAGE_CLASSES

    def handle(self, received: Received) -> int:
        """C-STORE sub-operation: durable spool write, then the answer; import comes later."""
        sop_uid = received.sop_instance_uid
        try:
            header = PREAMBLE + file_meta_bytes(
                received.sop_class_uid, sop_uid, received.transfer_syntax, received.source_ae,
            )
            path = self.spool.write((header, received.data), sop_uid)
        except OSError as exc:
            logger.error("retrieve %s: cannot spool C-GET object %s: %s", self.move.pk, sop_uid,
                         exc)
            return OUT_OF_RESOURCES
        self.pending.append(path)
        return SUCCESS

    def import_received(self) -> None:
        from imports.models import Source
        from imports.service import import_file

        paths, self.pending = self.pending, []
        for path in paths:
            self.move.beat()  # a large series takes a while to import
            import_file(path, Source.QUERY, self.move.store_id)
