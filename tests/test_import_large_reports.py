"""Large projection reports take the raw-bytes content-tree path and a bounded number of
queries, however the modality wrote the sequences (issue 11).

pydicom parses an undefined-length sequence into Datasets while reading; a 150-event
fluoroscopy report written that way cost over a second per import before
`imports.reading.read_file` kept the ContentSequence raw.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from pydicom import dcmread

from dose.models import Study
from imports.extractors import sr
from imports.extractors.sr import node_from_item, tree
from imports.extractors.sr_fast import PARSED
from imports.models import Outcome, Source
from imports.reading import read_file
from imports.service import import_file
from tests.builders.rdsr import Header, ProjectionEvent, build_projection_rdsr, write
from tests.conftest import samples_dir

EVENTS = 150
# Fixed queries (duplicate checks, transaction, study, record) plus SQLite's batches of
# 999 parameters for 150 events and their filters; one query per event would be > 150.
MAX_QUERIES = 25
ENCODINGS = [
    pytest.param(False, False, id="explicit-defined"),
    pytest.param(False, True, id="explicit-undefined"),
    pytest.param(True, True, id="implicit-undefined"),
]


def _report(folder: Path, implicit: bool, undefined: bool) -> Path:
    events = [
        ProjectionEvent(event_type="Fluoroscopy", protocol=f"Run {i}", dap=0.25 + i / 1000)
        for i in range(EVENTS)
    ]
    ds = build_projection_rdsr(events, header=Header(charset=None), device_type="Fluoroscopy")
    return write(ds, folder / "rf.dcm", implicit_vr=implicit, undefined_lengths=undefined)


@pytest.mark.django_db
@pytest.mark.parametrize(("implicit", "undefined"), ENCODINGS)
def test_it_imports_a_150_event_report_fast_with_bounded_queries(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, implicit: bool, undefined: bool
) -> None:
    path = _report(tmp_path, implicit, undefined)
    through_pydicom: list[object] = []

    def counting(item: object) -> object:
        through_pydicom.append(item)
        return node_from_item(item)  # type: ignore[arg-type]

    monkeypatch.setattr(sr, "node_from_item", counting)
    with CaptureQueriesContext(connection) as queries:
        record = import_file(path, Source.FILE, keep=True)
    assert record.outcome == Outcome.IMPORTED, record.error
    # The fast path builds only the root's own node through pydicom; the fallback
    # recurses through every one of the ~7,000 content items.
    assert len(through_pydicom) == 1
    assert len(queries.captured_queries) <= MAX_QUERIES
    study = Study.objects.get()
    assert study.modality_type == "RF"
    events = list(study.events.order_by("ordinal"))
    assert len(events) == EVENTS
    assert events[149].acquisition_protocol == "Run 149"
    assert events[149].dap_Gym2 == pytest.approx((0.25 + 0.149) * 1e-5)
    assert sum(e.filters.count() for e in events[:3]) == 3


@pytest.mark.parametrize(("implicit", "undefined"), ENCODINGS)
def test_it_reads_the_same_tree_as_pydicom(tmp_path: Path, implicit: bool, undefined: bool) -> None:
    path = _report(tmp_path, implicit, undefined)
    ds = read_file(path)
    assert hasattr(ds, PARSED) == undefined  # scanned while reading: no pydicom Datasets
    assert tree(ds) == node_from_item(dcmread(path))


def test_it_keeps_what_follows_the_content_sequence(tmp_path: Path) -> None:
    ds = build_projection_rdsr(3)
    ds.add_new(0x00091010, "LO", "DOSEPORT")  # private creator before the content
    ds.add_new(0x00091001, "LO", "private before")
    ds.add_new(0x00431010, "LO", "DOSEPORT")
    ds.add_new(0x00431001, "LO", "private after")
    ds.add_new(0x00880140, "UI", "1.2.3.4")  # Storage Media File-set UID, after (0040,A730)
    path = write(ds, tmp_path / "rf.dcm", undefined_lengths=True)
    read = read_file(path)
    assert hasattr(read, PARSED)
    assert read[0x00431001].value == "private after"
    assert read.StorageMediaFileSetUID == "1.2.3.4"
    assert read[0x00091001].value == "private before"
    assert list(read.keys()) == sorted(read.keys())


def test_it_leaves_a_truncated_content_sequence_to_pydicom(tmp_path: Path) -> None:
    path = _report(tmp_path, implicit=False, undefined=True)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) * 2 // 3])
    with pytest.raises(OSError) as plain:
        dcmread(path, stop_before_pixels=True)
    with pytest.raises(OSError) as ours:
        read_file(path)
    assert str(ours.value) == str(plain.value)  # the scanner gave up; pydicom said why


@pytest.mark.samples
def test_it_reads_every_sample_report_through_the_fast_path_like_pydicom() -> None:
    reports = 0
    for path in sorted((samples_dir() / "openrem").glob("*.dcm")):
        plain = dcmread(path, stop_before_pixels=True)
        if "ContentSequence" not in plain:
            continue
        reports += 1
        ds = read_file(path)
        assert tree(ds) == node_from_item(plain), path.name
    assert reports == 30
