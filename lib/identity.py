"""Keyed hashes of patient identity (DOSEPORT_PATIENT_IDENTITY=hashed).

A plain SHA-256 of a patient id or birth date is reversed by trying every likely value (a
birth date has ~40 000). HMAC-SHA-256 with a secret site key (DOSEPORT_HOME/identity_key,
made at the start of each doseport command, mode 0600) cannot be tried without the key.
The same value gives the same hash on one site, so studies of one patient still match;
another key (another site, or a deleted key file) gives other hashes and breaks matching
with the hashes stored before.
"""

from __future__ import annotations

import hashlib
import hmac
from functools import cache
from pathlib import Path

from django.conf import settings

from lib.env import read_secret
from lib.private import create_secret_file

NONE = ""
SHA256 = "sha256"  # plain digests stored before the site key existed (migration 0004)
HMAC_SHA256 = "hmac-sha256"
SCHEMES = [(NONE, "none"), (SHA256, "SHA-256 (unkeyed, older imports)"),
           (HMAC_SHA256, "HMAC-SHA-256 with the site key")]


def keyed_hash(value: str, key: bytes) -> str:
    return hmac.new(key, value.encode("utf-8"), hashlib.sha256).hexdigest()


@cache
def _key_from(path: Path) -> bytes:
    # Normally made at command start; a process started another way makes it here.
    create_secret_file(path)
    return read_secret(path).encode("ascii")


def site_key() -> bytes:
    return _key_from(Path(settings.IDENTITY_KEY_PATH))


def identity_hash(value: str) -> str:
    return keyed_hash(value, site_key())
