"""Test settings: the real settings, with a private DOSEPORT_HOME and in-process Huey.

Subprocess tests (store nodes, workers) use `doseport.settings` with the env built by the
`process_env` fixture, so they reach the same test database and the real queue backend
(SQLite, or Redis when REDIS_URL is set).
"""

import os
import tempfile

os.environ.setdefault("DOSEPORT_HOME", tempfile.mkdtemp(prefix="doseport-test-"))
# Unique per test run so parallel runs on one Redis never share a queue; children inherit it.
os.environ.setdefault("DOSEPORT_HUEY_NAME", f"doseport-test-{os.getpid()}")

# What `doseport` does at the start of each command (doseport/cli.py): private umask (so
# the test database is 0600 too and child commands find nothing to tighten), the data folder
# and its keys, which the settings only read.
from lib.env import home_dir  # noqa: E402
from lib.private import PRIVATE_UMASK, prepare_home  # noqa: E402

os.umask(PRIVATE_UMASK)
prepare_home(home_dir())

from doseport.settings import *  # noqa: E402,F403
from doseport.settings import DATABASES, HOME, HUEY  # noqa: E402

# Tasks run inline in tests; a test that needs a real worker process sets
# `huey.immediate = False` (huey.contrib.djhuey.HUEY) and spawns `doseport worker`.
HUEY = {**HUEY, "immediate": True}
if str(DATABASES["default"]["ENGINE"]).endswith("sqlite3"):
    # A file, not :memory:, so that child processes can open the test database.
    DATABASES["default"]["TEST"] = {"NAME": str(HOME / "test.sqlite3")}
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
