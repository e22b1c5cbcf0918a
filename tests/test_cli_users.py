"""`doseport users`: create users with a role, change roles, list them."""

from __future__ import annotations

import io

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from doseport.auth import role_of

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = io.StringIO()
    call_command("users", *args, stdout=out)
    return out.getvalue()


def test_it_adds_a_user_with_a_role_and_a_password_that_works() -> None:
    out = run("add", "physicist", "--role", "importer")
    password = out.strip().rsplit(" ", 1)[-1]
    user = get_user_model().objects.get(username="physicist")
    assert user.check_password(password) and role_of(user) == "importer"
    assert "physicist" in run("list") and "importer" in run("list")


def test_it_changes_a_role_and_refuses_unknown_users() -> None:
    run("add", "tech")
    run("set-role", "tech", "admin")
    assert role_of(get_user_model().objects.get(username="tech")) == "admin"
    with pytest.raises(CommandError, match="no user 'ghost'"):
        run("set-role", "ghost", "viewer")
    with pytest.raises(CommandError, match="exists"):
        run("add", "tech")
