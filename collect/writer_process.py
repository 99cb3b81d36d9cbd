"""The writer process: drains the ring into whole chunks, compresses them, writes, commits.

:class:`collect.FrameWriter` starts one per writer with :class:`WriterProcess` (a plain
``subprocess``, ``python -c``, so it works in Dask worker processes,
Ray actors and threads, next to CUDA contexts), detached: in a session of its own and not a
child of the rollout, so neither a Ctrl-C to the rollout's process group nor a supervisor that
kills a dead worker's children (``ray.kill``) reaches it. The two talk through

* a command pipe (rollout -> writer): ``open``, ``layout``, one ``row`` message per append
  (its scalars and info; the frames are already in the ring), ``flush``, ``close``;
* a reply pipe (writer -> rollout): ``flushed``, ``closed``, ``error``;
* the ring's header (:class:`collect.ring.RingHeader`): rows consumed, rows committed, failed.

A row whose ``append`` returned is in shared memory and its message in the pipe, so when the
rollout process dies (SIGKILL, a segfault in the simulator, the OOM killer), the writer reads
to the end of the pipe (EOF), commits every row and marks the groups ``interrupted``. When the
writer dies, the rollout side's next call raises :class:`WriterError` naming it.

The writer runs at a lower CPU priority (``SCHED_IDLE`` by default, see
:data:`PRIORITIES`): on a machine the simulator keeps busy, compression waits for idle time
and ``append`` blocks only when the ring is full.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import resource
import shutil
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import numpy as np

from . import store as fmt
from .codecs import ZstdCodec_, deferred_compression, get_codec
from .compact import Compactor
from .location import StoreLocation
from .ring import HEADER_BYTES, FrameRing, RingHeader, RingLayout, copy_channels, create_memfd

__all__ = ["PRIORITIES", "WriterConfig", "WriterError", "WriterProcess"]

log = logging.getLogger(__name__)

OPEN, LAYOUT, FLUSH, CLOSE = "open", "layout", "flush", "close"
FLUSHED, CLOSED, ERROR = "flushed", "closed", "error"
# A row message is bytes, not a pickle (pickling costs more than the rest of an append): this
# tag (no pickle starts with it), the row number, the scalars' bytes, then the info's pickle.
_ROW_TAG = b"R"
_ROW_NUMBER = 8  # bytes
_PIPE_BYTES = 2**20  # room for many row messages while the writer compresses a chunk
_POLL_SECONDS = 0.2
# The child's command line (``-c`` rather than ``-m``: the package imports this module first).
# Its CPU priority and CPUs are set before anything is imported (start-up is a short run's most
# CPU; threads started by imports inherit the CPUs). ``-c`` puts the working directory first
# on sys.path: dropped, so a ``collect`` there (another checkout, a user's module) never stands
# in for the package the rollout side imported.
_ENTRY = """
import os, sys
if sys.path and sys.path[0] == "":
    del sys.path[0]
policy = getattr(os, sys.argv[4], None)  # SCHED_IDLE, SCHED_BATCH; "normal": none
if policy is not None:
    try:
        os.sched_setscheduler(0, policy, os.sched_param(0))
    except OSError:
        os.nice(19)
if sys.argv[5]:
    cpus = {int(cpu) for cpu in sys.argv[5].split(",")}
    try:
        os.sched_setaffinity(0, cpus)
    except OSError as e:  # a CPU outside this container's cpuset
        print(f"evalframes writer process: cannot run on CPUs {sorted(cpus)} ({e}); "
              f"runs on {sorted(os.sched_getaffinity(0))}", file=sys.stderr)
