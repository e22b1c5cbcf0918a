"""DOSEPORT_PATIENT_IDENTITY=hashed stores HMAC-SHA-256 with the site key, not plain SHA-256."""

from __future__ import annotations

import hashlib
import hmac
import importlib
from pathlib import Path

import pytest
from django.apps import apps
from django.conf import settings
from django.test import override_settings

from dose.models import Study
from imports.models import Outcome, Source
from imports.service import import_file
from lib import identity
from tests.builders.rdsr import Header, build_ct_rdsr, write

pytestmark = pytest.mark.django_db


def site_key_from_file() -> bytes:
    return Path(settings.IDENTITY_KEY_PATH).read_text().strip().encode()


def import_patient(tmp_path: Path, patient_id: str) -> Study:
    ds = build_ct_rdsr(1, Header(patient_id=patient_id, patient_name="SMITH^JOHN",
                                 birth_date="19290519"))
    record = import_file(write(ds, tmp_path / "ct.dcm"), Source.FILE)
    assert record.outcome == Outcome.IMPORTED, record.error
    return Study.objects.get(study_instance_uid=ds.StudyInstanceUID)


@override_settings(PATIENT_IDENTITY="hashed")
def test_it_stores_a_keyed_hash_of_a_known_patient_id(tmp_path: Path) -> None:
    study = import_patient(tmp_path, "123456")
    plain = hashlib.sha256(b"123456").hexdigest()
    keyed = hmac.new(site_key_from_file(), b"123456", hashlib.sha256).hexdigest()
    assert study.patient_id != plain
    assert study.patient_id == keyed
    assert study.patient_birth_date != hashlib.sha256(b"19290519").hexdigest()
    assert study.identity_hash == identity.HMAC_SHA256


@override_settings(PATIENT_IDENTITY="hashed")
def test_the_same_patient_gets_the_same_hash(tmp_path: Path) -> None:
    first = import_patient(tmp_path / "a", "PID-7")
    second = import_patient(tmp_path / "b", "PID-7")
    assert first.pk != second.pk and first.patient_id == second.patient_id


def test_no_identity_is_stored_or_marked_by_default(tmp_path: Path) -> None:
    study = import_patient(tmp_path, "123456")
    assert (study.patient_id, study.identity_hash) == ("", "")


def test_another_key_gives_another_hash() -> None:
    assert identity.keyed_hash("123456", b"k" * 50) != identity.keyed_hash("123456", b"j" * 50)
    assert identity.site_key() == site_key_from_file()


def test_the_migration_marks_plain_hashes_and_rekeys_nothing() -> None:
    digest = hashlib.sha256(b"123456").hexdigest()
    old = Study.objects.create(study_instance_uid="1.2.1", patient_id=digest)
    old_dob = Study.objects.create(
        study_instance_uid="1.2.2", patient_birth_date=hashlib.sha256(b"19290519").hexdigest())
    plain = Study.objects.create(study_instance_uid="1.2.3", patient_id="123456")
    blank = Study.objects.create(study_instance_uid="1.2.4")
    migration = importlib.import_module("dose.migrations.0004_identity_hash_scheme")

    migration.mark_plain_hashes(apps, None)

    marks = dict(Study.objects.values_list("study_instance_uid", "identity_hash"))
    assert marks == {"1.2.1": "sha256", "1.2.2": "sha256", "1.2.3": "", "1.2.4": ""}
    old.refresh_from_db()
    assert old.patient_id == digest
    assert {old_dob.pk, plain.pk, blank.pk} <= set(Study.objects.values_list("pk", flat=True))
