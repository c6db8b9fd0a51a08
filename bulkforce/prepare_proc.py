"""Prepare a large job's internal batches in a child process while the worker writes.

The prefetch *thread* (bulkforce.prefetch) overlaps little on SQLite: sqlite3 gives up the
GIL around each statement's step and must win it back from a thread that is parsing, so
the writer waits on the GIL more than it works. Measured here, 300,000 Contact rows in
multi-row INSERTs: 2.1-3.3 s alone, 3-4 s with a busy second *process*, 27-43 s with a busy
second *thread* in the same process. So for a job of several batches the parsing, coercion
and result quoting run in a child process: the worker feeds it the upload's bytes through
a pipe and gets each batch back pickled (~3.5 MB, ~9 ms to unpickle per 10,000 rows).
SQLite only (Store.prepare_in_child): PostgreSQL formats COPY rows holding the GIL anyway,
and its backend needs the second core more than the pickling would give back. Re-measured
with the workers in a process of their own (1M-row insert, 2 cores, two runs each): 42.0k and
42.3k rec/s with the child against 44.6k and 45.6k with the thread; the bulkforce processes'
CPU went from 14.3 to 18.8 s.

One child per Worker, started on the first large job and kept for the next ones. A job
that ends early (aborted, lease lost, an error in the writer) kills it: there is nothing
in it worth saving, and the next job starts a new one. If the child dies mid-job, the
worker goes on with the job on a thread (worker.py); if the worker dies, the child reads
end-of-file or a broken pipe and exits.

The protocol, frames of (kind, length, payload) both ways:
    worker → child: J (pickled Spec), then D (upload bytes) …, then E (end of upload)
    child → worker: B (pickled batch) …, then N (end; payload: child CPU seconds) or
                    X (pickled exception, raised in the worker where its batch would be)
"""

from __future__ import annotations

import contextlib
import fcntl
import gc
import io
import os
import pickle
import queue
import signal
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, overload

from bulkforce.engine.errors import malformed_rows
from bulkforce.engine.plan import Plan
from bulkforce.engine.prepare import Prepared, prepare
from bulkforce.engine.schema import Schema
from bulkforce.heap import fix_mmap_threshold, trim_heap
from bulkforce.model import BATCH_CELLS, BATCH_SIZE
from bulkforce.prefetch import Batches
from bulkforce.store.base import StoreError
from bulkforce.store.blobs import ChunkReader
from bulkforce.wire.csvio import RowReader, quoted_bodies

# One internal batch as the worker writes it: its rows, their coerced values and their
# quoted text for the result files (None: quoted row by row when rendered).
Chunk = tuple[Sequence[Sequence[str]], Prepared, list[bytes] | None]
# As it crosses the pipe: the rows that Prepared.raw does not hold as read (see Rows)
Sent = tuple[Prepared, dict[int, list[str]], list[bytes] | None]

_HEAD = struct.Struct("<cQ")
FEED_BLOCK = 1 << 20
AHEAD = 2  # batches read from the child and not yet taken by the writer (~4.5 MB each)


class PrepareProcessDied(StoreError):
    """The child stopped answering. The worker goes on with the job on a thread from the
    batches committed (nothing was committed for those the child had not delivered). A
    StoreError should it get further: like a sick database it is no fault of the job's,
    which keeps its lease and is retried."""


@dataclass
class Spec:
    """What the child needs to turn the upload into the same batches the worker would."""

    schema: Schema
    plan: Plan
    delimiter: str
    newline: str
    skip: int  # rows of the batches already committed
    holds_nul: bool
    user_id: str
    batch_size: int = BATCH_SIZE
    batch_cells: int = BATCH_CELLS


# ---- framing ---------------------------------------------------------------------------------


def _write(fd: int, kind: bytes, payload: bytes | memoryview = b"") -> None:
    """One frame, whole: os.write may take part of it (a pipe, a signal), so loop."""
    for part in (_HEAD.pack(kind, len(payload)), payload):
        view = memoryview(part)
        while view:
            view = view[os.write(fd, view) :]


def _read_exact(fd: int, size: int) -> bytearray:
    buf = bytearray(size)
    view = memoryview(buf)
    got = 0
    while got < size:
        n = os.readv(fd, [view[got:]])
        if n == 0:
            raise EOFError
        got += n
    return buf


def _read(fd: int) -> tuple[bytes, bytearray]:
    kind, size = _HEAD.unpack(_read_exact(fd, _HEAD.size))
    return kind, _read_exact(fd, size)


# ---- the child -------------------------------------------------------------------------------


def _upload_chunks(inp: int) -> Callable[[], bytearray | None]:
    """The upload as the worker feeds it: D frames until E."""

    def next_chunk() -> bytearray | None:
        kind, payload = _read(inp)
        if kind == b"E":
            return None
        if kind != b"D":
            raise EOFError(f"unexpected frame {kind!r} inside an upload")
        return payload

    return next_chunk


