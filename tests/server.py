"""A real `portsec serve` process on a free loopback port, stopped by its PID."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import httpx

PORTSEC = str(Path(sys.executable).with_name("portsec"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serve(database_url: str, workers: int = 1, args: Sequence[str] = ()) -> Iterator[str]:
    with server_process(database_url, workers, args) as (url, _proc):
        yield url


@contextmanager
def server_process(
    database_url: str, workers: int = 1, args: Sequence[str] = (), output: IO[bytes] | None = None
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """``serve``, and the process (its PID; with one worker, the one that serves); its stdout and stderr to ``output``."""
    # A file, not a pipe nobody reads: a server that logs more than a pipe holds would block on its log.
    with tempfile.TemporaryFile() as spare:
        yield from _started(database_url, workers, args, output or spare)


def _started(
    database_url: str, workers: int, args: Sequence[str], log: IO[bytes]
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    port = free_port()
    env = {**os.environ, "PORTSEC_DATABASE_URL": database_url}
    # The API alone, unless the test asks for a backend (--backend ...): then that backend runs too.
    backend = [] if any(a.startswith("--backend") for a in args) else ["--no-agent"]
    proc = subprocess.Popen(
        [PORTSEC, "serve", "--port", str(port), "--workers", str(workers), *backend, *args],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its workers share its process group, so one signal ends them all
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                if httpx.get(url + "/", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.05)
            if proc.poll() is not None:
                log.seek(0)
                raise RuntimeError(f"portsec serve exited: {log.read().decode(errors='replace')}")
        else:
            raise RuntimeError("portsec serve did not start")
        yield url, proc
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)
