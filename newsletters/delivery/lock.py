"""One sender per database: the lock that lets a new process call a leftover ``sending`` row ``unknown``.

A row left in ``sending`` means "someone is handing it over right now" while
its sender lives, and "the sender died mid-handover" after. Only a process that
holds this lock may read it the second way (``Ledger.start_session`` as the
sole sender), so the lock must reach every process that uses the same
database, not only those started from the same site folder:

* SQLite: an OS file lock on a file next to the database file
  (``newsletter.db.send-lock``); the kernel drops it when the process dies,
  even on SIGKILL.
* PostgreSQL: a session advisory lock held on a connection of its own; the
  server drops it when that connection ends, which a killed process's does.
  ``newsletter send`` no longer takes it: on PostgreSQL several senders join
  one run, each with a lock of its own, and ``workers.SendWorker.sweep``
  reads ``sending`` by those.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import sqlalchemy as sa

from ..errors import DeliveryError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no lock, the conditional claim still prevents doubles
    fcntl = None

_HINT = "wait for it to finish, or stop it with Ctrl-C; then run the command again to resume"


class SendLock:
    """An exclusive OS file lock, with the holder's process id written in the file."""

    def __init__(self, path: Path):
        self.path = path
        self._fd: int | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "another process"
                os.close(fd)
                raise DeliveryError(
                    f"another send is running on this database (process {holder})", where=str(self.path), hint=_HINT
                ) from None
        try:  # who holds it, for the message another sender shows; the lock itself needs no space
            os.ftruncate(fd, 0)
            os.pwrite(fd, str(os.getpid()).encode(), 0)
        except OSError:
            pass
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing drops the flock
            self._fd = None


class AdvisorySendLock:
    """A PostgreSQL session advisory lock, on a connection kept open until ``release``."""

    KEY = int.from_bytes(hashlib.blake2b(b"newsletters send lock", digest_size=8).digest(), "big", signed=True)

    def __init__(self, engine: sa.Engine):
        self.engine = engine
        self._conn: sa.Connection | None = None

    def acquire(self) -> None:
        conn = self.engine.connect()
        if not conn.scalar(sa.text("SELECT pg_try_advisory_lock(:key)"), {"key": self.KEY}):
            conn.close()
            raise DeliveryError("another send is running on this database", where=self.engine.url.render_as_string(
                hide_password=True), hint=_HINT)
        conn.commit()
        self._conn = conn

    def release(self) -> None:
        if self._conn is not None:
            self._conn.close()  # ending the session drops the lock
            self._conn = None


def send_lock(engine: sa.Engine, fallback_dir: Path) -> SendLock | AdvisorySendLock:
    """The lock every sender on this database takes (``fallback_dir`` for an in-memory SQLite database)."""
    if engine.dialect.name == "postgresql":
        return AdvisorySendLock(engine)
    database = engine.url.database
    if engine.dialect.name == "sqlite" and database and database != ":memory:":
        path = Path(database).resolve()
        return SendLock(path.with_name(path.name + ".send-lock"))
    return SendLock(Path(fallback_dir) / ".send.lock")
