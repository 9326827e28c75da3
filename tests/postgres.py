"""A private PostgreSQL server for tests and benchmarks: own data directory, Unix socket only.

The server listens on no TCP port (listen_addresses=''), so nothing outside this
machine's filesystem can reach it; it is stopped by PID-owning pg_ctl at exit.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import parse_qs, urlsplit

import psycopg


def _bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not found:
        raise RuntimeError(f"PostgreSQL's {name} is not installed: apt-get install postgresql")
    return found[-1]


def _as_owner(cmd: list[str]) -> list[str]:
    # PostgreSQL refuses to run as root; CI runs as root, developers may not.
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


@contextmanager
def server() -> Iterator[str]:
    """Start a server; yields a libpq URL to its ``postgres`` database."""
    root = tempfile.mkdtemp(prefix="portsec-pg-")
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    subprocess.run(
        _as_owner([_bin("initdb"), "-D", os.path.join(root, "data"), "-A", "trust", "-U", "postgres", "--no-sync"]),
        check=True,
        capture_output=True,
    )
    # The port only names the socket file (no TCP); a per-server one lets test runs share a machine.
    port = 5400 + int.from_bytes(os.urandom(2), "big") % 4000
    _start(root, port)
    try:
        yield f"postgresql://postgres@/postgres?host={root}&port={port}"
    finally:
        _stop(root)
        shutil.rmtree(root, ignore_errors=True)


@contextmanager
def stopped(url: str) -> Iterator[None]:
    """The server of ``url`` (one that ``server()`` started) is down for the body of the ``with``, then up again."""
    query = parse_qs(urlsplit(url).query)
    root, port = query["host"][0], int(query["port"][0])
    _stop(root)
    try:
        yield
    finally:
        _start(root, port)


def _start(root: str, port: int) -> None:
    options = f"-k {root} -c listen_addresses='' -p {port} -c fsync=off -c max_connections=200"
    data, log = os.path.join(root, "data"), os.path.join(root, "log")
    subprocess.run(
        _as_owner([_bin("pg_ctl"), "-D", data, "-o", options, "-l", log, "-w", "start"]),
        check=True,
        capture_output=True,
    )


def _stop(root: str) -> None:
    # fast: active sessions are ended at once, as when an operator restarts the server
    data = os.path.join(root, "data")
    subprocess.run(_as_owner([_bin("pg_ctl"), "-D", data, "-m", "fast", "-w", "stop"]), capture_output=True)


def fresh_database(admin_url: str, name: str) -> str:
    """Create an empty database; returns its SQLAlchemy URL."""
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    return admin_url.replace("/postgres?", f"/{name}?", 1)
