"""Engine, migrations and the transaction every write runs in."""

from __future__ import annotations

import logging
import math
import os
import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import platformdirs
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection, Engine

from portsec.domain.errors import DatabaseBusy
from portsec.store.changes import CHANNEL
from portsec.store.schema import changes

ENV_URL = "PORTSEC_DATABASE_URL"
# Any constant works: it names the lock that orders change-log writers.
CHANGE_LOG_LOCK = 0x706F7274
RETRIES = 5
# How long a request may wait for the database (a lock held elsewhere, a server restarting) before it gets
# DatabaseBusy (503 with Retry-After): seconds, across retries and the queue for a thread (portsec.api.app).
ENV_WAIT = "PORTSEC_DATABASE_WAIT"
DEFAULT_WAIT = 5.0
# Connections kept per process for reads and for writes: the API runs at most as many threads of each kind
# (portsec.api.app), so no request waits for a connection and writers waiting on a lock never take the
# connections that reads need. SQLite has one write lock per file: a second writer thread of the same
# process would only sleep in SQLite's busy handler, so writes queue for the one writer thread instead.
# PostgreSQL locks rows: writers of different rows proceed together.
READERS = 8
WRITERS = {"sqlite": 1, "postgresql": 8}
OVERFLOW = 4  # with 4 workers, 80 PostgreSQL sessions at most: under its default max_connections (100)
# A transaction that is this far behind (it queued behind other writers, it is a retry, it already waited
# for a lock) may wait for further locks only until its request's deadline: PostgreSQL's lock_timeout counts
# each wait on its own, and one create can wait on several locks. One that is not keeps the connection's
# own limit and needs no statement to set it.
LATE_MS = 250
# PostgreSQL's lock_timeout of a transaction that must not wait (0 would mean no limit at all).
AT_ONCE_LOCK_MS = 1
T = TypeVar("T")


class WouldWait(Exception):
    """A transaction that may not wait met a lock held elsewhere, a lost race or a dead connection."""


def default_url() -> str:
    path = Path(platformdirs.user_data_dir("portsec")) / "portsec.db"
    return f"sqlite:///{path}"


def database_url(explicit: str | None = None) -> str:
    url = explicit or os.environ.get(ENV_URL) or default_url()
    # Plain postgresql:// would pick psycopg2; portsec ships psycopg 3.
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def now() -> datetime:
    """Whole seconds, naive UTC: what Neutron stores and returns."""
    return datetime.now(UTC).replace(tzinfo=None, microsecond=0)


@dataclass
class Change:
    resource: str
    resource_id: str
    project_id: str
    revision_number: int
    operation: str


@dataclass
class Tx:
    """One API-level write or read: a connection, its clock, and the changes it made."""

    conn: Connection
    now: datetime
    rng: random.Random
    changes: list[Change] = field(default_factory=list)

    @property
    def is_postgresql(self) -> bool:
        return self.conn.dialect.name == "postgresql"

    def record(self, resource: str, resource_id: str, project_id: str, revision: int, operation: str) -> None:
        self.changes.append(Change(resource, resource_id, project_id, revision, operation))


# A way to run work in one write transaction: Database.run (may wait) or Database.run_at_once (may not).
Run = Callable[[Callable[[Tx], Any]], Any]


def _sqlite_connect(wait_ms: int) -> Callable[..., None]:
    def connect(dbapi_conn, record) -> None:  # type: ignore[no-untyped-def]
        # Let SQLAlchemy's "begin" event issue BEGIN itself (pysqlite's own is lazy).
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute(f"PRAGMA busy_timeout={wait_ms}")  # first: WAL below may wait for a writer too
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()
        record.info["busy_ms"] = record.info["default_busy_ms"] = wait_ms

    return connect


@dataclass
class _LockBudget:
    """How long one transaction may still wait for locks: its deadline, and the limit its connection has now."""

    deadline: float
    limit_ms: int

    def tightened(self) -> int | None:
        """The lock wait left before the deadline when it is LATE_MS or more below the limit; else None."""
        left_ms = max(1, round((self.deadline - time.monotonic()) * 1000))  # 0 would mean no limit to PostgreSQL
        if left_ms > self.limit_ms - LATE_MS:
            return None
        self.limit_ms = left_ms
        return left_ms


