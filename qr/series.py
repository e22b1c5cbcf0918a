"""Series and image levels: C-FIND per study / series, count cross-checks, station filter."""

from __future__ import annotations

from pydicom import Dataset

from qr.models import QueryImage, QuerySeries, QueryStudy
from qr.params import QueryParams, matches_terms
from qr.session import FindSession, identifier, number, text


def _series_identifier(study_uid: str) -> Dataset:
    return identifier(
        "SERIES", StudyInstanceUID=study_uid, SeriesInstanceUID="", Modality="",
        SeriesNumber="", SeriesDescription="", NumberOfSeriesRelatedInstances="",
        StationName="", SeriesTime="",
    )


def _series_matches(session: FindSession, study: QueryStudy) -> list[Dataset]:
    uid = study.study_instance_uid
    matches = session.find(_series_identifier(uid), f"series level of study {uid}")
    expected = study.number_of_series
    if expected is not None and len(_unique(matches, "SeriesInstanceUID")) < expected:
        again = session.find(_series_identifier(uid), f"series level of study {uid} (re-query)")
        session.query.add_note(
            f"study {uid}: remote reported {expected} series, {len(matches)} arrived; "
            f"re-queried: {len(again)}"
        )
        if len(again) > len(matches):
            matches = again
    return _unique(matches, "SeriesInstanceUID")


def _unique(matches: list[Dataset], keyword: str) -> list[Dataset]:
    seen: dict[str, Dataset] = {}
    for ds in matches:
        uid = text(ds, keyword)
        if uid and uid not in seen:
            seen[uid] = ds
    return list(seen.values())


def find_series(session: FindSession, study: QueryStudy) -> list[QuerySeries]:
    """Series rows of `study` (saved), rebuilding ModalitiesInStudy when it was missing."""
    rows = [
        QuerySeries(
            study=study,
            series_instance_uid=text(ds, "SeriesInstanceUID"),
            modality=text(ds, "Modality").upper()[:16],
            series_number=number(ds, "SeriesNumber"),
            series_description=text(ds, "SeriesDescription")[:256],
            station_name=text(ds, "StationName")[:64],
            series_time=text(ds, "SeriesTime")[:16],
            number_of_instances=number(ds, "NumberOfSeriesRelatedInstances"),
        )
        for ds in _series_matches(session, study)
    ]
    rows = QuerySeries.objects.bulk_create(rows)
    if not study.modalities_in_study and rows:
        study.modalities_in_study = "\\".join(sorted({r.modality for r in rows if r.modality}))
        study.modalities_rebuilt = True
    return rows


def series_modalities(study: QueryStudy, series: list[QuerySeries]) -> set[str]:
    return {s.modality for s in series if s.modality} or study.modalities


def filter_station(series: list[QuerySeries], params: QueryParams) -> None:
    if params.station_study_level:
        return
    for row in series:
        if matches_terms(row.station_name, params.station_include, params.station_exclude):
            row.excluded, row.reason = True, "station name filter"


def _image_identifier(row: QuerySeries, instance_number: str = "") -> Dataset:
    return identifier(
        "IMAGE", StudyInstanceUID=row.study.study_instance_uid,
        SeriesInstanceUID=row.series_instance_uid, SOPInstanceUID="", SOPClassUID="",
        InstanceNumber=instance_number,
    )


def _image_rows(row: QuerySeries, matches: list[Dataset]) -> list[QueryImage]:
    return [
        QueryImage(
            series=row, sop_instance_uid=text(ds, "SOPInstanceUID"),
            sop_class_uid=text(ds, "SOPClassUID"), instance_number=number(ds, "InstanceNumber"),
        )
        for ds in _unique(matches, "SOPInstanceUID")
    ]


class ImageCache:
    """Image rows per series, queried at most once per series."""

    def __init__(self, session: FindSession) -> None:
        self.session = session
        self.rows: dict[int, list[QueryImage]] = {}
        self.partial: dict[int, list[QueryImage]] = {}

    def images(self, row: QuerySeries) -> list[QueryImage]:
        if row.pk in self.rows:
            return self.rows[row.pk]
        what = f"image level of series {row.series_instance_uid}"
        matches = self.session.find(_image_identifier(row), what)
        found = _unique(matches, "SOPInstanceUID")
        expected = row.number_of_instances
        if expected is not None and len(found) < expected:
            again = _unique(
                self.session.find(_image_identifier(row), what + " (re-query)"), "SOPInstanceUID"
            )
            self.session.query.add_note(
                f"series {row.series_instance_uid}: remote reported {expected} instances, "
                f"{len(found)} arrived; re-queried: {len(again)}"
            )
            if len(again) > len(found):
                found = again
        known = {i.sop_instance_uid: i for i in self.partial.get(row.pk, [])}
        new = [i for i in _image_rows(row, found) if i.sop_instance_uid not in known]
        images = list(known.values()) + QueryImage.objects.bulk_create(new)
        row.images_queried = True
        self.rows[row.pk] = images
        return images

    def first_image(self, row: QuerySeries) -> QueryImage | None:
        """Instance 1 by an image-level query with InstanceNumber=1; else the lowest number."""
        if row.pk not in self.rows:
            if row.pk in self.partial:
                return self.partial[row.pk][0]
            what = f"first image of series {row.series_instance_uid}"
            matches = self.session.find(_image_identifier(row, "1"), what)
            if matches:
                first = QueryImage.objects.bulk_create(_image_rows(row, matches[:1]))
                self.partial[row.pk] = first
                return first[0]
        images = self.images(row)
        if not images:
            return None
        return min(images, key=lambda i: (i.instance_number is None, i.instance_number or 0))
