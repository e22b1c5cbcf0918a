"""Probe a remote node: a few harmless C-FINDs that show what the PACS supports, and the
query options that follow (QR_RULES.md). The result is stored on the node.

Every request goes through lib.dicom (the outgoing seam) on one association with the
node's short timeouts. Nothing is retrieved; C-GET support is read from the association
negotiation only.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import asdict, dataclass, field
from typing import Any

from django.utils import timezone
from pydicom import Dataset

from lib import dicom
from nodes.models import RemoteNode
from qr.session import identifier, number, text

logger = logging.getLogger(__name__)

YES, NO, UNKNOWN = "yes", "no", "unknown"
WINDOWS_DAYS = (7, 90)  # recent studies first; a wider window only when that finds none
MAX_STUDIES = 4  # studies looked at in series and image queries
SR = "SR"
DOSE_SR_CLASSES = {
    "1.2.840.10008.5.1.4.1.1.88.67", "1.2.840.10008.5.1.4.1.1.88.68",
    "1.2.840.10008.5.1.4.1.1.88.73", "1.2.840.10008.5.1.4.1.1.88.76",
}
STUDY_KEYS = {
    "StudyInstanceUID": "", "StudyDate": "", "ModalitiesInStudy": "", "StationName": "",
    "StudyDescription": "", "NumberOfStudyRelatedSeries": None,
}
SERIES_KEYS = {
    "SeriesInstanceUID": "", "Modality": "", "SeriesNumber": None, "SeriesDescription": "",
    "NumberOfSeriesRelatedInstances": None,
}


def _code(value: str) -> str:
    """A modality code as the PACS sent it, reduced to what a CS value may hold: it is
    shown on the page and printed on terminals."""
    return "".join(c for c in value.upper() if c.isascii() and (c.isalnum() or c in " _"))[:16]


@dataclass
class Check:
    key: str
    label: str
    result: str = UNKNOWN
    detail: str = ""


@dataclass
class ProbeResult:
    ok: bool
    error: str = ""
    checks: list[Check] = field(default_factory=list)
    suggestions: list[str] = field(default_factory=list)
    sr_only_studies: bool = False
    studies_seen: int = 0
    finds: int = 0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def check(self, key: str) -> Check:
        return next(c for c in self.checks if c.key == key)


class Prober:
    """One probe on one association; each check fills in its Check."""

    def __init__(self, node: RemoteNode, today: dt.date | None = None) -> None:
        self.node = node
        self.today = today or timezone.localdate()
        self.result = ProbeResult(ok=True, checks=[
            Check("association", "Association with our calling AE title"),
            Check("modalities_in_study", "ModalitiesInStudy matching at study level"),
            Check("station_name_study", "Station name returned at study level"),
            Check("sr_series", "SR series listed at series level"),
            Check("series_descriptions", "Series descriptions returned"),
            Check("image_level", "Image-level queries (SOP class of each instance)"),
            Check("instance_number", "Image-level matching on InstanceNumber (Toshiba rule)"),
            Check("c_get", "C-GET (association negotiation only)"),
            Check("toshiba", "CT studies without a dose SR (Toshiba/Canon dose screens)"),
        ])
        # not associated until run(); the probe's one association, opened through lib.dicom
        self.session = dicom.connect(
            node.peer(short=True), [dicom.STUDY_ROOT_FIND, dicom.STUDY_ROOT_GET]
        )

    # --- the association ------------------------------------------------------------
    def run(self) -> ProbeResult:
        session = self.session
        failure = session.open()
        check = self.result.check("association")
        if failure is not None:
            check.result, check.detail = NO, failure.reason
            self.result.ok, self.result.error = False, failure.reason
            return self.result
        try:
            check.result = YES
            check.detail = f"as {self.node.effective_calling_aet} to {self.node.ae_title}"
            self._c_get()
            studies = self._studies()
            series = self._series(studies)
            self._images(series)
            self._toshiba(studies, series)
        finally:
            session.close()
        self.result.suggestions = suggestions(self.result, self.node)
        return self.result

    def _find(self, ds: Dataset, what: str) -> list[Dataset]:
        self.result.finds += 1
        found = self.session.find(ds)
        if not found.ok:
            self.result.error = f"C-FIND {what}: {found.reason}"
            logger.info("probe of remote %s: %s", self.node.pk, self.result.error)
        return found.matches

    def _c_get(self) -> None:
        check = self.result.check("c_get")
        if self.session.accepts(dicom.STUDY_ROOT_GET):
            check.result, check.detail = YES, "Study Root C-GET accepted"
        else:
            check.result, check.detail = NO, "Study Root C-GET not accepted: retrieve with C-MOVE"

    # --- study level ----------------------------------------------------------------
    def _study_query(self, days: int, modality: str = "") -> list[Dataset]:
        start = self.today - dt.timedelta(days=days)
        keys = {**STUDY_KEYS, "StudyDate": f"{start:%Y%m%d}-{self.today:%Y%m%d}"}
        if modality:
            keys["ModalitiesInStudy"] = modality
        return self._find(identifier("STUDY", **keys), "study")

    def _studies(self) -> list[Dataset]:
        studies: list[Dataset] = []
        days = WINDOWS_DAYS[0]
        for days in WINDOWS_DAYS:
            studies = self._study_query(days)
            if studies:
                break
        self.result.studies_seen = len(studies)
        mods = [set(text(s, "ModalitiesInStudy").split("\\")) - {""} for s in studies]
        self.result.sr_only_studies = any(m == {SR} for m in mods)
        self._modality_matching(studies, mods, days)
        stations = [text(s, "StationName") for s in studies]
        check = self.result.check("station_name_study")
        if studies:
            named = sum(1 for s in stations if s)
            check.result = YES if named else NO
            check.detail = f"{named} of {len(studies)} studies carry a station name"
        return studies

    def _modality_matching(self, studies: list[Dataset], mods: list[set[str]],
                           days: int) -> None:
        check = self.result.check("modalities_in_study")
        if not studies:
            check.detail = f"no studies in the last {days} days to test with"
            return
        if not any(mods):
            check.result, check.detail = NO, (
                "ModalitiesInStudy is not returned: Doseport rebuilds it from the series")
            return
        counts: dict[str, int] = {}
        for m in mods:
            for code in m:
                counts[code] = counts.get(code, 0) + 1
        raw = max(sorted(counts), key=lambda c: counts[c])
        code = _code(raw)
        if not code or code != raw:
            check.detail = "no usable modality code among the answers"
            return
        matched = self._study_query(days, code)
        other = [s for s in matched if code not in text(s, "ModalitiesInStudy").split("\\")]
        if other:
            check.result, check.detail = NO, (
                f"asked for {code}, also got {len(other)} studies without it: the PACS "
                "ignores the key; Doseport filters locally with one C-FIND")
        elif not matched:
            check.result, check.detail = NO, (
                f"asked for {code}, got nothing though {counts[raw]} such studies exist")
        else:
            check.result = YES
            check.detail = f"asked for {code}: {len(matched)} studies, all with {code}"

    # --- series and image level ----------------------------------------------------------
    def _series(self, studies: list[Dataset]) -> list[tuple[Dataset, Dataset]]:
        with_sr = [s for s in studies if SR in text(s, "ModalitiesInStudy").split("\\")]
        chosen = (with_sr + [s for s in studies if s not in with_sr])[:MAX_STUDIES]
        pairs: list[tuple[Dataset, Dataset]] = []
        for study in chosen:
            uid = text(study, "StudyInstanceUID")
            for row in self._find(identifier("SERIES", StudyInstanceUID=uid, **SERIES_KEYS),
                                  "series"):
                pairs.append((study, row))
        sr_check = self.result.check("sr_series")
        sr_series = [r for _, r in pairs if text(r, "Modality") == SR]
        sr_studies = {text(s, "StudyInstanceUID") for s in with_sr[:MAX_STUDIES]}
        if sr_series:
            sr_check.result, sr_check.detail = YES, f"{len(sr_series)} SR series seen"
        elif sr_studies:
            sr_check.result, sr_check.detail = NO, (
                "studies list SR in ModalitiesInStudy, but no SR series at series level")
        else:
            sr_check.detail = "no study with SR among those probed"
        desc = self.result.check("series_descriptions")
        if pairs:
            described = sum(1 for _, r in pairs if text(r, "SeriesDescription"))
            desc.result = YES if described else NO
            desc.detail = f"{described} of {len(pairs)} series described"
        return pairs

    def _images(self, pairs: list[tuple[Dataset, Dataset]]) -> None:
        check = self.result.check("image_level")
        if not pairs:
            check.detail = "no series to test with"
            return
        ordered = sorted(pairs, key=lambda p: text(p[1], "Modality") != SR)
        study, series = ordered[0]
        keys = {"StudyInstanceUID": text(study, "StudyInstanceUID"),
                "SeriesInstanceUID": text(series, "SeriesInstanceUID")}
        rows = self._find(identifier("IMAGE", SOPInstanceUID="", SOPClassUID="",
                                     InstanceNumber=None, **keys), "image")
        classes = {text(r, "SOPClassUID") for r in rows} - {""}
        if rows and classes:
            dose = classes & DOSE_SR_CLASSES
            check.result = YES
            check.detail = (f"{len(rows)} instance{'s' if len(rows) != 1 else ''} of a "
                            f"{_code(text(series, 'Modality'))} series, "
                            f"SOP class returned{'; dose SR found' if dose else ''}")
        elif rows:
            check.result, check.detail = NO, "instances listed without their SOP class"
        else:
            check.result = NO
            check.detail = f"no instances returned for a {_code(text(series, 'Modality'))} series"
            if text(series, "Modality") == SR:
                check.detail += " (SR series empty at image level: see --emptysr)"
        self._instance_number(pairs)

    def _instance_number(self, pairs: list[tuple[Dataset, Dataset]]) -> None:
        """Ask for instance 1 of the largest series: a PACS that matches on InstanceNumber
        answers one instance, one that ignores the key answers them all."""
        check = self.result.check("instance_number")
        sized = [(number(r, "NumberOfSeriesRelatedInstances") or 0, i)
                 for i, (_, r) in enumerate(pairs)]
        size, index = max(sized, default=(0, -1))
        if size < 2:
            check.detail = "no series with more than one instance to test with"
            return
        study, series = pairs[index]
        rows = self._find(identifier(
            "IMAGE", StudyInstanceUID=text(study, "StudyInstanceUID"),
            SeriesInstanceUID=text(series, "SeriesInstanceUID"), SOPInstanceUID="",
            InstanceNumber="1"), "image, instance 1")
        check.result = YES if len(rows) == 1 else NO
        check.detail = f"asked for instance 1 of a {size}-instance series: got {len(rows)}"

    def _toshiba(self, studies: list[Dataset], pairs: list[tuple[Dataset, Dataset]]) -> None:
        check = self.result.check("toshiba")
        ct = {text(s, "StudyInstanceUID") for s in studies
              if "CT" in text(s, "ModalitiesInStudy").split("\\")}
        by_study: dict[str, set[str]] = {}
        for study, row in pairs:
            by_study.setdefault(text(study, "StudyInstanceUID"), set()).add(text(row, "Modality"))
        probed = [uid for uid in ct if uid in by_study]
        if not probed:
            check.detail = "no CT study among those probed"
            return
        without_sr = [uid for uid in probed if SR not in by_study[uid]]
        screens = [uid for uid in without_sr if "SC" in by_study[uid] or any(
            "dose" in text(r, "SeriesDescription").lower()
            for s, r in pairs if text(s, "StudyInstanceUID") == uid)]
        check.result = YES if without_sr else NO
        check.detail = (f"{len(without_sr)} of {len(probed)} CT studies have no SR series"
                        f"{f', {len(screens)} with a dose screen series' if screens else ''}")


def suggestions(result: ProbeResult, node: RemoteNode) -> list[str]:
    """Query options that follow from what the probe found."""
    out: list[str] = []
    mis = result.check("modalities_in_study")
    if mis.result == NO and "ignores" in mis.detail:
        out.append("Nothing to set for modalities: the PACS ignores ModalitiesInStudy and "
                   "Doseport filters the answers itself.")
    elif mis.result == NO and "got nothing" in mis.detail and not node.use_modality_tag:
        out.append("Tick \u201cSend Modality at study level\u201d on this node: it did not "
                   "match ModalitiesInStudy.")
    if result.sr_only_studies:
        out.append("This PACS lists dose reports as studies of their own (modality SR): run "
                   "a second query with \u201cDose SRs only\u201d (doseport qr ... -sr).")
    station = result.check("station_name_study")
    if station.result == YES:
        out.append("Station names come at study level: \u201cFilter station names at study "
                   "level\u201d (--stationname-study-level) saves series queries.")
    elif station.result == NO:
        out.append("No station names at study level: keep station filters at series level "
                   "(the default).")
    if result.check("sr_series").result == NO:
        out.append("SR series are not listed at series level: use \u201cDose SRs only\u201d "
                   "(-sr) for the dose reports.")
    image = result.check("image_level")
    if image.result == NO and "emptysr" in image.detail:
        out.append("SR series answer no instances: tick \u201cTreat SR series with no "
                   "instances as dose reports\u201d (--emptysr).")
    if result.check("toshiba").result == YES:
        out.append("CT studies without a dose SR: tick the Toshiba option (--toshiba) to "
                   "fetch dose screens and first images.")
    if result.check("c_get").result == YES and node.retrieve_method != "get":
        out.append("C-GET works: \u201cRetrieve with C-GET\u201d needs no move destination "
                   "registered on the PACS.")
    return out


def probe(node: RemoteNode, today: dt.date | None = None) -> ProbeResult:
    """Probe `node` and store the result on it (probe_result, probed_at)."""
    result = Prober(node, today).run()
    node.probe_result = result.to_json()
    node.probed_at = timezone.now()
    node.save(update_fields=["probe_result", "probed_at"])
    return result


def probe_by_id(node_id: int) -> bool | None:
    """The worker's entry: probe the node if it still exists; whether the probe got through."""
    node = RemoteNode.objects.filter(pk=node_id).first()
    if node is None:
        return None
    return probe(node).ok


PENDING = "pending"
PENDING_OVERDUE_S = 120


def request_probe(node: RemoteNode) -> None:
    """Mark a probe as queued (the panel polls while it is); the caller queues the task."""
    node.probe_result = {**(node.probe_result or {}), PENDING: timezone.now().isoformat()}
    node.save(update_fields=["probe_result"])


def probe_state(node: RemoteNode) -> str:
    """'' (nothing queued), 'pending' (the panel polls) or 'overdue' (no worker took it)."""
    since = pending_since(node)
    if since is None:
        return ""
    overdue = (timezone.now() - since).total_seconds() > PENDING_OVERDUE_S
    return "overdue" if overdue else PENDING


def pending_since(node: RemoteNode) -> dt.datetime | None:
    value = (node.probe_result or {}).get(PENDING)
    try:
        return dt.datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None
