"""How an API request tells idle workers there is work: an in-process event for SQLite (one
process owns the database), LISTEN/NOTIFY for PostgreSQL (workers in other processes/hosts)."""

from __future__ import annotations

import abc
import threading


class Wakeup(abc.ABC):
    @abc.abstractmethod
    def set(self) -> None: ...

    @abc.abstractmethod
    def wait(self, timeout: float) -> None:
        """Return when woken (consuming the signal) or after `timeout` seconds."""


class ThreadWakeup(Wakeup):
    def __init__(self) -> None:
        self._event = threading.Event()

    def set(self) -> None:
        self._event.set()

    def wait(self, timeout: float) -> None:
        self._event.wait(timeout)
        self._event.clear()
