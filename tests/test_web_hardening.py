"""Allowed hosts, the HTTPS switch, idle sessions, a strong SECRET_KEY and the CSP header."""

from __future__ import annotations

import os
import re
import subprocess
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.contrib.sessions.models import Session
from django.test import Client
from django.utils import timezone

from doseport.security import CONTENT_SECURITY_POLICY, REFRESHED_KEY, refresh_interval_s
from lib.env import ConfigError, allowed_hosts, env_secret, https_origins
from tests.conftest import REPO, doseport_cmd

TEMPLATES = REPO / "templates"


@pytest.mark.django_db
def test_it_answers_400_to_a_foreign_host(client: Client) -> None:
    assert client.get("/login/", HTTP_HOST="attacker.example").status_code == 400
    assert client.get("/login/", HTTP_HOST="127.0.0.1:8000").status_code == 200
    assert client.get("/login/", HTTP_HOST="localhost").status_code == 200


def test_allowed_hosts_default_to_the_bind_address_and_loopback() -> None:
    assert "*" not in settings.ALLOWED_HOSTS
    assert allowed_hosts("10.1.2.3", []) == ["10.1.2.3", "localhost", "127.0.0.1", "[::1]"]
    assert allowed_hosts("0.0.0.0", ["dose.example"]) == [
        "localhost", "127.0.0.1", "[::1]", "dose.example"]
    assert allowed_hosts("::1", [])[0] == "[::1]"


def test_https_origins_come_from_the_allowed_hosts() -> None:
    assert https_origins(["dose.example", ".hospital.local", "*"]) == [
        "https://dose.example", "https://*.hospital.local"]


def test_a_short_secret_key_in_the_environment_is_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("SECRET_KEY", "abc")
    with pytest.raises(ConfigError, match=r"^SECRET_KEY is too weak.*token_urlsafe.*unset it"):
        env_secret("SECRET_KEY", tmp_path / "secret_key")
    monkeypatch.setenv("SECRET_KEY", "a" * 60)  # long but one character
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        env_secret("SECRET_KEY", tmp_path / "secret_key")
    good = "k3Y-x9Q_" * 8
    monkeypatch.setenv("SECRET_KEY", good)
    assert env_secret("SECRET_KEY", tmp_path / "secret_key") == good


