"""The log: one line per message, a rotated file in DOSEPORT_HOME/logs, repeats collapsed."""

from __future__ import annotations

import io
import logging
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

from django.conf import settings

from doseport.logfiles import SharedRotatingFileHandler
from doseport.logfilters import CollapseRepeats, OneLineFormatter, escape_control
from store.handlers import AssocInfo, handle_closed

FORGED = "MODALITY\n2026-01-01 00:00:00,000 INFO store.handlers: node 1: all fine"


def configured(kind: type[logging.Handler]) -> logging.Handler:
    found = [h for h in logging.getLogger().handlers if type(h) is kind]
    assert len(found) == 1, logging.getLogger().handlers
    return found[0]


def close_association_from(calling_aet: str) -> None:
    """The store node's log line for an association that ended, through its own handler."""
    assoc = object()
    info = AssocInfo(calling_aet=calling_aet, peer="127.0.0.1:4000", started=time.monotonic())
    ctx = SimpleNamespace(lock=threading.Lock(), assocs={id(assoc): info}, node_id=1,
                          counters=SimpleNamespace(associations_open=1))
    handle_closed(cast(Any, SimpleNamespace(assoc=assoc)), cast(Any, ctx))


def test_a_forged_newline_in_a_calling_ae_title_stays_on_one_line() -> None:
    console = configured(logging.StreamHandler)
    assert isinstance(console, logging.StreamHandler)
    log_file = Path(settings.LOG_FILE)
    start = log_file.stat().st_size if log_file.exists() else 0
    out = io.StringIO()
    previous = console.setStream(out)
    try:
        close_association_from(FORGED)
    finally:
        console.setStream(previous)
    written = log_file.read_text(encoding="utf-8")[start:]
    for text in (out.getvalue(), written):
        lines = [line for line in text.splitlines() if "association from" in line]
        assert len(lines) == 1, text
        assert "MODALITY\\n2026-01-01" in lines[0]
        assert not any(line.startswith("2026-01-01 00:00:00,000") for line in text.splitlines())


def test_control_characters_are_escaped() -> None:
    assert escape_control("a\rb\tc\x1b[31m\x00\u2028\x85") == "a\\rb\\tc\\x1b[31m\\x00\\u2028\\x85"
    assert escape_control("CT\\PRIMARY Héad") == "CT\\PRIMARY Héad"


def test_the_formatter_leaves_the_record_and_tracebacks_alone() -> None:
    formatter = OneLineFormatter("%(message)s")
    try:
        raise ValueError("boom")
    except ValueError:
        import sys

        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "peer %s", ("A\nB",),
                                   sys.exc_info())
    text = formatter.format(record)
    assert text.splitlines()[0] == "peer A\\nB"
    assert "Traceback" in text and "ValueError: boom" in text
    assert record.getMessage() == "peer A\nB"


def test_the_file_log_lives_in_the_data_folder_and_rotates_by_size() -> None:
    handler = configured(SharedRotatingFileHandler)
    assert isinstance(handler, SharedRotatingFileHandler)
    assert Path(handler.baseFilename) == Path(settings.HOME) / "logs" / "doseport.log"
    assert handler.maxBytes == settings.LOG_MAX_BYTES
    assert handler.backupCount == settings.LOG_BACKUPS
    assert isinstance(handler.formatter, OneLineFormatter)
    assert any(isinstance(f, CollapseRepeats) for f in handler.filters)


def file_logger(handler: logging.Handler, name: str) -> logging.Logger:
    logger = logging.getLogger(name)
    logger.propagate = False
    logger.handlers = [handler]
    logger.setLevel(logging.INFO)
    return logger


def test_it_rotates_and_keeps_the_configured_number_of_files(tmp_path: Path) -> None:
    path = tmp_path / "logs" / "doseport.log"
    handler = SharedRotatingFileHandler(str(path), maxBytes=300, backupCount=2)
    logger = file_logger(handler, "test.rotation")
    try:
        for i in range(60):
            logger.info("line %03d %s", i, "x" * 40)
    finally:
        handler.close()
    names = sorted(p.name for p in path.parent.iterdir())
    assert names == ["doseport.log", "doseport.log.1", "doseport.log.2", "doseport.log.lock"]
    assert all(p.stat().st_size <= 300 + 60 for p in path.parent.glob("doseport.log*"))
    assert "line 059" in path.read_text()
    assert (path.stat().st_mode & 0o777) == 0o600
    assert (path.parent.stat().st_mode & 0o777) == 0o700


def test_two_writers_follow_each_others_rotation(tmp_path: Path) -> None:
    """Two processes' handlers on one file: the second writes to the new file after the
    first rotated, rather than on into the renamed one."""
    path = tmp_path / "doseport.log"
    one = SharedRotatingFileHandler(str(path), maxBytes=200, backupCount=3)
    two = SharedRotatingFileHandler(str(path), maxBytes=200, backupCount=3)
    first, second = file_logger(one, "test.one"), file_logger(two, "test.two")
    try:
        second.info("before")
        for i in range(6):
            first.info("filler %d %s", i, "y" * 40)
        second.info("after the rotation")
    finally:
        one.close()
        two.close()
    assert "after the rotation" in path.read_text()
    backups = "".join(p.read_text() for p in tmp_path.glob("doseport.log.[0-9]"))
    assert "before" in backups and "after the rotation" not in backups


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def collapsing(clock: Clock) -> tuple[logging.Logger, io.StringIO]:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(OneLineFormatter("%(levelname)s %(message)s"))
    handler.addFilter(CollapseRepeats(window_s=60, clock=clock))
    return file_logger(handler, "test.collapse"), out


def test_identical_warnings_are_collapsed_with_a_count() -> None:
    clock = Clock()
    logger, out = collapsing(clock)
    for _ in range(10):
        logger.warning("node %s: cannot write the spool", 3)
        clock.now += 1
    logger.warning("node %s: cannot write the spool", 4)  # different text: logged
    logger.info("same info")
    logger.info("same info")  # below WARNING: never collapsed
    assert out.getvalue().splitlines() == [
        "WARNING node 3: cannot write the spool",
        "WARNING node 4: cannot write the spool",
        "INFO same info",
        "INFO same info",
    ]
    clock.now += 60
    logger.warning("node %s: cannot write the spool", 3)
    assert out.getvalue().splitlines()[4:] == [
        "WARNING node 3: cannot write the spool (repeated 9 more times within 60 s)",
        "WARNING node 3: cannot write the spool",
    ]


def test_one_filter_shared_by_two_handlers_decides_once_per_record() -> None:
    clock = Clock()
    shared = CollapseRepeats(window_s=60, clock=clock)
    outs = [io.StringIO(), io.StringIO()]
    handlers = [logging.StreamHandler(o) for o in outs]
    for handler in handlers:
        handler.addFilter(shared)
    logger = file_logger(handlers[0], "test.shared")
    logger.addHandler(handlers[1])
    logger.warning("disk full")
    logger.warning("disk full")
    assert [o.getvalue() for o in outs] == ["disk full\n", "disk full\n"]
