"""Shared fixtures: free loopback ports, role users, real-peer discovery, child-process env."""

from __future__ import annotations

import logging
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.db import connection

from doseport.auth import set_role

REPO = Path(__file__).resolve().parent.parent
ARTIFACTS = REPO / "test-artifacts"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def require_tool(name: str) -> str:
    """Path of a peer program; skip (or fail in CI, where all peers must exist) without it."""
    found = shutil.which(name)
    if found:
        return found
    message = f"{name} is not installed (Debian package: see .ci/run)"
    if os.environ.get("DOSEPORT_REQUIRE_PEERS") == "1":
        pytest.fail(message + "; CI must have every peer")
    pytest.skip(message)


def samples_dir() -> Path:
    base = Path(settings.SAMPLES_DIR)
    if not (base / "openrem" / "expected_values.json").exists():
        pytest.skip(f"sample objects not found in {base} (set DOSEPORT_SAMPLES)")
    return base


def wait_for(predicate: Callable[[], object], timeout: float, interval: float = 0.05) -> object:
    """Poll `predicate` until truthy; fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {timeout} s")
        time.sleep(interval)


def wait_port(port: int, timeout: float = 10.0) -> None:
    def is_open() -> bool:
        with socket.socket() as sock:
            sock.settimeout(0.2)
            return sock.connect_ex(("127.0.0.1", port)) == 0

    wait_for(is_open, timeout)


@pytest.fixture
def port() -> int:
    return free_port()


@pytest.fixture
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


def _make_user(django_user_model, username: str, role: str | None):  # type: ignore[no-untyped-def]
    user = django_user_model.objects.create_user(username, password="pw-" + username)
    if role:
        set_role(user, role)
    return user


@pytest.fixture
def viewer(django_user_model):  # type: ignore[no-untyped-def]
    return _make_user(django_user_model, "viewer", "viewer")


@pytest.fixture
def importer(django_user_model):  # type: ignore[no-untyped-def]
    return _make_user(django_user_model, "importer", "importer")


@pytest.fixture
def admin_user(django_user_model):  # type: ignore[no-untyped-def]
    return _make_user(django_user_model, "boss", "admin")


@pytest.fixture
def process_env(transactional_db, tmp_path: Path) -> dict[str, str]:
    """Environment for a `doseport ...` child process that shares the test database."""
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    env["DJANGO_SETTINGS_MODULE"] = "doseport.settings"
    env["DOSEPORT_HOME"] = str(settings.HOME)
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        env["DOSEPORT_SQLITE"] = str(db["NAME"])
    else:
        env["DATABASE_URL"] = (
            f"postgresql://{db['USER']}:{db['PASSWORD']}@{db['HOST'] or '127.0.0.1'}:"
            f"{db['PORT'] or 5432}/{db['NAME']}"
        )
    env["DOSEPORT_HUEY_NAME"] = os.environ["DOSEPORT_HUEY_NAME"]  # set by tests/settings.py
    env["PYTHONUNBUFFERED"] = "1"
    return env


def doseport_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "doseport", *args]


@pytest.fixture
def spawn(process_env: dict[str, str]) -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    """Start `doseport ...` children; all are terminated at the end of the test.

    The task queue is shared by the whole session (one Huey name): tasks an earlier test
    left behind (imports its store node queued after it stopped looking) would run in this
    test's worker and import objects this test expects to be new. Start from an empty queue.
    """
    from huey.contrib.djhuey import HUEY

    from doseport.queue import flush_imports

    HUEY.flush()
    flush_imports()  # this server's import queue (doseport/queue.py)
    procs: list[subprocess.Popen[bytes]] = []

    def start(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(
            doseport_cmd(*args), env={**process_env, **(env or {})}, cwd=REPO,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


@pytest.fixture
def driver(tmp_path: Path) -> Iterator[Any]:
    """Headless Debian Chromium; no background networking (the machine has no Internet)."""
    require_tool("chromium")
    chromedriver = require_tool("chromedriver")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for arg in (
        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--no-first-run", "--window-size=1400,1100", f"--user-data-dir={tmp_path / 'chrome'}",
    ):
        options.add_argument(arg)
    browser = webdriver.Chrome(service=Service(chromedriver), options=options)
    browser.set_page_load_timeout(15)
    try:
        yield browser
    finally:
        browser.quit()


@pytest.fixture
def worker(spawn: Callable[..., subprocess.Popen[bytes]]) -> Iterator[None]:
    """A real `doseport worker` on the test queue: tasks are queued, not run inline."""
    from huey.contrib.djhuey import HUEY

    from doseport.queue import flush_imports

    HUEY.immediate = False
    HUEY.flush()
    flush_imports()
    spawn("worker", "--workers", "2")
    try:
        yield
    finally:
        HUEY.flush()
        flush_imports()
        HUEY.immediate = True


def fill(driver: Any, values: dict[str, str]) -> None:
    """Type into form fields by Django's default ids (id_<name>)."""
    from selenium.webdriver.common.by import By

    for name, value in values.items():
        field = driver.find_element(By.ID, f"id_{name}")
        field.clear()
        field.send_keys(value)


@pytest.fixture(autouse=True)
def _console_log_stream_stays_open() -> Iterator[None]:
    """A test that runs a command in-process may configure logging again while pytest
    captures stderr; the console handler then writes to a stream closed after that test.
    Give it the process's real stderr back (later tests swap its stream and flush it)."""
    yield
    for handler in logging.getLogger().handlers:
        stream = getattr(handler, "stream", None)
        if (isinstance(handler, logging.StreamHandler)
                and not isinstance(handler, logging.FileHandler)
                and getattr(stream, "closed", False)):
            handler.stream = sys.__stderr__


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked shared_db (two servers on one database and one Redis) run in the
    PostgreSQL + Redis pass only; in the SQLite pass they are deselected, not skipped."""
    shared = os.environ.get("DATABASE_URL", "").startswith("postgres") and bool(
        os.environ.get("REDIS_URL"))
    if shared:
        return
    keep = [item for item in items if item.get_closest_marker("shared_db") is None]
    if len(keep) != len(items):
        config.hook.pytest_deselected(items=[i for i in items if i not in keep])
        items[:] = keep
