"""First-run set-up: an admin user with a generated password and a default store node."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from accounts.services import generate_password
from doseport.auth import ADMIN, ROLES, set_role
from nodes.models import StoreNode

DEFAULT_STORE_NAME = "Default store"


def ensure_roles() -> None:
    for role in ROLES:
        Group.objects.get_or_create(name=role)


def ensure_admin() -> str | None:
    """Create user `admin` when no user exists; return its password (shown once)."""
    users = get_user_model().objects
    if users.exists():
        return None
    # Generated to pass every password validator, so the admin is never told to change it
    # just because it is "too short" (changing it is still advised: it was printed).
    password = generate_password(get_user_model()(username="admin"))
    user = users.create_superuser("admin", "", password)
    set_role(user, ADMIN)
    return password


def ensure_default_store() -> StoreNode | None:
    """The first store node, on DOSEPORT_DEFAULT_STORE_AE/PORT (checked by the settings)."""
    if StoreNode.objects.exists():
        return None
    return StoreNode.objects.create(
        name=DEFAULT_STORE_NAME, ae_title=settings.DEFAULT_STORE_AE,
        port=settings.DEFAULT_STORE_PORT, controlled=True, auto_start=True,
    )
