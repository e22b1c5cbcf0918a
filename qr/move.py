"""Run a Move: one association, C-MOVE (or C-GET) per series or per instance, one retry."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from pydicom import Dataset

from lib import dicom
from qr.arrivals import CANCELLED, NOT_ATTEMPTED, link_arrivals
from qr.getstore import GetReceiver
from qr.models import Move, QueryImage, QuerySeries, Status
from qr.session import CancelCheck, identifier

logger = logging.getLogger(__name__)


@dataclass
class Request:
    series: QuerySeries
    ds: Dataset
    what: str


@dataclass
class SeriesPlan:
    series: QuerySeries
    requests: list[Request] = field(default_factory=list)


class MoveStopped(Exception):
    def __init__(self, status: str, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def plan(move: Move) -> tuple[list[SeriesPlan], int]:
    """Requests per kept series, and how many known instances they should bring."""
    plans: list[SeriesPlan] = []
    expected = 0
    rows = QuerySeries.objects.filter(
        study__query=move.query, study__excluded=False, excluded=False
    ).select_related("study").order_by("study__id", "series_number", "id")
    for row in rows:
        images = list(row.images.filter(excluded=False))
        expected += len(images)
        study_uid = row.study.study_instance_uid
        item = SeriesPlan(row)
        if row.move_level == QuerySeries.IMAGE:
            for image in images:
                item.requests.append(Request(row, _image_key(study_uid, row, image),
                                             f"instance {image.sop_instance_uid}"))
        else:
            ds = identifier("SERIES", StudyInstanceUID=study_uid,
                            SeriesInstanceUID=row.series_instance_uid)
            item.requests.append(Request(row, ds, f"series {row.series_instance_uid}"))
        if item.requests:
            plans.append(item)
    return plans, expected


def _image_key(study_uid: str, row: QuerySeries, image: QueryImage) -> Dataset:
    return identifier("IMAGE", StudyInstanceUID=study_uid,
                      SeriesInstanceUID=row.series_instance_uid,
                      SOPInstanceUID=image.sop_instance_uid)


class Mover:
    """Holds the move's lib.dicom session and counters; writes progress at most every 0.25 s."""

    def __init__(self, move: Move) -> None:
        self.move = move
        remote = move.query.remote
        if remote is None:
            raise MoveStopped(Status.FAILED, "the remote node was deleted")
        self.remote = remote
        self.peer = remote.peer()
        self.cancel = CancelCheck(move)
        self.base = dicom.MoveProgress()
        self.last_write = 0.0
        self.receiver = GetReceiver(move) if move.method == "get" else None
        self.lost = ""  # why the association was last lost, if it was
        if self.receiver is not None:
            self.session = dicom.connect(
                self.peer, [dicom.STUDY_ROOT_GET], on_store=self.receiver.handle,
                storage_classes=self.receiver.storage_classes(),
            )
        else:
            self.session = dicom.connect(self.peer, [dicom.STUDY_ROOT_MOVE])

    def open(self) -> None:
        failure = self.session.open()
        if failure is not None:
            raise MoveStopped(Status.FAILED, f"cannot associate with the remote: {failure.reason}")

    def close(self) -> None:
        self.session.close()

    def send(self, req: Request) -> dicom.MoveResult:
        self.open()
        self.move.requests += 1
        if self.receiver is not None:
            result = self.session.get(req.ds, self.progress, self.cancel)
            self.receiver.import_received()
        else:
            result = self.session.move(req.ds, self.move.destination_aet, self.progress,
                                       self.cancel)
        self.lost = result.reason if result.association_lost else ""
        self.progress(dicom.MoveProgress(), force=True)
        return result

    def count(self, item: SeriesPlan, result: dicom.MoveResult) -> None:
        """Count a request's final attempt (a retry replaces the attempt before it)."""
        done = result.progress
        self.base.completed += done.completed
        self.base.failed += done.failed
        self.base.warning += done.warning
        item.series.sent += done.completed + done.warning
        self.progress(dicom.MoveProgress(), force=True)

    def progress(self, now: dicom.MoveProgress, force: bool = False) -> None:
        move = self.move
        move.remaining = now.remaining
        move.completed = self.base.completed + now.completed
        move.failed = self.base.failed + now.failed
        move.warning = self.base.warning + now.warning
        if force or time.monotonic() - self.last_write > 0.25:
            self.last_write = time.monotonic()
            Move.objects.filter(pk=move.pk).update(
                remaining=move.remaining, completed=move.completed, failed=move.failed,
                warning=move.warning, requests=move.requests,
            )


def _destination_unknown(mover: Mover) -> str:
    store = mover.move.store
    where = f", host of this machine, port {store.port}" if store is not None else ""
    return (
        f"The remote {mover.remote.ae_title} does not know our move destination "
        f"{mover.move.destination_aet!r}: add AE title {mover.move.destination_aet}{where} "
        "to its list of DICOM nodes, then retrieve again."
    )


