"""Roles: viewer (browse) < importer (run queries and imports) < admin (configuration).

A role is a Django group; superusers are admins. Every view names the role it needs with
`@role_required`, which answers 403 (never a redirect) to a logged-in user without it, so a
direct POST without the role fails on the server whatever the page showed. The 403 page
shows the reason (`denial_reason`), e.g. "Your role, viewer, cannot run queries ...".
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
# What a role adds to the one below it: the 403 page says which of these was refused.
ROLE_ACTIONS = {
    VIEWER: "browse the registry",
    IMPORTER: "run queries, retrieves or imports",
    ADMIN: "change the configuration or manage users",
}

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


def denial_reason(mine: str | None, needed: str, action: str | None = None) -> str:
    """One sentence for the 403 page: whose role, what it cannot do, what would."""
    doing = action or ROLE_ACTIONS[needed]
    if mine is None:
        return f"Your account has no role yet, so it cannot {doing}. Ask an admin to give you one."
    return f"Your role, {mine}, cannot {doing}: that needs the {needed} role."


def role_required(role: str, action: str | None = None) -> Callable[[View], View]:
    """Answer 403 with a reason unless the user has `role`; `action` names what is refused."""

    def decorate(view: View) -> View:
        @wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if not has_role(request.user, role):
                raise PermissionDenied(denial_reason(role_of(request.user), role, action))
            return view(request, *args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate


def set_role(user: Any, role: str) -> None:
    """Give a user exactly one role (a superuser given a lower role stops being one)."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; choose one of {', '.join(ROLES)}")
    if role != ADMIN and getattr(user, "is_superuser", False):
        user.is_superuser = False
        user.save(update_fields=["is_superuser"])
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
