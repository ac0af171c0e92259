"""Real PostgreSQL and Redis servers for tests: throwaway, on free ports, in temporary folders.

PostgreSQL refuses to run as root, so as root the cluster belongs to the ``postgres`` user
(Debian's package creates it): the server process runs as that user.
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, proc: subprocess.Popen, log: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError(f"server exited: {log.read_text(errors='replace')}") from None
            if time.monotonic() > deadline:
                text = log.read_text(errors='replace')
                raise RuntimeError(f"server not listening: {text}") from None
            time.sleep(0.05)


def _pg_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


class Postgres:
    """One cluster; ``database()`` gives each test its own empty database."""

    def __init__(self) -> None:
        bindir = _pg_bin()
        if bindir is None:
            pytest.skip("PostgreSQL is not installed (scripts/install.sh --test installs it)")
        self.bindir = bindir
        self.root = Path(tempfile.mkdtemp(prefix="pgtest-"))
        self.as_user: dict[str, object] = {}
        if os.geteuid() == 0:
            self.as_user = {"user": "postgres", "group": "postgres", "extra_groups": []}
            shutil.chown(self.root, "postgres", "postgres")
        self.port = free_port()
        self.log = self.root / "server.log"
        data = self.root / "data"
        subprocess.run([str(bindir / "initdb"), "-D", str(data), "-U", "bot", "--auth=trust",
                        "-E", "UTF8", "--no-sync", "--locale=C.UTF-8"],
                       check=True, capture_output=True, cwd=self.root,
                       **self.as_user)  # type: ignore[call-overload]
        self.data = data
        self.proc: subprocess.Popen | None = None
        self.start()
        self._n = 0

    def start(self) -> None:
        """(Re)start on the same port and data folder."""
        with open(self.log, "a") as out:
            self.proc = subprocess.Popen(  # type: ignore[call-overload]
                [str(self.bindir / "postgres"), "-D", str(self.data),
                 "-p", str(self.port), "-c", "listen_addresses=127.0.0.1",
                 "-c", f"unix_socket_directories={self.root}", "-c", "fsync=off",
                 "-c", "max_connections=200"],
                stdout=out, stderr=out, start_new_session=True, cwd=self.root, **self.as_user)
        wait_port(self.port, self.proc, self.log)
        for _ in range(100):  # listening comes slightly before accepting logins
            done = subprocess.run([str(self.bindir / "pg_isready"), "-h", "127.0.0.1",
                                   "-p", str(self.port)], capture_output=True)
            if done.returncode == 0:
                return
            time.sleep(0.1)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # fast shutdown
            self.proc.wait(timeout=30)

    def url(self, db: str = "postgres") -> str:
        return f"postgresql://bot@127.0.0.1:{self.port}/{db}"

    def database(self) -> str:
        """A new empty database; returns its URL."""
        import psycopg

        self._n += 1
        name = f"t{os.getpid()}_{self._n}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")  # type: ignore[arg-type]
        return self.url(name)

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


class Redis:
    """One redis-server without persistence; ``stop``/``start`` simulate an outage."""

    def __init__(self) -> None:
        exe = shutil.which("redis-server")
        if exe is None:
            pytest.skip("redis-server is not installed (scripts/install.sh --test installs it)")
        self.exe = exe
        self.root = Path(tempfile.mkdtemp(prefix="redistest-"))
        self.port = free_port()
        self.log = self.root / "server.log"
        self.proc: subprocess.Popen | None = None
        self.start()

    def start(self) -> None:
        with open(self.log, "a") as out:
            self.proc = subprocess.Popen(
                [self.exe, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                 "--appendonly", "no", "--dir", str(self.root)],
                stdout=out, stderr=out, start_new_session=True)
        wait_port(self.port, self.proc, self.log)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=30)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    server = Postgres()
    yield server
    server.close()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[Redis]:
    server = Redis()
    yield server
    server.close()
