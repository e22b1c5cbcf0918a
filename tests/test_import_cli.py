"""`doseport import PATH... [--watch DIR] [--keep]`."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from django.core.management import call_command

from imports.batch import Watcher
from imports.models import ImportRecord, Outcome
from tests.builders.rdsr import build_ct_rdsr, write
from tests.conftest import doseport_cmd, samples_dir, wait_for


@pytest.mark.django_db
@pytest.mark.samples
def test_it_imports_the_samples_once_and_reports_duplicates_the_second_time(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    folder = tmp_path / "openrem"
    shutil.copytree(samples_dir() / "openrem", folder)  # a regression must not touch samples
    call_command("import", str(folder))
    first = capsys.readouterr()
    assert "failed              0" in first.out, first.out + first.err
    imported = ImportRecord.objects.filter(outcome=Outcome.IMPORTED).count()
    assert imported >= 45
    assert "#" in first.err and "imported" in first.err  # progress bar on stderr

    call_command("import", str(folder))
    second = capsys.readouterr().out
    assert "imported            0" in second, second
    assert ImportRecord.objects.filter(outcome=Outcome.IMPORTED).count() == imported
    records = ImportRecord.objects.order_by("-id")[: ImportRecord.objects.count() // 2]
    dicom = [r for r in records if r.outcome != Outcome.NOT_IMPORTABLE]
    assert dicom and all(r.outcome == Outcome.DUPLICATE for r in dicom)


def test_it_exits_1_with_a_reason_when_a_file_failed(
    tmp_path: Path, process_env: dict[str, str]
) -> None:
    good = write(build_ct_rdsr(1), tmp_path / "in" / "good.dcm")
    (tmp_path / "in" / "bad.dcm").write_bytes(good.read_bytes()[:700])
    done = subprocess.run(
        doseport_cmd("import", "--keep", str(tmp_path / "in")), env=process_env,
        capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "1 of 2 files failed" in done.stderr
    assert "imported            1" in done.stdout
    assert (tmp_path / "in" / "bad.dcm").exists()  # left in place, copied to quarantine


def test_it_refuses_a_missing_path(tmp_path: Path, process_env: dict[str, str]) -> None:
    done = subprocess.run(
        doseport_cmd("import", str(tmp_path / "nope")), env=process_env,
        capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 1
    assert "no such file or folder" in done.stderr


def test_it_takes_a_file_only_once_its_size_is_stable(tmp_path: Path) -> None:
    watcher = Watcher(tmp_path, settle=1.0)
    growing = tmp_path / "a.dcm"
    growing.write_bytes(b"x" * 10)
    now = time.time()
    assert watcher.complete_files(now) == []  # fresh file: wait for it to settle
    growing.write_bytes(b"x" * 20)
    assert watcher.complete_files(now + 1.5) == []  # grew since last poll
    assert watcher.complete_files(now + 3.0) == [growing]  # unchanged for >= 1 s
    old = tmp_path / "b.dcm"
    old.write_bytes(b"y")
    old_time = now - 60
    os.utime(old, (old_time, old_time))  # renamed in after being written long ago
    (tmp_path / "c.dcm.part").write_bytes(b"z")
    assert watcher.complete_files(now + 3.1) == [old]


def test_it_watches_a_folder_and_stops_cleanly_on_sigint(
    tmp_path: Path, spawn: Callable[..., subprocess.Popen[bytes]]
) -> None:
    drop = tmp_path / "drop"
    drop.mkdir()
    proc = spawn("import", "--watch", str(drop), "--interval", "0.5")
    staging = tmp_path / "staging"
    first = write(build_ct_rdsr(2), staging / "one.dcm")
    first.rename(drop / "one.dcm")  # a complete file renamed into the folder

    def imported() -> int:
        return ImportRecord.objects.filter(outcome=Outcome.IMPORTED).count()

    wait_for(lambda: imported() == 1, timeout=60)
    # A store writing slowly: chunks 50 ms apart, well inside the 0.5 s settle time.
    data = write(build_ct_rdsr(1), staging / "two.dcm").read_bytes()
    with (drop / "two.dcm").open("wb") as fh:
        for start in range(0, len(data), 500):
            fh.write(data[start:start + 500])
            fh.flush()
            time.sleep(0.05)
    wait_for(lambda: imported() == 2, timeout=30)
    assert not ImportRecord.objects.filter(outcome=Outcome.FAILED).exists()
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out.decode()
    assert b"imported            2" in out
