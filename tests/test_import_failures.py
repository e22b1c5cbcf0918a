"""Broken input never stops a batch: every file gets a recorded outcome with a reason."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError

from imports.models import ImportRecord, Outcome, Source
from imports.service import import_file
from nodes.models import DeleteSettings
from tests.builders.rdsr import build_ct_image, build_ct_rdsr, build_non_dose_sr, write

pytestmark = pytest.mark.django_db


def _bad_files(folder: Path) -> dict[str, Path]:
    good = write(build_ct_rdsr(3), folder / "a_good.dcm")
    data = good.read_bytes()
    corrupt = folder / "b_corrupt.dcm"
    # Valid preamble and meta, then garbage where the dataset should be.
    corrupt.write_bytes(data[:400] + b"\xff\xfe\x00\x10" * 200)
    truncated = folder / "c_truncated.dcm"
    truncated.write_bytes(data[: len(data) // 2])
    not_dicom = folder / "d_notes.txt"
    not_dicom.write_text("not a DICOM file\n")
    non_dose = write(build_non_dose_sr(), folder / "e_report.dcm")
    after = write(build_ct_rdsr(1), folder / "f_after.dcm")
    return {"good": good, "corrupt": corrupt, "truncated": truncated, "not_dicom": not_dicom,
            "non_dose": non_dose, "after": after}


def test_it_records_a_reason_for_every_broken_file_and_goes_on(tmp_path: Path) -> None:
    files = _bad_files(tmp_path / "in")
    with pytest.raises(CommandError, match="2 of 6 files failed"):
        call_command("import", str(tmp_path / "in"))
    records = {Path(r.path).name: r for r in ImportRecord.objects.all()}
    assert len(records) == 6
    assert records["a_good.dcm"].outcome == Outcome.IMPORTED
    assert records["f_after.dcm"].outcome == Outcome.IMPORTED  # after the broken ones
    for name in ("b_corrupt.dcm", "c_truncated.dcm"):
        assert records[name].outcome == Outcome.FAILED, name
        assert records[name].error.startswith("cannot read DICOM file"), records[name].error
    assert records["d_notes.txt"].outcome == Outcome.NOT_IMPORTABLE
    assert "not a DICOM file" in records["d_notes.txt"].error
    assert records["e_report.dcm"].outcome == Outcome.NOT_IMPORTABLE
    assert "not a dose report" in records["e_report.dcm"].error
    # Failures are copied to quarantine; the user's files all stay (tests/test_import_user_files).
    quarantine = Path(settings.QUARANTINE_DIR)
    for name in ("b_corrupt.dcm", "c_truncated.dcm"):
        kept = Path(records[name].kept_path)
        assert kept.is_relative_to(quarantine) and kept.is_file()
    assert all(path.exists() for path in files.values())


def test_it_copies_failures_to_quarantine_and_keeps_the_original_with_keep(
    tmp_path: Path,
) -> None:
    bad = tmp_path / "bad.dcm"
    bad.write_bytes(b"\x00" * 128 + b"DICM" + b"\x02\x00\x10\x00UI\x40\x00" + b"1" * 10)
    record = import_file(bad, Source.FILE, keep=True)
    assert record.outcome == Outcome.FAILED
    assert bad.exists()
    assert Path(record.kept_path).is_relative_to(Path(settings.QUARANTINE_DIR))
    # A retry of the quarantined file that fails again leaves it where it is.
    again = import_file(Path(record.kept_path), Source.FILE)
    assert again.outcome == Outcome.FAILED
    assert again.kept_path == record.kept_path


def test_it_applies_delete_settings_only_after_success(tmp_path: Path) -> None:
    """Spool files (here a store node's) follow the delete settings; see dispose.py."""
    settings_row = DeleteSettings.get()
    settings_row.del_rdsr = True
    settings_row.del_no_match = True
    settings_row.save()
    rdsr = write(build_ct_rdsr(1), tmp_path / "rdsr.dcm")
    image = write(build_ct_image(), tmp_path / "ct.dcm")
    broken = tmp_path / "broken.dcm"
    broken.write_bytes(rdsr.read_bytes()[:300])
    kept = tmp_path / "kept.dcm"
    shutil.copy(rdsr, kept)

    ok = import_file(rdsr, Source.STORE)
    assert ok.outcome == Outcome.IMPORTED and ok.kept_path == "" and not rdsr.exists()
    no_match = import_file(image, Source.STORE)
    assert no_match.outcome == Outcome.NOT_IMPORTABLE and not image.exists()
    failed = import_file(broken, Source.STORE)
    assert failed.outcome == Outcome.FAILED
    assert Path(failed.kept_path).is_file() and not broken.exists()  # moved, not deleted
    duplicate = import_file(kept, Source.STORE, keep=True)
    assert duplicate.outcome == Outcome.DUPLICATE and kept.exists()


def test_it_records_a_missing_file(tmp_path: Path) -> None:
    record = import_file(tmp_path / "gone.dcm", Source.STORE)
    assert record.outcome == Outcome.FAILED
    assert record.error


def test_it_reads_a_bare_dataset_without_preamble(tmp_path: Path) -> None:
    from pydicom.dataset import FileMetaDataset

    ds = build_ct_rdsr(1)
    ds.file_meta = FileMetaDataset()
    ds.preamble = None
    path = tmp_path / "bare.dcm"
    ds.save_as(path, implicit_vr=True, little_endian=True, enforce_file_format=False)
    assert not path.read_bytes()[128:132] == b"DICM"
    record = import_file(path, Source.FILE, keep=True)
    assert record.outcome == Outcome.IMPORTED, record.error
