"""A throwaway PostgreSQL server on loopback, for the tests and the benchmarks.

``TemporaryPostgres`` runs Debian's own binaries (``initdb``, ``pg_ctl``):
``initdb`` into a temporary folder, a server listening on 127.0.0.1 only, on a
free port, its unix socket inside that folder, and ``pg_ctl stop -m fast`` plus
removal of the folder at the end. PostgreSQL refuses to run as root, and the
tests run as root in CI, so as root the cluster belongs to a dedicated system
user (``newsletter-pg``, created with ``useradd --system`` when missing) and every
command runs through ``runuser``. Trust authentication is safe here because
the server accepts connections from this machine's loopback only.

Shared by ``tests/postgres_server.py`` (pytest fixtures) and ``bench/send.py``.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

SYSTEM_USER = "newsletter-pg"
SUPERUSER = "newsletter"


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL binaries here, or no way to run them."""


def find_binaries() -> Path:
    """The folder holding ``initdb``, ``pg_ctl`` and ``postgres`` (Debian's newest version, else PATH)."""
    for folder in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_version, reverse=True):
        if all((Path(folder) / name).is_file() for name in ("initdb", "pg_ctl", "postgres")):
            return Path(folder)
    found = shutil.which("initdb")
    if found and shutil.which("pg_ctl"):
        return Path(found).parent
    raise PostgresUnavailable(
        "PostgreSQL is not installed (no initdb in /usr/lib/postgresql/*/bin or PATH): run `make system-deps`"
    )


def _version(folder: str) -> float:
    try:
        return float(Path(folder).parent.name)
    except ValueError:
        return 0.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _runner() -> list[str]:
    """The prefix that runs a command as a user PostgreSQL accepts: nothing, or runuser as our system user."""
    if os.geteuid() != 0:
        return []
    try:
        pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", SYSTEM_USER],
            check=True, capture_output=True,
        )
    return ["runuser", "-u", SYSTEM_USER, "--"]


class TemporaryPostgres:
    """One cluster in a temporary folder; ``url(db)`` names a database on it for SQLAlchemy."""

    def __init__(self, durable: bool = False, options: str = "") -> None:
        """``durable=False`` (the tests) turns fsync off; the benchmarks keep PostgreSQL's durable defaults.

        ``options``: more server settings, e.g. ``-c shared_preload_libraries=pg_stat_statements``.
        """
        self.durable = durable
        self.options = options
        self.bin = find_binaries()
        self.runner = _runner()
        self.folder = Path(tempfile.mkdtemp(prefix="newsletter-pg-"))
        self.data = self.folder / "data"
        self.port = free_port()
        self.started = False

    def _run(self, *command: str) -> None:
        result = subprocess.run([*self.runner, *command], capture_output=True, text=True, timeout=120)
        if result.returncode != 0:
            raise PostgresUnavailable(f"{' '.join(command[:2])} failed: {result.stderr.strip() or result.stdout.strip()}")

    def start(self) -> "TemporaryPostgres":
        if self.runner:
            user = pwd.getpwnam(SYSTEM_USER)
            os.chown(self.folder, user.pw_uid, user.pw_gid)
        self._run(str(self.bin / "initdb"), "-D", str(self.data), "-U", SUPERUSER, "--auth=trust", "--no-sync",
                  "--encoding=UTF8", "--locale=C.UTF-8" if _has_c_utf8() else "--locale=C")
        options = (f"-c listen_addresses=127.0.0.1 -c port={self.port} -c unix_socket_directories={self.folder} "
                   "-c max_connections=100")
        if not self.durable:  # throwaway test data: no fsync makes CREATE DATABASE and commits fast
            options += " -c fsync=off -c full_page_writes=off"
        if self.options:
            options += " " + self.options
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.folder / "server.log"),
                  "-o", options, "-w", "-t", "60", "start")
        self.started = True
        return self

    def stop(self) -> None:
        try:
            if self.started:
                self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")
                self.started = False
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def admin(self, *statements: str, database: str = "postgres") -> None:
        """Run statements outside a transaction (CREATE/DROP DATABASE, VACUUM), on the maintenance database
        unless told another."""
        import psycopg  # the postgres extra; only who starts a server needs it

        with psycopg.connect(host="127.0.0.1", port=self.port, user=SUPERUSER, dbname=database,
                             autocommit=True) as conn:
            for statement in statements:
                conn.execute(statement)

    def create_database(self, name: str, template: str | None = None) -> str:
        """A new, empty (or copied from ``template``) database; its SQLAlchemy URL."""
        copy = f" TEMPLATE {template}" if template else ""
        self.admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', f'CREATE DATABASE "{name}"{copy}')
        return self.url(name)

    def cpu_seconds(self) -> float:
        """CPU time the whole server has used so far: the postmaster, its live processes and the ended backends."""
        postmaster = int((self.data / "postmaster.pid").read_text().split()[0])
        total = process_cpu_seconds(postmaster, with_ended_children=True)
        for child in Path(f"/proc/{postmaster}/task/{postmaster}/children").read_text().split():
            total += process_cpu_seconds(int(child))
        return total

    def counters(self, database: str) -> dict[str, float]:
        """Server-wide CPU seconds, WAL bytes written and the database's committed transactions, for deltas."""
        import psycopg

        with psycopg.connect(host="127.0.0.1", port=self.port, user=SUPERUSER, dbname=database) as conn:
            wal = conn.execute("SELECT pg_current_wal_insert_lsn() - '0/0'::pg_lsn").fetchone()[0]
            commits = conn.execute("SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()"
                                   ).fetchone()[0]
        return {"cpu_seconds": self.cpu_seconds(), "wal_bytes": float(wal), "commits": float(commits)}

    def __enter__(self) -> "TemporaryPostgres":
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc) -> None:
        self.stop()


def process_cpu_seconds(pid: int, with_ended_children: bool = False) -> float:
    """User + system CPU seconds of a process (Linux ``/proc``), with its reaped children's if asked; 0 if gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    ticks = int(fields[11]) + int(fields[12])  # utime, stime
    if with_ended_children:
        ticks += int(fields[13]) + int(fields[14])  # cutime, cstime
    return ticks / os.sysconf("SC_CLK_TCK")


def _has_c_utf8() -> bool:
    try:
        out = subprocess.run(["locale", "-a"], capture_output=True, text=True).stdout.lower()
    except OSError:
        return False
    return "c.utf8" in out or "c.utf-8" in out
