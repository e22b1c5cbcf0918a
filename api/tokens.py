"""Creating, finding and revoking API tokens (the page and `doseport tokens` both use these).

A key is 32 random bytes (URL-safe base64 after a `dp_` marker). Only its SHA-256 is
stored: a random key of that length needs no slow, salted hash, and the lookup is one
indexed equality on the hash.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.utils import timezone

from api.models import ApiToken

KEY_MARKER = "dp_"
PREFIX_LENGTH = 10
# last_used_at is written at most this often per token (a GET should not always write).
TOUCH_EVERY = timedelta(minutes=1)


@dataclass(frozen=True)
class NewToken:
    token: ApiToken
    key: str  # shown once, never stored


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def create(user: Any, name: str = "") -> NewToken:
    key = KEY_MARKER + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        user=user, name=name[:100], prefix=key[:PREFIX_LENGTH], key_hash=hash_key(key)
    )
    return NewToken(token, key)


def authenticate(key: str) -> ApiToken | None:
    """The active token of an active user with this key, or None."""
    if not key.startswith(KEY_MARKER) or len(key) > 200:
        return None
    token = (
        ApiToken.objects.select_related("user")
        .filter(key_hash=hash_key(key), revoked_at__isnull=True).first()
    )
    if token is None or not token.user.is_active:
        return None
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at > TOUCH_EVERY:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
    return token


def find(ref: str) -> ApiToken | None:
    """A token by its id or by its prefix (as `tokens list` shows them)."""
    if ref.isdigit():
        return ApiToken.objects.filter(pk=int(ref)).first()
    matches = list(ApiToken.objects.filter(prefix=ref[:PREFIX_LENGTH])[:2])
    return matches[0] if len(matches) == 1 else None
