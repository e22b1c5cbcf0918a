"""Accounts: own password, the lock-out after failed logins, the Users page, error pages."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.template.loader import render_to_string
from django.test import Client

from audit.models import AuditEntry
from doseport import bootstrap
from doseport.auth import ADMIN, VIEWER, role_of, set_role

pytestmark = pytest.mark.django_db

GOOD = "pale-orbit-tangent-42"


def make(username: str, role: str | None = None, password: str = GOOD, **extra: Any) -> Any:
    user = get_user_model().objects.create_user(username, password=password, **extra)
    if role:
        set_role(user, role)
    return user


def login(client: Client, username: str, password: str, address: str = "10.0.0.1") -> Any:
    return client.post("/login/", {"username": username, "password": password},
                       REMOTE_ADDR=address)


def logged_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


# Own password ---------------------------------------------------------------------------

def test_it_changes_the_own_password_and_stays_logged_in() -> None:
    user = make("carol", VIEWER)
    client = Client()
    client.force_login(user)
    page = client.get("/account/password/")
    assert page.status_code == 200 and 'id="password-form"' in page.content.decode()
    response = client.post("/account/password/", {
        "old_password": GOOD, "new_password1": "quiet-harbour-lamp-77",
        "new_password2": "quiet-harbour-lamp-77",
    })
    assert response.status_code == 302 and response["Location"] == "/"
    user.refresh_from_db()
    assert user.check_password("quiet-harbour-lamp-77")
    assert client.get("/").status_code == 200
    assert AuditEntry.objects.filter(action="user.password", username="carol").exists()


@pytest.mark.parametrize(
    "weak", ["12345678", "password", "123456789012", "short-pw-1", "carolina-mendes7"]
)
def test_it_refuses_weak_passwords(weak: str) -> None:
    user = make("carolina-mendes", VIEWER)
    client = Client()
    client.force_login(user)
    response = client.post("/account/password/", {
        "old_password": GOOD, "new_password1": weak, "new_password2": weak,
    })
    assert response.status_code == 200 and "errorlist" in response.content.decode()
    user.refresh_from_db()
    assert user.check_password(GOOD)


def test_it_generates_a_first_run_admin_password_that_passes_the_rules() -> None:
    password = bootstrap.ensure_admin()
    assert password is not None
    admin = get_user_model().objects.get(username="admin")
    validate_password(password, admin)
    assert admin.check_password(password) and role_of(admin) == ADMIN


# Lock-out ------------------------------------------------------------------------------

def test_it_locks_the_user_name_and_the_address_after_repeated_failures(
    caplog: pytest.LogCaptureFixture,
) -> None:
    make("admin", ADMIN)
    make("alice", VIEWER)
    client = Client()
    for _ in range(30):
        assert not logged_in(client)
        login(client, "admin", "wrong-guess")
    with caplog.at_level(logging.WARNING, logger="accounts.lockout"):
        refused = login(client, "admin", GOOD)
    assert "'admin' from 10.0.0.1; the user name or the address is locked" in caplog.text
    assert refused.status_code == 429 and not logged_in(client)
    body = refused.content.decode()
    assert "Too many failed logins" in body and 'id="login-locked"' in body
    assert "did not match" not in body
    # The user name is locked from anywhere, the address for any user name.
    assert login(Client(), "admin", GOOD, address="10.0.0.7").status_code == 429
    assert login(Client(), "alice", GOOD, address="10.0.0.1").status_code == 429
    # Another user from another address is not locked.
    other = Client()
    assert login(other, "alice", GOOD, address="10.0.0.2").status_code == 302
    assert logged_in(other)


def test_it_logs_each_failure_with_the_name_and_address_never_the_password(
    caplog: pytest.LogCaptureFixture,
) -> None:
    make("admin", ADMIN)
    with caplog.at_level(logging.WARNING):
        login(Client(), "admin", "secret-guess-1", address="10.0.0.5")
        login(Client(), "mallory\nFAKE granted admin\x1b[2J", "secret-guess-2", address="10.0.0.6")
    ours = [r.getMessage() for r in caplog.records if r.name == "accounts.lockout"]
    assert ours == [
        "login failed for user 'admin' from 10.0.0.5",
        "login failed for user 'mallory\\nFAKE granted admin\\x1b[2J' from 10.0.0.6",
    ]
    from axes.models import AccessAttempt

    assert not AccessAttempt.objects.filter(post_data__contains="secret-guess").exists()
    every = [r.getMessage() for r in caplog.records]
    assert not any("secret-guess" in m for m in every)
    assert not any("\n" in m for m in every)


def test_it_unlocks_a_user_from_the_users_page() -> None:
    boss = make("boss", ADMIN)
    victim = make("victim", VIEWER)
    for _ in range(10):
        login(Client(), "victim", "wrong-guess", address="10.0.0.3")
    assert login(Client(), "victim", GOOD, address="10.0.0.4").status_code == 429
    admin = Client()
    admin.force_login(boss)
    page = admin.get("/users/").content.decode()
    assert "locked" in page and "10.0.0.3" in page
    assert admin.post(f"/users/{victim.pk}/unlock/").status_code == 302
    assert login(Client(), "victim", GOOD, address="10.0.0.3").status_code == 302
    assert AuditEntry.objects.filter(action="user.unlock", target__contains="victim").exists()


def test_it_trusts_x_forwarded_for_only_from_a_listed_proxy(settings: Any) -> None:
    from django.test import RequestFactory

    from accounts.lockout import client_address

    request = RequestFactory().get("/", REMOTE_ADDR="127.0.0.1",
                                   HTTP_X_FORWARDED_FOR="1.2.3.4, 10.9.8.7")
    assert client_address(request) == "127.0.0.1"
    settings.TRUSTED_PROXIES = ["127.0.0.1"]
    assert client_address(request) == "10.9.8.7"


# Users page ----------------------------------------------------------------------------

def test_it_adds_a_user_with_a_generated_password_shown_once() -> None:
    boss = make("boss", ADMIN)
    client = Client()
    client.force_login(boss)
    assert client.get("/users/add/").status_code == 200
    response = client.post("/users/add/", {"username": "dora", "role": "importer"})
    assert response.status_code == 200 and response["Cache-Control"].startswith("max-age=0")
    password = response.context["password"]
    assert password in response.content.decode()
    dora = get_user_model().objects.get(username="dora")
    assert dora.check_password(password) and role_of(dora) == "importer"
    assert password not in client.get("/users/").content.decode()
    assert AuditEntry.objects.filter(action="user.add", target__contains="dora").exists()


def test_it_adds_a_user_with_a_given_password_and_refuses_a_weak_one() -> None:
    boss = make("boss", ADMIN)
    client = Client()
    client.force_login(boss)
    weak = client.post("/users/add/", {"username": "ed", "role": "viewer", "password": "password"})
    assert weak.status_code == 200 and "too common" in weak.content.decode()
    assert not get_user_model().objects.filter(username="ed").exists()
    response = client.post("/users/add/", {"username": "ed", "role": "viewer", "password": GOOD})
    assert response.status_code == 302 and response["Location"] == "/users/"
    assert get_user_model().objects.get(username="ed").check_password(GOOD)
    duplicate = client.post("/users/add/", {"username": "ed", "role": "viewer"})
    assert "exists already" in duplicate.content.decode()


def test_it_changes_role_disables_enables_and_resets_a_password() -> None:
    boss = make("boss", ADMIN)
    fay = make("fay", VIEWER)
    client = Client()
    client.force_login(boss)
    assert client.post(f"/users/{fay.pk}/role/", {"role": "importer"}).status_code == 302
    assert role_of(fay) == "importer"
    fay_client = Client()
    fay_client.force_login(fay)
    assert fay_client.get("/").status_code == 200
    client.post(f"/users/{fay.pk}/disable/")
    fay.refresh_from_db()
    assert not fay.is_active
    assert fay_client.get("/").status_code == 302  # her session no longer counts
    assert login(Client(), "fay", GOOD).status_code == 200  # refused like a wrong password
    assert "disabled" in client.get("/users/").content.decode()
    client.post(f"/users/{fay.pk}/enable/")
    fay.refresh_from_db()
    assert fay.is_active
    reset = client.post(f"/users/{fay.pk}/reset-password/")
    new_password = reset.context["password"]
    fay.refresh_from_db()
    assert fay.check_password(new_password) and not fay.check_password(GOOD)
    actions = set(AuditEntry.objects.values_list("action", flat=True))
    assert {"user.role", "user.disable", "user.enable", "user.password"} <= actions


def test_it_protects_the_last_active_admin() -> None:
    boss = make("boss", ADMIN)
    make("old-admin", ADMIN, is_active=False)
    client = Client()
    client.force_login(boss)
    response = client.post(f"/users/{boss.pk}/disable/", follow=True)
    assert "last active admin" in response.content.decode()
    response = client.post(f"/users/{boss.pk}/role/", {"role": "viewer"}, follow=True)
    assert "last active admin" in response.content.decode()
    boss.refresh_from_db()
    assert boss.is_active and role_of(boss) == ADMIN
    second = make("deputy", ADMIN)
    client.post(f"/users/{second.pk}/role/", {"role": "viewer"})
    assert role_of(second) == VIEWER


def test_it_demotes_a_superuser_for_real() -> None:
    root = get_user_model().objects.create_superuser("root", "", GOOD)
    boss = make("boss", ADMIN)
    client = Client()
    client.force_login(boss)
    client.post(f"/users/{root.pk}/role/", {"role": "viewer"})
    root.refresh_from_db()
    assert not root.is_superuser and role_of(root) == VIEWER


def test_it_refuses_the_users_page_to_non_admins_with_a_styled_reason() -> None:
    viewer = make("vic", VIEWER)
    client = Client()
    client.force_login(viewer)
    for method, url in [("get", "/users/"), ("post", f"/users/{viewer.pk}/role/")]:
        response = getattr(client, method)(url, {"role": "admin"} if method == "post" else None)
        assert response.status_code == 403, url
        body = response.content.decode()
        assert "Your role, viewer, cannot manage users: that needs the admin role." in body
        assert 'id="account-menu"' in body and 'href="/studies/"' in body
    assert role_of(viewer) == VIEWER
    assert 'id="nav-users"' not in client.get("/").content.decode()


def test_it_names_the_refused_role_on_other_pages() -> None:
    client = Client()
    client.force_login(make("nobody-role"))
    body = client.get("/").content.decode()
    assert "has no role yet" in body and "Not allowed" in body


def test_it_shows_styled_404_and_500_pages() -> None:
    client = Client()
    client.force_login(make("vic", VIEWER))
    response = client.get("/no-such-page/")
    body = response.content.decode()
    assert response.status_code == 404 and "/no-such-page/" in body
    assert 'id="account-menu"' in body and "Not found" in body
    page = render_to_string("500.html")
    assert "Server error" in page and 'href="/studies/"' in page


def test_it_shows_the_account_menu() -> None:
    client = Client()
    client.force_login(make("boss", ADMIN))
    body = client.get("/").content.decode()
    assert 'id="nav-password"' in body and 'id="nav-users"' in body
    assert 'action="/logout/"' in body and "boss" in body and "(admin)" in body
