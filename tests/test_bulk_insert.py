"""lib/bulk.insert_rows writes what bulk_create would, and returns the ids in order."""

from __future__ import annotations

import datetime as dt

import pytest
from django.forms.models import model_to_dict

from dose.models import IrradiationEvent, Study, XraySource
from lib.bulk import insert_rows

pytestmark = pytest.mark.django_db


def test_it_inserts_rows_like_bulk_create_and_returns_their_ids_in_order() -> None:
    study = Study.objects.create(study_instance_uid="1.2.3", modality_type="CT")
    when = dt.datetime(2024, 1, 15, 9, 30, tzinfo=dt.UTC)
    rows = [
        {"study_id": study.pk, "ordinal": i, "dlp_mGycm": 100.0 * i, "date_time_started": when,
         "acquisition_protocol": f"P{i}", "dose_check": {"alert": i} if i else None}
        for i in range(40)  # more than one batch on SQLite (999 parameters)
    ]
    ids = insert_rows(IrradiationEvent, rows)
    assert len(ids) == 40
    stored = {e.pk: e for e in IrradiationEvent.objects.filter(pk__in=ids)}
    assert [stored[pk].ordinal for pk in ids] == list(range(40))
    assert stored[ids[3]].dlp_mGycm == 300.0
    assert stored[ids[3]].date_time_started == when
    assert stored[ids[3]].dose_check == {"alert": 3}
    assert stored[ids[0]].dose_check is None
    reference = IrradiationEvent.objects.bulk_create(
        [IrradiationEvent(study=study, ordinal=99, acquisition_protocol="P1", dlp_mGycm=100.0,
                          date_time_started=when, dose_check={"alert": 1})])[0]
    skip = {"id", "ordinal"}
    mine = model_to_dict(stored[ids[1]])
    theirs = model_to_dict(IrradiationEvent.objects.get(pk=reference.pk))
    assert {k: v for k, v in mine.items() if k not in skip} == \
        {k: v for k, v in theirs.items() if k not in skip}  # defaults ("", None) alike
    sources = insert_rows(XraySource, [{"event_id": ids[0], "kvp_kV": 120.0}])
    assert XraySource.objects.get(pk=sources[0]).event_id == ids[0]


def test_it_refuses_a_key_that_is_not_a_field() -> None:
    with pytest.raises(TypeError, match="no field 'dlp'"):
        insert_rows(IrradiationEvent, [{"dlp": 1.0}])
    assert insert_rows(IrradiationEvent, []) == []
