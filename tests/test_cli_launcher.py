"""The `doseport` command as a user meets it: help, where its data is, the launcher, errors."""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from doseport import cli
from lib.env import REMEMBERED_HOME_FILE
from lib.private import SECRET_KEY_FILE
from nodes.models import StoreNode
from tests.conftest import REPO, doseport_cmd

TIMEOUT = 60


def bare_env(**extra: str) -> dict[str, str]:
    """The caller's environment without any Doseport or database settings."""
    env = {
        k: v for k, v in os.environ.items()
        if not k.startswith("DOSEPORT_") and k not in ("DATABASE_URL", "DJANGO_SETTINGS_MODULE")
    }
    env["DOSEPORT_HUEY_NAME"] = os.environ["DOSEPORT_HUEY_NAME"]
    return {**env, **extra}


def run(argv: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True,
                          timeout=TIMEOUT)


def one_line(text: str) -> str:
    lines = text.strip().splitlines()
    assert len(lines) == 1, text
    assert "Traceback" not in text
    return lines[0]


@pytest.fixture
def install(tmp_path: Path) -> Path:
    """A second install: a venv of its own that sees this checkout's packages.

    The remembered data folder is a file beside the venv's Python, so the test needs a
    venv it may write into (not the shared .venv).
    """
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True,
                   timeout=TIMEOUT)
    found = subprocess.run(
        [str(venv / "bin" / "python"), "-c",
         "import sysconfig; print(sysconfig.get_path('purelib'))"],
        check=True, capture_output=True, text=True, timeout=TIMEOUT,
    )
    ours = sysconfig.get_path("purelib")
    Path(found.stdout.strip(), "doseport-dev.pth").write_text(
        f"import site; site.addsitedir({ours!r})\n{REPO}\n"
    )
    return venv


def doseport_in(venv: Path, *args: str) -> list[str]:
    return [str(venv / "bin" / "python"), "-m", "doseport", *args]


