"""Stores that remember what a webhook already received, so a replayed post changes nothing twice.

``claim(key, until=...)`` is atomic: of two requests with the same key, one gets
True. A post whose events then failed to apply is ``release``d so the relay's
retry is accepted. Two stores: one in memory (one ``serve`` process) and one in
a small SQLite file (``WEBHOOK_REPLAY_FILE``: every process on the machine
shares it, and it survives a restart). A store in the subscriber database can
take their place later; it only needs these two methods.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path
from typing import Protocol

from ..errors import ConfigError


class ReplayStore(Protocol):
    def claim(self, key: str, *, until: float) -> bool: ...

    def release(self, key: str) -> None: ...


class MemoryReplayStore:
    """A ``ReplayStore`` in this process's memory: right for one ``serve`` process."""

    def __init__(self, clock=time.time):
        self._until: dict[str, float] = {}
        self._lock = threading.Lock()
        self._clock = clock
        self._claims = 0

    def claim(self, key: str, *, until: float) -> bool:
        now = self._clock()
        with self._lock:
            self._claims += 1
            if self._claims % 1000 == 0:
                self._until = {k: t for k, t in self._until.items() if t > now}
            if self._until.get(key, 0.0) > now:
                return False
            self._until[key] = until
            return True

    def release(self, key: str) -> None:
        with self._lock:
            self._until.pop(key, None)


class FileReplayStore:
    """A ``ReplayStore`` in an SQLite file, shared by every process that opens the same path.

    ``BEGIN IMMEDIATE`` takes the file's write lock before the key is looked up,
    so two processes cannot both see a key as new.
    """

    def __init__(self, path: str | Path, clock=time.time):
        self.path = Path(path)
        self._clock = clock
        self._local = threading.local()
        self._claims = 0
        try:
            self._db().execute("CREATE TABLE IF NOT EXISTS seen (key TEXT PRIMARY KEY, until REAL NOT NULL)")
        except sqlite3.Error as exc:
            raise ConfigError(f"cannot use WEBHOOK_REPLAY_FILE: {exc}", where=str(self.path)) from None

    def _db(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            self._local.db = db
        return db

    def claim(self, key: str, *, until: float) -> bool:
        now, db = self._clock(), self._db()
        db.execute("BEGIN IMMEDIATE")
        try:
            row = db.execute("SELECT until FROM seen WHERE key = ?", (key,)).fetchone()
            fresh = row is None or row[0] <= now
            if fresh:
                db.execute("INSERT OR REPLACE INTO seen (key, until) VALUES (?, ?)", (key, until))
            self._claims += 1
            if self._claims % 1000 == 0:
                db.execute("DELETE FROM seen WHERE until <= ?", (now,))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return fresh

    def release(self, key: str) -> None:
        self._db().execute("DELETE FROM seen WHERE key = ?", (key,))

    def close(self) -> None:
        db = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = None
