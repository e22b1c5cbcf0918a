"""Reference levels (matching, marks, report) and alert rules (per study, cumulative per
patient, acknowledgement, roles)."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
from django.test import Client
from pytest_django.fixtures import Settings as SettingsWrapper

from alerts import service
from alerts.levels import marks_for, report
from alerts.models import Alert, AlertRule, ReferenceLevel
from audit.models import AuditEntry
from dose.models import AccumulatedPlane, IrradiationEvent, Study
from imports.models import Outcome, Source
from imports.service import import_file
from tests.conftest import samples_dir, wait_for

pytestmark = pytest.mark.django_db
_n = iter(range(1, 100_000))


def study(modality: str = Study.CT, dlp: float | None = None, rp: float | None = None,
          **fields: Any) -> Study:
    n = next(_n)
    values: dict[str, Any] = {
        "study_instance_uid": f"1.2.826.0.1.3680043.10.77.{n}", "modality_type": modality,
        "study_date": dt.date(2024, 3, 1), "station_name": "ROOM1",
    }
    values.update(fields)
    made = Study.objects.create(dlp_total_mGycm=dlp, **values)
    if rp is not None:
        AccumulatedPlane.objects.create(study=made, dose_rp_total_Gy=rp, dap_total_Gym2=1e-3)
    return made


def level(**fields: Any) -> ReferenceLevel:
    values: dict[str, Any] = {"name": "CT head", "modality": "CT", "quantity": "dlp",
                              "value": 1000.0}
    values.update(fields)
    return ReferenceLevel.objects.create(**values)


def rule(**fields: Any) -> AlertRule:
    values: dict[str, Any] = {"name": "CT DLP", "modality": "CT", "quantity": "dlp",
                              "threshold": 500.0}
    values.update(fields)
    return AlertRule.objects.create(**values)


def marked(*studies: Study) -> set[int]:
    return set(marks_for(studies))


def text_of(html: bytes | str) -> str:
    html = html.decode() if isinstance(html, bytes) else html
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


def test_it_marks_studies_by_modality_and_description_pattern() -> None:
    head = study(dlp=1200, study_description="Head^Routine (Adult)")
    chest = study(dlp=1200, study_description="CHEST")
    low_head = study(dlp=800, study_description="head")
    other = study(Study.DX, study_description="head")
    level(pattern="head routine")  # DICOM's ^ reads as a space, any case
    assert marked(head, chest, low_head, other) == {head.pk}
    ReferenceLevel.objects.all().delete()
    level(pattern="*chest", pattern_kind="glob")
    assert marked(head, chest, low_head) == {chest.pk}
    ReferenceLevel.objects.all().delete()
    level(pattern="he?d", pattern_kind="glob")  # anchored: "head" only, not "Head Routine"
    assert marked(head, chest, low_head) == set()
    level(pattern="", value=1100)  # every CT study
    assert marked(head, chest, low_head) == {head.pk, chest.pk}
    level(pattern="", value=1, active=False)
    assert marked(low_head) == set()


def test_it_marks_per_event_ctdivol_by_protocol() -> None:
    s = study(study_description="Trauma")
    IrradiationEvent.objects.create(study=s, acquisition_protocol="Head^Spiral", ctdivol_mGy=70)
    IrradiationEvent.objects.create(study=s, acquisition_protocol="Topogram", ctdivol_mGy=0.1)
    IrradiationEvent.objects.create(study=s, acquisition_protocol="Body", ctdivol_mGy=90)
    high = level(quantity="ctdivol", pattern_on="protocol", pattern="head spiral", value=60)
    level(quantity="ctdivol", pattern_on="protocol", pattern="head", value=80)
    marks = marks_for([s])[s.pk]
    assert [(m.level, m.value) for m in marks] == [(high, 70)]  # the Body event is not a head


def test_it_marks_by_age_and_weight_band() -> None:
    child = study(dlp=400, patient_age_decimal_years=5.0, patient_weight_kg=20)
    adult = study(dlp=400, patient_age_decimal_years=40.0, patient_weight_kg=20)
    unknown = study(dlp=400)
    sixteen = study(dlp=400, patient_age_decimal_years=16.0, patient_weight_kg=20)
    level(value=300, age_min_years=0, age_max_years=16)
    assert marked(child, adult, unknown, sixteen) == {child.pk}
    ReferenceLevel.objects.all().delete()
    level(value=300, weight_min_kg=30)
    assert marked(child, adult, unknown) == set()


def test_it_shows_the_mark_on_the_list_and_study_page_in_constant_queries(
    client: Client, viewer: Any, django_assert_max_num_queries: Any,
) -> None:
    above = study(dlp=1500, study_description="Head")
    below = study(dlp=100, study_description="Head")
    level(pattern="head")
    client.force_login(viewer)
    client.get("/studies/")
    with django_assert_max_num_queries(20) as few:
        page = client.get("/studies/").content.decode()
    assert page.count("above reference level") == 1
    row = re.search(rf'<tr class="study[^"]*">(?:(?!</tr>).)*?/studies/{above.pk}/.*?</tr>',
                    page, re.S)
    assert row and "level-badge" in row.group(0)
    for n in range(30):
        study(dlp=2000 + n, study_description="Head")
    with django_assert_max_num_queries(len(few.captured_queries)):
        page = client.get("/studies/").content.decode()
    assert page.count("above reference level") == 31
    detail = text_of(client.get(f"/studies/{above.pk}/").content)
    assert "above reference level DLP per study 1500 mGy·cm is above CT head (1000 mGy·cm)" \
        in detail
    assert "above reference level" not in text_of(client.get(f"/studies/{below.pk}/").content)


def test_the_report_gives_median_and_studies_above_per_level(
    client: Client, viewer: Any, settings: SettingsWrapper,
) -> None:
    settings.DAP_UNIT = "cGy.cm2"
    for dlp in (500, 900, 1300):
        study(dlp=dlp, study_description="Head")
    study(dlp=5000, study_description="Head", study_date=dt.date(2020, 1, 1))  # outside
    study(dlp=5000, study_description="Chest")  # does not match
    head = level(pattern="head")
    dap = level(name="RF DAP", modality="RF", quantity="dap", value=20e-6)  # 20 cGy·cm²
    study(Study.RF, rp=0.1)  # its plane has DAP 1e-3 Gy·m² = 1000 cGy·cm²
    rows = {row.level: row for row in report(dt.date(2024, 1, 1), dt.date(2024, 12, 31))}
    assert (rows[head].studies, rows[head].median, rows[head].above) == (3, 900, 1)
    assert rows[head].median_ratio == pytest.approx(0.9)
    assert (rows[dap].studies, rows[dap].above) == (1, 1)
    client.force_login(viewer)
    page = client.get("/alerts/levels/", {"since": "2024-01-01", "until": "2024-12-31"})
    row = text_of(re.search(rf'<tr id="level-{head.pk}".*?</tr>', page.content.decode(),
                            re.S).group(0))  # type: ignore[union-attr]
    assert "1000 mGy·cm 900 mGy·cm 0.9 3 3 1 (33 %)" in row
    assert "20 cGy·cm² 1000 cGy·cm²" in text_of(page.content)
    # Without a period: the last 12 months, so these 2024 studies fall out over time.
    assert client.get("/alerts/levels/").status_code == 200


def test_the_report_median_of_a_per_event_level_is_over_events() -> None:
    s = study(study_date=dt.date(2024, 5, 1))
    for ctdi in (10, 20, 60):
        IrradiationEvent.objects.create(study=s, acquisition_protocol="Head", ctdivol_mGy=ctdi)
    ctdi_level = level(quantity="ctdivol", pattern_on="protocol", pattern="head", value=50)
    [row] = report(None, None)
    assert row.level == ctdi_level
    assert (row.values, row.studies, row.median, row.above) == (3, 1, 20, 1)


def test_a_study_rule_fires_once_per_study_on_import(
    django_capture_on_commit_callbacks: Any, settings: SettingsWrapper,
) -> None:
    settings.EMAIL_HOST = ""  # recorded as not sent (tests/test_alerts_email.py sends)
    path = samples_dir() / "openrem" / "CT-RDSR-GEPixelMed.dcm"  # DLP 586.34 mGy·cm
    fires = rule(threshold=500, recipients="physics@example.org")
    rule(name="too high", threshold=600)
    with django_capture_on_commit_callbacks(execute=True):
        assert import_file(path, Source.FILE, keep=True).outcome == Outcome.IMPORTED
    [alert] = Alert.objects.all()
    assert (alert.rule, alert.value, alert.threshold) == (fires, 586.34, 500)
    assert alert.study is not None and alert.study.study_instance_uid == alert.study_instance_uid
    assert alert.email_error.startswith("e-mail is not configured")
    with django_capture_on_commit_callbacks(execute=True):
        assert import_file(path, Source.FILE, keep=True).outcome == Outcome.DUPLICATE
    assert service.evaluate_study(alert.study.pk) == []  # evaluated again: nothing new
    assert Alert.objects.count() == 1


def test_an_alert_problem_never_fails_the_import(
    django_capture_on_commit_callbacks: Any, monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(study_id: int) -> list[Alert]:
        raise RuntimeError("boom")

    monkeypatch.setattr("alerts.tasks.evaluate_study", broken)
    rule(threshold=1)
    path = samples_dir() / "openrem" / "CT-RDSR-GEPixelMed.dcm"
    with django_capture_on_commit_callbacks(execute=True):
        assert import_file(path, Source.FILE, keep=True).outcome == Outcome.IMPORTED
    assert not Alert.objects.exists()


def rf_patient_studies() -> tuple[Study, Study, Study]:
    same: dict[str, Any] = {"patient_id": "a3f0hash", "identity_hash": "hmac-sha256"}
    first = study(Study.RF, rp=3.0, study_date=dt.date(2024, 1, 10), **same)
    second = study(Study.RF, rp=2.5, study_date=dt.date(2024, 6, 1), **same)
    study(Study.RF, rp=9.0, study_date=dt.date(2024, 6, 1), patient_id="someone-else",
          identity_hash="hmac-sha256")
    late = study(Study.RF, rp=2.5, study_date=dt.date(2025, 9, 1), **same)  # > 365 d after
    return first, second, late


def skin_rule() -> AlertRule:
    return rule(name="Skin dose follow-up", modality="RF", quantity="dose_rp", threshold=5.0,
                kind="cumulative", window_days=365)


def test_a_cumulative_rule_adds_one_patients_studies_within_the_window(
    settings: SettingsWrapper,
) -> None:
    settings.PATIENT_IDENTITY = "hashed"
    first, second, late = rf_patient_studies()
    skin_rule()
    assert service.evaluate_study(first.pk) == []  # 3 Gy alone
    [alert] = service.evaluate_study(second.pk)
    assert (alert.value, alert.studies_counted, alert.window_days) == (5.5, 2, 365)
    assert alert.study == second
    assert service.evaluate_study(late.pk) == []  # the others are outside its window
    assert service.evaluate_study(second.pk) == []


def test_a_cumulative_rule_never_fires_without_identity_storage(
    client: Client, admin_user: Any, settings: SettingsWrapper,
) -> None:
    settings.PATIENT_IDENTITY = "none"
    _, second, _ = rf_patient_studies()
    skin_rule()
    assert service.evaluate_study(second.pk) == []
    client.force_login(admin_user)
    for url in ("/alerts/rules/", "/alerts/rules/add/"):
        text = text_of(client.get(url).content)
        assert "Patient identity storage is off" in text and "never fire" in text
    assert "never fires: identity storage is off" in text_of(client.get("/alerts/rules/").content)
    settings.PATIENT_IDENTITY = "hashed"
    assert "identity storage is off" not in text_of(client.get("/alerts/rules/").content)


def make_alert() -> Alert:
    s = study(dlp=900)
    [alert] = service.evaluate_study(rule().pk and s.pk)
    return alert


def test_it_acknowledges_an_alert_with_a_note_and_audits_it(
    client: Client, importer: Any,
) -> None:
    alert = make_alert()
    client.force_login(importer)
    count = '<span class="nav-count" title="1 not acknowledged">1</span>'
    assert count in client.get("/").content.decode()  # the header's count
    assert client.post(f"/alerts/{alert.pk}/acknowledge/", {"note": ""}).status_code == 400
    answer = client.post(f"/alerts/{alert.pk}/acknowledge/", {"note": "Follow-up booked"})
    assert answer.status_code == 302
    alert.refresh_from_db()
    assert alert.acknowledged_by == importer and alert.note == "Follow-up booked"
    assert alert.acknowledged_at is not None
    entry = AuditEntry.objects.get(action="alert.acknowledge")
    assert entry.username == "importer" and entry.detail["note"] == "Follow-up booked"
    page = text_of(client.get(f"/alerts/{alert.pk}/").content)
    assert "Acknowledged by importer" in page and "Follow-up booked" in page
    assert f'id="alert-{alert.pk}"' not in client.get("/alerts/").content.decode()
    assert f'id="alert-{alert.pk}"' in client.get("/alerts/?show=all").content.decode()
    again = client.post(f"/alerts/{alert.pk}/acknowledge/", {"note": "twice"})
    assert again.status_code == 302
    alert.refresh_from_db()
    assert alert.note == "Follow-up booked"


def test_viewers_see_alerts_but_cannot_acknowledge_or_define(
    client: Client, viewer: Any,
) -> None:
    alert = make_alert()
    client.force_login(viewer)
    for url in ("/alerts/", f"/alerts/{alert.pk}/", "/alerts/rules/", "/alerts/levels/"):
        assert client.get(url).status_code == 200, url
    assert "acknowledge-form" not in client.get(f"/alerts/{alert.pk}/").content.decode()
    assert client.post(f"/alerts/{alert.pk}/acknowledge/", {"note": "x"}).status_code == 403
    for url in ("/alerts/levels/add/", "/alerts/rules/add/",
                f"/alerts/rules/{alert.rule_id}/"):
        assert client.get(url).status_code == 403, url
    assert client.post(f"/alerts/rules/{alert.rule_id}/delete/").status_code == 403
    assert AlertRule.objects.count() == 1


def test_anonymous_users_are_sent_to_log_in(client: Client) -> None:
    answer = client.get("/alerts/")
    assert answer.status_code == 302 and answer["Location"].startswith("/login/")


def test_admins_define_levels_in_display_units_stored_in_schema_units(
    client: Client, admin_user: Any, settings: SettingsWrapper,
) -> None:
    settings.DAP_UNIT = "cGy.cm2"
    client.force_login(admin_user)
    form = client.get("/alerts/levels/add/").content.decode()
    assert "DAP per study: cGy·cm² (stored in Gy·m²)" in form
    answer = client.post("/alerts/levels/add/", {
        "name": "Chest PA", "modality": "DX", "quantity": "dap", "pattern_on": "description",
        "pattern": "chest", "pattern_kind": "contains", "amount": "10", "active": "on",
    })
    assert answer.status_code == 302
    made = ReferenceLevel.objects.get()
    assert made.value == pytest.approx(10e-6)
    assert AuditEntry.objects.filter(action="reference_level.add").count() == 1
    edit = client.get(f"/alerts/levels/{made.pk}/").content.decode()
    assert 'name="amount" value="10"' in edit
    answer = client.post("/alerts/rules/add/", {
        "name": "RF skin", "modality": "RF", "quantity": "dose_rp", "pattern_on": "description",
        "pattern_kind": "contains", "amount": "5000", "kind": "cumulative",
        "window_days": "365", "recipients": "a@example.org, b@example.org", "active": "on",
    })
    assert answer.status_code == 302
    assert AlertRule.objects.get().threshold == pytest.approx(5.0)  # 5000 mGy -> 5 Gy
    assert client.post(f"/alerts/levels/{made.pk}/delete/").status_code == 302
    assert not ReferenceLevel.objects.exists()
    assert {"reference_level.delete", "alert_rule.add"} <= set(
        AuditEntry.objects.values_list("action", flat=True))


def test_the_rule_form_refuses_what_cannot_be_compared(client: Client, admin_user: Any) -> None:
    client.force_login(admin_user)
    base = {"name": "x", "pattern_on": "description", "pattern_kind": "contains",
            "amount": "1", "kind": "study", "recipients": ""}
    wrong = client.post("/alerts/rules/add/", {**base, "modality": "CT", "quantity": "dap"})
    assert "DAP per study is not a quantity of CT studies" in text_of(wrong.content)
    summed = client.post("/alerts/rules/add/", {**base, "modality": "CT", "quantity": "ctdivol",
                                                "kind": "cumulative", "window_days": "30"})
    assert "CTDIvol per event cannot be summed over studies" in text_of(summed.content)
    bad = client.post("/alerts/rules/add/", {**base, "modality": "CT", "quantity": "dlp",
                                             "recipients": "physics"})
    assert "'physics' is not an e-mail address" in text_of(bad.content).replace("&#x27;", "'")
    assert not AlertRule.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_real_worker_evaluates_the_rules_after_the_import(worker: None) -> None:
    rule(threshold=500)
    path = samples_dir() / "openrem" / "CT-RDSR-GEPixelMed.dcm"  # DLP 586.34 mGy·cm
    assert import_file(path, Source.FILE, keep=True).outcome == Outcome.IMPORTED
    alert = wait_for(lambda: Alert.objects.first(), timeout=60)
    assert isinstance(alert, Alert) and alert.value == 586.34
