"""Task queues: the shared Huey queue and one import queue per server.

The shared queue (`huey.contrib.djhuey.HUEY`, named DOSEPORT_HUEY_NAME) carries what any
worker may run: queries, retrieves, echoes, exports, periodic jobs. Received objects wait
in the spool of the server that received them, so their imports go to that server's own
queue, `<DOSEPORT_HUEY_NAME>-imports-<DOSEPORT_SERVER_NAME>`, which only that server's
`doseport worker` consumes (docs/deploy.md). With one server this is simply a second
queue next to the shared one, in the same SQLite file or Redis.

Tasks of the import queue are declared with `server_task` (imports/tasks.py); calling one
queues it on this server's import queue, `.on(server)` on another server's. They follow the
shared queue's `immediate` flag (tests run tasks inline by setting it).

`LazySqliteHuey`: stock SqliteHuey creates DOSEPORT_HOME/huey.sqlite3 when Django loads the
apps, which happens for `doseport --help` and for type checking (django-stubs); the data
folder is only made at the start of a real command (lib/private.py).
"""

from __future__ import annotations

import importlib
import re
import sqlite3
import threading
from collections.abc import Callable
from typing import Any

from huey import Huey, SqliteHuey
from huey.api import TaskWrapper
from huey.storage import SqliteStorage

from lib.env import ConfigError

SERVER_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
# Modules that declare server tasks; imported before an import queue registers them.
# (The per-server queue also echoes store nodes that run on its server: nodes/tasks.py.)
SERVER_TASK_MODULES = ("imports.tasks", "nodes.tasks")


class LazySqliteStorage(SqliteStorage):
    _schema_ready = False

    def initialize_schema(self) -> None:
        """Deferred to the first connection."""

    def _create_connection(self) -> sqlite3.Connection:
        conn: sqlite3.Connection = super()._create_connection()
        if not self._schema_ready:
            for sql in self.ddl:  # "create ... if not exists": harmless when repeated
                conn.execute(sql)
            self._schema_ready = True
        return conn


class LazySqliteHuey(SqliteHuey):
    storage_class = LazySqliteStorage


def parse_server_name(variable: str, raw: str) -> str:
    """A server name as a queue name and `runs_on` value can hold it; ConfigError names
    the variable and the rule."""
    name = raw.strip()
    if not SERVER_NAME_RE.match(name):
        raise ConfigError(
            f"{variable}={raw!r} is not a usable server name: 1 to 64 letters, digits, '.', "
            "'_' or '-', starting with a letter or digit (set it to this machine's short name)"
        )
    return name


def validate_server_name(value: str) -> None:
    """For forms and commands: a Django ValidationError naming the rule."""
    from django.core.exceptions import ValidationError

    if not SERVER_NAME_RE.match(value):
        raise ValidationError(
            f"{value!r} is not a server name: 1 to 64 letters, digits, '.', '_' or '-' "
            "(the DOSEPORT_SERVER_NAME of the server that should run this node)"
        )


def this_server() -> str:
    from django.conf import settings

    return str(settings.SERVER_NAME)


def imports_queue_name(server: str | None = None) -> str:
    from django.conf import settings

    return f"{settings.HUEY['name']}-imports-{server or this_server()}"


class ServerTask:
    """A task of the per-server import queues: registered on each such queue when it is
    first used, so that any process can queue it for any server."""

    declared: dict[str, ServerTask] = {}

    def __init__(self, func: Callable[..., Any], periodic: Any = None,
                 **options: Any) -> None:
        from huey.contrib.djhuey import close_db

        self.func = func
        self.name = func.__name__
        self.periodic = periodic  # a huey crontab: run by each server's own worker
        self.options = options
        self.wrapped = close_db(func)
        self.__doc__ = func.__doc__
        ServerTask.declared[self.name] = self

    def register(self, huey: Huey) -> TaskWrapper:
        if self.periodic is not None:
            wrapper: TaskWrapper = huey.periodic_task(
                self.periodic, name=self.name, **self.options)(self.wrapped)
        else:
            wrapper = huey.task(name=self.name, **self.options)(self.wrapped)
        return wrapper

    def on(self, server: str | None) -> TaskWrapper:
        """This task on `server`'s import queue (None: this server's)."""
        return imports_huey(server).wrappers[self.name]

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.on(None)(*args, **kwargs)

    def call_local(self, *args: Any, **kwargs: Any) -> Any:
        return self.func(*args, **kwargs)


