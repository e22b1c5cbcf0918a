"""Everything an AE is built from, in one place (STYLE.md 6).

`AEConfig` holds every value a pynetdicom AE needs, with none left to pynetdicom's
defaults; `apply()` is the one function that sets them on an AE, for the store node's
accepting AE (store/ae.py) and for every association we open (lib/dicom.py).
`tune_socket()` sets the TCP options on a connection and `server_tls()` /
`client_tls()` give the TLS context (lib/tls.py) when the node asks for TLS.

Where the values come from: the store AE from the DOSEPORT_STORE_* settings (overridden
per run by `doseport store run --max-pdu/--acse-timeout/--dimse-timeout`) and the node's
TLS flag; the outgoing AE from the remote node (its timeouts and TLS flag) and
DOSEPORT_OUTGOING_MAX_PDU.
"""

from __future__ import annotations

import socket
import ssl
from dataclasses import dataclass, replace
from typing import Any

from pynetdicom import AE

from lib import tls


@dataclass(frozen=True)
class AEConfig:
    """One AE's network values. Timeouts in seconds; `maximum_pdu_size` in bytes."""

    ae_title: str
    maximum_pdu_size: int
    acse_timeout: float
    dimse_timeout: float
    network_timeout: float
    connection_timeout: float
    maximum_associations: int
    tcp_nodelay: bool = True
    # Linux TCP_QUICKACK re-armed per read (lib/dicom.QuickAckSocket, store/acceptor): peers
    # that keep Nagle on do not wait for our delayed ACK.
    tcp_quickack: bool = True
    tls: bool = False

    def __post_init__(self) -> None:
        problems = [
            name for name in ("acse_timeout", "dimse_timeout", "network_timeout",
                              "connection_timeout")
            if not getattr(self, name) > 0
        ]
        if self.maximum_pdu_size < 4096:
            problems.append("maximum_pdu_size")
        if self.maximum_associations < 1:
            problems.append("maximum_associations")
        if problems:
            raise ValueError(f"AEConfig: {', '.join(problems)} out of range: {self!r}")

    def with_overrides(self, **values: Any) -> AEConfig:
        """A copy with the given values (None values ignored: an option not given)."""
        return replace(self, **{k: v for k, v in values.items() if v is not None})


def store_config(ae_title: str, use_tls: bool = False, **overrides: Any) -> AEConfig:
    """A store node's accepting AE, from settings; `overrides` from `store run` options."""
    from django.conf import settings

    config = AEConfig(
        ae_title=ae_title,
        maximum_pdu_size=settings.STORE_MAX_PDU,
        acse_timeout=float(settings.STORE_ACSE_TIMEOUT),
        dimse_timeout=float(settings.STORE_DIMSE_TIMEOUT),
        network_timeout=float(settings.STORE_NETWORK_TIMEOUT),
        connection_timeout=10.0,
        maximum_associations=settings.STORE_MAX_ASSOCIATIONS,
        tcp_nodelay=settings.TCP_NODELAY,
        tcp_quickack=settings.TCP_QUICKACK,
        tls=use_tls,
    )
    return config.with_overrides(**overrides)


def outgoing_config(
    ae_title: str, connect_timeout: float, acse_timeout: float, dimse_timeout: float,
    network_timeout: float, use_tls: bool = False,
) -> AEConfig:
    """The requesting AE of one outgoing association (timeouts from the remote node)."""
    from django.conf import settings

    return AEConfig(
        ae_title=ae_title,
        maximum_pdu_size=settings.OUTGOING_MAX_PDU,
        acse_timeout=acse_timeout,
        dimse_timeout=dimse_timeout,
        network_timeout=network_timeout,
        connection_timeout=connect_timeout,
        maximum_associations=1,
        tcp_nodelay=settings.TCP_NODELAY,
        tcp_quickack=settings.TCP_QUICKACK,
        tls=use_tls,
    )


def apply(ae: AE, config: AEConfig) -> AE:
    """Set every value of `config` on `ae` (the one place that does)."""
    ae.ae_title = config.ae_title
    ae.maximum_pdu_size = config.maximum_pdu_size
    ae.acse_timeout = config.acse_timeout
    ae.dimse_timeout = config.dimse_timeout
    ae.network_timeout = config.network_timeout
    ae.connection_timeout = config.connection_timeout
    ae.maximum_associations = config.maximum_associations
    return ae


def make_ae(config: AEConfig) -> AE:
    return apply(AE(ae_title=config.ae_title), config)


def tune_socket(sock: socket.socket, config: AEConfig) -> bool:
    """TCP options of one connection; returns whether reads should re-arm TCP_QUICKACK."""
    if config.tcp_nodelay:
        # Without it each request waits ~40 ms for a delayed ACK (PEER_NOTES.md).
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    quickack = config.tcp_quickack and hasattr(socket, "TCP_QUICKACK")
    if quickack:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
    return quickack


def server_tls(config: AEConfig) -> ssl.SSLContext | None:
    """The accepting context of a TLS node; raises tls.TLSNotConfigured without files."""
    if not config.tls:
        return None
    return tls.server_context(tls.require_configured())


def client_tls(config: AEConfig, host: str) -> tuple[ssl.SSLContext, str] | None:
    """pynetdicom's `tls_args` for an association to `host`."""
    if not config.tls:
        return None
    return tls.outgoing_context(), host
