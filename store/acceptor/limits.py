"""What a store node accepts from the network, in bytes, seconds and connections."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings

KIB = 1024
MIB = 1024 * KIB
GIB = 1024 * MIB


@dataclass(frozen=True)
class Limits:
    """Bounds on what one peer can make a node hold.

    first_pdu_max: an A-ASSOCIATE-RQ is a few KB; anything above this before the
      association is established is refused unread.
    first_pdu_wait_s: a connection that sends no association request within this long is
      closed (it holds a connection slot until then).
    max_connections / max_connections_per_peer: open TCP connections of this process,
      counted from accept to close; one address cannot take every slot.
    max_object: the largest data set accepted (written to disk as it arrives, never held).
    header_inflate_max: a deflated data set is inflated no further than this for the
      header look and the framing check.
    command_max: the largest command set (a real one is a few hundred bytes).
    """

    first_pdu_max: int = 64 * KIB
    first_pdu_wait_s: float = 5.0
    max_connections: int = 40
    max_connections_per_peer: int = 16
    max_object: int = 2 * GIB
    header_inflate_max: int = 16 * MIB
    command_max: int = 64 * KIB
    health_ae: str = "DOSEPORT-HC"

    @classmethod
    def from_settings(cls) -> Limits:
        return cls(
            max_connections=settings.STORE_MAX_CONNECTIONS,
            max_connections_per_peer=settings.STORE_MAX_CONNECTIONS_PER_PEER,
            max_object=settings.STORE_MAX_OBJECT_BYTES,
            health_ae=settings.HEALTH_AE,
        )