def _sqlite_begin(conn: Connection) -> None:
    # SQLite waits for one lock, at BEGIN: a late transaction waits only as long as its request has left.
    info = conn.connection.info
    budget: _LockBudget | None = conn.get_execution_options().get("portsec_budget")  # None: not a transaction()
    busy_ms = (budget.tightened() if budget else None) or info["default_busy_ms"]
    if info["busy_ms"] != busy_ms:
        conn.connection.driver_connection.execute(f"PRAGMA busy_timeout={busy_ms}")  # type: ignore[union-attr]
        info["busy_ms"] = busy_ms
    # A writer takes the lock up front (IMMEDIATE), so two writers queue on
    # busy_timeout instead of one failing when it upgrades a read lock.
    write = conn.get_execution_options().get("portsec_write", True)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def _postgresql_connect(wait_ms: int, connect_timeout: int) -> Callable[..., None]:
    def connect(_dialect, _record, _cargs, cparams) -> None:  # type: ignore[no-untyped-def]
        # Every lock wait (row, table, advisory) ends after the bound with 55P03, set with the connection
        # itself rather than by a statement; options from the URL are kept.
        cparams["options"] = f"{cparams.get('options', '')} -c lock_timeout={wait_ms}".strip()
        cparams.setdefault("connect_timeout", connect_timeout)  # libpq's default waits for ever

    return connect


def _postgresql_statement(conn, cursor, _statement, _parameters, _context, _executemany) -> None:  # type: ignore[no-untyped-def]
    # Any statement may wait for a lock: once the transaction is late, it waits only as long as is left.
    budget: _LockBudget | None = conn.get_execution_options().get("portsec_budget")
    lock_ms = budget.tightened() if budget else None
    if lock_ms:
        cursor.connection.execute(f"SET LOCAL lock_timeout = {lock_ms}")


def _alembic_config(conn: Connection) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", "portsec.store:migrations")
    cfg.attributes["connection"] = conn
    return cfg