def server_task(periodic: Any = None, **options: Any) -> Callable[[Callable[..., Any]],
                                                                 ServerTask]:
    def decorate(func: Callable[..., Any]) -> ServerTask:
        return ServerTask(func, periodic=periodic, **options)
    return decorate


class ImportsHuey:
    """One server's import queue: a Huey of the shared queue's kind, and its tasks."""

    def __init__(self, huey: Huey, wrappers: dict[str, TaskWrapper]) -> None:
        self.huey = huey
        self.wrappers = wrappers


_queues: dict[str, Huey] = {}
_wrappers: dict[str, dict[str, TaskWrapper]] = {}
_lock = threading.Lock()


def _new_huey(name: str) -> Huey:
    from django.conf import settings
    from huey.contrib.djhuey import HUEY, get_backend

    config: dict[str, Any] = dict(settings.HUEY)
    huey_class = get_backend(str(config.pop("huey_class", "huey.RedisHuey")))
    config.pop("name", None)
    config.pop("consumer", None)
    config.update(config.pop("connection", {}) or {})
    config["immediate"] = HUEY.immediate
    huey: Huey = huey_class(name, **config)
    return huey


def imports_huey(server: str | None = None) -> ImportsHuey:
    """The import queue of `server` (None: this server), created and registered once per
    process; it follows the shared queue's `immediate` flag at each use."""
    from huey.contrib.djhuey import HUEY

    name = imports_queue_name(server)
    with _lock:
        huey = _queues.get(name)
        if huey is None:
            for module in SERVER_TASK_MODULES:
                importlib.import_module(module)
            huey = _new_huey(name)
            _wrappers[name] = {task.name: task.register(huey)
                               for task in ServerTask.declared.values()}
            _queues[name] = huey
    if huey.immediate != HUEY.immediate:
        huey.immediate = HUEY.immediate
    return ImportsHuey(huey, _wrappers[name])


def flush_imports(server: str | None = None) -> None:
    """Empty a server's import queue (tests start from an empty queue)."""
    imports_huey(server).huey.flush()


# Reading the waiting tasks loads them at once (Huey's storage returns a list) and a task
# carries up to 32 paths: the high-water mark stays in the worker's memory (81 -> 107 MB in
# a 30,000-object soak with a backlog of ~15,000 tasks; +16 MB over the 100,000-object soak
# with 5,000 tasks, up to 160,000 paths, read). Beyond these the sweep skips a round.
QUEUED_READ_LIMIT = 1_000  # tasks
QUEUED_PATHS_LIMIT = 10_000  # paths: about 1.5 MB of strings


def queued_import_paths(server: str | None = None, limit: int = QUEUED_READ_LIMIT,
                        paths_limit: int = QUEUED_PATHS_LIMIT) -> set[str] | None:
    """Paths of the import tasks waiting on a server's import queue, or None when there are
    more than `limit` tasks or `paths_limit` paths (then reading them costs more than the
    duplicates it saves)."""
    huey = imports_huey(server).huey
    if huey.immediate:
        return set()
    if huey.pending_count() > limit:
        return None
    paths: set[str] = set()
    for task in huey.pending(limit=limit):
        args = task.args or ()
        if not args:
            continue
        first = args[0]
        if isinstance(first, str):
            paths.add(first)
        elif isinstance(first, (list, tuple)):
            paths.update(p for p in first if isinstance(p, str))
        if len(paths) > paths_limit:
            return None
    return paths
