"""The one factory for store node AEs: every value explicit, nothing left to defaults."""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from pydicom import config as pydicom_config
from pydicom.uid import (
    AllTransferSyntaxes,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
)
from pynetdicom import AE, _config
from pynetdicom.presentation import PresentationContext
from pynetdicom.sop_class import _STORAGE_CLASSES
from pynetdicom.transport import ThreadedAssociationServer

from nodes.models import StoreNode

VERIFICATION = "1.2.840.10008.1.1"
# Dose SR classes that pynetdicom's default storage list lacks; ours must always have them.
RADIOPHARMACEUTICAL_RDSR = "1.2.840.10008.5.1.4.1.1.88.68"
PATIENT_RDSR = "1.2.840.10008.5.1.4.1.1.88.73"
ENHANCED_XRAY_RDSR = "1.2.840.10008.5.1.4.1.1.88.76"
DOSE_SR_CLASSES = (RADIOPHARMACEUTICAL_RDSR, PATIENT_RDSR, ENHANCED_XRAY_RDSR)
# Processes sharing a node's port: the more associations one serves, the longer it lets
# the others take a new connection first.
ACCEPT_DEFER_S = 0.01
ACCEPT_DEFER_MAX_S = 0.05


@dataclass(frozen=True)
class AESettings:
    """Everything an AE is built from. Timeouts in seconds."""

    ae_title: str
    port: int
    bind_address: str = ""
    allowed_calling_aets: tuple[str, ...] = ()
    maximum_associations: int = 20
    maximum_pdu_size: int = 4 * 1024 * 1024
    acse_timeout: float = 30.0
    dimse_timeout: float = 60.0
    network_timeout: float = 60.0
    connection_timeout: float = 10.0

    @classmethod
    def for_node(cls, node: StoreNode) -> AESettings:
        allowed = list(node.allowed_calling_aet_list)
        if allowed and settings.AE_TITLE not in allowed:
            # Doseport's own health check (C-ECHO as the site AE title) must get through.
            allowed.append(settings.AE_TITLE)
        return cls(
            ae_title=node.ae_title,
            port=node.port,
            bind_address=node.bind_address,
            allowed_calling_aets=tuple(allowed),
        )

    @property
    def address(self) -> tuple[str, int]:
        return (self.bind_address or "0.0.0.0", self.port)


def storage_sop_classes() -> list[str]:
    """Every storage SOP class pynetdicom knows, plus the dose SR classes, no duplicates."""
    uids = [str(uid) for uid in _STORAGE_CLASSES.values()]
    return list(dict.fromkeys([*uids, *DOSE_SR_CLASSES]))


def transfer_syntaxes() -> list[str]:
    """Every syntax pydicom knows, in the order we prefer when a requestor offers several.

    pynetdicom accepts the first syntax in *our* list that the requestor proposed. We keep
    objects as sent, so compressed syntaxes come first (the sender need not decompress),
    then explicit VR little endian; implicit VR (which loses the VRs) comes last.
    """
    uncompressed = [
        ExplicitVRLittleEndian, DeflatedExplicitVRLittleEndian, ExplicitVRBigEndian,
        ImplicitVRLittleEndian,
    ]
    rest = [uid for uid in AllTransferSyntaxes if uid not in uncompressed]
    return [str(uid) for uid in (*rest, *uncompressed)]


def configure_pynetdicom() -> None:
    """Process-wide pynetdicom options for a store node process."""
    # Per-PDU/DIMSE debug handlers cost time on every message even when not logged.
    _config.LOG_HANDLER_LEVEL = "none"
    _config.STORE_RECV_CHUNKED_DATASET = False  # we want the bytes in memory, written once
    _config.ENFORCE_UID_CONFORMANCE = False  # real modalities send odd UIDs; we store as sent
    # The header peek must not log every odd value a modality writes; we store bytes as sent.
    pydicom_config.settings.reading_validation_mode = pydicom_config.IGNORE


def make_store_ae(settings: AESettings) -> AE:
    """Build the accepting AE of a store node."""
    configure_pynetdicom()
    ae = AE(ae_title=settings.ae_title)
    ae.maximum_associations = settings.maximum_associations
    ae.maximum_pdu_size = settings.maximum_pdu_size
    ae.acse_timeout = settings.acse_timeout
    ae.dimse_timeout = settings.dimse_timeout
    ae.network_timeout = settings.network_timeout
    ae.connection_timeout = settings.connection_timeout
    ae.require_called_aet = True
    ae.require_calling_aet = list(settings.allowed_calling_aets)
    syntaxes = transfer_syntaxes()
    for uid in storage_sop_classes():
        ae.add_supported_context(uid, syntaxes)
    ae.add_supported_context(VERIFICATION, syntaxes)
    return ae


class SharedContexts(list[PresentationContext]):
    """Supported contexts that associations share instead of deep-copying.

    pynetdicom deep-copies the server's contexts for every association; with every
    storage class times every transfer syntax that costs ~40 ms per association. The
    acceptor only reads them during negotiation, so one shared copy is safe.
    """

    def __deepcopy__(self, memo: dict[int, Any]) -> list[PresentationContext]:
        return list(self)


class StoreServer(ThreadedAssociationServer):
    """pynetdicom's threaded server with shared contexts, optionally sharing its
    listening socket with other processes of the same node.

    `shared` (set in every process of such a node): the socket is accepted from by several
    processes. Each waits in select(); a process that already serves associations waits
    `ACCEPT_DEFER_S` per open association before it accepts, so the least busy process
    takes the connection. The socket is non-blocking: the others find nothing to accept
    and go back to waiting.
    `listen_fd`: a helper process adopts the main process's listening socket instead of
    binding its own.
    """

    shared = False
    listen_fd: int | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.contexts = SharedContexts(self.contexts)

    def server_bind(self) -> None:
        if self.listen_fd is None:
            super().server_bind()
            return
        if self.socket is not None:
            self.socket.close()
        self.socket = socket.socket(fileno=self.listen_fd)
        self.server_address = self.socket.getsockname()

    def get_request(self) -> tuple[socket.socket, tuple[str, int]]:
        if self.shared:
            busy = len(self.ae.active_associations)
            if busy:
                time.sleep(min(busy * ACCEPT_DEFER_S, ACCEPT_DEFER_MAX_S))
        return super().get_request()

    def server_activate(self) -> None:
        if self.listen_fd is None:
            super().server_activate()  # listen()
        if self.shared:
            assert self.socket is not None
            self.socket.setblocking(False)
