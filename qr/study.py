"""Study level: one C-FIND per requested modality code, merge, description/station filters."""

from __future__ import annotations

from pydicom import Dataset

from qr.models import QueryStudy
from qr.params import QueryParams, matches_terms
from qr.session import FindSession, identifier, number, text


def study_identifier(params: QueryParams, code: str, use_modality_tag: bool) -> Dataset:
    ds = identifier(
        "STUDY",
        StudyInstanceUID="",
        StudyDate=params.study_date(),
        StudyTime=params.study_time(),
        ModalitiesInStudy=code,
        StudyDescription="",
        StationName="",
        NumberOfStudyRelatedSeries="",
        AccessionNumber="",
    )
    if use_modality_tag:
        ds.Modality = code  # FIX: the value, not an empty key
    return ds


def ignores_modality_key(matches: list[Dataset], code: str) -> bool:
    """A match listing ModalitiesInStudy without `code` means the remote ignored the key."""
    for ds in matches:
        listed = set(text(ds, "ModalitiesInStudy").split("\\")) - {""}
        if listed and code not in listed:
            return True
    return False


def find_studies(
    session: FindSession, params: QueryParams, use_modality_tag: bool
) -> list[Dataset]:
    """All study matches, merged by StudyInstanceUID (first answer wins)."""
    merged: dict[str, Dataset] = {}
    for code in params.codes:
        matches = session.find(
            study_identifier(params, code, use_modality_tag), f"study level {code}"
        )
        for ds in matches:
            uid = text(ds, "StudyInstanceUID")
            if uid and uid not in merged:
                merged[uid] = ds
        if ignores_modality_key(matches, code):
            session.query.add_note(
                f"remote ignores ModalitiesInStudy (asked {code}): one C-FIND, filtered locally"
            )
            break
    return list(merged.values())


def study_row(query_id: int, ds: Dataset) -> QueryStudy:
    return QueryStudy(
        query_id=query_id,
        study_instance_uid=text(ds, "StudyInstanceUID"),
        study_date=text(ds, "StudyDate")[:8],
        study_time=text(ds, "StudyTime")[:16],
        accession_number=text(ds, "AccessionNumber")[:64],
        study_description=text(ds, "StudyDescription")[:256],
        station_name=text(ds, "StationName")[:64],
        modalities_in_study=text(ds, "ModalitiesInStudy")[:128],
        number_of_series=number(ds, "NumberOfStudyRelatedSeries"),
    )


def filter_study(study: QueryStudy, params: QueryParams) -> None:
    """Local modality filter (when the remote returned the key), description, station."""
    wanted = set(params.codes)
    if study.modalities and not study.modalities & wanted:
        study.excluded, study.reason = True, "modality not requested"
        return
    if matches_terms(study.study_description, params.desc_include, params.desc_exclude):
        study.excluded, study.reason = True, "study description filter"
        return
    if params.station_study_level and matches_terms(
        study.station_name, params.station_include, params.station_exclude
    ):
        study.excluded, study.reason = True, "station name filter"
