"""Filters for the log handlers configured in doseport.settings.LOGGING."""

from __future__ import annotations

import logging

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
