"""Waking idle PostgreSQL workers: NOTIFY when there is work, LISTEN while there is none."""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg import sql

from bulkforce.store.pgsql import CHANNEL, wrapped
from bulkforce.store.wakeup import Wakeup

if TYPE_CHECKING:
    from bulkforce.store.postgres import PostgresStore


class PgWakeup(Wakeup):
    """NOTIFY on set; each waiting thread LISTENs on its own connection."""

    def __init__(self, store: PostgresStore) -> None:
        self.store = store
        self._local = threading.local()

    def set(self) -> None:
        with self.store._conns.borrow() as conn, wrapped():
            conn.execute(sql.SQL("NOTIFY {}").format(sql.Identifier(CHANNEL)))

    def wait(self, timeout: float) -> None:
        conn: psycopg.Connection[Any] | None = getattr(self._local, "conn", None)
        try:
            if conn is None:
                conn = psycopg.connect(self.store.url, autocommit=True)
                conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(CHANNEL)))
                self._local.conn = conn
            for _ in conn.notifies(timeout=timeout, stop_after=1):
                pass
        except psycopg.Error:
            self._local.conn = None
            time.sleep(min(timeout, 0.5))  # the database is unwell; the worker retries
