"""Child processes restarted with backoff when they die.

`doseport run` keeps its fixed children (web, worker, stores) running with Supervisor;
`doseport stores` (store/supervisor.py) uses the same Child bookkeeping for one child per
store node, adding its own hooks for what the database should say.
"""

from __future__ import annotations

import ctypes
import logging
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from types import FrameType

logger = logging.getLogger(__name__)

FIRST_BACKOFF_S = 0.5
MAX_BACKOFF_S = 30.0
# Running this long resets the failure count, so a rare crash restarts at once.
STABLE_AFTER_S = 60.0
STOP_GRACE_S = 10.0
PR_SET_PDEATHSIG = 1


def doseport_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "doseport", *args]


def die_with_parent() -> None:
    """Linux: the child gets SIGTERM if its parent dies, so no orphan holds a port."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:
        pass


@dataclass(frozen=True)
class Exit:
    """A child that was found dead, and when it will be started again."""

    code: int
    restart_in_s: float

    @property
    def reason(self) -> str:
        if self.code < 0:
            try:
                return f"killed by signal {signal.Signals(-self.code).name}"
            except ValueError:
                return f"killed by signal {-self.code}"
        return f"exited with code {self.code}"


@dataclass(eq=False)
class Child:
    """One child process and its restart bookkeeping.

    Subclasses override on_exit() and on_start() to record what happened elsewhere.
    """

    name: str
    argv: list[str]
    preexec: Callable[[], None] | None = None
    pass_fds: tuple[int, ...] = ()  # inherited file descriptors (a shared listening socket)
    proc: subprocess.Popen[bytes] | None = None
    failures: int = 0
    next_start: float = 0.0
    started_at: float = 0.0

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> None:
        self.proc = subprocess.Popen(self.argv, preexec_fn=self.preexec, pass_fds=self.pass_fds)
        self.started_at = time.monotonic()
        logger.info("%s: started (pid %d)", self.name, self.proc.pid)

    def backoff(self) -> float:
        if time.monotonic() - self.started_at > STABLE_AFTER_S:
            self.failures = 0
        self.failures += 1
        return min(MAX_BACKOFF_S, FIRST_BACKOFF_S * 2 ** (self.failures - 1))

    def tend(self, now: float) -> bool:
        """One look: note a death or start the child when due. True when it did either."""
        if self.proc is not None:
            code = self.proc.poll()
            if code is None:
                return False
            ended = Exit(code, self.backoff())
            # Recorded before forgetting the process: if on_exit() fails, the next look retries.
            self.on_exit(ended)
            self.proc = None
            self.next_start = now + ended.restart_in_s
            return True
        if now < self.next_start:
            return False
        self.on_start()
        self.start()
        return True

    def on_exit(self, ended: Exit) -> None:
        logger.warning("%s %s; restarting in %.1f s", self.name, ended.reason,
                       ended.restart_in_s)

    def on_start(self) -> None:
        """Called just before each start."""

    def stop(self, grace_s: float = STOP_GRACE_S) -> None:
        stop_children([self], grace_s)


def stop_children(children: Iterable[Child], grace_s: float = STOP_GRACE_S) -> None:
    """SIGTERM every running child at once, then wait; kill those still running after grace_s."""
    children = list(children)
    running = [c for c in children if c.alive()]
    for child in running:
        assert child.proc is not None
        child.proc.terminate()
    deadline = time.monotonic() + grace_s
    for child in running:
        assert child.proc is not None
        try:
            child.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            logger.warning("%s did not stop in %.0f s; killing it", child.name, grace_s)
            child.proc.kill()
            child.proc.wait(timeout=5)
    for child in children:
        child.proc = None


class Supervisor:
    """Keep a fixed set of children running until SIGTERM/SIGINT."""

    def __init__(self, children: list[Child]) -> None:
        self.children = children
        self.stopping = False

    def request_stop(self, signum: int = 0, frame: FrameType | None = None) -> None:
        self.stopping = True

    def run_once(self) -> bool:
        """Start or restart children that need it; True when something was done."""
        now = time.monotonic()
        acted = False
        for child in self.children:
            acted = child.tend(now) or acted
        return acted

    def run(self, interval_s: float = 0.5) -> None:
        signal.signal(signal.SIGTERM, self.request_stop)
        signal.signal(signal.SIGINT, self.request_stop)
        while not self.stopping:
            self.run_once()
            time.sleep(interval_s)
        self.stop_all()

    def stop_all(self, grace_s: float = STOP_GRACE_S) -> None:
        stop_children(self.children, grace_s)
        logger.info("all processes stopped")
