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
    data = os.path.join(root, "data")
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    subprocess.run(
        _as_owner([_bin("initdb"), "-D", data, "-A", "trust", "-U", "postgres", "--no-sync"]),
        check=True,
        capture_output=True,
    )
    # The port only names the socket file (no TCP); a per-server one lets test runs share a machine.
    port = 5400 + int.from_bytes(os.urandom(2), "big") % 4000
    options = f"-k {root} -c listen_addresses='' -p {port} -c fsync=off -c max_connections=200"
    ctl = _bin("pg_ctl")
    subprocess.run(
        _as_owner([ctl, "-D", data, "-o", options, "-l", os.path.join(root, "log"), "-w", "start"]),
        check=True,
        capture_output=True,
    )
    try:
        yield f"postgresql://postgres@/postgres?host={root}&port={port}"
    finally:
        subprocess.run(_as_owner([ctl, "-D", data, "-m", "fast", "-w", "stop"]), capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


def fresh_database(admin_url: str, name: str) -> str:
    """Create an empty database; returns its SQLAlchemy URL."""
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    return admin_url.replace("/postgres?", f"/{name}?", 1)
