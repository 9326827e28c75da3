"""Fixtures: a database on each backend (SQLite file, real PostgreSQL), and an admin context."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from portsec.domain.model import Context
from portsec.store.database import Database
from portsec.store.schema import metadata
from tests import postgres

_counter = itertools.count()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    with postgres.server() as url:
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgresql)])
def db(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[Database]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/portsec.db"
    else:
        url = postgres.fresh_database(request.getfixturevalue("postgres_url"), f"t{next(_counter)}")
    database = Database(url)
    database.migrate()
    yield database
    database.dispose()


@pytest.fixture
def sqlite_db(tmp_path: Any) -> Iterator[Database]:
    database = Database(f"sqlite:///{tmp_path}/portsec.db")
    database.migrate()
    yield database
    database.dispose()


@pytest.fixture
def admin() -> Context:
    return Context.admin()


def dump(db: Database) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, to show that a refused request changed nothing."""
    with db.engine.connect() as conn:
        return {t.name: sorted(map(tuple, conn.execute(sa.select(t))), key=repr) for t in metadata.sorted_tables}
