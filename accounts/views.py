"""Own account (change password) and the admins' Users page."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth import get_user_model, update_session_auth_hash
from django.contrib.auth.forms import PasswordChangeForm
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.cache import add_never_cache_headers
from django.views.decorators.http import require_GET, require_http_methods, require_POST

import audit
from accounts import lockout, services
from accounts.forms import AddressForm, AddUserForm, RoleForm
from doseport.auth import ADMIN, role_of, role_required

MANAGE_USERS = "manage users"


@require_http_methods(["GET", "POST"])
def password_change(request: HttpRequest) -> HttpResponse:
    """Any logged-in user, whatever the role (LoginRequiredMiddleware sends others to log in)."""
    form = PasswordChangeForm(request.user, request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = form.save()
        update_session_auth_hash(request, user)  # stay logged in here, out everywhere else
        audit.record("user.password", user, request=request, detail={"by": "self"})
        messages.success(request, "Your password has been changed.")
        return redirect("home")
    return render(request, "accounts/password_change.html", {"form": form})


@require_GET
@role_required(ADMIN, MANAGE_USERS)
def user_list(request: HttpRequest) -> HttpResponse:
    users = get_user_model().objects.order_by("username").prefetch_related("groups")
    locked = lockout.locked_usernames()
    rows = [{"user": u, "role": role_of(u), "lock": locked.get(u.get_username())} for u in users]
    return render(request, "accounts/users.html", {
        "rows": rows, "role_form": RoleForm(), "locked_addresses": lockout.locked_addresses(),
    })


@require_http_methods(["GET", "POST"])
@role_required(ADMIN, MANAGE_USERS)
def user_add(request: HttpRequest) -> HttpResponse:
    form = AddUserForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            created = services.create_user(data["username"], data["role"], data["password"])
        except services.AccountError as exc:
            form.add_error("password" if data["password"] else None, str(exc))
        else:
            audit.record("user.add", created.user, request=request, detail={"role": data["role"]})
            return _added_or_reset(request, created.user, created.password, "Added")
    return render(request, "accounts/user_add.html", {"form": form})


def _added_or_reset(
    request: HttpRequest, user: Any, password: str | None, verb: str
) -> HttpResponse:
    """A generated password is rendered once on this response, never stored in a message."""
    if password is None:
        messages.success(request, f"{verb} user {user.get_username()}.")
        return redirect("accounts:users")
    response = render(request, "accounts/user_password.html",
                      {"target": user, "password": password, "verb": verb})
    add_never_cache_headers(response)
    return response


def _target(pk: int) -> Any:
    return get_object_or_404(get_user_model(), pk=pk)


def _refused(request: HttpRequest, exc: services.AccountError) -> HttpResponse:
    messages.error(request, str(exc))
    return redirect("accounts:users")


@require_POST
@role_required(ADMIN, MANAGE_USERS)
def user_role(request: HttpRequest, pk: int) -> HttpResponse:
    target = _target(pk)
    form = RoleForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose one of the roles viewer, importer or admin.")
        return redirect("accounts:users")
    before, role = role_of(target), form.cleaned_data["role"]
    try:
        services.change_role(target, role)
    except services.AccountError as exc:
        return _refused(request, exc)
    audit.record("user.role", target, request=request, detail={"role": [before, role]})
    messages.success(request, f"{target.get_username()} is now {role}.")
    return redirect("accounts:users")


@require_POST
@role_required(ADMIN, MANAGE_USERS)
def user_disable(request: HttpRequest, pk: int) -> HttpResponse:
    target = _target(pk)
    try:
        services.disable(target)
    except services.AccountError as exc:
        return _refused(request, exc)
    audit.record("user.disable", target, request=request)
    messages.success(request, f"Disabled {target.get_username()}: it can no longer log in.")
    return redirect("accounts:users")


@require_POST
@role_required(ADMIN, MANAGE_USERS)
def user_enable(request: HttpRequest, pk: int) -> HttpResponse:
    target = _target(pk)
    services.enable(target)
    audit.record("user.enable", target, request=request)
    messages.success(request, f"Enabled {target.get_username()}.")
    return redirect("accounts:users")


@require_POST
@role_required(ADMIN, MANAGE_USERS)
def user_reset_password(request: HttpRequest, pk: int) -> HttpResponse:
    target = _target(pk)
    password = services.set_password(target)
    audit.record("user.password", target, request=request, detail={"by": "reset"})
    return _added_or_reset(request, target, password, "Reset the password of")


@require_POST
@role_required(ADMIN, MANAGE_USERS)
def user_unlock(request: HttpRequest, pk: int) -> HttpResponse:
    target = _target(pk)
    count = lockout.unlock_user(target.get_username())
    audit.record("user.unlock", target, request=request, detail={"attempts_cleared": count})
    messages.success(request, f"Unlocked {target.get_username()}.")
    return redirect("accounts:users")


@require_POST
@role_required(ADMIN, MANAGE_USERS)
def address_unlock(request: HttpRequest) -> HttpResponse:
    form = AddressForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Not an IP address.")
        return redirect("accounts:users")
    address = form.cleaned_data["address"]
    count = lockout.unlock_address(address)
    audit.record("user.unlock", f"address {address}", request=request,
                 detail={"attempts_cleared": count})
    messages.success(request, f"Unlocked address {address}.")
    return redirect("accounts:users")
