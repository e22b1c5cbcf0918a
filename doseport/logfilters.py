"""Filters for the log handlers configured in doseport.settings.LOGGING."""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable

# pynetdicom logs a peer it cannot reach as two ERROR lines per attempt. lib.dicom turns
# the same failure into one result with the reason ("connection refused by host:port ..."),
# which its caller shows and logs; a node that is down would otherwise fill the log at
# every health check.
UNREACHABLE = (
    "Association request failed: unable to connect to remote",
    "TCP Initialisation Error",
)


class UnreachablePeer(logging.Filter):
    """Drop pynetdicom's "cannot connect" errors, or show them as DEBUG when the root
    logger is at DEBUG (DOSEPORT_LOG_LEVEL=DEBUG)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith("pynetdicom") or record.levelno < logging.ERROR:
            return True
        if not record.getMessage().startswith(UNREACHABLE):
            return True
        if logging.getLogger().isEnabledFor(logging.DEBUG):
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
            return True
        return False


# C0 and C1 control characters, DEL and the Unicode line/paragraph separators: anything a
# log reader or terminal could take as the end of a line or a command.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def escape_control(text: str) -> str:
    """`text` with control characters written as escapes (\\n, \\r, \\x1b, \\u2028)."""
    if _CONTROL.search(text) is None:
        return text
    return _CONTROL.sub(lambda m: _NAMED.get(m.group()) or _escape_one(m.group()), text)


def _escape_one(char: str) -> str:
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


class OneLineFormatter(logging.Formatter):
    """One log line per message: control characters in the message, including values from
    peers (AE titles, file names, DICOM text), are escaped, so a forged newline cannot
    start a fake log line. A traceback still follows on its own lines."""

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 (logging's name)
        message = record.message
        record.message = escape_control(message)
        try:
            return super().formatMessage(record)
        finally:
            record.message = message


class CollapseRepeats(logging.Filter):
    """Log an identical warning (same logger, level and text) once per `window_s`.

    Repeats inside the window are counted, not logged; when the window ends, the next
    record through the filter first logs "... repeated N more times in the last W s".
    One instance is shared by all handlers (LOGGING builds each named filter once); the
    decision is kept on the record so every handler makes the same one.
    """

    MAX_KEYS = 500

    def __init__(self, window_s: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.window_s = window_s
        self.clock = clock
        self.seen: dict[tuple[str, int, str], list[float]] = {}  # key -> [first at, repeats]
        self.next_due = float("inf")  # when the oldest window ends
        self.lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        decided = getattr(record, "doseport_collapse", None)
        if decided is not None and decided[0] == id(self):
            return bool(decided[1])
        with self.lock:
            now = self.clock()
            due = self._expired(now) if now >= self.next_due else []
            keep = self._decide(record, now)
        record.doseport_collapse = (id(self), keep)
        for summary in due:
            logging.getLogger(summary.name).handle(summary)
        return keep

    def _decide(self, record: logging.LogRecord, now: float) -> bool:
        if record.levelno < logging.WARNING:
            return True
        key = (record.name, record.levelno, record.getMessage())
        entry = self.seen.get(key)
        if entry is None:
            if len(self.seen) < self.MAX_KEYS:
                self.seen[key] = [now, 0]
                self.next_due = min(self.next_due, now + self.window_s)
            return True
        entry[1] += 1
        return False

    def _expired(self, now: float) -> list[logging.LogRecord]:
        """Forget keys whose window has ended; summary records for those that repeated."""
        summaries = []
        self.next_due = float("inf")
        for key, (first, repeats) in list(self.seen.items()):
            if now - first < self.window_s:
                self.next_due = min(self.next_due, first + self.window_s)
                continue
            del self.seen[key]
            if repeats:
                name, level, message = key
                summary = logging.LogRecord(
                    name, level, __file__, 0, "%s (repeated %d more times within %d s)",
                    (message, int(repeats), round(self.window_s)), None,
                )
                summary.doseport_collapse = (id(self), True)
                summaries.append(summary)
        return summaries
