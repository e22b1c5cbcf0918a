"""Reports without a Specific Character Set import quietly, and every importer reads alike.

Without (0008,0005) pydicom's charset is its default, the str 'iso8859'; the content-tree
reader once made a list of its letters of it, and every decoded text logged
"Unknown encoding 'i'" (13,000 lines for one fluoroscopy report).
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.core.management import call_command
from pydicom import config as pydicom_config
from pydicom import dcmread

from dose.models import Study
from imports.extractors.sr_fast import encodings
from imports.models import Outcome, Source
from imports.reading import configure_pydicom
from imports.service import import_file
from tests.builders.rdsr import CtEvent, Header, build_ct_rdsr, write


@pytest.fixture
def validation_mode() -> Iterator[None]:
    saved = pydicom_config.settings.reading_validation_mode
    pydicom_config.settings.reading_validation_mode = pydicom_config.WARN
    yield
    pydicom_config.settings.reading_validation_mode = saved


def _no_charset_report(tmp_path: Path, undefined_lengths: bool = False) -> Path:
    events = [CtEvent(protocol="Thorax Über", dlp=120.5), CtEvent(protocol="Abdomen", dlp=80.0)]
    ds = build_ct_rdsr(events, header=Header(charset=None))
    assert "SpecificCharacterSet" not in ds
    return write(ds, tmp_path / "ct.dcm", implicit_vr=True, undefined_lengths=undefined_lengths)


@pytest.mark.django_db
@pytest.mark.parametrize("undefined_lengths", [False, True])
def test_it_imports_a_report_without_character_set_without_encoding_warnings(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, undefined_lengths: bool
) -> None:
    path = _no_charset_report(tmp_path, undefined_lengths)
    with caplog.at_level(logging.DEBUG), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        record = import_file(path, Source.FILE, keep=True)
    assert record.outcome == Outcome.IMPORTED, record.error
    assert "Unknown encoding" not in caplog.text
    assert not [w for w in caught if "encoding" in str(w.message)]
    study = Study.objects.get()
    events = list(study.events.order_by("ordinal"))
    assert [e.acquisition_protocol for e in events] == ["Thorax Über", "Abdomen"]
    assert [e.dlp_mGycm for e in events] == [120.5, 80.0]
    assert study.dlp_total_mGycm == pytest.approx(200.5)


def test_it_gives_the_tree_reader_codec_names_not_letters(tmp_path: Path) -> None:
    without = dcmread(_no_charset_report(tmp_path))
    assert encodings(without) == ["iso8859"]
    with_latin1 = build_ct_rdsr(1)
    assert encodings(with_latin1) == ["latin_1"]
    two = build_ct_rdsr(1, header=Header(charset=None))
    two.SpecificCharacterSet = ["", "ISO 2022 IR 87"]
    assert encodings(two) == ["iso8859", "iso2022_jp"]


def test_it_reads_leniently_once_configured(validation_mode: None) -> None:
    configure_pydicom()
    assert pydicom_config.settings.reading_validation_mode == pydicom_config.IGNORE


def test_it_configures_pydicom_when_the_worker_starts(
    validation_mode: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    started: list[str] = []
    monkeypatch.setattr(
        "doseport.management.commands.worker.call_command",
        lambda name, **kwargs: started.append(name),
    )
    call_command("worker")
    assert started == ["run_huey"]
    assert pydicom_config.settings.reading_validation_mode == pydicom_config.IGNORE


@pytest.mark.django_db
def test_it_configures_pydicom_for_doseport_import(tmp_path: Path, validation_mode: None) -> None:
    call_command("import", str(_no_charset_report(tmp_path)), "--keep")
    assert pydicom_config.settings.reading_validation_mode == pydicom_config.IGNORE
