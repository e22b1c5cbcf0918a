"""The data folder is private: folders 0700, files 0600, tightened at every command start."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from doseport.checks import check_private_data, private_data_messages
from lib.private import Tightened, create_secret_file, prepare_home, tighten
from tests.builders.rdsr import build_ct_rdsr, write
from tests.conftest import REPO, doseport_cmd

pytestmark = pytest.mark.skipif(os.name == "nt", reason="POSIX modes")


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def modes(home: Path) -> dict[str, int]:
    found = {".": mode(home)}
    for path in home.rglob("*"):
        found[str(path.relative_to(home))] = mode(path)
    return found


def run_doseport(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("DJANGO_SETTINGS_MODULE", "DOSEPORT_SQLITE", "DATABASE_URL")}
    env.update(DOSEPORT_HOME=str(home), DJANGO_SETTINGS_MODULE="doseport.settings")
    return subprocess.run(doseport_cmd(*args), env=env, cwd=REPO, capture_output=True,
                          text=True, timeout=180)


def assert_private(home: Path) -> None:
    found = modes(home)
    shared = {name: f"{m:04o}" for name, m in found.items() if m & 0o077}
    assert not shared, shared


@pytest.fixture(scope="module")
def migrated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A data folder left 0755 with a 0644 file, then `doseport migrate`."""
    home = tmp_path_factory.mktemp("private") / "home"
    home.mkdir(mode=0o755)
    home.chmod(0o755)
    (home / "notes.txt").write_text("left by an older version")
    (home / "notes.txt").chmod(0o644)
    done = run_doseport(home, "migrate", "-v", "0")
    assert done.returncode == 0, done.stderr
    return home, done.stderr


def test_it_makes_the_folder_database_and_keys_private_on_migrate(
    migrated: tuple[Path, str],
) -> None:
    home, _ = migrated
    found = modes(home)
    assert found["."] == 0o700
    assert found["db.sqlite3"] == 0o600
    assert found["secret_key"] == 0o600 and found["identity_key"] == 0o600
    assert found["logs"] == 0o700 and found["logs/doseport.log"] == 0o600
    assert_private(home)


def test_it_tightens_what_was_there_with_one_log_line(migrated: tuple[Path, str]) -> None:
    home, stderr = migrated
    assert mode(home / "notes.txt") == 0o600
    lines = [line for line in stderr.splitlines() if "removed group/other access" in line]
    assert len(lines) == 1, stderr
    assert "notes.txt 0644->0600" in lines[0] and ". 0755->0700" in lines[0]
    assert lines[0] in (home / "logs" / "doseport.log").read_text()


def test_files_stay_private_after_an_import(
    migrated: tuple[Path, str], tmp_path: Path
) -> None:
    home, _ = migrated
    good = write(build_ct_rdsr(1), tmp_path / "in" / "good.dcm")
    (tmp_path / "in" / "bad.dcm").write_bytes(good.read_bytes()[:700])
    for path in (tmp_path / "in").iterdir():
        path.chmod(0o644)  # the user's files are readable by others; our copies must not be
    done = run_doseport(home, "import", "--keep", str(tmp_path / "in"))
    assert done.returncode == 1, done.stdout + done.stderr  # bad.dcm failed
    assert "imported            1" in done.stdout
    assert list((home / "quarantine").rglob("bad*.dcm")), modes(home)
    assert_private(home)


def test_help_writes_nothing(tmp_path: Path) -> None:
    home = tmp_path / "home"
    for args in (["--help"], ["migrate", "--help"]):
        done = run_doseport(home, *args)
        assert done.returncode == 0, done.stderr
    assert not home.exists()


def test_tighten_reports_changes_and_leaves_links_alone(tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / "spool" / "1").mkdir(parents=True)
    for folder in (home, home / "spool", home / "spool" / "1"):
        folder.chmod(0o755)
    (home / "spool" / "1" / "a.dcm").write_bytes(b"x")
    (home / "spool" / "1" / "a.dcm").chmod(0o640)
    outside = tmp_path / "outside.txt"
    outside.write_text("not ours")
    outside.chmod(0o644)
    (home / "link").symlink_to(outside)

    result = tighten(home)

    assert mode(home) == 0o700 and mode(home / "spool" / "1") == 0o700
    assert mode(home / "spool" / "1" / "a.dcm") == 0o600
    assert mode(outside) == 0o644
    assert len(result.changed) == 4 and not result.failed
    line = result.summary(home)
    assert line.startswith(f"data folder {home}: removed group/other access from 4 paths")
    assert tighten(home).summary(home) == ""


def test_the_summary_names_a_few_paths_and_counts_the_rest(tmp_path: Path) -> None:
    result = Tightened(changed=[(tmp_path / f"f{i}", 0o644, 0o600) for i in range(8)])
    line = result.summary(tmp_path)
    assert "f4 0644->0600" in line and "f5" not in line and "and 3 more" in line


def test_a_secret_file_is_written_once_and_never_replaced(tmp_path: Path) -> None:
    path = tmp_path / "identity_key"
    assert create_secret_file(path)
    first = path.read_text()
    assert not create_secret_file(path)
    assert path.read_text() == first and len(first.strip()) >= 50
    assert mode(path) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["identity_key"]  # no temporary left


def test_prepare_home_tightens_a_database_outside_the_folder(tmp_path: Path) -> None:
    db = tmp_path / "elsewhere" / "dose.sqlite3"
    db.parent.mkdir()
    db.write_bytes(b"")
    db.chmod(0o644)
    prepare_home(tmp_path / "home", db)
    assert mode(db) == 0o600
    assert mode(tmp_path / "home") == 0o700


def test_the_system_check_warns_about_an_open_folder_and_key(tmp_path: Path) -> None:
    home = tmp_path / "home"
    prepare_home(home)
    files = [home / "secret_key", home / "db.sqlite3"]  # a missing file is not reported
    assert private_data_messages(home, files) == []
    home.chmod(0o755)
    (home / "secret_key").chmod(0o644)
    found = {m.id: m for m in private_data_messages(home, files)}
    assert set(found) == {"doseport.W001", "doseport.W002"}
    assert "0755" in found["doseport.W001"].msg and "chmod 700" in str(found["doseport.W001"].hint)
    assert "secret_key" in found["doseport.W002"].msg


def test_the_check_is_registered() -> None:
    from django.core.checks import registry

    assert check_private_data in registry.registry.get_checks()


def test_settings_import_writes_nothing(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = {**os.environ, "DOSEPORT_HOME": str(home), "DJANGO_SETTINGS_MODULE": "doseport.settings"}
    code = "import django; django.setup(); import logging; logging.getLogger('x').warning('hi')"
    done = subprocess.run([sys.executable, "-c", code], env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert not home.exists()
