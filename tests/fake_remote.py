"""A misbehaving-on-demand Query/Retrieve SCP (pynetdicom) serving objects a test builds.

It answers Study Root C-FIND/C-MOVE/C-GET on a free 127.0.0.1 port. C-MOVE sub-operations
are C-STOREs to the destination looked up in `destinations` {AE: (host, port)}.
Misbehaviours: `ignore_modalities` (ModalitiesInStudy key ignored), `omit_modalities` (not
returned), `move_status` {series UID or "*": status}, `abort_series` {series UID: times},
`drop_series_once` {study UID} (one series response lost), `sub_op_delay` (seconds),
`die_after` (after that many sub-operations in all, the remote dies like a killed process:
it stops listening and its connections close without an A-ABORT).

`session()` is an in-memory stand-in for lib.dicom.Session answering from the same
objects and misbehaviours without a network, for the query-rule tests.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from pydicom import Dataset
from pydicom.dataset import FileMetaDataset
from pydicom.uid import ImplicitVRLittleEndian, generate_uid
from pynetdicom import AE, AllStoragePresentationContexts, evt
from pynetdicom.sop_class import (  # type: ignore[attr-defined]
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelGet,
    StudyRootQueryRetrieveInformationModelMove,
    Verification,
)

from tests.conftest import free_port

CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2"
SC = "1.2.840.10008.5.1.4.1.1.7"
RDSR = "1.2.840.10008.5.1.4.1.1.88.67"
RRDSR = "1.2.840.10008.5.1.4.1.1.88.68"
ESR = "1.2.840.10008.5.1.4.1.1.88.22"
BASIC_SR = "1.2.840.10008.5.1.4.1.1.88.11"
COMPREHENSIVE_SR = "1.2.840.10008.5.1.4.1.1.88.33"
MG_IMAGE = "1.2.840.10008.5.1.4.1.1.1.2"
DX_IMAGE = "1.2.840.10008.5.1.4.1.1.1.1"
CR_IMAGE = "1.2.840.10008.5.1.4.1.1.1"
RF_IMAGE = "1.2.840.10008.5.1.4.1.1.12.2"
XA_IMAGE = "1.2.840.10008.5.1.4.1.1.12.1"
NM_IMAGE = "1.2.840.10008.5.1.4.1.1.20"
PT_IMAGE = "1.2.840.10008.5.1.4.1.1.128"
EXTRA_STORAGE = [RDSR, RRDSR, "1.2.840.10008.5.1.4.1.1.88.73", "1.2.840.10008.5.1.4.1.1.88.76"]

SOP_FOR = {"CT": CT_IMAGE, "SC": SC, "MG": MG_IMAGE, "DX": DX_IMAGE, "CR": CR_IMAGE,
           "RF": RF_IMAGE, "XA": XA_IMAGE, "NM": NM_IMAGE, "PT": PT_IMAGE, "SR": RDSR}


@dataclass
class Obj:
    study: str
    series: str
    modality: str
    sop_class: str = ""
    sop: str = field(default_factory=generate_uid)
    date: str = "20240102"
    time: str = "101500"
    study_desc: str | None = "Study"
    series_desc: str | None = "Series"
    station: str | None = "ROOM1"
    study_station: str | None = None
    series_number: int = 1
    number: int = 1
    hidden: bool = False  # present at series level, absent at image level (empty SR answer)

    def dataset(self) -> Dataset:
        ds = Dataset()
        ds.SOPClassUID = self.sop_class or SOP_FOR.get(self.modality, SC)
        ds.SOPInstanceUID = self.sop
        ds.StudyInstanceUID = self.study
        ds.SeriesInstanceUID = self.series
        ds.Modality = self.modality
        ds.StudyDate = self.date
        ds.InstanceNumber = self.number
        ds.file_meta = FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
        ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        return ds


def series_of(study: str, modality: str, count: int, **kw: Any) -> list[Obj]:
    """`count` instances of one new series in `study`."""
    uid = generate_uid()
    return [Obj(study, uid, modality, number=n + 1, **kw) for n in range(count)]


def _in_range(value: str, query: str) -> bool:
    if not query:
        return True
    if "-" not in query:
        return value == query
    low, high = query.split("-", 1)
    return (not low or value >= low) and (not high or value <= high)


class FakeRemote:
    def __init__(self, objs: list[Obj], ae_title: str = "FAKEPACS",
                 destinations: dict[str, tuple[str, int]] | None = None) -> None:
        self.objs = objs
        self.ae_title = ae_title
        self.destinations = destinations or {}
        self.ignore_modalities = False
        self.omit_modalities = False
        self.move_status: dict[str, int] = {}
        self.abort_series: dict[str, int] = {}
        self.drop_series_once: set[str] = set()
        self.sub_op_delay = 0.0
        self.die_after: int | None = None
        self.up = False  # an in-memory fake "listens" (tests.fake_remote.in_memory)
        self.sub_ops = 0
        self.finds: list[Dataset] = []
        self.moves: list[Dataset] = []
        self.move_callers: list[str] = []
        self.cancelled = 0
        self.associations = 0
        self.released = 0
        self.aborted = 0
        self.lock = threading.Lock()
        self.port = free_port()
        self.server: Any = None

    # --- lifecycle -------------------------------------------------------------------
    def start(self) -> FakeRemote:
        ae = AE(ae_title=self.ae_title)
        ae.maximum_pdu_size = 0
        for cx in (Verification, StudyRootQueryRetrieveInformationModelFind,
                   StudyRootQueryRetrieveInformationModelMove,
                   StudyRootQueryRetrieveInformationModelGet):
            ae.add_supported_context(cx)
        classes = sorted({o.dataset().SOPClassUID for o in self.objs})
        for uid in classes[:120]:
            ae.add_requested_context(uid)
            ae.add_supported_context(uid, scu_role=False, scp_role=True)
        ae.dimse_timeout = ae.network_timeout = 10
        handlers: list[Any] = [
            (evt.EVT_C_FIND, self._find), (evt.EVT_C_MOVE, self._move),
            (evt.EVT_C_GET, self._get), (evt.EVT_ACCEPTED, self._count("associations")),
            (evt.EVT_RELEASED, self._count("released")), (evt.EVT_ABORTED, self._count("aborted")),
        ]
        self.server = ae.start_server(("127.0.0.1", self.port), block=False, evt_handlers=handlers)
        return self

    def stop(self) -> None:
        with self.lock:
            server, self.server = self.server, None
        if server is not None:
            server.shutdown()

    def __enter__(self) -> FakeRemote:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _count(self, name: str) -> Any:
        def handler(event: evt.Event) -> None:
            with self.lock:
                setattr(self, name, getattr(self, name) + 1)
        return handler

    # --- matching ----------------------------------------------------------------------
    def _studies(self) -> dict[str, list[Obj]]:
        out: dict[str, list[Obj]] = {}
        for o in self.objs:
            out.setdefault(o.study, []).append(o)
        return out

    def find_matches(self, q: Dataset) -> list[Dataset]:
        level = q.QueryRetrieveLevel
        want = {e.keyword for e in q if e.keyword != "QueryRetrieveLevel"}
        def val(key: str) -> str:
            v = q.get(key, "")
            return str(v) if v is not None else ""
        results = []
        if level == "STUDY":
            for uid, objs in self._studies().items():
                first = objs[0]
                mods = sorted({o.modality for o in objs})
                if val("StudyInstanceUID") and uid != val("StudyInstanceUID"):
                    continue
                if not _in_range(first.date, val("StudyDate")):
                    continue
                if not _in_range(first.time[:4], val("StudyTime").replace("-", "-")[:9]):
                    continue
                code = val("ModalitiesInStudy")
                if code and not self.ignore_modalities and code not in mods:
                    continue
                series = {o.series for o in objs}
                row = {"StudyInstanceUID": uid, "StudyDate": first.date, "StudyTime": first.time,
                       "StudyDescription": first.study_desc, "StationName": first.study_station,
                       "ModalitiesInStudy": None if self.omit_modalities else mods,
                       "NumberOfStudyRelatedSeries": len(series), "AccessionNumber": "ACC"}
                results.append(self._ds(level, row, want))
        elif level == "SERIES":
            objs = self._studies().get(val("StudyInstanceUID"), [])
            by_series: dict[str, list[Obj]] = {}
            for o in objs:
                by_series.setdefault(o.series, []).append(o)
            for uid, items in by_series.items():
                f = items[0]
                if val("SeriesInstanceUID") and uid != val("SeriesInstanceUID"):
                    continue
                row = {"StudyInstanceUID": f.study, "SeriesInstanceUID": uid,
                       "Modality": f.modality, "SeriesNumber": f.series_number,
                       "SeriesDescription": f.series_desc,
                       "NumberOfSeriesRelatedInstances": len(items), "StationName": f.station,
                       "SeriesTime": f.time}
                results.append(self._ds(level, row, want))
            study = val("StudyInstanceUID")
            if study in self.drop_series_once and results:
                self.drop_series_once.discard(study)
                results = results[1:]
        else:
            for o in self.objs:
                if o.hidden or o.study != val("StudyInstanceUID"):
                    continue
                if val("SeriesInstanceUID") and o.series != val("SeriesInstanceUID"):
                    continue
                if val("SOPInstanceUID") and o.sop != val("SOPInstanceUID"):
                    continue
                if val("InstanceNumber") and str(o.number) != val("InstanceNumber"):
                    continue
                row = {"StudyInstanceUID": o.study, "SeriesInstanceUID": o.series,
                       "SOPInstanceUID": o.sop, "SOPClassUID": o.dataset().SOPClassUID,
                       "InstanceNumber": o.number}
                results.append(self._ds(level, row, want))
        return results

    @staticmethod
    def _ds(level: str, row: dict[str, Any], want: set[str]) -> Dataset:
        ds = Dataset()
        ds.QueryRetrieveLevel = level
        for key, value in row.items():
            if key in want and value is not None:
                setattr(ds, key, value)
        return ds

    def retrieve_matches(self, q: Dataset) -> list[Obj]:
        out = []
        for o in self.objs:
            if o.study != str(q.get("StudyInstanceUID", "")):
                continue
            if q.get("SeriesInstanceUID") and o.series != str(q.SeriesInstanceUID):
                continue
            if q.get("SOPInstanceUID") and o.sop != str(q.SOPInstanceUID):
                continue
            out.append(o)
        return out

    # --- handlers -------------------------------------------------------------------------
    def _find(self, event: evt.Event) -> Iterator[tuple[int, Dataset | None]]:
        q = event.identifier
        with self.lock:
            self.finds.append(q)
        for ds in self.find_matches(q):
            if event.is_cancelled:
                yield 0xFE00, None
                return
            yield 0xFF00, ds
        yield 0x0000, None

    def _status_for(self, q: Dataset) -> int | None:
        series = str(q.get("SeriesInstanceUID", ""))
        return self.move_status.get(series, self.move_status.get("*"))

    def _move(self, event: evt.Event) -> Iterator[Any]:
        q = event.identifier
        with self.lock:
            self.moves.append(q)
            self.move_callers.append(event.assoc.requestor.ae_title)
        dest = self.destinations.get((event.move_destination or "").strip())
        status = self._status_for(q)
        if dest is None or status == 0xA801:
            yield None, None
            return
        objs = self.retrieve_matches(q)
        yield dest[0], dest[1]
        yield len(objs)
        series = str(q.get("SeriesInstanceUID", ""))
        if self.abort_series.get(series, 0) > 0:
            self.abort_series[series] -= 1
            event.assoc.abort()
            return
        yield from self._sub_ops(event, objs, status)

    def _die(self, event: evt.Event) -> None:
        """Like a SIGKILL: no more listening, the connection closed under the association."""
        self.stop()  # first: a reconnect right after the drop must be refused
        raw = event.assoc.dul.socket.socket if event.assoc.dul.socket else None
        if raw is not None:
            try:
                raw.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def _sub_ops(self, event: evt.Event, objs: list[Obj], status: int | None) -> Iterator[Any]:
        for n, o in enumerate(objs):
            if self.die_after is not None and self.sub_ops >= self.die_after:
                self._die(event)
                return
            self.sub_ops += 1
            if event.is_cancelled:
                with self.lock:
                    self.cancelled += 1
                yield 0xFE00, None
                return
            if status is not None and status != 0x0000 and n == len(objs) - 1:
                failed = Dataset()
                failed.FailedSOPInstanceUIDList = [o.sop]
                yield status, failed
                return
            if self.sub_op_delay:
                time.sleep(self.sub_op_delay)
            yield 0xFF00, o.dataset()

    def _get(self, event: evt.Event) -> Iterator[Any]:
        q = event.identifier
        with self.lock:
            self.moves.append(q)
        objs = self.retrieve_matches(q)
        yield len(objs)
        yield from self._sub_ops(event, objs, self._status_for(q))


class MemorySession:
    """lib.dicom.Session answered in memory from a FakeRemote's objects and misbehaviours
    (C-FIND and C-ECHO; retrieves need the real SCP). Counts associations like the SCP."""

    def __init__(self, fake: FakeRemote, peer: Any) -> None:
        self.fake = fake
        self.peer = peer
        self.associated = False

    def __enter__(self) -> MemorySession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def is_open(self) -> bool:
        return self.associated

    def open(self) -> Any:
        from lib.dicom import AssocFailure

        if self.associated:
            return None
        if not self.fake.up:
            return AssocFailure(f"connection refused by {self.peer.host}:{self.peer.port} "
                                "(nothing listening on that port)")
        with self.fake.lock:
            self.fake.associations += 1
        self.associated = True
        return None

    def close(self) -> None:
        if self.associated:
            self.associated = False
            with self.fake.lock:
                self.fake.released += 1

    def echo(self) -> Any:
        from lib.dicom import EchoResult

        failure = self.open()
        return EchoResult(False, reason=failure.reason) if failure else EchoResult(True, 0.0)

    def find(self, identifier: Dataset, should_cancel: Any = None) -> Any:
        from lib.dicom import CANCEL, FindResult

        failure = self.open()
        if failure is not None:
            return FindResult(False, reason=failure.reason, association_lost=True)
        with self.fake.lock:
            self.fake.finds.append(identifier)
        matches: list[Dataset] = []
        for ds in self.fake.find_matches(identifier):
            if should_cancel is not None and should_cancel():
                with self.fake.lock:
                    self.fake.cancelled += 1
                return FindResult(False, matches, CANCEL, cancelled=True)
            matches.append(ds)
        return FindResult(True, matches, 0x0000)

    def move(self, *args: Any, **kw: Any) -> Any:
        raise NotImplementedError("retrieves run against the real SCP (FakeRemote.start)")

    get = move


def in_memory(fake: FakeRemote, monkeypatch: Any) -> FakeRemote:
    """Serve `fake` through lib.dicom's seam without a network: sessions with its port are
    MemorySessions (others still connect for real)."""
    from lib import dicom

    real = dicom.connect

    def connect(peer: Any, contexts: list[str], *args: Any, **kw: Any) -> Any:
        if peer.port == fake.port and peer.host == "127.0.0.1":
            return MemorySession(fake, peer)
        return real(peer, contexts, *args, **kw)

    fake.up = True
    monkeypatch.setattr(dicom, "connect", connect)
    return fake


class StoreSCP:
    """A plain storage SCP standing in for our store node; records what arrives."""

    def __init__(self, ae_title: str = "DPSTORE", on_store: Any = None) -> None:
        self.ae_title = ae_title
        self.port = free_port()
        self.received: list[str] = []
        self.on_store = on_store
        self.server: Any = None

    def _store(self, event: evt.Event) -> int:
        uid = str(event.request.AffectedSOPInstanceUID)  # type: ignore[union-attr]
        self.received.append(uid)
        if self.on_store is not None:
            self.on_store(event)
        return 0x0000

    def start(self) -> StoreSCP:
        ae = AE(ae_title=self.ae_title)
        for cx in AllStoragePresentationContexts:
            ae.add_supported_context(cx.abstract_syntax or "")
        for uid in EXTRA_STORAGE:
            ae.add_supported_context(uid)
        ae.add_supported_context(Verification)
        self.server = ae.start_server(
            ("127.0.0.1", self.port), block=False, evt_handlers=[(evt.EVT_C_STORE, self._store)]
        )
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server = None

    def __enter__(self) -> StoreSCP:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# --- helpers for the QR tests -------------------------------------------------------------

def remote_node(fake: FakeRemote, **kw: Any) -> Any:
    from nodes.models import RemoteNode

    values = {"name": f"pacs-{fake.port}", "ae_title": fake.ae_title, "host": "127.0.0.1",
              "port": fake.port, "calling_ae_title": "DPQUERY", "dimse_timeout": 10,
              "network_timeout": 10, "acse_timeout": 5, "connect_timeout": 3, **kw}
    return RemoteNode.objects.create(**values)


def store_node(scp: StoreSCP | None = None, ae_title: str = "DPSTORE", port: int = 0) -> Any:
    from nodes.models import StoreNode

    return StoreNode.objects.create(
        name=f"store-{ae_title}-{port or (scp.port if scp else 0)}",
        ae_title=scp.ae_title if scp else ae_title, port=scp.port if scp else port or 11112,
        controlled=False, host="127.0.0.1",
    )


def kept(query: Any) -> dict[str, dict[str, list[str] | str]]:
    """{study UID: {series UID: "series" | [kept SOP UIDs]}} of what the query will retrieve."""
    out: dict[str, dict[str, list[str] | str]] = {}
    for study in query.studies.filter(excluded=False):
        rows: dict[str, list[str] | str] = {}
        for s in study.series.filter(excluded=False):
            if s.move_level == "image":
                rows[s.series_instance_uid] = sorted(
                    s.images.filter(excluded=False).values_list("sop_instance_uid", flat=True)
                )
            else:
                rows[s.series_instance_uid] = "series"
        out[study.study_instance_uid] = rows
    return out


def reasons(query: Any) -> dict[str, str]:
    """{UID: reason} of every excluded study and series."""
    out = {s.study_instance_uid: s.reason for s in query.studies.filter(excluded=True)}
    for study in query.studies.all():
        for s in study.series.filter(excluded=True):
            out[s.series_instance_uid] = s.reason
    return out
