"""`doseport import`: the user's files are the user's (issue 11 item 8).

Nothing is moved or deleted unless asked (--delete-imported, --move-failed DIR); a failed
file is copied into quarantine (0600); symbolic links never lead out of the folder; the
watcher waits for a writer that pauses instead of failing its half-written file.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import threading
import time
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from pytest_django.fixtures import Settings

from imports.batch import LINK_FOLDER, LINK_INSIDE, LINK_OUTSIDE, Tally, Watcher
from imports.models import ImportRecord, Outcome
from tests.builders.rdsr import build_ct_rdsr, build_non_dose_sr, write

pytestmark = pytest.mark.django_db


@pytest.fixture
def quarantine(settings: Settings, tmp_path: Path) -> Path:
    settings.QUARANTINE_DIR = tmp_path / "quarantine"
    return Path(settings.QUARANTINE_DIR)


def _user_folder(folder: Path) -> dict[str, Path]:
    """One file per outcome: imported, duplicate, not importable (two kinds), failed."""
    good = write(build_ct_rdsr(2), folder / "a_good.dcm")
    duplicate = folder / "b_same_again.dcm"
    shutil.copy(good, duplicate)
    not_dicom = folder / "c_notes.txt"
    not_dicom.write_text("not a DICOM file\n")
    non_dose = write(build_non_dose_sr(), folder / "d_report.dcm")
    failed = folder / "e_truncated.dcm"
    failed.write_bytes(write(build_ct_rdsr(1), folder / "whole.tmp").read_bytes()[:900])
    (folder / "whole.tmp").unlink()
    for path in (good, duplicate, not_dicom, non_dose, failed):
        path.chmod(0o644)
    return {"imported": good, "duplicate": duplicate, "not_dicom": not_dicom,
            "non_dose": non_dose, "failed": failed}


def _outcomes() -> dict[str, str]:
    return {Path(r.path).name: r.outcome for r in ImportRecord.objects.all()}


def _snapshot(files: dict[str, Path]) -> dict[str, bytes]:
    return {name: path.read_bytes() for name, path in files.items()}


def test_it_leaves_every_file_in_place_and_copies_a_failure_to_quarantine(
    tmp_path: Path, quarantine: Path
) -> None:
    files = _user_folder(tmp_path / "in")
    before = _snapshot(files)
    with pytest.raises(CommandError, match="1 of 5 files failed"):
        call_command("import", str(tmp_path / "in"))
    assert _outcomes() == {
        "a_good.dcm": Outcome.IMPORTED, "b_same_again.dcm": Outcome.DUPLICATE,
        "c_notes.txt": Outcome.NOT_IMPORTABLE, "d_report.dcm": Outcome.NOT_IMPORTABLE,
        "e_truncated.dcm": Outcome.FAILED,
    }
    assert _snapshot(files) == before  # every file, whatever its outcome, untouched
    failed = ImportRecord.objects.get(outcome=Outcome.FAILED)
    copy = Path(failed.kept_path)
    assert copy.is_relative_to(quarantine) and copy.read_bytes() == before["failed"]
    assert stat.S_IMODE(copy.stat().st_mode) == 0o600
    assert ImportRecord.objects.get(outcome=Outcome.IMPORTED).kept_path == str(files["imported"])


def test_it_deletes_only_imported_and_duplicate_files_with_delete_imported(
    tmp_path: Path, quarantine: Path
) -> None:
    files = _user_folder(tmp_path / "in")
    with pytest.raises(CommandError, match="1 of 5 files failed"):
        call_command("import", str(tmp_path / "in"), "--delete-imported")
    assert not files["imported"].exists() and not files["duplicate"].exists()
    assert files["not_dicom"].exists() and files["non_dose"].exists()
    assert files["failed"].exists()
    assert ImportRecord.objects.get(outcome=Outcome.IMPORTED).kept_path == ""


def test_it_moves_failed_files_with_move_failed_and_quarantine_keeps_a_copy(
    tmp_path: Path, quarantine: Path
) -> None:
    files = _user_folder(tmp_path / "in")
    failed_bytes = files["failed"].read_bytes()
    with pytest.raises(CommandError, match="1 of 5 files failed"):
        call_command("import", str(tmp_path / "in"), "--move-failed", str(tmp_path / "failed"))
    assert not files["failed"].exists()
    assert (tmp_path / "failed" / "e_truncated.dcm").read_bytes() == failed_bytes
    record = ImportRecord.objects.get(outcome=Outcome.FAILED)
    assert Path(record.kept_path).is_relative_to(quarantine)
    assert all(path.exists() for name, path in files.items() if name != "failed")


def test_it_refuses_contradictory_or_looping_options(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    with pytest.raises(CommandError, match="contradict"):
        call_command("import", str(tmp_path / "in"), "--keep", "--delete-imported")
    with pytest.raises(CommandError, match="inside"):
        call_command("import", str(tmp_path / "in"), "--move-failed", str(tmp_path / "in/x"))
    assert not ImportRecord.objects.exists()


def test_it_does_not_follow_symbolic_links_out_of_the_folder(
    tmp_path: Path, quarantine: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    outside = tmp_path / "elsewhere"
    secret = write(build_ct_rdsr(1), outside / "secret.dcm")
    write(build_ct_rdsr(1), outside / "sub" / "deeper.dcm")
    folder = tmp_path / "in"
    mine = write(build_ct_rdsr(1), folder / "mine.dcm")
    (folder / "link_out.dcm").symlink_to(secret)
    (folder / "link_dir").symlink_to(outside / "sub", target_is_directory=True)
    (folder / "link_in.dcm").symlink_to(mine)
    (folder / "dangling.dcm").symlink_to(tmp_path / "gone.dcm")
    call_command("import", str(folder), "--delete-imported")
    out, err = capsys.readouterr()
    assert _outcomes() == {"mine.dcm": Outcome.IMPORTED}  # nothing read through a link
    assert re.search(r"^skipped +4$", out, re.M), out
    assert f"skipped: {folder / 'link_out.dcm'}: {LINK_OUTSIDE}" in err
    assert f"skipped: {folder / 'link_dir'}: {LINK_FOLDER}" in err
    assert f"skipped: {folder / 'link_in.dcm'}: {LINK_INSIDE}" in err
    assert secret.exists() and (outside / "sub" / "deeper.dcm").exists()
    assert (folder / "link_out.dcm").is_symlink() and not mine.exists()


def _half_written(folder: Path) -> tuple[Path, bytes]:
    data = write(build_ct_rdsr(3), folder.parent / "staging" / "ct.dcm").read_bytes()
    target = folder / "ct.dcm"
    target.write_bytes(data[: len(data) // 2])
    return target, data


def test_it_waits_for_a_writer_that_pauses_longer_than_the_settle_time(
    tmp_path: Path, quarantine: Path
) -> None:
    folder = tmp_path / "drop"
    folder.mkdir()
    watcher, tally = Watcher(folder, settle=1.0), Tally()
    target, data = _half_written(folder)
    now = time.time()
    # The writer pauses 3 s: stable for more than the settle time, but cut short.
    for t in (0.0, 1.5, 3.0):
        watcher.poll_once(tally, now=now + t)
    assert not ImportRecord.objects.exists() and tally.total == 0
    with target.open("ab") as fh:  # ... and finishes
        fh.write(data[len(data) // 2:])
    for t in (3.5, 5.0):
        watcher.poll_once(tally, now=now + t)
    assert list(ImportRecord.objects.values_list("outcome", flat=True)) == [Outcome.IMPORTED]
    assert target.read_bytes() == data and not quarantine.exists()
    assert watcher.poll_once(tally, now=now + 7.0) == 0  # done: not imported again


def test_it_records_a_failure_once_the_file_stayed_unreadable_for_a_while(
    tmp_path: Path, quarantine: Path
) -> None:
    folder = tmp_path / "drop"
    folder.mkdir()
    watcher, tally = Watcher(folder, settle=1.0, patience=30.0), Tally()
    target, _ = _half_written(folder)
    now = time.time()
    watcher.poll_once(tally, now=now + 1.5)
    assert tally.total == 0  # young: still being written, perhaps
    watcher.poll_once(tally, now=now + 31.0)
    assert tally.failed == 1 and target.exists()  # given up: recorded, copied, left
    record = ImportRecord.objects.get()
    assert record.outcome == Outcome.FAILED and Path(record.kept_path).is_relative_to(quarantine)


def test_it_imports_a_file_whose_writer_paused_in_real_time(
    tmp_path: Path, quarantine: Path
) -> None:
    folder = tmp_path / "drop"
    folder.mkdir()
    data = write(build_ct_rdsr(2), tmp_path / "staging" / "ct.dcm").read_bytes()
    watcher, tally = Watcher(folder, settle=0.2), Tally()
    resume = threading.Event()

    def writer() -> None:
        with (folder / "ct.dcm").open("wb") as fh:
            fh.write(data[: len(data) // 2])
            fh.flush()
            resume.wait(timeout=10)  # paused: five times the settle time at least
            fh.write(data[len(data) // 2:])

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        paused_until = time.monotonic() + 1.0
        deadline = time.monotonic() + 20
        while tally.total == 0 and time.monotonic() < deadline:
            watcher.poll_once(tally)
            if time.monotonic() >= paused_until:
                resume.set()
            time.sleep(0.05)
    finally:
        resume.set()
        thread.join(timeout=10)
    assert tally.counts == {Outcome.IMPORTED: 1}, tally.counts
    assert (folder / "ct.dcm").read_bytes() == data and not quarantine.exists()


def test_it_keeps_the_spool_behaviour_for_received_files(
    tmp_path: Path, quarantine: Path
) -> None:
    from imports.models import Source
    from imports.service import import_file

    broken = tmp_path / "spool" / "x.dcm"
    broken.parent.mkdir()
    broken.write_bytes(b"\x00" * 128 + b"DICM" + b"\x02\x00\x10\x00UI\x40\x00" + b"1" * 10)
    os.chmod(broken, 0o644)
    record = import_file(broken, Source.STORE)
    assert record.outcome == Outcome.FAILED and not broken.exists()  # ours: moved
    assert stat.S_IMODE(Path(record.kept_path).stat().st_mode) == 0o600
