"""A throw-away PostgreSQL server for the tests: a fresh cluster in a temporary directory, on a
free port of 127.0.0.1, tuned for speed (no fsync), killed and deleted afterwards.

The binaries come from ``FASTCRON_PG_BIN`` or the newest ``/usr/lib/postgresql/*/bin`` (the
Debian/Ubuntu ``postgresql`` package; CI installs it). ``initdb`` and ``postgres`` refuse to run
as root, so as root they run as the ``postgres`` OS user (the server is a direct child either way,
so ``stop``/``kill`` reach it and not a wrapper). No binaries is an error, never a skip.
"""

from __future__ import annotations

import atexit
import glob
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg

__all__ = ["PgServer", "PgServerError", "find_bin_dir"]

READY_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 15.0
SERVER_SETTINGS = (
    "fsync=off",
    "synchronous_commit=off",
    "full_page_writes=off",
    "max_connections=200",
)


class PgServerError(RuntimeError):
    """The test server could not be set up or started; the message carries the server log's tail."""


def find_bin_dir() -> Path:
    """``FASTCRON_PG_BIN`` if set, else the newest ``/usr/lib/postgresql/<version>/bin``."""
    env = os.environ.get("FASTCRON_PG_BIN")
    candidates = [Path(env)] if env else sorted(
        (Path(p) for p in glob.glob("/usr/lib/postgresql/*/bin")),
        key=lambda p: _version_key(p.parent.name),
        reverse=True,
    )
    for path in candidates:
        if (path / "initdb").is_file() and (path / "postgres").is_file():
            return path
    where = f"FASTCRON_PG_BIN={env}" if env else "/usr/lib/postgresql/*/bin"
    raise PgServerError(
        f"no PostgreSQL server binaries (initdb, postgres) in {where}; install them "
        "(apt-get install postgresql) or set FASTCRON_PG_BIN to their directory"
    )


