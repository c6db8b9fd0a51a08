"""How an API request tells idle workers there is work: an in-process signal for SQLite (one
process owns the database), LISTEN/NOTIFY for PostgreSQL (workers in other processes/hosts).

A signal wakes one idle worker thread, not all of them. Each woken thread claims, and a claim
that finds nothing costs a transaction; with every thread woken per job a 1-record job paid
for a claim per idle thread, on the cores its own work needed."""

from __future__ import annotations

import abc
import threading


class Wakeup(abc.ABC):
    @abc.abstractmethod
    def set(self) -> None:
        """There is new work: wake an idle worker."""

    @abc.abstractmethod
    def wait(self, timeout: float) -> None:
        """Return when woken (consuming the signal) or after `timeout` seconds."""

    def wake_all(self) -> None:
        """Wake every waiting worker of this process (they are stopping)."""
        self.set()


class Permits:
    """Wake-ups handed out one per waiting thread. Signals that arrive while no thread waits
    are kept, up to one per thread that has waited: a thread that found nothing an instant
    before the work was committed must still find the signal when it comes to wait."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._permits = 0
        self._threads: set[int] = set()

    def give(self) -> None:
        with self._cond:
            self._permits = min(self._permits + 1, max(1, len(self._threads)))
            self._cond.notify()

    def give_all(self) -> None:
        with self._cond:
            self._permits = max(1, len(self._threads))
            self._cond.notify_all()

    def take(self, timeout: float) -> bool:
        """Wait for a permit; False after `timeout` seconds without one."""
        with self._cond:
            self._threads.add(threading.get_ident())
            if self._cond.wait_for(lambda: self._permits > 0, timeout):
                self._permits -= 1
                return True
            return False


class ThreadWakeup(Wakeup):
    def __init__(self) -> None:
        self._permits = Permits()

    def set(self) -> None:
        self._permits.give()

    def wait(self, timeout: float) -> None:
        self._permits.take(timeout)

    def wake_all(self) -> None:
        self._permits.give_all()
