"""Fixtures: a database on each backend (SQLite file, real PostgreSQL), an admin context, and a data plane."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from portsec.domain.model import Context
from portsec.store.database import Database
from portsec.store.schema import metadata
from tests import ovs, postgres
from tests.dataplane import Dataplane, dataplane

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


@pytest.fixture(scope="module")
def sw() -> Iterator[ovs.Switch]:
    """A private Open vSwitch with br-int, for one test module."""
    assert ovs.available(), "these tests need Open vSwitch and root (.ci/run installs it)"
    with ovs.switch() as switch:
        yield switch


@pytest.fixture
def plane(tmp_path: Path, sw: ovs.Switch) -> Iterator[Dataplane]:
    """A database and the agent running on ``sw``; VMs plugged through it are unplugged after the test."""
    with dataplane(tmp_path, sw) as p:
        yield p
