"""Child processes restarted when they die, with supervisord's `startsecs` semantics.

A child that became ready and later dies is started again at once, however often it
dies; only a child that dies before it is ready backs off (0.5 s doubling to 30 s), and
becoming ready forgets its failed starts. "Ready" is what the child says (`notify_ready`:
a store node once it listens) or, for children that cannot say, `START_SECS` of running.

`doseport run` keeps its fixed children (web, worker, stores) running with Supervisor;
`doseport stores` (store/supervisor.py) uses the same Child bookkeeping for one child per
store node, adding its own hooks for what the database should say.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta
from types import FrameType
from typing import Any

from huey.consumer import Consumer, Scheduler, Worker

logger = logging.getLogger(__name__)

FIRST_BACKOFF_S = 0.5
MAX_BACKOFF_S = 30.0
# A child that cannot say when it is ready counts as started after this long (supervisord's
# default `startsecs`).
START_SECS = 1.0
STOP_GRACE_S = 10.0
# `doseport worker` at SIGTERM: tasks in hand may finish this long, then go back on the queue.
TASK_GRACE_S = 3.0
PR_SET_PDEATHSIG = 1
# The write end of a pipe a child closes after writing one byte once it is ready.
READY_FD_ENV = "DOSEPORT_READY_FD"


def doseport_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "doseport", *args]


def notify_ready() -> None:
    """In a child started with `notify_ready`: tell the parent it is ready (once)."""
    fd_text = os.environ.pop(READY_FD_ENV, "")  # not for our own children
    if not fd_text.isdigit():
        return
    fd = int(fd_text)
    try:
        os.write(fd, b"1")
    except OSError:
        pass  # the parent is gone or never asked: nothing to tell
    finally:
        try:
            os.close(fd)
        except OSError:
            pass


def die_with_parent() -> None:
    """Linux: the child gets SIGTERM if its parent dies, so no orphan holds a port."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:
        pass


@dataclass(frozen=True)
class Exit:
    """A child that was found dead, and when it will be started again.

    `was_ready`: it had become ready (restarted at once); otherwise `failures` is the
    number of failed starts in a row, this one included."""

    code: int
    restart_in_s: float
    was_ready: bool = True
    failures: int = 0

    @property
    def plan(self) -> str:
        """What happens next, for logs and the node's status."""
        if self.was_ready:
            return "restarting at once"
        return (f"it never became ready ({self.failures} failed start"
                f"{'s' if self.failures != 1 else ''} in a row); "
                f"backing off, next start in {self.restart_in_s:.1f} s")

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
    # The child calls notify_ready() when ready; otherwise START_SECS of running counts.
    notify_ready: bool = False
    proc: subprocess.Popen[bytes] | None = None
    failures: int = 0  # failed starts in a row (died before ready)
    next_start: float = 0.0
    started_at: float = 0.0
    ready: bool = False  # the running process has become ready
    ready_fd: int | None = None  # read end of the readiness pipe

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> None:
        env: dict[str, str] | None = None
        pass_fds = self.pass_fds
        write_fd = None
        if self.notify_ready:
            self.close_ready_fd()
            self.ready_fd, write_fd = os.pipe()
            os.set_blocking(self.ready_fd, False)
            env = {**os.environ, READY_FD_ENV: str(write_fd)}
            pass_fds = (*pass_fds, write_fd)
        try:
            self.proc = subprocess.Popen(self.argv, preexec_fn=self.preexec, pass_fds=pass_fds,
                                         env=env)
        finally:
            if write_fd is not None:
                os.close(write_fd)  # the child holds it now; EOF tells us it is gone
        self.started_at = time.monotonic()
        self.ready = False
        logger.info("%s: started (pid %d)", self.name, self.proc.pid)

    def close_ready_fd(self) -> None:
        if self.ready_fd is not None:
            os.close(self.ready_fd)
            self.ready_fd = None

    def check_ready(self, now: float, alive: bool) -> bool:
        """Has the process become ready? Becoming ready forgets failed starts. A dead
        process may have said so before it died; one that could not say must have been
        seen alive after START_SECS."""
        if self.ready or self.proc is None:
            return self.ready
        if self.notify_ready:
            try:
                said = self.ready_fd is not None and os.read(self.ready_fd, 1) == b"1"
            except BlockingIOError:
                said = False
        else:
            said = alive and now - self.started_at >= START_SECS
        if said:
            self.ready, self.failures = True, 0
            self.close_ready_fd()
            self.on_ready()
        return self.ready

    def backoff(self) -> float:
        """Delay before the next start after a start that failed (counted here)."""
        self.failures += 1
        return min(MAX_BACKOFF_S, FIRST_BACKOFF_S * 2 ** (self.failures - 1))

    def tend(self, now: float) -> bool:
        """One look: note readiness or a death, or start the child when due. True when
        it noted a death or started the child."""
        if self.proc is not None:
            code = self.proc.poll()
            was_ready = self.check_ready(now, alive=code is None)
            if code is None:
                return False
            if was_ready:
                ended = Exit(code, 0.0)
            else:
                ended = Exit(code, self.backoff(), was_ready=False, failures=self.failures)
            # Recorded before forgetting the process: if on_exit() fails, the next look retries.
            self.on_exit(ended)
            self.proc = None
            self.ready = False
            self.close_ready_fd()
            self.next_start = now + ended.restart_in_s
            return True
        if now < self.next_start:
            return False
        self.on_start()
        self.start()
        return True

    def on_exit(self, ended: Exit) -> None:
        logger.warning("%s %s; %s", self.name, ended.reason, ended.plan)

    def on_ready(self) -> None:
        """Called once per start, when the process has become ready."""
        assert self.proc is not None
        logger.info("%s: ready (pid %d)", self.name, self.proc.pid)

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
        child.ready = False
        child.close_ready_fd()


