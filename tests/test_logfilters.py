"""A node that is down is reported once, in our words, not as pynetdicom's ERROR lines."""

from __future__ import annotations

import io
import logging
from typing import Any

from doseport.logfilters import UnreachablePeer
from lib.dicom import Peer, echo
from tests.conftest import free_port


def console() -> logging.StreamHandler[Any]:
    handlers = [h for h in logging.getLogger().handlers
                if any(isinstance(f, UnreachablePeer) for f in h.filters)]
    assert len(handlers) == 2, "LOGGING's console and file handlers should carry the filter"
    handlers = [h for h in handlers if not isinstance(h, logging.FileHandler)]
    handler = handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    return handler


def test_an_echo_to_a_closed_port_logs_no_pynetdicom_errors_through_the_console() -> None:
    handler, out = console(), io.StringIO()
    previous = handler.setStream(out)
    try:
        result = echo(Peer("PACS", "127.0.0.1", free_port(), "DOSEPORT", connect_timeout=2))
        logging.getLogger("pynetdicom.assoc").error("Association Aborted")  # a real error
    finally:
        handler.setStream(previous)
    assert not result.ok and "connection refused" in result.reason
    text = out.getvalue()
    assert "TCP Initialisation Error" not in text and "unable to connect" not in text
    assert "Association Aborted" in text  # other pynetdicom errors still get through


def test_at_debug_the_lines_are_kept_as_debug() -> None:
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.DEBUG)
    try:
        record = logging.LogRecord("pynetdicom.transport", logging.ERROR, __file__, 1,
                                   "TCP Initialisation Error: %s", ("refused",), None)
        assert UnreachablePeer().filter(record) and record.levelname == "DEBUG"
    finally:
        root.setLevel(level)
    record = logging.LogRecord("pynetdicom.transport", logging.ERROR, __file__, 1,
                               "TCP Initialisation Error: %s", ("refused",), None)
    assert not UnreachablePeer().filter(record)