class Database:
    """The store's entry point: ``with db.transaction() as tx: ...``."""

    # Called after each commit that wrote change-log rows, whichever Database object of this process
    # made it: the agent of `portsec serve --agent` wakes at once instead of at its next poll.
    after_commit: ClassVar[list[Callable[[], None]]] = []

    def __init__(self, url: str | None = None, wait: float | None = None) -> None:
        self.url = database_url(url)
        # Seconds a transaction may wait for the database, from PORTSEC_DATABASE_WAIT by default.
        self.wait = wait if wait is not None else float(os.environ.get(ENV_WAIT, DEFAULT_WAIT))
        engine_url = sa.engine.make_url(self.url)
        backend = engine_url.get_backend_name()
        in_memory = backend == "sqlite" and engine_url.database in (None, "", ":memory:")
        if backend == "sqlite" and not in_memory:
            Path(engine_url.database).parent.mkdir(parents=True, exist_ok=True)  # type: ignore[arg-type]
        self.readers, self.writers = READERS, WRITERS.get(backend, 1)
        # A connection for each thread the API gives to the database (see READERS), so none waits for one;
        # the overflow is for callers outside those threads, and the timeout bounds their wait.
        pool = {"pool_size": self.readers + self.writers, "max_overflow": OVERFLOW, "pool_timeout": self.wait}
        self.engine: Engine = sa.create_engine(self.url, **({} if in_memory else pool))  # type: ignore[arg-type]
        self._wait_ms = max(1, round(self.wait * 1000))
        self._listen(self.engine, self._wait_ms)
        # One connection that never waits for a lock (see run_at_once); an in-memory SQLite would be another database.
        self._at_once: Engine | None = None
        if not in_memory:
            self._at_once = sa.create_engine(self.url, pool_size=1, max_overflow=0, pool_timeout=0)
            self._listen(self._at_once, 0 if backend == "sqlite" else AT_ONCE_LOCK_MS)
        self._rng = random.Random()

    def _listen(self, engine: Engine, lock_wait_ms: int) -> None:
        if engine.dialect.name == "sqlite":
            sa.event.listen(engine, "connect", _sqlite_connect(lock_wait_ms))
            sa.event.listen(engine, "begin", _sqlite_begin)
        elif engine.dialect.name == "postgresql":
            connect_timeout = max(2, math.ceil(self.wait))
            sa.event.listen(engine, "do_connect", _postgresql_connect(lock_wait_ms, connect_timeout))
            sa.event.listen(engine, "before_cursor_execute", _postgresql_statement)

    def migrate(self) -> None:
        """Bring the schema to the newest revision; cheap when it is there already."""
        logging.getLogger("alembic").setLevel(logging.WARNING)  # "Running upgrade" is noise in CLI output
        head = ScriptDirectory.from_config(_alembic_config(None)).get_current_head()  # type: ignore[arg-type]
        with self._busy_when_unavailable():
            # A read: a writer holding the database (another process) does not keep the CLI from starting.
            with self.engine.connect().execution_options(portsec_write=False) as conn:
                if MigrationContext.configure(conn).get_current_revision() == head:
                    return
            with self.engine.begin() as conn:
                if conn.dialect.name == "postgresql":
                    conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": CHANGE_LOG_LOCK + 1})
                command.upgrade(_alembic_config(conn), "head")

    def deadline(self) -> float:
        """When a request that starts now must have the database (``time.monotonic()``)."""
        return time.monotonic() + self.wait

    @contextmanager
    def transaction(self, write: bool = True, deadline: float | None = None) -> Iterator[Tx]:
        """One transaction, not retried; DatabaseBusy when the database cannot be had by ``deadline``."""
        with self._busy_when_unavailable(), self._transaction(write, self._or_now(deadline)) as tx:
            yield tx

    def run(self, work: Callable[[Tx], T], write: bool = True, deadline: float | None = None) -> T:
        """``work`` in one transaction, retried when a concurrent one won a race or a wait can still succeed.

        A unique value (MAC, IP) checked free can be taken by another writer
        before this one commits; the retry checks again and then either
        succeeds or reports the conflict in Neutron's terms. Deadlocks and
        serialization failures are retried the same way. A lock wait that ran
        out, or a connection that died (the server restarted), is retried while
        ``deadline`` (default: ``wait`` seconds from now) is ahead; after it, or
        when the server cannot be reached at all, DatabaseBusy.
        """
        deadline = self._or_now(deadline)
        with self._busy_when_unavailable():
            for attempt in range(1, RETRIES + 1):
                try:
                    with self._transaction(write, deadline) as tx:
                        return work(tx)
                except _ERRORS as err:
                    if attempt == RETRIES or not _retryable(err, deadline):
                        raise
        raise AssertionError("unreachable")

    def run_at_once(self, work: Callable[[Tx], T]) -> T:
        """``work`` in one write transaction that waits for no lock: WouldWait instead of any wait.

        What the API runs on its event loop (portsec.api.app): a write that finds
        the database free costs only its own work there, no thread hand-off; one
        that would wait for a lock (SQLite's write lock held by another process,
        a PostgreSQL row or table lock), lost a race or met a dead connection is
        rolled back and raises WouldWait, and the caller runs it again with
        ``run``, where waiting is harmless.
        """
        if self._at_once is None:
            raise WouldWait()
        try:
            with self._transaction(True, time.monotonic(), self._at_once) as tx:
                return work(tx)
        except _ERRORS as err:
            if _unavailable(err) or (isinstance(err, sa.exc.DBAPIError) and _raced(err)):
                raise WouldWait() from err
            raise

    def _or_now(self, deadline: float | None) -> float:
        return self.deadline() if deadline is None else deadline

    @contextmanager
    def _transaction(self, write: bool, deadline: float, engine: Engine | None = None) -> Iterator[Tx]:
        options: dict[str, Any] = {"portsec_write": write}
        if engine is None:
            engine = self.engine
            options["portsec_budget"] = _LockBudget(deadline, self._wait_ms)
        with engine.connect().execution_options(**options) as conn, conn.begin():
            tx = Tx(conn=conn, now=now(), rng=self._rng)  # type: ignore[arg-type]
            yield tx
            _write_changes(tx)
        if tx.changes:
            for wake in self.after_commit:
                wake()

    @contextmanager
    def _busy_when_unavailable(self) -> Iterator[None]:
        """DatabaseBusy for what only waiting can cure (see _unavailable); other errors as they are."""
        try:
            yield
        except _ERRORS as err:
            if not _unavailable(err):
                raise
            raise DatabaseBusy(seconds=f"{self.wait:g}") from err

    def dispose(self) -> None:
        self.engine.dispose()
        if self._at_once is not None:
            self._at_once.dispose()


