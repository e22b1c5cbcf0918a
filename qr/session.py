"""One association per query: C-FINDs through lib.dicom, errors kept, cancel honoured."""

from __future__ import annotations

import logging
import time
from typing import Any

from pydicom import Dataset

from lib import dicom
from qr.models import Query

logger = logging.getLogger(__name__)


class QueryStopped(Exception):
    """The query cannot go on (no association) or was cancelled."""

    def __init__(self, reason: str, cancelled: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.cancelled = cancelled


class CancelCheck:
    """Ask the database whether cancel was requested, at most every `interval` seconds.

    The engines call it before each request and on each pending response, so it also keeps
    the job's heartbeat fresh (`Job.beat` writes at most every HEARTBEAT_EVERY_S).
    """

    def __init__(self, job: Any, interval: float = 0.5) -> None:
        self.job = job
        self.interval = interval
        self.last = 0.0
        self.wanted = False

    def __call__(self) -> bool:
        self.job.beat()
        now = time.monotonic()
        if not self.wanted and now - self.last >= self.interval:
            self.last = now
            self.wanted = self.job.cancel_wanted()
        return self.wanted


class FindSession:
    """The query's lib.dicom session; re-associates once if the remote drops it."""

    def __init__(self, query: Query, peer: dicom.Peer) -> None:
        self.query = query
        self.peer = peer
        self.session = dicom.connect(peer, [dicom.STUDY_ROOT_FIND])
        self.cancel = CancelCheck(query)

    def __enter__(self) -> FindSession:
        self._open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.session.close()

    def _open(self) -> None:
        failure = self.session.open()
        if failure is not None:
            raise QueryStopped(f"cannot query {self.peer.ae_title}: {failure.reason}")

    def find(self, identifier: Dataset, what: str) -> list[Dataset]:
        """Matches for one C-FIND; errors are recorded on the query and yield what arrived."""
        if self.cancel():
            raise QueryStopped("cancelled by the user", cancelled=True)
        for attempt in (1, 2):
            self.query.find_count += 1
            result = self.session.find(identifier, self.cancel)
            if result.cancelled:
                raise QueryStopped("cancelled by the user", cancelled=True)
            if result.ok:
                return result.matches
            self.query.add_error(f"C-FIND {what}: {result.reason}")
            if not result.association_lost and self.session.is_open:
                return result.matches
            self.session.close()
            self._open()
            if attempt == 2:
                return result.matches
        return []


def identifier(level: str, **keys: Any) -> Dataset:
    ds = Dataset()
    ds.QueryRetrieveLevel = level
    for name, value in keys.items():
        setattr(ds, name, value)
    return ds


def text(ds: Dataset, keyword: str) -> str:
    value = ds.get(keyword)
    if value is None:
        return ""
    if isinstance(value, list | tuple) or type(value).__name__ == "MultiValue":
        return "\\".join(str(v) for v in value)
    return str(value).strip()


def number(ds: Dataset, keyword: str) -> int | None:
    value = ds.get(keyword)
    if value in (None, ""):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