class Supervisor:
    """Keep a fixed set of children running until SIGTERM/SIGINT."""

    def __init__(self, children: list[Child]) -> None:
        self.children = children
        self.stopping = False
        self.wake = threading.Event()

    def request_stop(self, signum: int = 0, frame: FrameType | None = None) -> None:
        self.stopping = True
        self.wake.set()

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
        signal.signal(signal.SIGCHLD, lambda signum, frame: self.wake.set())  # restart now
        while not self.stopping:
            self.wake.clear()
            self.run_once()
            self.wake.wait(interval_s)
        self.stop_all()

    def stop_all(self, grace_s: float = STOP_GRACE_S) -> None:
        stop_children(self.children, grace_s)
        logger.info("all processes stopped")


class PromptWorker(Worker):  # type: ignore[misc]
    """A Huey worker thread that knows which task it holds and naps on the stop flag."""

    stop_flag: threading.Event | None = None
    current: Any = None  # the task taken from the queue and not finished yet

    def loop(self, now: Any = None) -> None:
        try:
            task = self.huey.dequeue()
        except Exception:
            logger.exception("cannot read the task queue")
            self.sleep()
            return
        if task is None:
            if not self.huey.storage.blocking:
                self.sleep()
            return
        self.current, self.delay = task, self.default_delay
        try:
            self.huey.execute(task, now)
        except Exception:
            logger.exception("task %s failed outside its own error handling", task.id)
        finally:
            self.current = None

    def sleep(self) -> None:
        self.delay = min(self.delay, self.max_delay)
        if self.stop_flag is not None:
            self.stop_flag.wait(self.delay)  # Huey's time.sleep() would delay a stop 10 s
        else:
            time.sleep(self.delay)
        self.delay *= self.backoff


class OncePerMinuteScheduler(Scheduler):  # type: ignore[misc]
    """Huey's scheduler, except that of several workers on one queue (several servers)
    only the first to get to a minute enqueues that minute's periodic tasks: Huey's own
    would run each periodic task once per worker. The claim is one put-if-empty in the
    queue's storage (Redis, or the SQLite file); the claim of two minutes ago is removed,
    so the claims do not pile up."""

    def enqueue_periodic_tasks(self, now: Any = None) -> None:
        now = now or self.huey._get_timestamp()
        minute = now.replace(second=0, microsecond=0)
        if not self.huey.put_if_empty(f"periodic-claim:{minute:%Y%m%d%H%M}", "1"):
            logger.debug("periodic tasks of %s: another worker enqueued them", minute)
            return
        self.huey.delete(f"periodic-claim:{minute - timedelta(minutes=2):%Y%m%d%H%M}")
        super().enqueue_periodic_tasks(now)


