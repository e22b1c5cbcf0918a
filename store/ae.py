"""The one factory for store node AEs: every value explicit, nothing left to defaults."""

from __future__ import annotations

from dataclasses import dataclass, field
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
from pynetdicom import AE, AllStoragePresentationContexts, _config

from lib import aeconfig
from lib.aeconfig import AEConfig
from nodes.models import StoreNode

VERIFICATION = "1.2.840.10008.1.1"
# Dose SR classes that pynetdicom's default storage list lacks; ours must always have them.
RADIOPHARMACEUTICAL_RDSR = "1.2.840.10008.5.1.4.1.1.88.68"
PATIENT_RDSR = "1.2.840.10008.5.1.4.1.1.88.73"
ENHANCED_XRAY_RDSR = "1.2.840.10008.5.1.4.1.1.88.76"
DOSE_SR_CLASSES = (RADIOPHARMACEUTICAL_RDSR, PATIENT_RDSR, ENHANCED_XRAY_RDSR)


@dataclass(frozen=True)
class AESettings:
    """Where a store node listens and whom it admits, plus its AE values (`config`,
    lib/aeconfig.py: PDU size, timeouts, maximum associations, TCP options, TLS)."""

    ae_title: str
    port: int
    bind_address: str = ""
    allowed_calling_aets: tuple[str, ...] = ()
    config: AEConfig | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if self.config is None:
            object.__setattr__(self, "config", aeconfig.store_config(self.ae_title))

    @property
    def ae(self) -> AEConfig:
        assert self.config is not None
        return self.config

    # The AE values, read where they were read before AEConfig existed.
    @property
    def maximum_associations(self) -> int:
        return self.ae.maximum_associations

    @property
    def maximum_pdu_size(self) -> int:
        return self.ae.maximum_pdu_size

    @property
    def acse_timeout(self) -> float:
        return self.ae.acse_timeout

    @property
    def dimse_timeout(self) -> float:
        return self.ae.dimse_timeout

    @property
    def network_timeout(self) -> float:
        return self.ae.network_timeout

    @property
    def tls(self) -> bool:
        return self.ae.tls

    @classmethod
    def for_node(cls, node: StoreNode, **overrides: Any) -> AESettings:
        """`overrides`: `doseport store run` options (maximum_pdu_size, acse_timeout,
        dimse_timeout); None values keep the settings."""
        allowed = list(node.allowed_calling_aet_list)
        if allowed and settings.HEALTH_AE not in allowed:
            # Doseport's own health check; store.handlers.handle_requested admits it only
            # from this host.
            allowed.append(settings.HEALTH_AE)
        return cls(
            ae_title=node.ae_title,
            port=node.port,
            bind_address=node.bind_address,
            allowed_calling_aets=tuple(allowed),
            config=aeconfig.store_config(node.ae_title, use_tls=node.tls, **overrides),
        )

    @property
    def address(self) -> tuple[str, int]:
        return (self.bind_address or "0.0.0.0", self.port)


# `doseport store run` options (DCMTK's names) -> AEConfig fields.
STORE_RUN_OPTIONS: dict[str, tuple[str, type]] = {
    "--max-pdu": ("maximum_pdu_size", int),
    "--acse-timeout": ("acse_timeout", float),
    "--dimse-timeout": ("dimse_timeout", float),
}


def store_run_argv(options: dict[str, Any]) -> list[str]:
    """The AE options given to `store run` (parsed `options`) as arguments for helpers."""
    argv: list[str] = []
    for option in STORE_RUN_OPTIONS:
        value = options.get(option[2:].replace("-", "_"))
        if value is not None:
            argv += [option, str(value)]
    return argv


def store_run_overrides(argv: list[str]) -> dict[str, Any]:
    """`store_run_argv()` output -> AEConfig overrides."""
    given = dict(zip(argv[::2], argv[1::2], strict=True))
    return {
        name: kind(given[option])
        for option, (name, kind) in STORE_RUN_OPTIONS.items() if option in given
    }


def storage_sop_classes() -> list[str]:
    """Every storage SOP class pynetdicom knows, plus the dose SR classes, no duplicates."""
    uids = [str(cx.abstract_syntax) for cx in AllStoragePresentationContexts]
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
    ae = aeconfig.make_ae(settings.ae)
    ae.require_called_aet = True
    ae.require_calling_aet = list(settings.allowed_calling_aets)
    syntaxes = transfer_syntaxes()
    for uid in storage_sop_classes():
        ae.add_supported_context(uid, syntaxes)
    ae.add_supported_context(VERIFICATION, syntaxes)
    return ae