def test_it_lists_doseports_commands_and_keeps_djangos_behind_help_all(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    home = tmp_path / "home"
    shown = run(doseport_cmd(), bare_env(DOSEPORT_HOME=str(home)), tmp_path)  # the real entry
    assert shown.returncode == 0, shown.stderr
    monkeypatch.setenv("DOSEPORT_HOME", str(home))
    cli.main(["--help"])  # in-process: the same code, no second process start-up
    assert capsys.readouterr().out == shown.stdout
    assert "DICOM nodes:" in shown.stdout and "Dose data:" in shown.stdout
    lines = shown.stdout.splitlines()
    assert any(line.split()[:1] == ["nodes"] for line in lines)
    assert any(line.split()[:1] == ["import"] for line in lines)
    for developer in ("flush", "startapp", "makemigrations", "runserver", "run_huey"):
        assert not any(line.split()[:1] == [developer] for line in lines), developer
    assert f"Data folder: {home} (does not exist yet) (DOSEPORT_HOME)" in shown.stdout

    cli.main(["help", "--all"])
    everything = capsys.readouterr().out
    assert "flush" in everything and "makemigrations" in everything
    cli.main(["--version"])
    assert re.match(r"doseport \d+\.\d+", capsys.readouterr().out)
    assert not home.exists(), "help must create nothing"


def test_it_uses_the_remembered_data_folder_from_another_folder(
    install: Path, process_env: dict[str, str], tmp_path: Path
) -> None:
    StoreNode.objects.create(name="Remembered", ae_title="REMEMBER", port=11400)
    home = tmp_path / "data"
    (install / REMEMBERED_HOME_FILE).write_text(f"{home}\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = bare_env()
    if "DOSEPORT_SQLITE" in process_env:  # the test database, outside the data folder
        env["DOSEPORT_SQLITE"] = process_env["DOSEPORT_SQLITE"]
    else:
        env["DATABASE_URL"] = process_env["DATABASE_URL"]

    shown = run(doseport_in(install, "--help"), env, elsewhere)
    assert f"Data folder: {home} (does not exist yet) (remembered in " \
           f"{install / REMEMBERED_HOME_FILE})" in shown.stdout
    listed = run(doseport_in(install, "nodes", "list"), env, elsewhere)
    assert listed.returncode == 0, listed.stderr
    assert "REMEMBER" in listed.stdout
    assert (home / SECRET_KEY_FILE).is_file()
    assert list(elsewhere.iterdir()) == [], "no ./var in the current folder"

    (install / REMEMBERED_HOME_FILE).write_text("relative/folder\n")
    bad = run(doseport_in(install, "nodes", "list"), env, elsewhere)
    assert bad.returncode == 2
    assert "must hold the absolute path of the data folder" in one_line(bad.stderr)


def test_it_says_in_one_line_when_there_is_no_database(install: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    nothing = run(doseport_in(install, "nodes", "list"), bare_env(), elsewhere)
    assert nothing.returncode == 2
    assert one_line(nothing.stderr) == (
        f"doseport: no data folder at {elsewhere / 'var'} (DOSEPORT_HOME is not set: ./var of "
        "the current folder); set DOSEPORT_HOME to your data folder, or run `doseport migrate` "
        "(or `make run`) here to start a new one"
    )
    assert not (elsewhere / "var").exists()

    home = tmp_path / "home"
    env = bare_env(DOSEPORT_HOME=str(home))
    missing = run(doseport_in(install, "export", "studies"), env, elsewhere)
    assert missing.returncode == 2
    assert one_line(missing.stderr) == (
        f"doseport: the database at {home / 'db.sqlite3'} is not set up; run `doseport migrate` "
        "(or `make run`)"
    )
    assert not home.exists()

    home.mkdir()
    sqlite3.connect(home / "db.sqlite3").close()  # an empty database
    empty = run(doseport_in(install, "nodes", "list"), env, elsewhere)
    assert empty.returncode == 2
    assert "is not set up; run `doseport migrate`" in one_line(empty.stderr)

    with sqlite3.connect(home / "db.sqlite3") as db:  # migrated by a much older version
        db.execute("CREATE TABLE django_migrations (id integer)")
    old = run(doseport_in(install, "nodes", "list"), env, elsewhere)
    assert old.returncode == 2
    assert "is not set up for this version (no such table: nodes_storenode); run `doseport " \
           "migrate`" in one_line(old.stderr)


def test_it_creates_the_first_store_node_from_the_environment(
    process_env: dict[str, str], tmp_path: Path
) -> None:
    make_first = ("from doseport.bootstrap import ensure_default_store as f; n = f(); "
                  "print(n.name, n.ae_title, n.port, n.controlled, n.auto_start)")
    env = {**process_env, "DOSEPORT_DEFAULT_STORE_AE": "CTDOSE",
           "DOSEPORT_DEFAULT_STORE_PORT": "11300"}
    made = run(doseport_cmd("shell", "-v", "0", "-c", make_first), env, tmp_path)
    assert made.returncode == 0, made.stderr
    assert made.stdout.strip() == "Default store CTDOSE 11300 True True"

    for name, value, words in [
        ("DOSEPORT_DEFAULT_STORE_AE", "MY AE", "'MY AE' is not a store AE title: use 1-16 "
         "letters A-Z or digits 0-9"),
        ("DOSEPORT_DEFAULT_STORE_PORT", "70000", "DOSEPORT_DEFAULT_STORE_PORT=70000 is above "
         "the maximum 65535"),
    ]:
        bad = run(doseport_cmd("nodes", "list"), {**process_env, name: value}, tmp_path)
        assert bad.returncode == 2
        line = one_line(bad.stderr)
        assert line.startswith("doseport: configuration error: ") and words in line, line


def test_make_remembers_the_data_folder_and_writes_a_launcher(tmp_path: Path) -> None:
    if not any((Path(p) / "make").exists() for p in os.environ["PATH"].split(os.pathsep)):
        pytest.skip("make is not installed")
    record = tmp_path / "doseport-home"
    bin_dir = tmp_path / "bin"
    make = ["make", "-s", "-C", str(REPO)]
    env = bare_env(DOSEPORT_HOME=str(tmp_path / "data"))
    done = run([*make, "remember-home", f"HOME_FILE={record}"], env, tmp_path)
    assert done.returncode == 0, done.stderr
    assert record.read_text().strip() == str((tmp_path / "data").resolve())
    done = run([*make, "remember-home", f"HOME_FILE={record}"], bare_env(), tmp_path)
    assert record.read_text().strip() == str((tmp_path / "data").resolve()), "kept"

    done = run([*make, "install-launcher", f"LAUNCHER_DIR={bin_dir}"], bare_env(), tmp_path)
    assert done.returncode == 0, done.stderr
    launcher = bin_dir / "doseport"
    assert os.access(launcher, os.X_OK)
    shown = run([str(launcher), "--help"], env, tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert f"Data folder: {tmp_path / 'data'}" in shown.stdout

    launcher.write_text("#!/bin/sh\necho someone else's\n")
    refused = run([*make, "install-launcher", f"LAUNCHER_DIR={bin_dir}"], bare_env(), tmp_path)
    assert refused.returncode != 0
    assert "is not a Doseport launcher: left alone" in refused.stderr
    assert "someone else's" in launcher.read_text()
