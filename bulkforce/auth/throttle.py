"""What a flood of logins may cost (issue #9, item 12). Every password or client-secret check runs
argon2id (64 MiB, ~0.2 s of CPU); on the shared request thread pool 50 parallel bad logins took
2.4 GB and starved every API call. Here logins get their own small executor; one client address
or username has a few in flight at a time (the rest queue); and logins are refused without any
hashing when too many are pending overall or too many failed for the address or the username in
the last minute.

State lives on the event loop thread only (admission and release both run there), so it needs
no lock. A refused login looks exactly like a failed one to the client, as on Salesforce, and is
logged once.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import ParamSpec, TypeVar

from bulkforce.errors import Kind, ServiceError

log = logging.getLogger("bulkforce.auth")

P = ParamSpec("P")
T = TypeVar("T")

# The outcomes that count as a failed attempt against the address and the username.
_FAILURES = frozenset({Kind.INVALID_LOGIN, Kind.INVALID_CLIENT, Kind.INVALID_CLIENT_ID,
                       Kind.INVALID_GRANT})  # fmt: skip
_WINDOW = 60.0
_MAX_KEYS = 10_000
# argon2id hashes with 4 lanes, each on its own thread, so two login threads keep 8 threads busy:
# on a 2-core machine a flood starved the API and the worker (a 1-row job took 2.75 s). The login
# threads run at a lower priority, which the lanes' threads inherit (Linux's nice is per thread):
# a login still gets ~10% of a busy core, the API and the worker the rest.
_LOGIN_NICE = 10


def _lower_priority() -> None:
    with contextlib.suppress(AttributeError, OSError):  # no per-thread priority on this system
        tid = threading.get_native_id()
        nice = min(19, os.getpriority(os.PRIO_PROCESS, tid) + _LOGIN_NICE)
        os.setpriority(os.PRIO_PROCESS, tid, nice)


@dataclass(frozen=True)
class ThrottleSettings:
    # argon2id threads: each holds 64 MiB while hashing, so this bounds login memory too
    threads: int = 2
    # logins waiting for or holding a hashing thread, over all clients
    max_pending: int = 64
    # logins in flight for one client address or one username (more wait their turn)
    per_key: int = 4
    # failed logins of one client address or username per minute before further ones are
    # refused unchecked (the user lockout still counts the ones that are checked)
    failures_per_minute: int = 30


class LoginThrottle:
    def __init__(self, settings: ThrottleSettings) -> None:
        self.settings = settings
        self._executor = ThreadPoolExecutor(
            settings.threads, thread_name_prefix="bulkforce-login", initializer=_lower_priority
        )
        self._pending = 0
        # per key: the semaphore bounding its logins in flight, and how many logins use it
        self._slots: dict[str, tuple[asyncio.Semaphore, int]] = {}
        self._failures: dict[str, deque[float]] = {}

    def _recent_failures(self, key: str, now: float) -> int:
        times = self._failures.get(key)
        if times is None:
            return 0
        while times and times[0] <= now - _WINDOW:
            times.popleft()
        if not times:
            del self._failures[key]
            return 0
        return len(times)

    def _refusal(self, keys: Sequence[str], now: float) -> str | None:
        if self._pending >= self.settings.max_pending:
            return "too many logins pending"
        for key in keys:
            if self._recent_failures(key, now) >= self.settings.failures_per_minute:
                return f"too many failed logins for {key} in the last minute"
        return None

    def _hold(self, key: str) -> asyncio.Semaphore:
        sem, users = self._slots.get(key) or (asyncio.Semaphore(self.settings.per_key), 0)
        self._slots[key] = (sem, users + 1)
        return sem

    def _release(self, key: str) -> None:
        sem, users = self._slots[key]
        if users <= 1:
            del self._slots[key]
        else:
            self._slots[key] = (sem, users - 1)

    def _failed(self, keys: Sequence[str]) -> None:
        failed_at = time.monotonic()
        if len(self._failures) > _MAX_KEYS:  # many distinct names: forget the expired ones
            for key in list(self._failures):
                self._recent_failures(key, failed_at)
        for key in keys:
            self._failures.setdefault(key, deque()).append(failed_at)

    async def run(
        self, keys: Sequence[str], fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """Run one login check (`fn`, blocking) on the login executor, or refuse it. `keys`:
        the client address and the username, each limited on its own. Logins of one key past
        its in-flight bound wait their turn, so each is still checked and counted by the
        store's lockout, in order."""
        keys = sorted({k for k in keys if k})  # one acquisition order: no deadlock
        refusal = self._refusal(keys, time.monotonic())
        if refusal is not None:
            log.warning("login refused: %s", refusal)
            raise ServiceError(Kind.INVALID_LOGIN, "authentication failure")
        self._pending += 1
        try:
            async with contextlib.AsyncExitStack() as stack:
                for key in keys:
                    stack.callback(self._release, key)
                    await stack.enter_async_context(self._hold(key))
                loop = asyncio.get_running_loop()
                return await loop.run_in_executor(
                    self._executor, functools.partial(fn, *args, **kwargs)
                )
        except ServiceError as e:
            if e.kind in _FAILURES:
                self._failed(keys)
            raise
        finally:
            self._pending -= 1

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