class Rows(Sequence[Sequence[str]]):
    """A batch's rows rebuilt from its columns (Prepared.raw), which hold the same strings;
    the rows that Prepared.raw blanked (malformed, wrong width) come as they were read.
    Pickling the rows besides the columns would double the worker's unpickling."""

    def __init__(self, columns: Sequence[Sequence[str]], n: int, kept: dict[int, list[str]]):
        self._columns = columns
        self._n = n
        self._kept = kept

    def __len__(self) -> int:
        return self._n

    @overload
    def __getitem__(self, i: int) -> Sequence[str]: ...
    @overload
    def __getitem__(self, i: slice) -> Sequence[Sequence[str]]: ...
    def __getitem__(self, i: int | slice) -> Sequence[str] | Sequence[Sequence[str]]:
        if isinstance(i, slice):
            return [self[k] for k in range(*i.indices(self._n))]
        if i < 0:
            i += self._n
        if not 0 <= i < self._n:
            raise IndexError(i)
        kept = self._kept.get(i)
        return kept if kept is not None else [c[i] for c in self._columns]

    def __iter__(self) -> Iterator[Sequence[str]]:
        return (self[i] for i in range(self._n))


def _batches(spec: Spec, source: BinaryIO) -> Iterator[Sent]:
    """The worker's batches, as worker._run_batches would produce them on its own thread,
    in the form they cross the pipe (see Rows)."""
    rows = RowReader(source, spec.delimiter)
    rows.header()
    rows.skip(spec.skip)
    while chunk := rows.next_rows(spec.batch_size, spec.batch_cells):
        bad = malformed_rows(rows.malformed)
        prepared = prepare(
            spec.schema, spec.plan, chunk, bad, spec.holds_nul, spec.user_id, rows.clean
        )
        kept = {i: chunk[i] for i, e in enumerate(prepared.errors) if e is not None}
        yield prepared, kept, quoted_bodies(chunk, spec.delimiter, spec.newline)


def _squash(texts: Sequence[str]) -> str | Sequence[str]:
    """Strings as one, joined on NUL, unless one holds a NUL itself (SQLite keeps them):
    splitting one string makes the worker's strings ~40% faster than unpickling each."""
    joined = "\x00".join(texts)
    return joined if joined.count("\x00") == len(texts) - 1 else texts


def _unsquash(packed: str | Sequence[str]) -> list[str]:
    return packed.split("\x00") if isinstance(packed, str) else list(packed)


def _pack(sent: Sent) -> bytes:
    """A batch as bytes. Pickled without a memo ("fast" mode: 4 ms instead of 14-25 ms per
    10,000 rows, most of the child's pickling), which would write an object once per
    reference: so columns that are the same object as the one before them in
    Prepared.raw → values → stored are sent as None and made the same again in _unpack.
    Prepared.raw goes squashed, the result lines joined on NUL (quoted_bodies: none in them)."""
    prepared, kept, bodies = sent
    raw, values = prepared.raw, prepared.values
    plain = (
        prepared.n, [_squash(c) for c in raw], prepared.errors, prepared.col_errors,
        {j: None if v is raw[j] else v for j, v in values.items()},
        {j: None if v is values.get(j) else v for j, v in prepared.stored.items()},
        kept, None if bodies is None else b"\x00".join(bodies),
    )  # fmt: skip
    buf = io.BytesIO()
    pickler = pickle.Pickler(buf, protocol=pickle.HIGHEST_PROTOCOL)
    pickler.fast = True  # no memo: nothing in a batch refers to itself
    pickler.dump(plain)
    return buf.getvalue()


def _unpack(payload: bytes | bytearray) -> Chunk:
    n, packed, errors, col_errors, values, stored, kept, bodies = pickle.loads(payload)
    raw: list[Sequence[str]] = [_unsquash(c) for c in packed]
    for j, v in values.items():
        if v is None:
            values[j] = raw[j]
    for j, v in stored.items():
        if v is None:
            stored[j] = values[j]
    prepared = Prepared(n, raw, errors, values, col_errors, stored)
    return Rows(raw, n, kept), prepared, None if bodies is None else bodies.split(b"\x00")


def _dump_error(e: BaseException) -> bytes:
    try:
        return pickle.dumps(e)
    except Exception:  # an exception that does not pickle still reaches the worker
        return pickle.dumps(RuntimeError(f"{type(e).__name__}: {e}"))


def child_main() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the server, which stops us
    fix_mmap_threshold()
    inp, out = sys.stdin.fileno(), sys.stdout.fileno()
    gc.disable()  # each batch is ~300,000 small objects, freed by reference counting
    while True:
        try:
            kind, payload = _read(inp)
        except EOFError:
            return  # the worker is gone
        if kind != b"J":
            continue
        spec: Spec = pickle.loads(payload)
        upload = ChunkReader(_upload_chunks(inp))
        cpu = time.process_time()
        try:
            reader = io.BufferedReader(upload, buffer_size=FEED_BLOCK)
            for item in _batches(spec, reader):
                _write(out, b"B", _pack(item))
                del item
            _write(out, b"N", struct.pack("<d", time.process_time() - cpu))
        except (EOFError, BrokenPipeError):
            return
        except Exception as e:
            _write(out, b"X", _dump_error(e))
        try:
            upload.drain()
        except EOFError:
            return
        gc.collect()
        trim_heap()


