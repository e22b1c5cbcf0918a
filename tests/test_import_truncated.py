"""A file cut anywhere fails its import with a reason and one log line, never a traceback."""

from __future__ import annotations

import logging
import random
from pathlib import Path

import pytest

from imports.models import Outcome, Source
from imports.service import import_file
from tests.builders.rdsr import build_ct_rdsr, build_projection_rdsr, write
from tests.conftest import samples_dir

pytestmark = pytest.mark.django_db


def _cuts(data: bytes, count: int, seed: int) -> list[int]:
    rng = random.Random(seed)
    return sorted({rng.randrange(200, len(data)) for _ in range(count)})


def _import_cut(path: Path, cut: int, folder: Path) -> tuple[str, str]:
    target = folder / f"{path.stem}-{cut}.dcm"
    target.write_bytes(path.read_bytes()[:cut])
    record = import_file(target, Source.FILE, keep=True)
    return record.outcome, record.error


def test_no_cut_of_a_report_logs_a_traceback(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    files = [write(build_ct_rdsr(3), tmp_path / "ct.dcm"),
             write(build_projection_rdsr(4), tmp_path / "rf.dcm")]
    folder = tmp_path / "cut"
    folder.mkdir()
    with caplog.at_level(logging.WARNING):
        for path in files:
            for cut in _cuts(path.read_bytes(), 60, seed=7):
                outcome, error = _import_cut(path, cut, folder)
                assert outcome in (Outcome.FAILED, Outcome.IMPORTED, Outcome.NOT_IMPORTABLE)
                assert not error.startswith("unexpected error"), (cut, error)
    assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"


@pytest.mark.samples
def test_cut_samples_that_pydicom_reads_lazily_fail_in_one_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Seed 3 over the samples gave 'unpack requires a buffer of 4 bytes' and 'No tag to read
    # at file position ...' from lazily decoded elements, logged with a traceback.
    folder = samples_dir() / "openrem"
    if not folder.is_dir():
        pytest.skip(f"shared samples not found at {folder}")
    out = tmp_path / "cut"
    out.mkdir()
    rng = random.Random(3)
    with caplog.at_level(logging.WARNING):
        for sample in sorted(folder.glob("*.dcm")):
            data = sample.read_bytes()
            for _ in range(6):
                cut = rng.randrange(200, len(data))
                outcome, error = _import_cut(sample, cut, out)
                assert not error.startswith("unexpected error"), (sample.name, cut, error)
    assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"
