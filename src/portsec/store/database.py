"""Engine, migrations and the transaction every write runs in."""

from __future__ import annotations

import logging
import os
import random
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import ClassVar, TypeVar

import platformdirs
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection, Engine

from portsec.store.changes import CHANNEL
from portsec.store.schema import changes

ENV_URL = "PORTSEC_DATABASE_URL"
# Any constant works: it names the lock that orders change-log writers.
CHANGE_LOG_LOCK = 0x706F7274
RETRIES = 5
T = TypeVar("T")


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


def _sqlite_connect(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
    # Let SQLAlchemy's "begin" event issue BEGIN itself (pysqlite's own is lazy).
    dbapi_conn.isolation_level = None
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def _sqlite_begin(conn: Connection) -> None:
    # A writer takes the lock up front (IMMEDIATE), so two writers queue on
    # busy_timeout instead of one failing when it upgrades a read lock.
    write = conn.get_execution_options().get("portsec_write", True)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


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

    def __init__(self, url: str | None = None) -> None:
        self.url = database_url(url)
        engine_url = sa.engine.make_url(self.url)
        if engine_url.get_backend_name() == "sqlite" and engine_url.database not in (None, "", ":memory:"):
            Path(engine_url.database).parent.mkdir(parents=True, exist_ok=True)
        self.engine: Engine = sa.create_engine(self.url)
        if self.engine.dialect.name == "sqlite":
            sa.event.listen(self.engine, "connect", _sqlite_connect)
            sa.event.listen(self.engine, "begin", _sqlite_begin)
        self._rng = random.Random()

    def migrate(self) -> None:
        """Bring the schema to the newest revision; cheap when it is there already."""
        logging.getLogger("alembic").setLevel(logging.WARNING)  # "Running upgrade" is noise in CLI output
        head = ScriptDirectory.from_config(_alembic_config(None)).get_current_head()  # type: ignore[arg-type]
        with self.engine.connect() as conn:
            if MigrationContext.configure(conn).get_current_revision() == head:
                return
        with self.engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": CHANGE_LOG_LOCK + 1})
            command.upgrade(_alembic_config(conn), "head")

    @contextmanager
    def transaction(self, write: bool = True) -> Iterator[Tx]:
        with self.engine.connect().execution_options(portsec_write=write) as conn, conn.begin():
            tx = Tx(conn=conn, now=now(), rng=self._rng)  # type: ignore[arg-type]
            yield tx
            _write_changes(tx)
        if tx.changes:
            for wake in self.after_commit:
                wake()

    def run(self, work: Callable[[Tx], T], write: bool = True) -> T:
        """``work`` in one transaction, retried when a concurrent one won a race.

        A unique value (MAC, IP) checked free can be taken by another writer
        before this one commits; the retry checks again and then either
        succeeds or reports the conflict in Neutron's terms. Deadlocks and
        serialization failures are retried the same way.
        """
        for attempt in range(RETRIES):
            try:
                with self.transaction(write) as tx:
                    return work(tx)
            except (sa.exc.IntegrityError, sa.exc.OperationalError) as err:
                if attempt == RETRIES - 1 or not _retryable(err):
                    raise
        raise AssertionError("unreachable")

    def dispose(self) -> None:
        self.engine.dispose()


def _retryable(err: sa.exc.DBAPIError) -> bool:
    if isinstance(err, sa.exc.IntegrityError):
        return True
    state = getattr(err.orig, "sqlstate", None)  # psycopg: deadlock, serialization failure
    return state in ("40P01", "40001") or "database is locked" in str(err.orig)


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
