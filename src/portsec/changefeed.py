"""The change log as the data-plane backends follow it: one cursor, woken at commit, shared by every backend.

Writers in this process wake the follower through ``Database.after_commit``;
writers elsewhere wake it through PostgreSQL's NOTIFY (a thread LISTENs), and
on SQLite a short poll finds them. A backend reads the rows after its cursor
(:meth:`ChangeFeed.take`) for a round, or restarts the cursor at the log's end
(:meth:`ChangeFeed.restart`) in the same read transaction as a full sync, so no
change falls between the two.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import psycopg
import sqlalchemy as sa

from portsec.store import changes
from portsec.store.changes import CHANNEL, ChangeRow
from portsec.store.database import Database, Tx

LOG = logging.getLogger(__name__)
MAX_PENDING_COMMITS = 100_000  # commit times kept while no round runs (the backend away): bounded memory


class ChangeFeed:
    def __init__(self, db: Database, wake: threading.Event | None = None) -> None:
        self.db = db
        self.seq = 0
        self.wake = wake or threading.Event()
        self._commits: list[float] = []  # wall-clock times of commits not yet read by a round
        db.after_commit.append(self.committed)

    def follow(self, stop: threading.Event) -> None:
        """On PostgreSQL, also wake on other processes' commits, until ``stop``."""
        if self.db.engine.dialect.name == "postgresql":
            follow_notifications(self.db.url, self.committed, stop)

    def close(self) -> None:
        if self.committed in self.db.after_commit:
            self.db.after_commit.remove(self.committed)

    def committed(self) -> None:
        """A commit wrote the change log: note when (for convergence figures), and wake the backend."""
        if len(self._commits) < MAX_PENDING_COMMITS:
            self._commits.append(time.time())
        self.wake.set()

    def restart(self, tx: Tx) -> list[float]:
        """The cursor to the log's end, in the transaction that reads everything; the commits that read covers."""
        commits, self._commits = self._commits, []
        self.seq = changes.last_seq(tx.conn)
        return commits

    def take(self, tx: Tx) -> tuple[list[ChangeRow], list[float]]:
        """The rows after the cursor (which moves past them), and the times of the commits they carry."""
        commits, self._commits = self._commits, []  # committed before this read: carried out by this round
        rows = changes.since(tx.conn, self.seq)
        if rows:
            self.seq = rows[-1].seq
        return rows, commits if rows else []

    def wait(self, timeout: float) -> None:
        self.wake.wait(timeout)
        self.wake.clear()


def follow_notifications(url: str, wake: Callable[[], None], stop: threading.Event) -> threading.Thread:
    """A thread that calls ``wake`` on each change-log NOTIFY until ``stop``; it reconnects if the server goes."""
    dsn = sa.engine.make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)

    def listen() -> None:
        while not stop.is_set():
            try:
                with psycopg.connect(dsn, autocommit=True) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    wake()  # anything committed while we were not listening
                    while not stop.is_set():
                        for _ in conn.notifies(timeout=1.0):
                            wake()
            except psycopg.OperationalError as err:
                LOG.warning("LISTEN %s: %s; polling until it is back", CHANNEL, err)
                stop.wait(1.0)

    thread = threading.Thread(target=listen, name="portsec-listen", daemon=True)
    thread.start()
    return thread
