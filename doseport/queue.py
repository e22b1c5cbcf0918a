"""SqliteHuey that opens its file on first use.

Stock SqliteHuey creates DOSEPORT_HOME/huey.sqlite3 when Django loads the apps, which
happens for `doseport --help` and for type checking (django-stubs); the data folder is
only made at the start of a real command (lib/private.py).
"""

from __future__ import annotations

import sqlite3

from huey import SqliteHuey
from huey.storage import SqliteStorage


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