def _version_key(name: str) -> tuple[int, ...]:
    return tuple(int(part) for part in name.split(".") if part.isdigit())


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PgServer:
    """One PostgreSQL cluster for a test session.

    ``start()`` after ``stop()`` (or ``kill()``) brings the same cluster back on the same port, so a
    test can take the server away for a while. ``cleanup()`` kills it and deletes the directory.
    """

    def __init__(
        self, bin_dir: Path | None = None, *, standby_of: PgServer | None = None, settings: tuple[str, ...] = ()
    ) -> None:
        self.bin_dir: Path = bin_dir or (standby_of.bin_dir if standby_of else find_bin_dir())
        self.settings = SERVER_SETTINGS + settings  # later -c settings win: a benchmark asks for durability
        self.as_root = os.geteuid() == 0
        self.root = Path(tempfile.mkdtemp(prefix="fastcron-pg-"))
        self.data = self.root / "data"
        self.log_path = self.root / "server.log"
        self.port = _free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self._log: Any = None
        atexit.register(self.cleanup)
        if self.as_root:
            shutil.chown(self.root, "postgres", "postgres")
        if standby_of is None:
            self._initdb()
        else:
            self._base_backup(standby_of)

    # ---------------------------------------------------------------- running the binaries

    def _user(self) -> dict[str, Any]:
        """Popen arguments that drop root to the postgres user (nothing when not root)."""
        if not self.as_root:
            return {}
        return {"user": "postgres", "group": "postgres", "extra_groups": []}

    def _initdb(self) -> None:
        cmd = [str(self.bin_dir / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres",
               "--no-sync", "-E", "UTF8", "--locale=C"]
        done = subprocess.run(cmd, capture_output=True, text=True, cwd=self.root, **self._user())
        if done.returncode != 0:
            raise PgServerError(f"initdb failed ({done.returncode}): {(done.stderr or done.stdout).strip()[-2000:]}")

    def _base_backup(self, primary: PgServer) -> None:
        """A copy of ``primary`` set up as its streaming standby (``-R`` writes standby.signal and
        the connection settings): a real read-only replica."""
        cmd = [str(self.bin_dir / "pg_basebackup"), "-h", "127.0.0.1", "-p", str(primary.port), "-U", "postgres",
               "-D", str(self.data), "-R", "-X", "stream", "--no-sync", "-c", "fast"]
        done = subprocess.run(cmd, capture_output=True, text=True, cwd=self.root, timeout=60, **self._user())
        if done.returncode != 0:
            raise PgServerError(f"pg_basebackup failed ({done.returncode}): {(done.stderr or done.stdout).strip()[-2000:]}")

    def start(self) -> None:
        """Start the server (the cluster's data and port are kept across stop/start) and wait
        until it accepts connections."""
        if self.process is not None and self.process.poll() is None:
            return
        cmd = [str(self.bin_dir / "postgres"), "-D", str(self.data), "-p", str(self.port),
               "-c", "listen_addresses=127.0.0.1", "-k", str(self.root)]
        for setting in self.settings:
            cmd += ["-c", setting]
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in _reap
        self.process = subprocess.Popen(
            cmd, stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=self.root,
            process_group=0, **self._user(),
        )
        self._wait_ready()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        last: Exception | None = None
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                code = self.process.returncode
                self._reap()
                raise PgServerError(f"postgres exited with {code} while starting:\n{self.log_tail()}")
            try:
                with psycopg.connect(self.dsn("postgres"), connect_timeout=2):
                    return
            except psycopg.OperationalError as exc:
                last = exc
                time.sleep(0.05)
        self.kill()
        raise PgServerError(f"postgres did not accept connections within {READY_TIMEOUT_S:.0f} s ({last}):\n{self.log_tail()}")

    def stop(self) -> None:
        """Fast shutdown (SIGINT: clients are disconnected, the cluster is left clean); SIGKILL if
        it takes longer than a few seconds."""
        self._signal(signal.SIGINT)

    def kill(self) -> None:
        """Crash the server (SIGKILL to the postmaster and its group); ``start()`` recovers it."""
        self._signal(signal.SIGKILL)

    def _signal(self, sig: signal.Signals) -> None:
        process = self.process
        if process is None:
            return
        if process.poll() is None:
            try:
                if sig == signal.SIGKILL:
                    os.killpg(process.pid, sig)
                else:
                    process.send_signal(sig)
                process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(STOP_TIMEOUT_S)
            except ProcessLookupError:
                pass
        if sig == signal.SIGKILL:
            # Backends of a killed postmaster notice and exit by themselves; make sure of it.
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self._reap()

    def _reap(self) -> None:
        self.process = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def cleanup(self) -> None:
        """Kill the server (if running) and delete its directory. Safe to call twice."""
        self.kill()
        shutil.rmtree(self.root, ignore_errors=True)

    # ---------------------------------------------------------------- using it

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no server log)"
        return "\n".join(text.splitlines()[-lines:])

    def dsn(self, dbname: str = "postgres") -> str:
        return f"host=127.0.0.1 port={self.port} user=postgres dbname={dbname}"

    def admin(self) -> psycopg.Connection[Any]:
        """An autocommit connection to the ``postgres`` database, as superuser."""
        return psycopg.connect(self.dsn("postgres"), autocommit=True)

    def create_database(self, name: str) -> str:
        """Create database ``name`` from template0 and return its DSN."""
        with self.admin() as conn:
            conn.execute(f'CREATE DATABASE "{name}" TEMPLATE template0')
        return self.dsn(name)

    def drop_database(self, name: str) -> None:
        """Drop ``name``, disconnecting whoever is still connected to it."""
        with self.admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def terminate_backends(self, dbname: str, application_name: str | None = None) -> int:
        """``pg_terminate_backend`` every session on ``dbname`` (optionally only those with
        ``application_name``); return how many were terminated."""
        sql = "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()"
        params: list[Any] = [dbname]
        if application_name is not None:
            sql += " AND application_name = %s"
            params.append(application_name)
        with self.admin() as conn:
            row = conn.execute(sql, params).fetchone()
        return int(row[0]) if row else 0
