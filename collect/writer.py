"""FrameWriter: record every env's cameras of one worker into the frame store.

The rollout thread does one pass per step: it copies each env's frames, as the simulator
produced them (RGBA included), straight into a slot of a shared-memory ring
(:mod:`collect.ring`), and sends the row's scalars down a pipe. A writer process
(:mod:`collect.writer_process`, started with ``subprocess``) drops alpha, assembles whole
chunks, compresses and writes them at a low CPU priority, then publishes the committed rows.
Every ``flush_interval`` seconds it also writes the rows of the chunk being filled.

Memory is capped by ``max_buffer_mb`` (the ring plus the writer's one chunk buffer): when every
ring slot is waiting, ``append`` blocks and the wait is counted in :attr:`FrameWriter.stats`;
frames are never dropped. A row whose ``append`` returned survives the death of the rollout
process: the writer process commits it and marks the groups ``interrupted``.

>>> import tempfile, numpy as np
>>> from collect.store import open_store
>>> path = tempfile.mkdtemp() + "/frames.zarr"
>>> with FrameWriter(path, rank=1, gpu=3, num_envs=2, fps=15) as writer:
...     for t in range(20):
...         frames = np.full((2, 16, 16, 3), t, np.uint8)
...         writer.append({"zed": frames}, reward=[0.5, 1.0], terminated=[t == 9, False])
>>> [(g.name, g.rows, g.episodes()[-1]) for g in open_store(path).groups()]
[('rank1_gpu3_env0', 20, (1, 10, 20)), ('rank1_gpu3_env1', 20, (0, 0, 20))]
"""

from __future__ import annotations

import atexit
import functools
import logging
import math
import os
import signal
import sys
import threading
import time
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import adapters
from . import store as fmt
from .codecs import FrameCodec, get_codec
from .location import StoreLocation
from .ring import FrameRing, RingLayout
from .rows import RowCopier
from .writer_process import (
    CLOSE,
    CLOSED,
    FLUSH,
    FLUSHED,
    LAYOUT,
    PRIORITIES,
    ChunkLayout,
    WriterConfig,
    WriterError,
    WriterProcess,
)

__all__ = ["FrameWriter", "WriterError", "WriterStats"]

log = logging.getLogger(__name__)

MAX_CHUNK_BYTES = 16 * 2**20  # auto chunk_frames keeps one camera chunk under this
MAX_SHARD_BYTES = 64 * 2**20  # and auto shard_frames (object stores) one camera shard
OBJECT_STORE_CHUNKS_PER_SHARD = 8
RING_CHUNKS = 2  # ring rows per chunk rows: more buys nothing but memory and populating time


@dataclass
class WriterStats:
    """Counters of one writer; ``blocked_seconds`` is time ``append`` waited for a ring slot.

    ``queue_high_water`` is the most rows that were waiting in the ring at once. The writer
    process's counters (``chunks_written``, ``partial_flushes``, ``chunks_deferred``: stored
    raw and recompressed later, ``deferred_bytes_peak``: the most raw bytes on disk at once,
    ``bytes_stored``, ``writer_cpu_seconds``: the writer process's CPU) are known once the
    writer is closed.
    """

    rows: int = 0
    frames: int = 0
    bytes_raw: int = 0
    append_seconds: float = 0.0
    blocked_seconds: float = 0.0
    queue_high_water: int = 0
    ring_slots: int = 0
    chunks_written: int = 0
    partial_flushes: int = 0
    chunks_deferred: int = 0
    deferred_bytes_peak: int = 0
    bytes_stored: int | None = 0  # None: could not be measured
    writer_cpu_seconds: float = 0.0


# Strong references: a writer its caller dropped without close() is still closed at exit
# (its writer process would otherwise see the pipe close and mark the groups interrupted).
_OPEN_WRITERS: set[FrameWriter] = set()
_EXIT_HOOKS_INSTALLED = False
_TERMINATED_BY: int | None = None  # the signal _sigterm_to_exit turned into SystemExit
_EXIT_STATUS: str | None = None  # what writers still open at exit record; None: "complete"


def _status_after(exc_type: type[BaseException]) -> str:
    """The status an exception leaving a writer open records: Ctrl-C and SIGTERM stopped
    the run ("interrupted"); anything else means the run itself went wrong ("failed")."""
    stopped = _TERMINATED_BY is not None or issubclass(exc_type, (KeyboardInterrupt, SystemExit))
    return "interrupted" if stopped else "failed"


