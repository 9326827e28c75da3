"""Waking on PostgreSQL's NOTIFY: writers signal the change log at commit, so the agent need not poll."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import psycopg
import sqlalchemy as sa

from portsec.store.changes import CHANNEL

LOG = logging.getLogger(__name__)


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