# What a transaction can fail with: the driver's errors (wrapped), and no pooled connection in time.
_ERRORS = (sa.exc.DBAPIError, sa.exc.TimeoutError)


def _code(err: sa.exc.DBAPIError) -> str:
    """The driver's name for a failure: PostgreSQL's SQLSTATE, SQLite's result code name; "" when none."""
    return getattr(err.orig, "sqlstate", None) or getattr(err.orig, "sqlite_errorname", None) or ""


def _raced(err: sa.exc.DBAPIError) -> bool:
    """Another transaction won: a unique value taken, a deadlock, a serialization failure."""
    return isinstance(err, sa.exc.IntegrityError) or _code(err) in ("40P01", "40001")


def _lock_wait_ran_out(err: sa.exc.DBAPIError) -> bool:
    """SQLite's busy_timeout or PostgreSQL's lock_timeout (55P03) ended a wait for a lock held elsewhere."""
    return _code(err).startswith("SQLITE_BUSY") or _code(err) == "55P03"


def _unreachable(err: sa.exc.DBAPIError) -> bool:
    """No PostgreSQL session to be had: refused, or the server is starting or shutting down.

    psycopg gives no SQLSTATE when it cannot reach the server at all.
    """
    if not isinstance(err, sa.exc.OperationalError) or not hasattr(err.orig, "sqlstate"):
        return False
    code = _code(err)
    return code == "" or code.startswith("08") or code in ("57P01", "57P02", "57P03")


def _retryable(err: sa.exc.DBAPIError | sa.exc.TimeoutError, deadline: float) -> bool:
    if not isinstance(err, sa.exc.DBAPIError):
        return False
    if _raced(err):
        return True
    # A dead connection is discarded with the rest of the pool's, so the next attempt connects afresh.
    waited = _lock_wait_ran_out(err) or err.connection_invalidated
    return waited and time.monotonic() < deadline


def _unavailable(err: sa.exc.DBAPIError | sa.exc.TimeoutError) -> bool:
    if isinstance(err, sa.exc.TimeoutError):
        return True
    return _lock_wait_ran_out(err) or err.connection_invalidated or _unreachable(err)


def _write_changes(tx: Tx) -> None:
    if not tx.changes:
        return
    if tx.is_postgresql:
        # Sequence values are handed out before commit; holding this lock until
        # commit makes seq order equal commit order, so a reader that saw seq N
        # never later finds a smaller seq appear.
        # pg_notify(channel, '') is NOTIFY channel, in the same round trip as the lock.
        tx.conn.execute(
            sa.text("SELECT pg_advisory_xact_lock(:k), pg_notify(:channel, '')"),
            {"k": CHANGE_LOG_LOCK, "channel": CHANNEL},
        )
    tx.conn.execute(
        changes.insert(),
        [
            {
                "resource": c.resource,
                "resource_id": c.resource_id,
                "project_id": c.project_id,
                "revision_number": c.revision_number,
                "operation": c.operation,
                "created_at": tx.now,
            }
            for c in tx.changes
        ],
    )
