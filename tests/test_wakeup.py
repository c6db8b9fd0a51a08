"""Waking idle workers: a signal (an API write that made work) wakes one idle worker thread,
not every one, on both stores; none is lost while no thread waits or while PostgreSQL's
LISTEN connection is being replaced."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from conftest import BACKENDS, inprocess_context
from test_worker import ADMIN, submit
from test_worker_process import wait_for

from bulkforce.jobs.service import Context, IngestService
from bulkforce.model import JobState
from bulkforce.store.pgwakeup import PgWakeup
from bulkforce.store.wakeup import Wakeup
from bulkforce.worker import Worker


@pytest.fixture(params=BACKENDS)
def ctx(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Context]:
    with inprocess_context(request.param, tmp_path / "d") as context:
        yield context


class Waiters:
    """`n` threads that wait on `wake` over and over and count how often they were woken."""

    def __init__(self, wake: Wakeup, n: int) -> None:
        self.wake = wake
        self.woken = 0
        self.stop = False
        self._lock = threading.Lock()
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(n)]
        for t in self.threads:
            t.start()

    def _run(self) -> None:
        while not self.stop:
            before = time.monotonic()
            self.wake.wait(30)
            if not self.stop and time.monotonic() - before < 29:
                with self._lock:
                    self.woken += 1

    def settled(self, quiet: float = 0.7) -> int:
        """The count once it has not moved for `quiet` seconds."""
        while True:
            seen = self.woken
            time.sleep(quiet)
            if self.woken == seen:
                return seen

    def close(self) -> None:
        self.stop = True
        self.wake.wake_all()
        for t in self.threads:
            t.join(timeout=10)
        assert not any(t.is_alive() for t in self.threads), "wake_all left a thread waiting"


def listening(wake: Wakeup) -> None:
    if isinstance(wake, PgWakeup):
        assert wake.listening.wait(10), "the listener never LISTENed"


def test_one_signal_wakes_one_idle_thread_and_each_signal_one(ctx: Context) -> None:
    waiters = Waiters(ctx.wake, 3)
    try:
        listening(ctx.wake)
        start = waiters.settled()
        ctx.wake.set()
        assert waiters.settled() == start + 1
        for _ in range(2):
            ctx.wake.set()
        assert waiters.settled() == start + 3
    finally:
        waiters.close()


def test_a_signal_given_while_no_thread_waits_is_kept_for_the_next_wait(ctx: Context) -> None:
    # A worker whose claim found nothing an instant before the job was committed must not
    # sleep through the wake-up that came before it got back to waiting.
    ctx.wake.wait(0.01)  # starts PostgreSQL's listener
    listening(ctx.wake)
    ctx.wake.wait(1)  # the listener's own wake-up when it starts (work may have come)
    ctx.wake.set()
    time.sleep(0.5)  # the notification has arrived; nobody waits
    t = time.monotonic()
    ctx.wake.wait(10)
    assert time.monotonic() - t < 2


def test_a_job_wakes_one_of_two_idle_worker_threads(ctx: Context) -> None:
    """Each woken thread claims, and a claim that finds nothing is a transaction (~1 ms of a
    1-record job's CPU on PostgreSQL): the job costs the claim that took it and the one after
    its work, not one more per idle thread."""
    claims: list[float] = []
    real = ctx.store.claim_jobs

    def counted(*args: Any) -> Any:
        claims.append(time.monotonic())
        return real(*args)

    ctx.store.claim_jobs = counted  # type: ignore[method-assign]
    workers = [Worker(ctx) for _ in range(2)]
    # a long idle wait: only wake-ups make them claim
    threads = [threading.Thread(target=w.run_forever, args=(60,), daemon=True) for w in workers]
    for t in threads:
        t.start()
    try:
        listening(ctx.wake)
        assert wait_for(lambda: len(claims) >= 2, timeout=10)  # each looked once at start
        time.sleep(1.0)
        svc = IngestService(ctx)
        before = len(claims)
        job_id = submit(svc, b"LastName\nOne\n")
        assert wait_for(lambda: svc.get(job_id, ADMIN).state is JobState.JOB_COMPLETE, 10)
        time.sleep(1.0)
        assert len(claims) - before == 2
    finally:
        for w in workers:
            w.stopping.set()
        ctx.wake.wake_all()
        for t in threads:
            t.join(timeout=10)
    assert not any(t.is_alive() for t in threads), "wake_all left a worker waiting"


def test_the_listener_comes_back_after_its_session_is_ended(tmp_path: Path) -> None:
    """PostgreSQL only: SQLite's wake-ups stay in the process."""
    with inprocess_context("postgresql", tmp_path / "d") as ctx:
        assert isinstance(ctx.wake, PgWakeup)
        listener_comes_back(ctx.wake)


def listener_comes_back(wake: PgWakeup) -> None:
    waiters = Waiters(wake, 1)
    try:
        listening(wake)
        start = waiters.settled()
        with psycopg.connect(wake.store.url, autocommit=True) as admin:
            ended = admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND query LIKE 'LISTEN%%'"
            ).fetchall()
        assert ended == [(True,)]
        assert wait_for(lambda: not wake.listening.is_set(), timeout=10)
        listening(wake)
        # the new LISTEN's own wake-up (a notification may have come while none was in effect)
        assert waiters.settled() == start + 1
        wake.set()
        assert waiters.settled() == start + 2
    finally:
        waiters.close()
