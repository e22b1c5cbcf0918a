"""Run child processes and restart them when they die (used by `doseport run`)."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field

logger = logging.getLogger(__name__)

MAX_BACKOFF_S = 30.0


@dataclass
class Child:
    name: str
    argv: list[str]
    proc: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    next_start: float = 0.0
    started_at: float = 0.0
    log: list[str] = field(default_factory=list)

    def start(self) -> None:
        self.proc = subprocess.Popen(self.argv, env=os.environ.copy())
        self.started_at = time.monotonic()
        logger.info("started %s (pid %d)", self.name, self.proc.pid)

    def backoff(self) -> float:
        # Stable for a minute resets the count, so a rare crash restarts at once.
        if time.monotonic() - self.started_at > 60:
            self.restarts = 0
        self.restarts += 1
        return min(MAX_BACKOFF_S, 0.5 * 2 ** (self.restarts - 1))


def doseport_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "doseport", *args]


class Supervisor:
    """Keep every child running until stop() is called."""

    def __init__(self, children: list[Child]) -> None:
        self.children = children
        self.stopping = False

    def request_stop(self, signum: int = 0, frame: object = None) -> None:
        self.stopping = True

    def run_once(self) -> bool:
        """Start or restart children that need it; True when something was (re)started."""
        acted = False
        now = time.monotonic()
        for child in self.children:
            if child.proc is None:
                if now >= child.next_start:
                    child.start()
                    acted = True
                continue
            code = child.proc.poll()
            if code is not None:
                delay = child.backoff()
                logger.warning("%s exited with %s; restarting in %.1f s", child.name, code, delay)
                child.proc = None
                child.next_start = now + delay
                acted = True
        return acted

    def run(self) -> None:
        signal.signal(signal.SIGTERM, self.request_stop)
        signal.signal(signal.SIGINT, self.request_stop)
        while not self.stopping:
            self.run_once()
            time.sleep(0.5)
        self.stop_all()

    def stop_all(self, grace_s: float = 10.0) -> None:
        running = [c for c in self.children if c.proc is not None and c.proc.poll() is None]
        for child in running:
            assert child.proc is not None
            child.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        for child in running:
            assert child.proc is not None
            try:
                child.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                logger.warning("%s did not stop in %.0f s; killing it", child.name, grace_s)
                child.proc.kill()
                child.proc.wait(timeout=5)
        logger.info("all processes stopped")
