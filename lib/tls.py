"""DICOM TLS (PS3.15 B.9, the BCP 195 profile): the SSL contexts of every AE.

One certificate and key (`DOSEPORT_TLS_CERT`, `DOSEPORT_TLS_KEY`) and one CA bundle
(`DOSEPORT_TLS_CA`) serve both directions: a TLS store node presents the certificate and
requires a client certificate that chains to the CA (mutual authentication, as DCMTK's
`storescp +tls` does by default); an outgoing association to a TLS remote presents the
same certificate and verifies the remote's against the CA, host name included.

Profile (RFC 9325, "BCP 195"): TLS 1.2 or newer, ECDHE key exchange with AES-GCM or
ChaCha20-Poly1305 only (TLS 1.3 suites are all AEAD), no TLS compression, no
renegotiation, the server's cipher order, a fresh ECDH key per handshake.
"""

from __future__ import annotations

import logging
import os
import socket
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from lib.env import ConfigError

logger = logging.getLogger(__name__)

CERT, KEY, CA = "DOSEPORT_TLS_CERT", "DOSEPORT_TLS_KEY", "DOSEPORT_TLS_CA"
CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20:!aNULL:!eNULL:!MD5:!SHA1:!DSS"
MINIMUM_VERSION = ssl.TLSVersion.TLSv1_2
# A caller that connects and then stays silent (or speaks plain DICOM to a TLS node) is
# dropped after this long; the handshake runs in the connection's own thread.
HANDSHAKE_TIMEOUT_S = 5.0


class TLSNotConfigured(Exception):
    """A node asks for TLS but the site has no certificate; the message says what to set."""


NOT_CONFIGURED = (
    f"DICOM TLS is on for this node, but {CERT}, {KEY} and {CA} are not set "
    "(docs/configuration.md, 'DICOM TLS')"
)


@dataclass(frozen=True)
class TLSFiles:
    cert: Path
    key: Path
    ca: Path


def files_from_env(environ: Mapping[str, str] | None = None) -> TLSFiles | None:
    """The three PEM paths, checked to load together; None when none is set.

    Raises ConfigError naming the setting at fault: one set without the others, a
    missing or unreadable file, a key that does not match the certificate, a CA file
    without certificates, an encrypted key (a service cannot type its password).
    """
    env = os.environ if environ is None else environ
    raw = {name: env.get(name, "").strip() for name in (CERT, KEY, CA)}
    if not any(raw.values()):
        return None
    for name, value in raw.items():
        if not value:
            raise ConfigError(
                f"{name} is not set: DICOM TLS needs {CERT}, {KEY} and {CA} together"
            )
    paths = {name: Path(value).expanduser().resolve() for name, value in raw.items()}
    for name, path in paths.items():
        if not path.is_file():
            raise ConfigError(f"{name}={raw[name]!r}: no such file (a PEM file is expected)")
        if not os.access(path, os.R_OK):
            raise ConfigError(f"{name}={raw[name]!r}: not readable by this user")
    files = TLSFiles(cert=paths[CERT], key=paths[KEY], ca=paths[CA])
    _load_identity(ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER), files)
    return files


def _no_password() -> str:
    raise ConfigError(f"{KEY}: the key is encrypted; give Doseport an unencrypted key (0600)")


def _load_identity(context: ssl.SSLContext, files: TLSFiles) -> None:
    try:
        context.load_cert_chain(files.cert, files.key, password=_no_password)
    except ssl.SSLError as exc:
        raise ConfigError(
            f"{KEY} does not match {CERT}, or one of them is not PEM ({exc.reason or exc})"
        ) from None
    try:
        context.load_verify_locations(cafile=str(files.ca))
    except ssl.SSLError as exc:
        raise ConfigError(f"{CA}: not a PEM CA certificate bundle ({exc.reason or exc})") from None


def _profile(context: ssl.SSLContext) -> ssl.SSLContext:
    context.minimum_version = MINIMUM_VERSION
    context.set_ciphers(CIPHERS)
    context.options |= (
        ssl.OP_NO_COMPRESSION | ssl.OP_CIPHER_SERVER_PREFERENCE | ssl.OP_SINGLE_ECDH_USE
        | ssl.OP_NO_RENEGOTIATION
    )
    return context


def server_context(files: TLSFiles) -> ssl.SSLContext:
    """For a TLS store node: our certificate; callers must present one from the CA."""
    context = _profile(ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER))
    _load_identity(context, files)
    context.verify_mode = ssl.CERT_REQUIRED
    return context


def client_context(files: TLSFiles, check_hostname: bool = True) -> ssl.SSLContext:
    """For associations we open to a TLS remote: verify it against the CA (and its name)."""
    context = _profile(ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT))
    _load_identity(context, files)
    context.check_hostname = check_hostname
    context.verify_mode = ssl.CERT_REQUIRED
    return context


def key_warnings(files: TLSFiles | None) -> list[str]:
    """A private key others may read (for the system check, doseport/checks.py)."""
    if files is None or os.name == "nt":
        return []
    try:
        mode = files.key.stat().st_mode & 0o777
    except OSError:
        return []
    if mode & 0o037:  # 0640 with a group such as Debian's ssl-cert is usual
        return [f"{KEY} {files.key} is open to other users (mode {mode:04o}): "
                f"chmod 600 {files.key} (or 640 with a group only services are in)"]
    return []


def configured() -> TLSFiles | None:
    from django.conf import settings

    return getattr(settings, "TLS_FILES", None)


def require_configured() -> TLSFiles:
    files = configured()
    if files is None:
        raise TLSNotConfigured(NOT_CONFIGURED)
    return files


@lru_cache(maxsize=4)
def _cached_client_context(files: TLSFiles, check_hostname: bool) -> ssl.SSLContext:
    return client_context(files, check_hostname)


def outgoing_context() -> ssl.SSLContext:
    """The client context of this process (built once per settings)."""
    from django.conf import settings

    return _cached_client_context(
        require_configured(), bool(getattr(settings, "TLS_CHECK_HOSTNAME", True))
    )


def wrap_accepted(context: ssl.SSLContext, sock: socket.socket) -> ssl.SSLSocket:
    """Wrap an accepted connection without handshaking yet (see `handshake`)."""
    return context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)


def handshake(sock: ssl.SSLSocket, peer: object, timeout: float = HANDSHAKE_TIMEOUT_S) -> bool:
    """Complete the server handshake within `timeout`; False (one log line) when it fails.

    Runs in the connection's thread: a silent or plain-TCP caller never holds up the
    listening thread that accepts the next connection.
    """
    previous = sock.gettimeout()
    sock.settimeout(timeout)
    try:
        sock.do_handshake()
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc.__class__.__name__
        if isinstance(exc, TimeoutError | socket.timeout):
            reason = f"no handshake within {timeout:g} s"
        elif reason in ("WRONG_VERSION_NUMBER", "HTTP_REQUEST"):
            reason = f"the caller does not speak TLS ({reason}); this node accepts only TLS"
        logger.warning("TLS handshake with %s refused: %s", _address(peer), reason)
        return False
    sock.settimeout(previous)
    return True


def _address(peer: object) -> str:
    if isinstance(peer, tuple) and len(peer) >= 2:
        return f"{peer[0]}:{peer[1]}"
    return str(peer)


def describe(sock: socket.socket) -> str:
    """'TLSv1.3 TLS_AES_256_GCM_SHA384' for a TLS socket, '' for plain TCP."""
    if not isinstance(sock, ssl.SSLSocket):
        return ""
    cipher = sock.cipher()
    return f"{sock.version()} {cipher[0] if cipher else ''}".strip()