def _one_series(mover: Mover, item: SeriesPlan) -> str:
    """Move one series; returns its move status. Raises MoveStopped to end the whole move."""
    outcome = "complete"
    item.series.sent = 0
    for req in item.requests:
        if mover.cancel():  # a series cancelled part way (instance requests) was attempted
            stopped = SeriesStopped if item.series.sent else MoveStopped
            raise stopped(Status.CANCELLED, "cancelled by the user")
        result = mover.send(req)
        if not result.ok and not result.cancelled and not result.destination_unknown:
            mover.move.add_error(f"C-MOVE {req.what}: {result.reason}; retrying once")
            mover.close()
            try:
                retry = mover.send(req)
            except MoveStopped as stop:
                mover.count(item, result)  # what the lost attempt sent did go
                item.series.move_error = stop.reason[:500]
                raise SeriesStopped(stop.status, stop.reason) from stop
            result = retry
        mover.count(item, result)
        if result.cancelled:
            raise SeriesStopped(Status.CANCELLED, "cancelled by the user")
        if result.destination_unknown:
            mover.move.add_error(f"C-MOVE {req.what}: {result.reason}")
            raise MoveStopped(Status.FAILED, _destination_unknown(mover))
        if not result.ok:
            mover.move.add_error(f"C-MOVE {req.what}: {result.reason}")
            item.series.move_error = result.reason[:500]
            mover.close()
            return "failed"
        if result.status != 0x0000:
            mover.move.add_error(f"C-MOVE {req.what}: {result.reason}")
            outcome = "warning"
    return outcome


class SeriesStopped(MoveStopped):
    """The whole move stops inside a series: that series failed, the rest not attempted."""


def _stop_message(mover: Mover, stop: MoveStopped, skipped: int) -> str:
    """How far a stopped retrieve got, in the words an administrator acts on."""
    move = mover.move
    rest = f"; {skipped} series not attempted" if skipped else ""
    got = f"{move.completed} of {move.expected} objects"
    if stop.status == Status.CANCELLED:
        return f"cancelled by the user after {got}{rest}"
    if mover.lost:
        return f"connection to {mover.remote.ae_title} lost after {got}{rest}"
    if skipped:
        return f"{stop.reason} ({got} sent{rest})"
    return stop.reason


def _mark_not_attempted(plans: list[SeriesPlan], reason: str) -> int:
    rows = [item.series for item in plans]
    for row in rows:
        row.move_status, row.move_error, row.sent = NOT_ATTEMPTED, reason[:500], 0
    QuerySeries.objects.bulk_update(rows, ["move_status", "move_error", "sent"])
    return len(rows)


def run_move(move: Move) -> str:
    """Run `move` if this call claims it (a second delivery returns its status untouched)."""
    if not move.claim():
        return move.status
    try:
        mover = Mover(move)
    except MoveStopped as stop:
        move.add_error(stop.reason)
        move.finish(stop.status, stop.reason)
        return move.status
    plans, expected = plan(move)
    QuerySeries.objects.filter(pk__in=[p.series.pk for p in plans]).update(
        move_status="", move_error="", sent=0
    )
    Move.objects.filter(pk=move.pk).update(expected=expected)
    move.expected = expected
    status: str = Status.COMPLETE
    message = ""
    done = 0
    try:
        for n, item in enumerate(plans, 1):
            move.set_message(f"retrieving series {n} of {len(plans)}")
            try:
                item.series.move_status = _one_series(mover, item)
            except SeriesStopped as stop:
                cancelled = stop.status == Status.CANCELLED
                item.series.move_status = CANCELLED if cancelled else "failed"
                item.series.move_error = stop.reason[:500]
                move.series_failed += 0 if cancelled else 1
                done = n
                raise
            except MoveStopped:
                done = n - 1
                raise
            finally:
                item.series.save(update_fields=["move_status", "move_error", "sent"])
            done = n
            if item.series.move_status == "failed":
                move.series_failed += 1
    except MoveStopped as stop:
        status = stop.status
        if stop.status == Status.FAILED:
            move.add_error(stop.reason)
        skipped = _mark_not_attempted(plans[done:], stop.reason)
        message = _stop_message(mover, stop, skipped)
    except Exception as exc:  # never leave a move "running": record why it stopped
        logger.exception("move %s stopped by an unexpected error", move.pk)
        status, message = Status.FAILED, "stopped by an unexpected error"
        move.add_error(f"unexpected error: {type(exc).__name__}: {exc}")
        _mark_not_attempted(plans[done + 1:], message)
    finally:
        mover.close()
    mover.progress(dicom.MoveProgress(), force=True)
    Move.objects.filter(pk=move.pk).update(series_failed=move.series_failed)
    if status == Status.COMPLETE:
        partial = move.series_failed or move.failed or move.warning or move.errors
        status = Status.PARTIAL if partial else Status.COMPLETE
        message = (f"{len(plans)} series, {move.completed} of {move.expected} objects sent, "
                   f"{move.failed} failed")
    link_arrivals(move, stopped=True)
    move.finish(status, message)
    logger.info("move %s of query %s: %s", move.pk, move.query_id, status)
    return move.status
