"""Fixtures shared by the test modules: a real PostgreSQL server for the PostgreSQL store's tests
(``tests/pgserver.py``), started once per session on first use, and a fresh database per test."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from pgserver import PgServer


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """A PostgreSQL server for the session. Fails (never skips) if there are no binaries."""
    from pgserver import PgServer  # here, not at the top: only PostgreSQL tests need psycopg

    server = PgServer()
    try:
        server.start()
        yield server
    finally:
        server.cleanup()


@pytest.fixture
def pg_dsn(pg_server: PgServer) -> Iterator[str]:
    """The DSN of a new, empty database (from template0, uniquely named), dropped afterwards."""
    name = f"fastcron_{uuid.uuid4().hex[:12]}"
    dsn = pg_server.create_database(name)
    try:
        yield dsn
    finally:
        if pg_server.process is None:  # a test stopped the server and failed before restarting it
            pg_server.start()
        pg_server.drop_database(name)
