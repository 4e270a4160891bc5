"""A thin, portable SQL layer: SQLite (default) or PostgreSQL, one interface.

SQL is written once with ``?`` placeholders and portable types (``TEXT``,
``BIGINT``, ``DOUBLE PRECISION``, ``INTEGER``) and ``INSERT ... ON CONFLICT``
(SQLite >= 3.24 and PostgreSQL both have it); the PostgreSQL driver gets the
placeholders rewritten to ``%s``. The schema is versioned: a ``schema_version``
table records the migrations applied, and :func:`migrate` applies the missing
ones in order, each in its own transaction.

PostgreSQL needs the ``psycopg`` package (``pip install 'psycopg[binary]'``).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from haulwatch.errors import HaulwatchError


class StoreError(HaulwatchError, RuntimeError):
    """The store cannot be opened or migrated."""


class Database:
    """One connection guarded by a lock, with dialect-neutral helpers.

    Parameters
    ----------
    url : str
        ``sqlite:///path.db``, ``sqlite:///:memory:`` or ``postgresql://...``.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self._lock = threading.RLock()
        if url.startswith("sqlite://"):
            self.dialect = "sqlite"
            path = url[len("sqlite:///"):] if url.startswith("sqlite:///") else url[len("sqlite://"):]
            if not path:
                raise StoreError(f"db_url: {url!r} has no file path; use sqlite:///FILE")
            if path != ":memory:":
                Path(path).expanduser().parent.mkdir(parents=True, exist_ok=True)
            self._path = path
        elif url.startswith(("postgresql://", "postgres://")):
            self.dialect = "postgresql"
            self._path = ""
        else:
            raise StoreError(f"db_url: {url!r} is not sqlite:///FILE or postgresql://...")
        self._conn: Any = None
        self._in_tx = False
        self._open()

    def _open(self) -> None:
        if self.dialect == "sqlite":
            conn = sqlite3.connect(self._path, check_same_thread=False, isolation_level=None,
                                   timeout=30.0)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=ON")
            self._conn = conn
            return
        try:
            import psycopg
        except ImportError:
            raise StoreError(
                "db_url: a postgresql:// URL needs the psycopg package "
                "(pip install 'psycopg[binary]')"
            ) from None
        try:
            self._conn = psycopg.connect(self.url, autocommit=True)
        except psycopg.Error as exc:
            raise StoreError(f"db_url: cannot connect to PostgreSQL: {exc}") from None

    @property
    def conn(self) -> Any:
        """The open connection (reopened after :meth:`close`, e.g. an app restarted in-process)."""
        if self._conn is None:
            self._open()
        return self._conn

    def _sql(self, sql: str) -> str:
        return sql.replace("?", "%s") if self.dialect == "postgresql" else sql

    @contextmanager
    def transaction(self) -> Iterator[Database]:
        """Hold the lock and run the block in one transaction (nested: joins the outer one)."""
        with self._lock:
            if self._in_tx:
                yield self
                return
            # SQLite: take the write lock up front. A deferred BEGIN that reads and then
            # writes while another process (the JT/T 808 gateway's own process) has
            # committed meanwhile fails at once with "database is locked" (a stale WAL
            # snapshot cannot be upgraded; the busy timeout does not apply to it).
            self.conn.execute("BEGIN IMMEDIATE" if self.dialect == "sqlite" else "BEGIN")
            self._in_tx = True
            try:
                yield self
            except BaseException:
                self._in_tx = False
                self.conn.execute("ROLLBACK")
                raise
            self._in_tx = False
            self.conn.execute("COMMIT")

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one statement; return the number of rows it changed."""
        with self._lock:
            cur = self.conn.execute(self._sql(sql), tuple(params))
            return cur.rowcount

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        """Run one statement for many parameter rows."""
        if not rows:
            return
        with self._lock:
            if self.dialect == "sqlite":
                self.conn.executemany(sql, rows)
            else:
                with self.conn.cursor() as cur:
                    cur.executemany(self._sql(sql), rows)

    def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        """Run a query; return all rows as tuples."""
        with self._lock:
            cur = self.conn.execute(self._sql(sql), tuple(params))
            return list(cur.fetchall())

    def fetchone(self, sql: str, params: Sequence[Any] = ()) -> tuple | None:
        """Run a query; return the first row or None."""
        with self._lock:
            cur = self.conn.execute(self._sql(sql), tuple(params))
            return cur.fetchone()

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


# Ordered migrations: (version, statements). Append new versions; never edit old ones.
MIGRATIONS: tuple[tuple[int, tuple[str, ...]], ...] = (
    (
        1,
        (
            """CREATE TABLE alerts (
                alert_id TEXT PRIMARY KEY,
                kind TEXT NOT NULL,
                vehicle_id TEXT NOT NULL,
                vehicle_key TEXT NOT NULL,
                start_us BIGINT NOT NULL,
                end_us BIGINT NOT NULL,
                severity TEXT NOT NULL,
                manifest_id TEXT NOT NULL,
                site_id TEXT NOT NULL,
                summary TEXT NOT NULL,
                trip_id TEXT NOT NULL,
                lon DOUBLE PRECISION,
                lat DOUBLE PRECISION,
                evidence TEXT NOT NULL,
                geometry TEXT NOT NULL,
                content_hash TEXT NOT NULL,
                status TEXT NOT NULL,
                status_version INTEGER NOT NULL,
                created_us BIGINT NOT NULL,
                updated_us BIGINT NOT NULL
            )""",
            "CREATE INDEX alerts_start ON alerts (start_us)",
            "CREATE INDEX alerts_kind ON alerts (kind, status)",
            "CREATE INDEX alerts_vehicle ON alerts (vehicle_key)",
            """CREATE TABLE alert_history (
                alert_id TEXT NOT NULL,
                version INTEGER NOT NULL,
                status TEXT NOT NULL,
                by_name TEXT NOT NULL,
                at_us BIGINT NOT NULL,
                note TEXT NOT NULL,
                PRIMARY KEY (alert_id, version)
            )""",
            """CREATE TABLE missions (
                mission_id TEXT PRIMARY KEY,
                alert_id TEXT NOT NULL,
                dock_site_id TEXT NOT NULL,
                status TEXT NOT NULL,
                reason TEXT NOT NULL,
                progress TEXT NOT NULL,
                plan TEXT,
                flight_record TEXT,
                created_by TEXT NOT NULL,
                created_us BIGINT NOT NULL,
                updated_us BIGINT NOT NULL
            )""",
            "CREATE INDEX missions_alert ON missions (alert_id)",
            """CREATE TABLE points (
                vehicle_key TEXT NOT NULL,
                time_us BIGINT NOT NULL,
                vehicle_id TEXT NOT NULL,
                lon DOUBLE PRECISION NOT NULL,
                lat DOUBLE PRECISION NOT NULL,
                speed_kmh DOUBLE PRECISION,
                heading_deg DOUBLE PRECISION,
                load TEXT,
                lift DOUBLE PRECISION,
                received_us BIGINT NOT NULL,
                PRIMARY KEY (vehicle_key, time_us)
            )""",
        ),
    ),
)


def migrate(db: Database, migrations: Sequence[tuple[int, Sequence[str]]] = MIGRATIONS) -> int:
    """Bring the schema up to the newest version; return that version.

    Creates ``schema_version`` on a fresh database. Each missing migration runs
    in its own transaction together with its ``schema_version`` row, so a
    failure leaves the database at the last complete version.

    Raises
    ------
    StoreError
        When the database is newer than this code (downgrade refused).
    """
    db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, applied_us BIGINT NOT NULL)")
    row = db.fetchone("SELECT MAX(version) FROM schema_version")
    current = int(row[0]) if row and row[0] is not None else 0
    newest = max((v for v, _ in migrations), default=0)
    if current > newest:
        raise StoreError(
            f"schema_version: database is at version {current}, this haulwatch knows up to {newest}"
        )
    import time

    for version, statements in sorted(migrations, key=lambda m: m[0]):
        if version <= current:
            continue
        with db.transaction():
            for stmt in statements:
                db.execute(stmt)
            db.execute(
                "INSERT INTO schema_version (version, applied_us) VALUES (?, ?)",
                (version, int(time.time() * 1e6)),
            )
    return max(current, newest)