class PromptConsumer(Consumer):  # type: ignore[misc]
    """Huey's consumer with a bounded stop: SIGTERM and SIGINT stop taking tasks, let
    those in hand finish for TASK_GRACE_S, put the unfinished ones back on the queue
    (every task is safe to run again: imports are idempotent by SOP Instance UID) and
    exit. Huey's own SIGTERM drops the tasks in hand; its SIGINT waits without limit.

    `also`: more queues this consumer takes tasks from, each with as many worker threads
    and its own scheduler (periodic tasks, retries): this server's import queue
    (doseport/queue.py)."""

    worker_class = PromptWorker
    scheduler_class = OncePerMinuteScheduler

    def __init__(self, huey: Any, also: Iterable[Any] = (), **options: Any) -> None:
        super().__init__(huey, **options)
        self.extra_schedulers: list[Any] = []
        for other in also:
            scheduler = self.scheduler_class(huey=other, interval=self.scheduler_interval,
                                             periodic=self.periodic)
            self.extra_schedulers.append(
                self._create_process(scheduler, f"Scheduler-{other.name}"))
            for i in range(self.workers):
                worker = self._create_worker(other)
                process = self._create_process(worker, f"Worker-{other.name}-{i + 1}")
                self.worker_threads.append((worker, process))

    def _create_worker(self, huey: Any = None) -> PromptWorker:
        worker: PromptWorker = self.worker_class(
            huey=huey or self.huey, default_delay=self.default_delay,
            max_delay=self.max_delay, backoff=self.backoff)
        worker.stop_flag = self.stop_flag
        return worker

    def start(self) -> None:
        super().start()
        for scheduler in self.extra_schedulers:
            scheduler.start()

    def check_worker_health(self) -> bool:
        """Huey's check replaces a dead worker with one of the first queue: keep each
        worker on its own queue."""
        for i, (worker, thread) in enumerate(self.worker_threads):
            if not self.environment.is_alive(thread):
                logger.warning("worker thread %d (%s) died; restarting it", i + 1,
                               worker.huey.name)
                replacement = self._create_worker(worker.huey)
                thread = self._create_process(replacement, f"Worker-{i + 1}")
                thread.start()
                self.worker_threads[i] = (replacement, thread)
        scheduler: Any = getattr(self, "scheduler")  # noqa: B009 (untyped in Huey)
        if not self.environment.is_alive(scheduler):
            self.scheduler = self._create_process(self._create_scheduler(), "Scheduler")
            self.scheduler.start()
        return True

    def _set_signal_handlers(self) -> None:
        super()._set_signal_handlers()
        signal.signal(signal.SIGTERM, self._request_stop)
        signal.signal(signal.SIGINT, self._request_stop)

    def _request_stop(self, signum: int, frame: FrameType | None) -> None:
        self._received_signal, self._restart, self._graceful = True, False, True
        self.stop_flag.set()  # wakes the loop and napping workers at once

    def stop(self, graceful: bool = False) -> None:
        self.stop_flag.set()
        workers = [worker for worker, _ in self.worker_threads]
        deadline = time.monotonic() + TASK_GRACE_S
        while any(w.current is not None for w in workers) and time.monotonic() < deadline:
            time.sleep(0.05)
        for worker in workers:
            task = worker.current
            if task is None:
                continue
            worker.huey.enqueue(task)
            logger.warning("task %s (%s) unfinished %.0f s after the stop request; put back "
                           "on the queue", task.id, task.name, TASK_GRACE_S)
        logger.info("worker stopped")


def use_prompt_consumer(huey: Any, imports: bool = True) -> None:
    """Make `run_huey` build a PromptConsumer for this process's Huey; with `imports`, it
    also consumes this server's import queue."""
    def create(**options: Any) -> PromptConsumer:
        also = []
        if imports:
            from doseport.queue import imports_huey

            also.append(imports_huey().huey)
        return PromptConsumer(huey, also=also, **options)

    huey.create_consumer = create