from collect.writer_process import main
sys.exit(main(sys.argv[1:4]))
"""
_POLICIES = {"normal": "normal", "batch": "SCHED_BATCH", "idle": "SCHED_IDLE"}
PRIORITIES = tuple(_POLICIES)


class WriterError(RuntimeError):
    """Writing to the frame store failed (disk full, store removed, the writer process died,
    ...); the message says what, and how many rows are committed and readable."""


@dataclass(frozen=True)
class WriterConfig:
    """What the writer process needs to open the groups the rollout side created."""

    location: StoreLocation
    rank: int
    group_names: list[str]
    codec: dict[str, Any]
    flush_interval: float
    threads: int
    priority: str
    cpus: tuple[int, ...] | None  # the CPUs it may run on; None: the rollout process's
    defer_mb: float  # disk budget for chunks stored raw until they are recompressed


@dataclass(frozen=True)
class ChunkLayout:
    """Sent with the first row: the ring's layout and the rows per chunk (and shard)."""

    ring: RingLayout
    chunk_frames: int
    shard_frames: int | None

    @property
    def buffer_rows(self) -> int:
        """Rows written at once: a whole chunk, or a whole shard."""
        return int(self.shard_frames or self.chunk_frames)

    def chunk_bytes(self) -> int:
        """Bytes of the writer's RGB buffer of ``buffer_rows`` rows of every env and camera."""
        per_row = sum(3 * h * w for h, w, _ in self.ring.cameras.values())
        return self.ring.num_envs * self.buffer_rows * per_row


# ----------------------------------------------------------------------------- rollout side


class WriterProcess:
    """The rollout side's handle on one writer process: start it, feed it, ask, check it."""

    def __init__(self, config: WriterConfig) -> None:
        self.config = config
        self.memfd = create_memfd(HEADER_BYTES)
        self.header = RingHeader(self.memfd)
        commands_r, commands_w = os.pipe()
        replies_r, replies_w = os.pipe()
        _grow_pipe(commands_w)
        try:
            self.pid = _launch_detached(
                [
                    sys.executable,
                    "-c",
                    _ENTRY,
                    str(commands_r),
                    str(replies_w),
                    str(self.memfd),
                    _POLICIES[config.priority],
                    ",".join(map(str, config.cpus or ())),
                ],
                pass_fds=(commands_r, replies_w, self.memfd),
            )
        finally:
            os.close(commands_r)
            os.close(replies_w)
        self._commands = Connection(commands_w, readable=False)
        self._replies = Connection(replies_r, writable=False)
        self._error: str | None = None
        self.send((OPEN, config))

    def send(self, message: tuple) -> None:
        try:
            self._commands.send(message)
        except OSError:  # BrokenPipeError: the writer is gone
            raise self.failure() from None

    def check(self) -> None:
        """Raise :class:`WriterError` if the writer said it failed.

        A writer that died without a word is noticed by the next message sent: it held the
        only read end of the command pipe, so the write fails (``EPIPE``)."""
        if self.header.failed:
            raise self.failure()

    def check_alive(self) -> None:
        """:meth:`check`, and whether the writer is still there (a poll of the reply pipe:
        outside a request the writer says nothing, so anything readable there is an error
        message or the pipe's end)."""
        self.check()
        if self._replies.poll(0):
            raise self.failure()

    def send_row(self, row: int, scalars: dict[str, np.ndarray], info: dict) -> None:
        """Announce row ``row`` (its frames are in the ring) with its scalars and info."""
        parts = [_ROW_TAG, row.to_bytes(_ROW_NUMBER, "little")]
        parts += [scalars[name].tobytes() for name in fmt.SCALARS]
        if info:
            packed = {key: (values.dtype.str, values.tobytes()) for key, values in info.items()}
            parts.append(pickle.dumps(packed, pickle.HIGHEST_PROTOCOL))
        try:
            self._commands.send_bytes(b"".join(parts))
        except OSError:  # BrokenPipeError: the writer is gone
            raise self.failure() from None

    def wait_for_slot(self, row: int, slots: int) -> float:
        """Wait until the ring has a free slot for ``row``; the seconds waited."""
        if row - self.header.consumed < slots:
            return 0.0
        t0 = time.perf_counter()
        while row - self.header.consumed >= slots:
            self.check_alive()
            time.sleep(0.0005)
        return time.perf_counter() - t0

    def request(self, message: tuple, reply: str) -> tuple:
        """Send ``message`` and wait for the reply of kind ``reply`` (``WriterError`` if the
        writer fails or dies first)."""
        self.send(message)
        while True:
            if self._replies.poll(_POLL_SECONDS):
                answer = self._receive()
                if answer[0] == reply:
                    return answer

    def _receive(self) -> tuple:
        try:
            answer = self._replies.recv()
        except EOFError:
            raise self.failure() from None
        if answer[0] == ERROR:
            self._error = answer[1]
            raise self.failure()
        return answer

    def failure(self) -> WriterError:
        """The error to raise for a failed or dead writer, with what it said before."""
        while self._error is None and self._replies.poll(0):
            try:
                answer = self._replies.recv()
            except EOFError:
                break
            if answer[0] == ERROR:
                self._error = answer[1]
        committed = self.header.committed
        where = f"rank {self.config.rank}: writing frames to {self.config.location.url!r} failed"
        if self._error is not None:
            cause = self._error
        else:  # it always says why before it exits: it was killed (SIGKILL, the OOM killer)
            cause = f"the writer process (pid {self.pid}) died without a word (killed)"
        return WriterError(f"{where}: {cause}; rows up to {committed} are committed and readable")

    def release(self) -> None:
        """Close the pipes and the memory file; the writer exits on the pipe's EOF."""
        self._commands.close()
        self._replies.close()
        os.close(self.memfd)


