"""Registered terminals and their auth codes, kept in the service's store.

A terminal is known by its phone number (leading zeros dropped, so the 2013
and 2019 header forms of one number are one terminal). Registering gives an
auth code; registering again gives the same code back (the standard's
terminals re-register after losing their code); logout (0x0003,
"终端注销") forgets it. Reports refused as positions (no fix, bad values) are
recorded with their reason.
"""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any, Protocol

__all__ = ["MemoryTerminalStore", "SqlTerminalStore", "Terminal", "TerminalStore"]


@dataclass(frozen=True)
class Terminal:
    """A registered terminal: phone key, plate as registered, auth code, header version."""

    phone: str
    plate: str
    auth_code: str
    version: int


class TerminalStore(Protocol):
    """What the gateway needs to remember about terminals (sync; called off the event loop)."""

    def register(self, phone: str, plate: str, version: int) -> Terminal:
        """Record a registration; return the terminal with its (old or new) auth code."""
        ...

    def get(self, phone: str) -> Terminal | None:
        """The terminal registered under ``phone``, or None."""
        ...

    def deregister(self, phone: str) -> bool:
        """Forget a terminal; True when it was known."""
        ...

    def record_reject(self, phone: str, plate: str, time_us: int | None, reason: str) -> None:
        """Record a report refused as a position."""
        ...


def new_auth_code() -> str:
    """A fresh auth code (16 hex characters, from :mod:`secrets`)."""
    return secrets.token_hex(8)


class MemoryTerminalStore:
    """In-memory :class:`TerminalStore` (tests, throw-away gateways)."""

    def __init__(self) -> None:
        self._t: dict[str, Terminal] = {}
        self.rejects: list[tuple[str, str, int | None, str]] = []
        self._lock = threading.Lock()

    def register(self, phone: str, plate: str, version: int) -> Terminal:
        """See :meth:`TerminalStore.register`."""
        with self._lock:
            old = self._t.get(phone)
            term = Terminal(phone, plate, old.auth_code if old else new_auth_code(), version)
            self._t[phone] = term
            return term

    def get(self, phone: str) -> Terminal | None:
        """See :meth:`TerminalStore.get`."""
        return self._t.get(phone)

    def deregister(self, phone: str) -> bool:
        """See :meth:`TerminalStore.deregister`."""
        with self._lock:
            return self._t.pop(phone, None) is not None

    def record_reject(self, phone: str, plate: str, time_us: int | None, reason: str) -> None:
        """See :meth:`TerminalStore.record_reject`."""
        with self._lock:
            self.rejects.append((phone, plate, time_us, reason))
            del self.rejects[:-10000]


_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS jt808_terminals (
        phone TEXT PRIMARY KEY,
        plate TEXT NOT NULL,
        auth_code TEXT NOT NULL,
        version INTEGER NOT NULL,
        registered_us BIGINT NOT NULL,
        updated_us BIGINT NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS jt808_rejects (
        phone TEXT NOT NULL,
        plate TEXT NOT NULL,
        time_us BIGINT,
        reason TEXT NOT NULL,
        received_us BIGINT NOT NULL
    )""",
)


class SqlTerminalStore:
    """:class:`TerminalStore` in the service's SQL database (SQLite or PostgreSQL).

    Parameters
    ----------
    db : haulwatch.api.services.store_sql.Database
        The store's database (its tables ``jt808_terminals`` and
        ``jt808_rejects`` are created when missing).
    """

    def __init__(self, db: Any) -> None:
        self.db = db
        for stmt in _SCHEMA:
            db.execute(stmt)
        self._cache: dict[str, Terminal] = {}

    def register(self, phone: str, plate: str, version: int) -> Terminal:
        """See :meth:`TerminalStore.register`."""
        now = int(time.time() * 1e6)
        with self.db.transaction():
            row = self.db.fetchone("SELECT auth_code FROM jt808_terminals WHERE phone = ?",
                                   (phone,))
            code = row[0] if row else new_auth_code()
            if row:
                self.db.execute("UPDATE jt808_terminals SET plate = ?, version = ?, updated_us = ?"
                                " WHERE phone = ?", (plate, version, now, phone))
            else:
                self.db.execute(
                    "INSERT INTO jt808_terminals (phone, plate, auth_code, version, registered_us,"
                    " updated_us) VALUES (?, ?, ?, ?, ?, ?)", (phone, plate, code, version, now, now))
        term = Terminal(phone, plate, code, version)
        self._cache[phone] = term
        return term

    def get(self, phone: str) -> Terminal | None:
        """See :meth:`TerminalStore.get`."""
        if phone in self._cache:
            return self._cache[phone]
        row = self.db.fetchone(
            "SELECT phone, plate, auth_code, version FROM jt808_terminals WHERE phone = ?", (phone,))
        if row is None:
            return None
        term = Terminal(str(row[0]), str(row[1]), str(row[2]), int(row[3]))
        self._cache[phone] = term
        return term

    def deregister(self, phone: str) -> bool:
        """See :meth:`TerminalStore.deregister`."""
        self._cache.pop(phone, None)
        return self.db.execute("DELETE FROM jt808_terminals WHERE phone = ?", (phone,)) > 0

    def record_reject(self, phone: str, plate: str, time_us: int | None, reason: str) -> None:
        """See :meth:`TerminalStore.record_reject`."""
        self.db.execute("INSERT INTO jt808_rejects (phone, plate, time_us, reason, received_us) "
                        "VALUES (?, ?, ?, ?, ?)", (phone, plate, time_us, reason[:200],
                                                   int(time.time() * 1e6)))
