"""patient_age_decimal_years: from the birth date unless it is a placeholder or gives an age
over 120 years; then from Patient Age (EXPORT_SCHEMA.md)."""

from __future__ import annotations

import pytest
from pydicom import Dataset

from imports.extractors.header import age_decimal, age_from_as


def _ds(birth: str, age: str, study_date: str = "20190601") -> Dataset:
    ds = Dataset()
    ds.PatientBirthDate = birth
    ds.PatientAge = age
    ds.StudyDate = study_date
    return ds


@pytest.mark.parametrize(
    ("birth", "age", "expected"),
    [
        ("19700101", "075Y", 49.4),  # a real birth date wins over Patient Age
        ("19000101", "075Y", 75.0),  # placeholder birth date (would give 119.4)
        ("18991230", "075Y", 75.0),
        ("00010101", "006M", 0.5),
        ("99990101", "063Y", 63.0),  # after the study: a placeholder too
        ("18980601", "", None),  # over 120 years and no Patient Age: unknown
        ("19000101", "", None),
        ("", "010W", 0.2),
        ("", "", None),
        ("19890601", "030Y", 30.0),
    ],
)
def test_it_takes_the_age_from_patient_age_when_the_birth_date_is_a_placeholder(
    birth: str, age: str, expected: float | None
) -> None:
    assert age_decimal(_ds(birth, age)) == expected


def test_it_reads_age_strings() -> None:
    assert age_from_as("075Y") == 75.0
    assert age_from_as("018M") == 1.5
    assert age_from_as("365D") == 1.0
    assert age_from_as("75") is None
    assert age_from_as("Y") is None
