"""Waking idle PostgreSQL workers: NOTIFY when there is work; one LISTEN connection per process
hands each notification to one waiting worker thread."""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg import sql

from bulkforce.store.pgsql import CHANNEL, wrapped
from bulkforce.store.wakeup import Permits, Wakeup

if TYPE_CHECKING:
    from bulkforce.store.postgres import PostgresStore

log = logging.getLogger(__name__)

# How often the listener looks up from its socket to see whether it should stop.
LISTEN_POLL_SECONDS = 1.0
RECONNECT_SECONDS = 0.5


class PgWakeup(Wakeup):
    """NOTIFY on set. In a process whose threads wait, a listener thread (started by the first
    wait) LISTENs on its own connection and gives each notification to one waiting thread."""

    def __init__(self, store: PostgresStore) -> None:
        self.store = store
        self._permits = Permits()
        self._lock = threading.Lock()
        self._listener: threading.Thread | None = None
        self._closed = threading.Event()
        self.listening = threading.Event()  # set while LISTEN is in effect (tests wait on it)

    def set(self) -> None:
        with self.store._conns.borrow() as conn, wrapped():
            conn.execute(sql.SQL("NOTIFY {}").format(sql.Identifier(CHANNEL)))

    def wait(self, timeout: float) -> None:
        if self._listener is None:
            with self._lock:
                if self._listener is None and not self._closed.is_set():
                    self._listener = threading.Thread(
                        target=self._listen, name="bulkforce-listen", daemon=True
                    )
                    self._listener.start()
        self._permits.take(timeout)

    def wake_all(self) -> None:
        self._permits.give_all()

    def close(self) -> None:
        self._closed.set()
        if self._listener is not None:
            self._listener.join(timeout=LISTEN_POLL_SECONDS * 3)

    def _listen(self) -> None:
        while not self._closed.is_set():
            conn: psycopg.Connection[Any] | None = None
            try:
                conn = psycopg.connect(self.store.url, autocommit=True)
                conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(CHANNEL)))
                self.listening.set()
                # Work may have come while no LISTEN was in effect (start, reconnect).
                self._permits.give()
                while not self._closed.is_set():
                    for _ in conn.notifies(timeout=LISTEN_POLL_SECONDS):
                        self._permits.give()
            except psycopg.Error as e:
                # The database is unwell: waiting threads still wake on their timeout and
                # retry; the listener tries again.
                log.debug("LISTEN connection lost (%s); reconnecting", e)
                self.listening.clear()
                self._closed.wait(RECONNECT_SECONDS)
            finally:
                if conn is not None:
                    conn.close()
        self.listening.clear()