# ---- the worker's side -----------------------------------------------------------------------


class PrepareProcess:
    """The child of one Worker; `batches()` runs one job's upload through it."""

    def __init__(self) -> None:
        self._proc: subprocess.Popen[bytes] | None = None

    def _started(self) -> subprocess.Popen[bytes]:
        if self._proc is not None and self._proc.poll() is None:
            return self._proc
        root = str(Path(__file__).resolve().parents[1])  # this bulkforce, wherever it runs
        path = os.environ.get("PYTHONPATH")
        env = {**os.environ, "PYTHONPATH": root + (os.pathsep + path if path else "")}
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "bulkforce.prepare_proc"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, bufsize=0,
        )  # fmt: skip
        for pipe in (self._proc.stdin, self._proc.stdout):
            # 1 MiB pipes (Linux; the default 64 KiB makes ~70 reads of a 4.5 MB batch)
            with contextlib.suppress(AttributeError, OSError):
                fcntl.fcntl(pipe.fileno(), fcntl.F_SETPIPE_SZ, FEED_BLOCK)  # type: ignore[union-attr]
        return self._proc

    def batches(self, spec: Spec, source: BinaryIO) -> ProcessBatches:
        return ProcessBatches(self, self._started(), spec, source)

    def kill(self, *threads: threading.Thread) -> None:
        """Stop the child; its pipes close only once `threads` (using them by number) are
        done, so that a number cannot be reused under them."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for thread in threads:
            thread.join()  # their next read or write on a pipe fails: EOF or EPIPE
        for pipe in (proc.stdin, proc.stdout):
            if pipe is not None:
                pipe.close()


class ProcessBatches(Batches[Chunk]):
    """One job's batches from the child, in order."""

    def __init__(
        self, owner: PrepareProcess, proc: subprocess.Popen[bytes], spec: Spec, source: BinaryIO
    ) -> None:
        assert proc.stdin is not None and proc.stdout is not None
        self._owner = owner
        self._inp, self._out = proc.stdout.fileno(), proc.stdin.fileno()
        self._source = source
        self._ended = False
        self._feed_error: BaseException | None = None
        self._got: queue.Queue[tuple[bytes, bytearray] | BaseException] = queue.Queue(AHEAD)
        self._stop = threading.Event()
        self.thread_seconds = 0.0
        try:
            _write(self._out, b"J", pickle.dumps(spec, protocol=pickle.HIGHEST_PROTOCOL))
        except OSError as e:
            owner.kill()
            raise PrepareProcessDied(f"the batch-preparing process is gone: {e}") from e
        self._threads = [
            threading.Thread(target=self._feed, name="bulkforce-feed", daemon=True),
            threading.Thread(target=self._collect, name="bulkforce-collect", daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def _feed(self) -> None:
        """Copy the upload to the child (I/O only: the GIL is free while it waits)."""
        while True:
            try:
                block = self._source.read(FEED_BLOCK)
            except BaseException as e:  # the upload cannot be read: the job must not end short
                self._feed_error = e
                block = b""
            try:
                _write(self._out, b"D" if block else b"E", block)
            except OSError:
                return  # the child was stopped
            if not block:
                return

    def _collect(self) -> None:
        """Read the child's frames as they come, up to AHEAD batches before the writer takes
        them, so that neither side waits for the other's turn (a pipe holds 64 KiB)."""
        while True:
            try:
                frame: tuple[bytes, bytearray] | BaseException = _read(self._inp)
            except (EOFError, OSError) as e:
                frame = e
            while not self._stop.is_set():
                try:
                    self._got.put(frame, timeout=0.05)
                    break
                except queue.Full:
                    continue
            if isinstance(frame, BaseException) or frame[0] != b"B" or self._stop.is_set():
                return

    def __next__(self) -> Chunk:
        if self._ended:
            raise StopIteration
        frame = self._got.get()
        if isinstance(frame, BaseException):
            self._ended = True
            self._stop.set()
            self._owner.kill(*self._threads)
            raise PrepareProcessDied("the batch-preparing process stopped mid-job") from frame
        kind, payload = frame
        if kind == b"B":
            return _unpack(payload)
        self._ended = True
        for thread in self._threads:
            thread.join()
        if self._feed_error is not None:
            raise self._feed_error
        if kind == b"X":
            raise pickle.loads(payload)
        (self.thread_seconds,) = struct.unpack("<d", payload)
        raise StopIteration

    def discard(self, item: Chunk) -> None:
        """Nothing to hand back: the batch is freed here when the caller drops it."""

    def close(self) -> None:
        self._stop.set()
        if not self._ended:  # left early: the child may be deep in the upload
            self._ended = True
            self._owner.kill(*self._threads)
        for thread in self._threads:
            thread.join()


if __name__ == "__main__":
    child_main()
