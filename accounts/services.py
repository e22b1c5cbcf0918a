"""User management shared by the Users page and `doseport users`.

Every change that could leave nobody able to administer Doseport (disabling or demoting the
last active admin) raises AccountError with a sentence for the page or the command line.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q, QuerySet

from doseport.auth import ADMIN, ROLES, role_of, set_role

GENERATED_PASSWORD_BYTES = 15  # 20 URL-safe characters


class AccountError(Exception):
    """A refused change; str() is the sentence to show."""


@dataclass(frozen=True)
class Created:
    user: Any
    password: str | None  # the generated password, to show once; None when one was given


def generate_password(user: User | None = None) -> str:
    """A random password that passes every configured validator."""
    while True:
        password = secrets.token_urlsafe(GENERATED_PASSWORD_BYTES)
        try:
            validate_password(password, user)
        except ValidationError:
            continue
        return password


def check_password_rules(password: str, user: User | None) -> None:
    """Raise AccountError listing every validator's complaint."""
    try:
        validate_password(password, user)
    except ValidationError as exc:
        raise AccountError(" ".join(exc.messages)) from None


def active_admins() -> QuerySet[Any]:
    return get_user_model().objects.filter(is_active=True).filter(
        Q(is_superuser=True) | Q(groups__name=ADMIN)
    ).distinct()


def _refuse_if_last_admin(user: Any, doing: str) -> None:
    if not user.is_active or role_of(user) != ADMIN:
        return
    # Lock the admin rows so two admins demoting each other cannot both succeed.
    # (PostgreSQL refuses FOR UPDATE with DISTINCT: lock the rows by primary key.)
    ids = list(active_admins().values_list("pk", flat=True))
    locked = get_user_model().objects.filter(pk__in=ids, is_active=True).select_for_update()
    others = [u for u in locked if u.pk != user.pk]
    if not others:
        raise AccountError(
            f"{user.get_username()} is the last active admin and cannot be {doing}; "
            "make another user admin first."
        )


def create_user(username: str, role: str, password: str | None = None) -> Created:
    if role not in ROLES:
        raise AccountError(f"unknown role {role!r}; choose one of {', '.join(ROLES)}")
    users = get_user_model().objects
    if users.filter(username=username).exists():
        raise AccountError(f"A user named {username} exists already.")
    candidate = get_user_model()(username=username)
    if password:
        check_password_rules(password, candidate)
    generated = None if password else generate_password(candidate)
    with transaction.atomic():
        user = users.create_user(username, password=password or generated)
        set_role(user, role)
    return Created(user, generated)


def change_role(user: Any, role: str) -> None:
    if role not in ROLES:
        raise AccountError(f"unknown role {role!r}; choose one of {', '.join(ROLES)}")
    with transaction.atomic():
        if role != ADMIN:
            _refuse_if_last_admin(user, "demoted")
        set_role(user, role)


def disable(user: Any) -> None:
    with transaction.atomic():
        _refuse_if_last_admin(user, "disabled")
        user.is_active = False
        user.save(update_fields=["is_active"])


def enable(user: Any) -> None:
    user.is_active = True
    user.save(update_fields=["is_active"])


def set_password(user: Any, password: str | None = None) -> str | None:
    """Set `password` (checked against the validators) or a generated one, returned once."""
    if password:
        check_password_rules(password, user)
    generated = None if password else generate_password(user)
    user.set_password(password or generated)
    user.save(update_fields=["password"])
    return generated
