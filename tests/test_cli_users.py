"""`doseport users`: add, set-role, list, disable, enable, set-password, unlock."""

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


GOOD = "pale-orbit-tangent-42"


def test_it_disables_and_enables_a_user_and_protects_the_last_admin() -> None:
    run("add", "boss", "--role", "admin")
    run("add", "tech")
    assert "tech is disabled" in run("disable", "tech")
    assert not get_user_model().objects.get(username="tech").is_active
    assert "disabled" in run("list")
    run("enable", "tech")
    assert get_user_model().objects.get(username="tech").is_active
    with pytest.raises(CommandError, match="last active admin"):
        run("disable", "boss")
    with pytest.raises(CommandError, match="last active admin"):
        run("set-role", "boss", "viewer")
    assert get_user_model().objects.get(username="boss").is_active


def test_it_sets_a_given_or_generated_password_and_refuses_weak_ones() -> None:
    run("add", "tech")
    user = get_user_model().objects
    assert "changed" in run("set-password", "tech", "--password", GOOD)
    assert user.get(username="tech").check_password(GOOD)
    out = run("set-password", "tech", "--generate")
    generated = out.strip().rsplit(" ", 1)[-1]
    assert user.get(username="tech").check_password(generated) and generated != GOOD
    for weak in ("12345678", "password"):
        with pytest.raises(CommandError, match="too short|too common"):
            run("set-password", "tech", "--password", weak)
    assert user.get(username="tech").check_password(generated)


def test_it_asks_for_the_password_only_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    run("add", "tech")
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    with pytest.raises(CommandError, match="no terminal"):
        run("set-password", "tech")
    monkeypatch.setattr("sys.stdin.isatty", lambda: True, raising=False)
    answers = iter([GOOD, GOOD])
    monkeypatch.setattr("getpass.getpass", lambda prompt="": next(answers))
    run("set-password", "tech")
    assert get_user_model().objects.get(username="tech").check_password(GOOD)


def test_it_unlocks_a_user_name_and_an_address() -> None:
    from axes.models import AccessAttempt

    run("add", "tech")
    for address in ("10.0.0.1", "10.0.0.2"):
        AccessAttempt.objects.create(
            username="tech", ip_address=address, user_agent="t", failures_since_start=20,
            get_data="", post_data="", http_accept="", path_info="/login/",
        )
    assert "locked" in run("list")
    AccessAttempt.objects.create(
        username="other", ip_address="10.0.0.9", user_agent="t", failures_since_start=20,
        get_data="", post_data="", http_accept="", path_info="/login/",
    )
    assert "2 failed-login record(s) cleared" in run("unlock", "tech")
    assert "locked" not in run("list")
    assert "1 failed-login" in run("unlock", "--address", "10.0.0.9")
    assert not AccessAttempt.objects.exists()
    with pytest.raises(CommandError, match="name a user"):
        run("unlock")
