"""Continued reports: two CT reports of one Study Instance UID with different events make one
study whose totals are the sum (a deliberate difference from OpenREM, docs/import.md)."""

from __future__ import annotations

from pathlib import Path

import pytest

from dose.models import Study
from dose.serialize import studies_for_export, study_to_dict
from imports.models import Outcome, Source
from imports.service import import_file
from tests.builders.rdsr import CtEvent, Header, build_ct_rdsr, write

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("second_first", [False, True], ids=["in-order", "reversed"])
def test_a_continued_ct_report_pair_makes_one_study_with_summed_totals(
    tmp_path: Path, second_first: bool
) -> None:
    uid = "1.2.826.0.1.3680043.8.498.99"
    first = build_ct_rdsr([CtEvent(dlp=300.0, protocol="Head"), CtEvent(dlp=120.5)],
                          header=Header(study_uid=uid))
    second = build_ct_rdsr([CtEvent(dlp=410.0, protocol="Abdomen")],
                           header=Header(study_uid=uid, study_time="101500"))
    pair = [second, first] if second_first else [first, second]
    records = [import_file(write(ds, tmp_path / f"{i}.dcm"), Source.FILE)
               for i, ds in enumerate(pair)]
    assert [r.outcome for r in records] == [Outcome.IMPORTED, Outcome.IMPORTED]
    assert Study.objects.filter(study_instance_uid=uid).count() == 1
    (study,) = studies_for_export(Study.objects.filter(study_instance_uid=uid))
    out = study_to_dict(study)
    assert out["totals"]["number_of_events"] == 3
    assert out["totals"]["dlp_total_mGycm"] == pytest.approx(830.5)
    assert sorted(e["dlp_mGycm"] for e in out["events"]) == [120.5, 300.0, 410.0]
    assert set(out["source_sop_instance_uids"]) == {first.SOPInstanceUID, second.SOPInstanceUID}


def test_a_repeated_report_adds_nothing(tmp_path: Path) -> None:
    uid = "1.2.826.0.1.3680043.8.498.98"
    first = build_ct_rdsr(2, header=Header(study_uid=uid))
    import_file(write(first, tmp_path / "a.dcm"), Source.FILE)
    again = build_ct_rdsr([], header=Header(study_uid=uid))
    again.ContentSequence = first.ContentSequence  # same events, another SOP instance
    record = import_file(write(again, tmp_path / "b.dcm"), Source.FILE)
    assert record.outcome == Outcome.IMPORTED
    (study,) = studies_for_export(Study.objects.filter(study_instance_uid=uid))
    assert study_to_dict(study)["totals"]["dlp_total_mGycm"] == pytest.approx(300.0)
