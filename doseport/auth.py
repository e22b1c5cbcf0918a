"""Roles: viewer (browse) < importer (run queries and imports) < admin (configuration).

A role is a Django group; superusers are admins. Every view names the role it needs with
`@role_required`, which answers 403 (never a redirect) to a logged-in user without it, so a
direct POST without the role fails on the server whatever the page showed.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, Group
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse

VIEWER = "viewer"
IMPORTER = "importer"
ADMIN = "admin"
ROLES = (VIEWER, IMPORTER, ADMIN)
_RANK = {VIEWER: 1, IMPORTER: 2, ADMIN: 3}

View = TypeVar("View", bound=Callable[..., HttpResponse])


def role_of(user: AbstractBaseUser | AnonymousUser) -> str | None:
    if not user.is_authenticated:
        return None
    if getattr(user, "is_superuser", False):
        return ADMIN
    names = set(user.groups.values_list("name", flat=True))  # type: ignore[union-attr,attr-defined]
    for role in reversed(ROLES):
        if role in names:
            return role
    return None


def has_role(user: AbstractBaseUser | AnonymousUser, role: str) -> bool:
    mine = role_of(user)
    return mine is not None and _RANK[mine] >= _RANK[role]


def role_required(role: str) -> Callable[[View], View]:
    def decorate(view: View) -> View:
        @wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if not has_role(request.user, role):
                raise PermissionDenied(f"This needs the {role} role.")
            return view(request, *args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate


def set_role(user: Any, role: str) -> None:
    """Give a user exactly one role."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; choose one of {', '.join(ROLES)}")
    groups = [Group.objects.get_or_create(name=r)[0] for r in ROLES]
    user.groups.remove(*groups)
    user.groups.add(Group.objects.get(name=role))


def roles_context(request: HttpRequest) -> dict[str, object]:
    user = getattr(request, "user", None)
    if user is None:
        return {}
    return {
        "role": role_of(user),
        "can_import": has_role(user, IMPORTER),
        "can_admin": has_role(user, ADMIN),
    }
