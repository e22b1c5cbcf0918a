"""Query options and results in people's words: one sentence, dates as people write them,
SOP class names, and hints when the results look thin."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydicom.uid import UID

from lib import format
from qr.params import QueryParams

GROUP_WORDS = {
    "CT": "CT", "MG": "MG", "FL": "fluoroscopy (RF, XA)", "DX": "DX (DX, CR, PX)",
    "NM": "NM/PET",
}
IGNORED_KEY_REASON = "modality not requested"
NO_DOSE_REPORT = "no dose report"


def _and(items: list[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return f"{', '.join(items[:-1])} and {items[-1]}"


def _terms(terms: list[str]) -> str:
    return _and([f"“{t}”" for t in terms])


def _hhmm(value: str) -> str:
    return f"{value[:2]}:{value[2:4]}" if len(value) >= 4 else value


def _dates(params: QueryParams) -> str:
    start, end = params.date_from, params.date_until
    if start is None and end is None:
        return "of any date"
    if start is not None and start == end:
        when = f"on {format.date_text(start)}"
        if params.time_from or params.time_until:
            when += f" between {_hhmm(params.time_from)} and {_hhmm(params.time_until)}"
        return when
    if start is None:
        return f"until {format.date_text(end)}"
    return f"from {format.date_text(start)} to {format.date_text(end)}"


def _filters(params: QueryParams) -> list[str]:
    parts = []
    if params.desc_include:
        parts.append(f"study description containing {_terms(params.desc_include)}")
    if params.desc_exclude:
        parts.append(f"no study description containing {_terms(params.desc_exclude)}")
    level = "study" if params.station_study_level else "series"
    if params.station_include:
        parts.append(f"station name containing {_terms(params.station_include)} "
                     f"(at {level} level)")
    if params.station_exclude:
        parts.append(f"no station name containing {_terms(params.station_exclude)} "
                     f"(at {level} level)")
    return parts


def sentence(params_json: dict[str, Any], remote_name: str) -> str:
    """"CT, MG and DX (DX, CR, PX) studies from 1 Jan 2000 to 31 Dec 2000 on PACS X, ...\""""
    params = QueryParams.from_json(params_json)
    if params.sr_only:
        what = "Dose SR studies (modality SR)"
    else:
        what = f"{_and([GROUP_WORDS.get(g, g) for g in params.modalities]) or 'No'} studies"
    text = f"{what} {_dates(params)} on {remote_name or 'a deleted remote node'}"
    extras = _filters(params)
    if params.toshiba:
        extras.append("CT dose screens and first images fetched where no dose SR (Toshiba)")
    if params.emptysr:
        extras.append("SR series with no instances counted as dose reports")
    extras.append("objects already imported retrieved again" if params.dup
                  else "objects already imported skipped")
    return f"{text}; {'; '.join(extras)}."


def dicom_date(value: str) -> str:
    """DICOM DA "20000101" as "01 Jan 2000"; "date unknown" when empty or unreadable."""
    try:
        return format.date_text(dt.datetime.strptime(value.strip()[:8], "%Y%m%d").date())
    except (ValueError, AttributeError):
        return format.DATE_UNKNOWN


def dicom_time(value: str) -> str:
    """DICOM TM "132135.000000" as "13:21:35" ("1321" as "13:21"); '' when empty."""
    digits = (value or "").strip().split(".")[0].replace(":", "")
    if not digits.isdigit() or len(digits) < 4:
        return ""
    parts = [digits[i:i + 2] for i in range(0, min(len(digits), 6), 2)]
    return ":".join(parts)


def sop_class_name(uid: str) -> str:
    """pydicom's name of a SOP class ("X-Ray Radiation Dose SR Storage"), else the UID."""
    if not uid:
        return ""
    name = UID(uid).name
    return name.removesuffix(" Storage") if name and name != uid else uid


def hints(query: Any, summary: dict[str, Any] | None) -> list[str]:
    """Why a finished query may have found less than the user expects."""
    if summary is None:
        return []
    params = QueryParams.from_json(query.params)
    found: list[str] = []
    reasons = summary.get("excluded") or {}
    ignored = reasons.get(IGNORED_KEY_REASON, 0)
    if ignored or any("ignores ModalitiesInStudy" in n for n in query.notes or []):
        found.append(
            f"The PACS ignored ModalitiesInStudy: it also returned {ignored} "
            f"stud{'y' if ignored == 1 else 'ies'} of other modalities. Doseport filtered "
            "them out itself (reason \u201cmodality not requested\u201d); nothing is missing."
        )
    thin = summary.get("to_retrieve", 0) == 0 or any(NO_DOSE_REPORT in r for r in reasons)
    if not params.sr_only and thin:
        sr_studies = bool((getattr(query.remote, "probe_result", None) or {}).get(
            "sr_only_studies"))
        lead = ("This PACS lists dose reports as studies of their own (modality SR)"
                if sr_studies else
                "Some PACS list dose reports as studies of their own (modality SR)")
        found.append(
            f"{lead}: a {_and(params.modalities)} query does not find them. Run the query "
            "again with \u201cDose SRs only\u201d ticked to include them."
        )
    return found