def _launch_detached(command: list[str], pass_fds: tuple[int, ...]) -> int:
    """Start ``command`` as an orphan in a session of its own; its pid.

    Not a child of this process: supervisors that kill a dead worker's children (Ray, on
    ``ray.kill``) or its process group (Ctrl-C) leave it alone, so it can commit the rows
    that were appended. A shell starts it in the background and exits at once.
    """
    shell = subprocess.Popen(
        ["/bin/sh", "-c", '"$@" </dev/null >/dev/null & echo $!', "evalframes-writer", *command],
        pass_fds=pass_fds,
        start_new_session=True,
        stdout=subprocess.PIPE,
        env=_child_environment(),
    )
    with shell:
        pid = int(shell.stdout.readline())
    return pid


def _grow_pipe(fd: int) -> None:
    import fcntl

    with contextlib.suppress(AttributeError, OSError):  # not Linux, or over the pipe-max-size
        fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, _PIPE_BYTES)


def _child_environment() -> dict[str, str]:
    """The parent's environment, with this package importable however the parent found it."""
    env = dict(os.environ)
    package_root = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
    return env


# ----------------------------------------------------------------------------- writer side


@dataclass
class _Chunk:
    """The writer's buffer of ``rows`` rows of every env: RGB frames, scalars, info."""

    cameras: dict[str, np.ndarray]  # camera -> (N, T, H, W, 3)
    scalars: dict[str, np.ndarray]  # name -> (N, T)
    info: dict[str, np.ndarray] = field(default_factory=dict)  # key -> (N, T)
    start: int = 0  # first row of this buffer in the groups
    filled: int = 0  # rows filled so far

    @classmethod
    def allocate(cls, layout: ChunkLayout) -> _Chunk:
        n, t = layout.ring.num_envs, layout.buffer_rows
        return cls(
            cameras={
                c: np.empty((n, t, h, w, 3), np.uint8)
                for c, (h, w, _) in layout.ring.cameras.items()
            },
            scalars={k: np.zeros((n, t), d) for k, d in fmt.SCALARS.items()},
        )

    def put_info(self, row: int, columns: dict[str, np.ndarray]) -> None:
        for key, values in columns.items():
            buf = self.info.get(key)
            if buf is None:
                fill = fmt.row_fill(values.dtype)
                buf = self.info[key] = np.full(self.scalars["step"].shape, fill, values.dtype)
            buf[:, row] = values

    def clear_unfilled(self) -> None:
        """Zero the rows past ``filled`` (left from the previous chunk): they compress to
        nothing, and readers never see them (they are past the committed rows)."""
        for buf in self.cameras.values():
            buf[:, self.filled :] = 0


