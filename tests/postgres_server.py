"""A throwaway PostgreSQL for the tests (and bench): Debian's server, started in a temporary folder.

``initdb`` refuses to run as root, so as root the cluster belongs to an
unprivileged user (Debian's ``postgres`` account, or one made here) and every
server command runs through ``runuser``. It listens on 127.0.0.1 only, on a free
port, with its socket inside the temporary folder; ``stop`` ends it and removes
the folder. ``fresh_database`` gives each test its own empty database.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

DEDICATED_USER = "newsletter-pgtest"


def find_bin_dir() -> Path | None:
    """Where initdb, pg_ctl and postgres are: Debian keeps them out of PATH, per major version."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[4]))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).resolve().parent if initdb else None


def _server_user() -> str | None:
    """The account that owns the cluster: None means this process's own (not root)."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", DEDICATED_USER):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", DEDICATED_USER],
                   check=True)
    return DEDICATED_USER


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class PostgresServer:
    folder: Path
    port: int
    bin_dir: Path
    user: str | None

    @property
    def admin_url(self) -> str:
        role = self.user or pwd.getpwuid(os.geteuid()).pw_name
        return f"postgresql+psycopg://{role}@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str) -> subprocess.CompletedProcess:
        command = [str(self.bin_dir / args[0]), *args[1:]]
        if self.user:
            command = ["runuser", "-u", self.user, "--", *command]
        return subprocess.run(command, check=True, capture_output=True, text=True, timeout=120)

    @classmethod
    def start(cls) -> "PostgresServer":
        bin_dir = find_bin_dir()
        if bin_dir is None:
            raise RuntimeError("PostgreSQL is not installed: `make test` installs Debian's postgresql package")
        user = _server_user()
        folder = Path(tempfile.mkdtemp(prefix="newsletter-pg-"))
        os.chmod(folder, 0o755)
        data = folder / "data"
        if user:
            entry = pwd.getpwnam(user)
            os.chown(folder, entry.pw_uid, entry.pw_gid)
        server = cls(folder, _free_port(), bin_dir, user)
        server._run("initdb", "-D", str(data), "--auth=trust", "--encoding=UTF8", "--no-sync", "-U",
                    user or pwd.getpwuid(os.geteuid()).pw_name)
        options = (f"-c listen_addresses=127.0.0.1 -c port={server.port} -c unix_socket_directories={folder} "
                   "-c fsync=off -c max_connections=200 -c shared_buffers=64MB")
        server._run("pg_ctl", "-D", str(data), "-o", options, "-l", str(folder / "server.log"), "-w", "start")
        server._wait()
        return server

    def _wait(self) -> None:
        engine = sa.create_engine(self.admin_url)
        deadline = time.monotonic() + 30
        try:
            while True:
                try:
                    with engine.connect():
                        return
                except sa.exc.OperationalError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.1)
        finally:
            engine.dispose()

    def fresh_database(self) -> str:
        """A new empty database; returns its URL."""
        name = "t_" + uuid.uuid4().hex[:12]
        engine = sa.create_engine(self.admin_url, isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as conn:
                conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        finally:
            engine.dispose()
        return self.admin_url.rsplit("/", 1)[0] + "/" + name

    def stop(self) -> None:
        try:
            self._run("pg_ctl", "-D", str(self.folder / "data"), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)