def test_a_short_stored_key_is_refused_and_a_missing_one_is_empty(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("SECRET_KEY", raising=False)
    assert env_secret("SECRET_KEY", tmp_path / "secret_key") == ""
    (tmp_path / "secret_key").write_text("short\n")
    with pytest.raises(ConfigError, match="secret_key is too weak.*delete it"):
        env_secret("SECRET_KEY", tmp_path / "secret_key")


@pytest.mark.django_db
def test_every_page_carries_the_content_security_policy(client: Client, viewer) -> None:  # type: ignore[no-untyped-def]
    assert client.get("/login/")["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    client.force_login(viewer)
    assert client.get("/")["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert "script-src 'self';" in CONTENT_SECURITY_POLICY
    assert "unsafe-inline" not in CONTENT_SECURITY_POLICY


INLINE = [
    (re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.I), "inline <script>"),
    (re.compile(r"<style\b", re.I), "<style> element"),
    (re.compile(r"\sstyle\s*=", re.I), "style attribute"),
    (re.compile(r"\son[a-z]+\s*=", re.I), "event handler attribute"),
    (re.compile(r"javascript:", re.I), "javascript: URL"),
    (re.compile(r"\shx-on", re.I), "hx-on (needs eval)"),
]


def test_no_template_needs_inline_script_or_style() -> None:
    folders = [TEMPLATES, *REPO.glob("*/templates")]
    found = []
    for page in sorted({p for folder in folders for p in folder.rglob("*.html")}):
        text = page.read_text()
        found += [f"{page.relative_to(REPO)}: {why}" for rx, why in INLINE if rx.search(text)]
    assert not found, "blocked by the Content-Security-Policy:\n" + "\n".join(found)


def test_htmx_is_told_not_to_inject_its_style() -> None:
    assert '"includeIndicatorStyles": false' in (TEMPLATES / "base.html").read_text()


@pytest.mark.django_db
def test_a_session_expires_after_the_idle_time_not_after_login(client: Client, viewer) -> None:  # type: ignore[no-untyped-def]
    assert settings.SESSION_COOKIE_AGE == settings.SESSION_IDLE_HOURS * 3600
    client.force_login(viewer)
    client.get("/")
    session = Session.objects.get()
    # As if the last refresh was longer ago than the refresh interval.
    data = session.get_decoded()
    data[REFRESHED_KEY] = int(time.time()) - refresh_interval_s(settings.SESSION_COOKIE_AGE) - 1
    old_expiry = timezone.now() + timedelta(hours=1)
    Session.objects.filter(pk=session.pk).update(
        session_data=Session.objects.encode(data), expire_date=old_expiry)

    response = client.get("/")

    refreshed = Session.objects.get(pk=session.pk)
    assert refreshed.expire_date > old_expiry + timedelta(hours=settings.SESSION_IDLE_HOURS - 2)
    assert response.cookies[settings.SESSION_COOKIE_NAME]["max-age"] == settings.SESSION_COOKIE_AGE


@pytest.mark.django_db
def test_a_recent_session_is_not_written_again(client: Client, viewer) -> None:  # type: ignore[no-untyped-def]
    client.force_login(viewer)
    client.get("/")
    before = Session.objects.get().expire_date
    response = client.get("/")
    assert Session.objects.get().expire_date == before
    assert settings.SESSION_COOKIE_NAME not in response.cookies


@pytest.mark.django_db
def test_anonymous_requests_store_no_session(client: Client) -> None:
    client.get("/login/")
    client.get("/")
    assert not Session.objects.exists()


def test_refresh_interval() -> None:
    assert refresh_interval_s(12 * 3600) == 300
    assert refresh_interval_s(600) == 60


def test_the_deployment_check_is_clean_behind_https(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items()
           if k not in ("DJANGO_SETTINGS_MODULE", "DOSEPORT_SQLITE", "DATABASE_URL", "SECRET_KEY")}
    env.update(DOSEPORT_HOME=str(tmp_path / "home"), DJANGO_SETTINGS_MODULE="doseport.settings",
               DOSEPORT_HTTPS="1", DOSEPORT_ALLOWED_HOSTS="dose.example")
    code = (
        "from django.core.management import call_command; from django.conf import settings as s;"
        "call_command('check', deploy=True, fail_level='WARNING');"
        "print(s.CSRF_TRUSTED_ORIGINS, s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE,"
        " s.SECURE_PROXY_SSL_HEADER, s.SECURE_HSTS_SECONDS > 0)"
    )
    done = subprocess.run(doseport_cmd("shell", "-c", code), env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "System check identified no issues" in done.stdout
    assert "'https://dose.example'" in done.stdout
    assert "True True ('HTTP_X_FORWARDED_PROTO', 'https') True" in done.stdout


def csp_violations(driver: Any) -> list[str]:
    return [e["message"] for e in driver.get_log("browser")
            if "Content Security Policy" in e["message"]]


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_pages_run_under_the_policy_without_violations(  # type: ignore[no-untyped-def]
    driver, live_server, django_user_model
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from doseport.auth import ADMIN, set_role
    from tests.conftest import fill

    set_role(django_user_model.objects.create_user("boss", password="pw-boss-12345"), ADMIN)
    driver.get(f"{live_server.url}/login/")
    fill(driver, {"username": "boss", "password": "pw-boss-12345"})
    driver.find_element(By.ID, "login-submit").click()
    WebDriverWait(driver, 15).until(lambda d: d.find_elements(By.ID, "nav-dicom"))
    for path in ("/", "/studies/", "/imports/", "/config/dicom/", "/qr/"):
        driver.get(live_server.url + path)
        WebDriverWait(driver, 15).until(
            lambda d: d.execute_script("return window.htmx !== undefined"))
    assert csp_violations(driver) == []
    # The check can see a violation: an inline script added to the page is refused.
    driver.execute_script(
        "var s = document.createElement('script'); s.textContent = 'window.x = 1';"
        "document.body.appendChild(s);")
    WebDriverWait(driver, 5).until(lambda d: csp_violations(d))
    assert driver.execute_script("return window.x === undefined")