class WriterLoop:
    """The writer process's loop: one message at a time, chunks written whole."""

    def __init__(self, commands: Connection, replies: Connection, memfd: int) -> None:
        self.commands, self.replies, self.memfd = commands, replies, memfd
        self.header = RingHeader(memfd)
        self.config: WriterConfig | None = None
        self.layout: ChunkLayout | None = None
        self.ring: FrameRing | None = None
        self.chunk: _Chunk | None = None
        self.groups: list[fmt.GroupWriter] = []
        self.group_handles: list[Any] = []  # the zarr groups, opened by ``open``
        self.pool: ThreadPoolExecutor | None = None
        self.rows = 0  # rows received
        self.last_commit = time.monotonic()
        self.compactor: Compactor | None = None
        self.stats = {
            "chunks_written": 0,
            "partial_flushes": 0,
            "chunks_deferred": 0,
            "deferred_bytes_peak": 0,
            "bytes_stored": 0,
            "writer_cpu_seconds": 0.0,
        }

    @property
    def committed(self) -> int:
        return self.header.committed

    def run(self) -> int:
        """Serve the rollout side until it closes the writer (0) or goes away; 1 on failure."""
        try:
            return self._serve()
        except Exception as e:  # noqa: BLE001 - reported to the rollout side, groups marked
            rank = self.config.rank if self.config else "?"
            log.error("rank %s: frame store write failed: %s", rank, e)
            self._fail(f"{type(e).__name__}: {e}" if not str(e) else str(e))
            return 1

    def _serve(self) -> int:
        while True:
            try:
                if not self.commands.poll(self._seconds_to_flush()):
                    self._flush_if_due()
                    continue
                data = self.commands.recv_bytes()
            except EOFError:
                self._rollout_gone()
                return 0
            if data[:1] == _ROW_TAG:
                self._take_row(data)
                continue
            message = pickle.loads(data)
            kind = message[0]
            if kind == OPEN:
                self._open(message[1])
            elif kind == LAYOUT:
                self._start(message[1])
            elif kind == FLUSH:
                self._write_partial()
                self.replies.send((FLUSHED, self.committed))
            elif kind == CLOSE:
                self._finish(message[1])
                self.replies.send((CLOSED, self.stats))
                return 0

    def _open(self, config: WriterConfig) -> None:
        self.config = config
        self.codec = get_codec(config.codec)
        self.group_handles = [
            fmt.open_env_group(config.location, name) for name in config.group_names
        ]
        self.pool = ThreadPoolExecutor(config.threads, thread_name_prefix="evalframes-write")

    def _start(self, layout: ChunkLayout) -> None:
        self.layout = layout
        self.ring = FrameRing(self.memfd, layout.ring, writable=False)
        self.ring.populate_async(write=False)  # allocates, at this process's priority
        self.chunk = _Chunk.allocate(layout)
        self.groups = [
            fmt.GroupWriter(
                group,
                codec=self.codec,
                chunk_frames=layout.chunk_frames,
                shard_frames=layout.shard_frames,
            )
            for group in self.group_handles
        ]
        for group in self.groups:
            for camera, (h, w, _) in layout.ring.cameras.items():
                group.add_camera(camera, h, w)
        deferrable = (
            isinstance(self.codec, ZstdCodec_)
            and layout.shard_frames is None
            and self.config.location.is_local  # raw now, rewritten later: files, not PUTs
        )
        if deferrable and self.config.defer_mb > 0:
            self.compactor = Compactor(self.codec.level)

    def _take_row(self, message: bytes) -> None:
        """Copy the row out of the ring into the chunk (dropping alpha), free its slot."""
        assert self.ring is not None and self.chunk is not None
        row = int.from_bytes(message[1 : 1 + _ROW_NUMBER], "little")
        if row != self.rows:  # the pipe keeps order: only a bug gets here
            raise RuntimeError(f"row {row} arrived where row {self.rows} was next")
        chunk, i = self.chunk, self.chunk.filled
        slot = self.ring.slot(row)
        for camera, chunk_frames in chunk.cameras.items():
            for env, frame in enumerate(slot.frames(camera)):
                copy_channels(chunk_frames[env, i], frame)
        self.header.consumed = row + 1
        offset = 1 + _ROW_NUMBER
        for buf in chunk.scalars.values():  # in fmt.SCALARS order, as packed
            values = np.frombuffer(message, buf.dtype, len(buf), offset)
            buf[:, i] = values
            offset += values.nbytes
        if offset < len(message):
            info = pickle.loads(message[offset:])
            chunk.put_info(i, {k: np.frombuffer(b, np.dtype(d)) for k, (d, b) in info.items()})
        chunk.filled = i + 1
        self.rows = row + 1
        if chunk.filled == len(chunk.scalars["step"][0]):
            if self._should_defer(chunk):
                self._write_deferred(chunk)
            else:
                self._write(chunk)
            self.stats["chunks_written"] += 1
            chunk.start, chunk.filled, chunk.info = self.rows, 0, {}
        else:
            self._flush_if_due()

    def _should_defer(self, chunk: _Chunk) -> bool:
        """Store this chunk raw if the ring is half full and the disk budget allows it (the
        raw bytes waiting stay under ``defer_mb``, and the disk keeps room for 8 more)."""
        assert self.layout is not None and self.config is not None
        if (
            self.compactor is None
            or 2 * (self.header.appended - self.rows) < self.layout.ring.slots
        ):
            return False
        raw = _raw_bytes(chunk)
        within_budget = self.compactor.pending_bytes + raw <= self.config.defer_mb * 2**20
        return within_budget and self._disk_has_room_for(raw)

    def _disk_has_room_for(self, raw: int) -> bool:
        """Raw chunks only where the disk keeps room for 8 more (else compress now)."""
        assert self.config is not None
        return shutil.disk_usage(self.config.location.path).free > 8 * raw

    def _write_deferred(self, chunk: _Chunk) -> None:
        """Write the chunk's frames raw (no compression CPU now); queue them for zstd."""
        assert self.compactor is not None
        with deferred_compression():
            self._write(chunk)
        for group in self.groups:
            for camera, buf in chunk.cameras.items():
                path = group.chunk_file(camera, chunk.start)
                self.compactor.add(path, buf[0].nbytes)
        self.stats["chunks_deferred"] += 1

    def _seconds_to_flush(self) -> float | None:
        if self.rows <= self.committed:
            return None  # nothing to flush: wait for the next message
        return max(0.0, self.last_commit + self.config.flush_interval - time.monotonic())

    def _flush_if_due(self) -> None:
        if self._seconds_to_flush() == 0.0:
            self._write_partial()

    def _write_partial(self) -> None:
        """Write the filled rows of the chunk being assembled (bounds a crash's loss).

        The chunk is compressed as a full one (its unfilled rows zeroed, which cost zstd
        nothing) and written again once full. Compressing is the cheap way: on 480x480
        tabletop frames zstd took 2.5-6.3 ms for a camera chunk of 1-15 filled rows, where
        writing it raw took 25 ms and 11 MB of page cache for the kernel to write back (12 of
        them at each flush), 35-150x the compressed bytes.
        """
        chunk = self.chunk
        if chunk is None or chunk.filled == 0 or self.rows <= self.committed:
            return  # nothing new since the last write
        chunk.clear_unfilled()
        self._write(chunk)
        self.stats["partial_flushes"] += 1

    def _write(self, chunk: _Chunk) -> None:
        """Write the whole buffer into every env's group, then publish the committed rows."""
        assert self.layout is not None and self.pool is not None
        end = chunk.start + chunk.filled
        self._grow(end, chunk)
        self._each_env(
            lambda e: self.groups[e].write(
                chunk.start,
                {c: buf[e] for c, buf in chunk.cameras.items()},
                {k: buf[e] for k, buf in chunk.scalars.items()},
                {k: buf[e] for k, buf in chunk.info.items()},
            )
        )
        self._each_env(lambda e: fmt.commit_rows(self.groups[e].group, end))
        self.header.committed = end
        self.last_commit = time.monotonic()

    def _grow(self, end: int, chunk: _Chunk) -> None:
        """Create new info arrays and grow every array's shape, in big steps, past ``end``."""
        assert self.layout is not None
        for group in self.groups:
            for key, buf in chunk.info.items():
                group.add_info(key, buf.dtype)
        rows = self.layout.buffer_rows
        capacity = self.groups[0].capacity
        if end + rows <= capacity:
            return
        # Doubling, in whole buffers: few metadata rewrites (GroupWriter.finish trims).
        capacity = -(-max(end + rows, 2 * capacity) // rows) * rows
        self._each_env(lambda e: self.groups[e].grow(capacity))

    def _each_env(self, work: Any) -> None:
        assert self.pool is not None
        for future in [self.pool.submit(work, e) for e in range(len(self.groups))]:
            future.result()

    def _rollout_gone(self) -> None:
        log.warning(
            "rank %s: the rollout process went away without closing the frame writer; "
            "committing its %d appended rows, groups marked interrupted",
            self.config.rank if self.config else "?",
            self.rows,
        )
        self._finish("interrupted")

    def _finish(self, status: str) -> None:
        """Write every row received, trim the arrays to them, record ``status``."""
        self._write_partial()
        for group in self._finishing_groups():
            group.finish(self.committed, status)
        if self.compactor is not None:
            self.compactor.finish()
            self.stats["deferred_bytes_peak"] = self.compactor.peak_bytes
        self._stop()
        self.stats["bytes_stored"] = self._bytes_stored()
        usage = resource.getrusage(resource.RUSAGE_SELF)  # every thread of this process
        self.stats["writer_cpu_seconds"] = usage.ru_utime + usage.ru_stime

    def _finishing_groups(self) -> list[fmt.GroupWriter]:
        if self.groups or not self.config:
            return self.groups
        return [  # no row ever came: the groups hold only their scalar arrays
            fmt.GroupWriter(group, codec=self.codec, chunk_frames=1) for group in self.group_handles
        ]

    def _fail(self, message: str) -> None:
        """Tell the rollout side, then keep every committed row and mark the groups failed."""
        with contextlib.suppress(OSError):
            self.replies.send((ERROR, message))
        self.header.failed = True
        for group in self.groups:
            try:
                group.finish(self.committed, "failed")
            except Exception as e:  # noqa: BLE001 - committed rows stay readable regardless
                log.error("could not mark group %s failed: %s", group.group.name, e)
        self._stop()

    def _stop(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True)
        if self.ring is not None:
            self.ring.close()

    def _bytes_stored(self) -> int | None:
        """What the groups hold now; ``None`` if that cannot be measured (a statistic: the
        rows are committed, so this never fails the run)."""
        try:
            return fmt.stored_bytes(self.group_handles)
        except Exception as e:  # noqa: BLE001 - see above
            log.warning("could not measure the bytes stored: %s", e)
            return None


def _raw_bytes(chunk: _Chunk) -> int:
    """Bytes of a chunk's frames stored raw."""
    return sum(buf.nbytes for buf in chunk.cameras.values())


def main(args: list[str]) -> int:
    """Serve one FrameWriter: ``main([COMMANDS_FD, REPLIES_FD, MEMFD])``, run by
    :class:`WriterProcess` in the child it starts, not by hand."""
    if len(args) != 3 or not all(a.isdigit() for a in args):
        print(main.__doc__, file=sys.stderr)
        return 2
    commands_fd, replies_fd, memfd = (int(a) for a in args)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the rollout side decides when to stop
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # past a file-size limit: EFBIG, reported
    logging.basicConfig(level=logging.WARNING, format="evalframes writer: %(message)s")
    commands = Connection(commands_fd, writable=False)
    replies = Connection(replies_fd, readable=False)
    return WriterLoop(commands, replies, memfd).run()