def _close_open_writers() -> None:
    for writer in list(_OPEN_WRITERS):
        log.debug("closing %r at exit", writer)
        if _EXIT_STATUS is not None:
            writer._end_status = _EXIT_STATUS
        try:
            writer.close()
        except Exception as e:  # noqa: BLE001 - at exit, report and keep closing the others
            log.error("flushing frame writer at exit failed: %s", e)


def _sigterm_to_exit(signum: int, frame: Any) -> None:
    """Turn SIGTERM into ``SystemExit`` so ``with`` blocks and atexit close the writers.

    Where the signal lands decides what the caller sees: inside a ctypes argument
    conversion (MuJoCo's EGL calls), ctypes turns the ``SystemExit`` into an
    ``ArgumentError``, so the signal is remembered for :meth:`FrameWriter.__exit__`.
    """
    global _TERMINATED_BY, _EXIT_STATUS
    _TERMINATED_BY, _EXIT_STATUS = signum, "interrupted"
    raise SystemExit(128 + signum)


def _chain_excepthook(previous: Any) -> Any:
    """An ``sys.excepthook`` that notes what ended the process, for writers closed at exit
    (atexit itself cannot see the exception), then hands it on to ``previous``. At an
    interactive prompt an uncaught exception ends nothing, so it is not noted there."""

    def note_uncaught(exc_type: type[BaseException], exc: BaseException, tb: Any) -> None:
        global _EXIT_STATUS
        if not hasattr(sys, "ps1"):
            _EXIT_STATUS = _status_after(exc_type)
        previous(exc_type, exc, tb)

    return note_uncaught


def _install_exit_hooks() -> None:
    global _EXIT_HOOKS_INSTALLED
    if _EXIT_HOOKS_INSTALLED:
        return
    _EXIT_HOOKS_INSTALLED = True
    # threading's exit hooks run before thread pools refuse new work, which happens before
    # plain atexit handlers; fall back to atexit where the hook is missing.
    register = getattr(threading, "_register_atexit", atexit.register)
    register(_close_open_writers)
    sys.excepthook = _chain_excepthook(sys.excepthook)
    in_main = threading.current_thread() is threading.main_thread()
    if in_main and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _sigterm_to_exit)


class FrameWriter:
    """Append every env's camera frames of one env worker to a frame store.

    Args:
        store: path or URL (``s3://bucket/run.zarr``, any fsspec protocol) of the ``.zarr``
            store, created if missing; other workers' groups are never touched.
        rank: env worker rank; ``gpu``: its accelerator id; together they name the groups
            ``rank{rank}_gpu{gpu}_env{e}`` for ``e`` in ``0 .. num_envs - 1``.
        num_envs: envs stepped by this worker (the batch size of every ``append``).
        fps: playback rate recorded in the store (render may override it).
        cameras: camera names to keep (after normalisation); ``None`` keeps all.
        codec: frame codec name or config (``"zstd"`` default, ``"lz4"``, ``"none"``,
            lossy ``"jpeg"``/``"webp"``/``"avif"``), see :mod:`collect.codecs`.
        chunk_frames: rows per stored chunk; larger compresses better. Default: 64, fewer
            for big frames so one camera chunk stays under 16 MiB (16 at 480x480, 4 at
            960x960).
        shard_frames: pack this many rows per shard file (zarr sharding codec); a multiple
            of ``chunk_frames``. Default: none on local disk; on object stores up to 8 chunks
            per shard (one object per camera per shard: object stores charge per request).
        flush_interval: seconds after which rows of a partly filled chunk are written anyway
            (what a crash of the whole machine can lose).
        max_buffer_mb: cap on frame memory (ring plus the writer process's chunk buffer);
            ``append`` blocks when the ring is full.
        first_env: index of this writer's first env in its worker, which names its groups
            (``..._env{first_env + e}``): RLinf's pipeline stage ``s`` of ``num_envs`` envs
            starts at ``s * num_envs``. Default 0.
        num_envs_in_worker: envs of the whole worker, all stages (default ``first_env +
            num_envs``).
        global_env_offset: global index of this writer's first env (default ``rank *
            num_envs_in_worker + first_env``).
        video_prefix, config: recorded in the root attributes when this writer creates them.
        overwrite: replace this worker's existing groups instead of raising.
        threads: threads of the writer process compressing and writing envs in parallel.
        priority: CPU scheduling of the writer process: ``"idle"`` (default, Linux
            ``SCHED_IDLE``: only CPU nobody else wants; measured the least rollout slowdown,
            see ``benchmarks/RESULTS.md``), ``"batch"`` (``SCHED_BATCH``) or ``"normal"``.
        cpus: CPU ids the writer process runs on (``None``: those of the calling process),
            e.g. cores no simulator is pinned to. On the 2-core benchmark machine, pinning
            the rollout to one core and the writer to the other made the rollout 5-11%
            faster with or without recording, but did not measurably lower recording's
            share of it (``benchmarks/RESULTS.md``).
        defer_mb: disk budget for chunks stored raw (zstd only, unsharded) while the ring
            fills faster than zstd drains it; they are recompressed in idle time and before
            ``close()`` returns. ``0`` never defers. Local stores only.
        storage_options: fsspec options for a URL (``key``, ``secret``, ``endpoint_url``,
            ...); by default credentials come from the environment (``AWS_*``).

    ``append`` after ``close()`` raises ``RuntimeError("FrameWriter is closed")``.
    """

    stats: WriterStats
    closed: bool
    _end_status: str = "complete"  # what close() records in the groups
    _ring: FrameRing | None = None

    def __init__(
        self,
        store: str | os.PathLike | StoreLocation,
        rank: int = 0,
        gpu: int = 0,
        num_envs: int = 1,
        *,
        fps: float = 30.0,
        cameras: list[str] | None = None,
        codec: str | Mapping[str, Any] | FrameCodec = "zstd",
        chunk_frames: int | None = None,
        shard_frames: int | None = None,
        flush_interval: float = 2.0,
        max_buffer_mb: float = 512.0,
        first_env: int = 0,
        num_envs_in_worker: int | None = None,
        global_env_offset: int | None = None,
        video_prefix: str = fmt.DEFAULT_VIDEO_PREFIX,
        config: Mapping[str, Any] | None = None,
        overwrite: bool = False,
        threads: int = 2,
        priority: str = "idle",
        cpus: Collection[int] | None = None,
        defer_mb: float = 2048.0,
        storage_options: Mapping[str, Any] | None = None,
    ) -> None:
        self.closed = True  # until construction succeeds
        self.location = StoreLocation.of(store, storage_options)
        # rank/gpu name the groups, which readers only list as rank<r>_gpu<g>_env<e>
        _check_integers(0, rank=rank, gpu=gpu)
        optional = {"chunk_frames": chunk_frames, "shard_frames": shard_frames}
        given = {name: value for name, value in optional.items() if value is not None}
        _check_integers(1, num_envs=num_envs, threads=threads, **given)
        _check_positive(fps=fps, flush_interval=flush_interval, max_buffer_mb=max_buffer_mb)
        if not (isinstance(defer_mb, (int, float)) and math.isfinite(defer_mb) and defer_mb >= 0):
            raise ValueError(f"defer_mb must be a number >= 0. Got {defer_mb!r} instead.")
        if priority not in PRIORITIES:
            raise ValueError(f"priority must be one of {PRIORITIES}. Got {priority!r} instead.")
        writer_cpus = None if cpus is None else _checked_cpus(cpus)
        self.rank, self.gpu, self.num_envs = int(rank), int(gpu), int(num_envs)
        self.fps = float(fps)
        self.codec = _checked_codec(codec)
        self.chunk_frames = chunk_frames
        self.shard_frames = shard_frames
        self.max_buffer_bytes = int(max_buffer_mb * 2**20)
        self.stats = WriterStats()
        _check_integers(0, first_env=first_env)
        self.first_env = int(first_env)
        in_worker = num_envs_in_worker or self.first_env + self.num_envs
        _check_integers(self.first_env + self.num_envs, num_envs_in_worker=in_worker)
        offset = self.rank * in_worker + self.first_env
        offset = offset if global_env_offset is None else global_env_offset

        root = fmt.open_or_create_root(
            self.location, fps=self.fps, video_prefix=video_prefix, config=config
        )
        for e in range(self.num_envs):
            fmt.create_env_group(
                root,
                rank=self.rank,
                gpu=self.gpu,
                env=self.first_env + e,
                global_env=offset + e,
                num_envs_in_worker=int(in_worker),
                fps=self.fps,
                overwrite=overwrite,
            )
        self._rows = RowCopier(self.rank, self.num_envs, None if cameras is None else [*cameras])
        self._episode = np.zeros(self.num_envs, np.int32)
        self._episode_step = np.zeros(self.num_envs, np.int64)
        self._info_dtypes: dict[str, np.dtype] = {}
        self._process = WriterProcess(
            WriterConfig(
                location=self.location,
                rank=self.rank,
                group_names=self.group_names,
                codec=self.codec.get_config(),
                flush_interval=float(flush_interval),
                threads=int(threads),
                priority=priority,
                cpus=writer_cpus,
                defer_mb=float(defer_mb),
            )
        )
        self.closed = False
        _OPEN_WRITERS.add(self)
        _install_exit_hooks()

    # ------------------------------------------------------------------ public API

    def __enter__(self) -> FrameWriter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object
    ) -> None:
        # Leaving early still writes every row appended and records why (_status_after).
        # When SIGTERM came first and a library turned its SystemExit into another error,
        # the process still ends as SIGTERM asked (exit 128 + 15).
        if exc_type is not None:
            self._end_status = _status_after(exc_type)
        self.close()
        if _TERMINATED_BY is not None and exc is not None and not isinstance(exc, SystemExit):
            raise SystemExit(128 + _TERMINATED_BY) from exc

    def __repr__(self) -> str:
        return (
            f"FrameWriter({self.location.url!r}, rank={self.rank}, gpu={self.gpu}, "
            f"num_envs={self.num_envs}, rows={self.stats.rows}, closed={self.closed})"
        )

    @property
    def group_names(self) -> list[str]:
        envs = range(self.first_env, self.first_env + self.num_envs)
        return [fmt.group_name(self.rank, self.gpu, e) for e in envs]

    @property
    def committed_rows(self) -> int:
        """Rows durably published in every group so far."""
        return self._process.header.committed

    @property
    def writer_pid(self) -> int:
        """Process id of the writer process (it outlives a killed rollout to commit rows)."""
        return self._process.pid

    def append(
        self,
        obs: Any,
        reward: Any = None,
        terminated: Any = None,
        truncated: Any = None,
        info: Any = None,
    ) -> None:
        """Record one step of every env: frames of each camera plus per-row metadata.

        ``obs`` is an OmniGibson observation list, a ``{camera: (N, H, W, C)}`` dict or an
        ``(N, H, W, C)`` array (numpy or torch, any device). ``reward``/``terminated``/
        ``truncated`` are scalars or per-env sequences; ``info`` a dict of per-env values or a
        list of per-env dicts (nested keys become dotted keys). A ``terminated`` or
        ``truncated`` row ends the env's episode: its next row starts the next episode.
        """
        t0 = time.perf_counter()
        if self.closed:
            raise RuntimeError("FrameWriter is closed")
        self._process.check()
        frames = self._rows.host_frames(obs)
        scalars = self._row_scalars(reward, terminated, truncated)
        info_cols = self._info_columns(info)
        if self._ring is None:
            self._start_ring(frames)
        assert self._ring is not None
        row = self.stats.rows
        self.stats.blocked_seconds += self._process.wait_for_slot(row, self.stats.ring_slots)
        if row < self.stats.ring_slots:  # the slot's first use
            self._ring.populate_slot(row)
        self._rows.copy(frames, self._ring.slot(row))
        self._process.send_row(row, scalars, info_cols)
        self._process.header.appended = row + 1
        self._advance_episodes(scalars["terminated"] | scalars["truncated"])
        waiting = row + 1 - self._process.header.consumed
        self.stats.queue_high_water = max(self.stats.queue_high_water, waiting)
        self.stats.rows += 1
        self.stats.frames += self.num_envs * len(frames)
        self.stats.bytes_raw += self._ring.layout.row_bytes
        self.stats.append_seconds += time.perf_counter() - t0

    def start_new_episodes(self) -> None:
        """Start a new episode at the next row for every env whose episode is under way.

        For resets the step flags did not announce (e.g. ``env.reset()`` between rollout
        epochs); envs whose last row was terminated or truncated are already at a new episode.
        """
        under_way = self._episode_step > 0
        self._episode[under_way] += 1
        self._episode_step[under_way] = 0

    def flush(self) -> None:
        """Write everything appended so far and wait until it is committed."""
        if self.closed:
            raise RuntimeError("FrameWriter is closed")
        self._process.request((FLUSH,), FLUSHED)

    def close(self) -> None:
        """Write every row, trim the arrays to the committed rows, mark the groups complete.

        If a write failed or the writer process died, the groups keep every committed row
        (marked ``failed``) and :class:`WriterError` is raised. Leaving a ``with`` block by
        Ctrl-C or SIGTERM marks them ``interrupted``, by any other exception ``failed``.
        """
        if self.closed:
            return
        self.closed = True
        _OPEN_WRITERS.discard(self)
        try:
            _, counters = self._process.request((CLOSE, self._end_status), CLOSED)
        finally:
            if self._ring is not None:
                self._ring.close()
            self._process.release()
        for name, value in counters.items():
            setattr(self.stats, name, value)
        stored = self.stats.bytes_stored
        log.info(
            "frame writer rank %d closed: %d rows, %d frames, %s MB stored",
            self.rank,
            self.stats.rows,
            self.stats.frames,
            "unknown" if stored is None else f"{stored / 1e6:.1f}",
        )

    # ------------------------------------------------------------------ rollout thread

    def _start_ring(self, frames: Mapping[str, Any]) -> None:
        """Size the ring for the first step's frames and hand its layout to the writer."""
        shapes = self._rows.learn_shapes(frames)
        largest = 3 * max(h * w for h, w, _ in shapes.values())
        chunk_frames = self.chunk_frames or _auto_chunk_frames(largest)
        if self.shard_frames is None and not self.location.is_local:
            row_bytes = self.num_envs * sum(3 * h * w for h, w, _ in shapes.values())
            self.shard_frames = _auto_shard_frames(
                chunk_frames, largest, row_bytes, self.max_buffer_bytes
            )
        if self.shard_frames is not None and self.shard_frames % chunk_frames:
            raise ValueError(
                f"shard_frames must be a multiple of chunk_frames ({chunk_frames}). "
                f"Got {self.shard_frames} instead."
            )
        probe = ChunkLayout(RingLayout(self.num_envs, shapes, 1), chunk_frames, self.shard_frames)
        room = self.max_buffer_bytes - probe.chunk_bytes()
        slots = min(RING_CHUNKS * probe.buffer_rows, room // probe.ring.slot_bytes)
        if slots < 2:
            raise ValueError(
                f"rank {self.rank}: a chunk of {probe.buffer_rows} rows x {self.num_envs} envs "
                f"x cameras {shapes} (H, W, C) needs {probe.chunk_bytes() / 2**20:.1f} MiB plus "
                f"two ring rows of {probe.ring.slot_bytes / 2**20:.1f} MiB, but max_buffer_mb "
                f"is {self.max_buffer_bytes / 2**20:g}; raise max_buffer_mb or lower chunk_frames"
            )
        layout = ChunkLayout(RingLayout(self.num_envs, shapes, int(slots)), chunk_frames,
                             self.shard_frames)  # fmt: skip
        self.chunk_frames = chunk_frames
        self._ring = FrameRing.create(layout.ring, self._process.memfd)
        self._ring.populate_async(write=True, idle=True)  # maps what the writer allocates
        self.stats.ring_slots = layout.ring.slots
        self._process.send((LAYOUT, layout))

    def _row_scalars(self, reward: Any, terminated: Any, truncated: Any) -> dict[str, np.ndarray]:
        n = self.num_envs
        return {
            "step": self._episode_step.copy(),
            "episode": self._episode.copy(),
            "reward": _env_vector(reward, n, "reward", np.float32),
            "terminated": _env_vector(terminated, n, "terminated", bool),
            "truncated": _env_vector(truncated, n, "truncated", bool),
        }

    def _info_columns(self, info: Any) -> dict[str, np.ndarray]:
        """Info columns, each kept at the dtype of its first values (integers as int64)."""
        columns = adapters.info_columns(info, self.num_envs)
        for key, values in columns.items():
            dtype = self._info_dtypes.get(key)
            if dtype is None:
                dtype = np.dtype("int64") if values.dtype.kind in "iu" else values.dtype
                self._info_dtypes[key] = dtype
            elif not np.can_cast(values.dtype, dtype, casting="same_kind"):
                raise adapters.FrameInputError(
                    f"info key {key!r}: got {values.dtype} values after {dtype} ones"
                )
            columns[key] = values.astype(dtype, copy=False)
        return columns

    def _advance_episodes(self, done: np.ndarray) -> None:
        self._episode_step += 1
        if done.any():
            self._episode_step[done] = 0
            self._episode[done] += 1


def _env_vector(value: Any, num_envs: int, name: str, dtype: Any) -> np.ndarray:
    """The per-env values given, or the store's "not given" (NaN reward, flags false)."""
    if value is None:
        return _not_given(num_envs, np.dtype(dtype))
    return adapters.as_env_vector(value, num_envs, name, dtype)


@functools.cache
def _not_given(num_envs: int, dtype: np.dtype) -> np.ndarray:
    vector = np.full(num_envs, fmt.row_fill(dtype), dtype)
    vector.flags.writeable = False  # shared by every row without values
    return vector


def _auto_chunk_frames(frame_bytes: int) -> int:
    """64 rows, halved until one camera chunk fits :data:`MAX_CHUNK_BYTES` (at least 1).

    Big chunks amortise zarr's per-write overhead for small frames (64 at 128x128 and 256x256);
    big frames get fewer rows so buffers stay small (16 at 480x480, 4 at 960x960).
    """
    rows = 64
    while rows > 1 and rows * frame_bytes > MAX_CHUNK_BYTES:
        rows //= 2
    return rows


def _auto_shard_frames(
    chunk_frames: int, frame_bytes: int, row_bytes: int, max_buffer_bytes: int
) -> int:
    """Rows per shard on object stores: up to :data:`OBJECT_STORE_CHUNKS_PER_SHARD` chunks,
    fewer while one camera's shard would pass :data:`MAX_SHARD_BYTES` or the writer's shard
    buffer (every env and camera) a quarter of ``max_buffer_mb``. Fewer, bigger objects:
    object stores charge per request."""
    chunks = OBJECT_STORE_CHUNKS_PER_SHARD
    while chunks > 1 and (
        chunks * chunk_frames * frame_bytes > MAX_SHARD_BYTES
        or 4 * chunks * chunk_frames * row_bytes > max_buffer_bytes
    ):
        chunks //= 2
    return chunks * chunk_frames


def _check_positive(**values: Any) -> None:
    """Raise unless every value is a finite number above 0."""
    for name, value in values.items():
        number = isinstance(value, (int, float, np.integer, np.floating))
        if not (number and not isinstance(value, bool) and math.isfinite(value) and value > 0):
            raise ValueError(f"{name} must be a positive number. Got {value!r} instead.")


def _check_integers(minimum: int, **values: Any) -> None:
    """Raise unless every value is an integer of at least ``minimum``."""
    for name, value in values.items():
        integer = isinstance(value, (int, np.integer)) and not isinstance(value, bool)
        if not (integer and value >= minimum):
            kind = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
            raise ValueError(f"{name} must be {kind}. Got {value!r} instead.")


def _checked_cpus(cpus: Collection[int]) -> tuple[int, ...]:
    """The writer's CPU ids, sorted: a non-empty collection of this machine's CPUs."""
    count = os.cpu_count() or 1
    ids = list(cpus) if isinstance(cpus, Collection) and not isinstance(cpus, str) else None
    if not ids or not all(
        isinstance(c, (int, np.integer)) and not isinstance(c, bool) for c in ids
    ):
        raise ValueError(f"cpus must be a non-empty list of CPU ids. Got {cpus!r} instead.")
    if unknown := sorted(c for c in ids if not 0 <= c < count):
        raise ValueError(f"cpus: this machine has CPUs 0-{count - 1}; no CPU {unknown}.")
    return tuple(sorted({int(c) for c in ids}))


def _checked_codec(spec: str | Mapping[str, Any] | FrameCodec) -> FrameCodec:
    """The codec, with its zarr codec chain built once so a bad setting fails here, not in
    the background thread at the first write (``ValueError`` naming the codec)."""
    codec = get_codec(spec)
    try:
        codec.zarr_codecs()
    except (TypeError, ValueError) as e:
        raise ValueError(f"frame codec {codec.get_config()}: {e}") from e
    return codec
