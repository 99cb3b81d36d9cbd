"""FrameWriter: record every env's cameras of one worker into the frame store.

The rollout thread only normalises the observation and copies it into a preallocated chunk
buffer (about one memcpy per frame). Full chunks go to a background thread that compresses
and writes them as whole zarr chunks, then publishes the new committed row count. Every
``flush_interval`` seconds the background thread also writes the rows of the chunk being
filled, so a crash loses at most ``flush_interval`` seconds of frames plus what is queued
(bounded: at most the chunk buffers that fit in ``max_buffer_mb``). Memory is capped by
``max_buffer_mb``: when every chunk buffer is waiting to be written, ``append`` blocks and the
wait is counted in :attr:`FrameWriter.stats`; frames are never dropped.

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
import logging
import math
import os
import queue
import signal
import threading
import time
import weakref
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import zarr

from . import adapters
from . import store as fmt
from .codecs import FrameCodec, get_codec

__all__ = ["FrameWriter", "WriterError", "WriterStats"]

log = logging.getLogger(__name__)


class WriterError(RuntimeError):
    """Writing to the frame store failed (disk full, store removed, ...); see the message."""


@dataclass
class WriterStats:
    """Counters of one writer; ``blocked_seconds`` is time ``append`` waited for memory."""

    rows: int = 0
    frames: int = 0
    bytes_raw: int = 0
    append_seconds: float = 0.0
    blocked_seconds: float = 0.0
    chunks_written: int = 0
    partial_flushes: int = 0
    queue_high_water: int = 0
    bytes_stored: int = 0


@dataclass
class _Chunk:
    """Host buffers for ``chunk_frames`` rows of every env, camera and scalar."""

    cameras: dict[str, np.ndarray]  # camera -> (N, T, H, W, 3)
    scalars: dict[str, np.ndarray]  # name -> (N, T)
    info: dict[str, np.ndarray] = field(default_factory=dict)  # key -> (N, T)
    start: int = 0  # first row of this chunk in the groups
    rows: int = 0  # rows filled so far


_FLUSH = object()  # queue marker: write the partly filled chunk now
_STOP = object()  # queue marker: the background thread ends
_PREFAULT = object()  # queue marker: allocate and touch spare buffers ahead of need
PREFAULTED_BUFFERS = 1  # spare buffer made ready in the background after the first frame
MAX_CHUNK_BYTES = 16 * 2**20  # auto chunk_frames keeps one camera chunk under this

_OPEN_WRITERS: weakref.WeakSet[FrameWriter] = weakref.WeakSet()
_SIGTERM_INSTALLED = False


def _close_open_writers() -> None:
    for writer in list(_OPEN_WRITERS):
        try:
            writer.close()
        except Exception as e:  # noqa: BLE001 - at exit, report and keep closing the others
            log.error("flushing frame writer at exit failed: %s", e)


def _sigterm_to_exit(signum: int, frame: Any) -> None:
    """Turn SIGTERM into ``SystemExit`` so ``with`` blocks and atexit flush the writers."""
    raise SystemExit(128 + signum)


def _install_exit_hooks() -> None:
    global _SIGTERM_INSTALLED
    if _SIGTERM_INSTALLED:
        return
    _SIGTERM_INSTALLED = True
    # threading's exit hooks run before thread pools (ours and zarr's) refuse new work, which
    # happens before plain atexit handlers; fall back to atexit where the hook is missing.
    register = getattr(threading, "_register_atexit", atexit.register)
    register(_close_open_writers)
    in_main = threading.current_thread() is threading.main_thread()
    if in_main and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _sigterm_to_exit)


class FrameWriter:
    """Append every env's camera frames of one env worker to a frame store.

    Args:
        store: path of the ``.zarr`` store (created if missing; other workers' groups are
            never touched).
        rank: env worker rank; ``gpu``: its accelerator id; together they name the groups
            ``rank{rank}_gpu{gpu}_env{e}`` for ``e`` in ``0 .. num_envs - 1``.
        num_envs: envs stepped by this worker (the batch size of every ``append``).
        fps: playback rate recorded in the store (render may override it).
        cameras: camera names to keep (after normalisation); ``None`` keeps all.
        codec: frame codec name or config (``"zstd"`` default, ``"lz4"``, ``"none"``,
            lossy ``"jpeg"``/``"webp"``/``"avif"``), see :mod:`collect.codecs`.
        chunk_frames: rows per stored chunk; larger compresses better, loses more on a crash.
            Default: 64, fewer for big frames so one camera chunk stays under 16 MiB (16 at
            480x480, 4 at 960x960).
        shard_frames: if set, pack this many rows per shard file (zarr sharding codec); a
            multiple of ``chunk_frames``. For object stores where the file count matters.
        flush_interval: seconds after which rows of a partly filled chunk are written anyway.
        max_buffer_mb: cap on frame buffer memory; ``append`` blocks when it is reached.
        global_env_offset: global index of env 0 of this worker (default ``rank * num_envs``).
        video_prefix, config: recorded in the root attributes when this writer creates them.
        overwrite: replace this worker's existing groups instead of raising.
        threads: background threads compressing and writing (envs are written in parallel).

    ``append`` after ``close()`` raises ``RuntimeError("FrameWriter is closed")``.
    """

    stats: WriterStats
    closed: bool
    _interrupted: bool = False
    _chunk: _Chunk | None = None

    def __init__(
        self,
        store: str | Path,
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
        global_env_offset: int | None = None,
        video_prefix: str = fmt.DEFAULT_VIDEO_PREFIX,
        config: Mapping[str, Any] | None = None,
        overwrite: bool = False,
        threads: int = 2,
    ) -> None:
        self.closed = True  # until construction succeeds
        if not isinstance(store, (str, os.PathLike)):
            raise TypeError(f"store must be a path. Got {store!r} instead.")
        # rank/gpu name the groups, which readers only list as rank<r>_gpu<g>_env<e>
        _check_integers(0, rank=rank, gpu=gpu)
        optional = {"chunk_frames": chunk_frames, "shard_frames": shard_frames}
        given = {name: value for name, value in optional.items() if value is not None}
        _check_integers(1, num_envs=num_envs, threads=threads, **given)
        _check_positive(fps=fps, flush_interval=flush_interval, max_buffer_mb=max_buffer_mb)
        self.path = Path(store)
        self.rank, self.gpu, self.num_envs = int(rank), int(gpu), int(num_envs)
        self.fps = float(fps)
        self.codec = _checked_codec(codec)
        self.keep_cameras = None if cameras is None else list(cameras)
        self.chunk_frames = chunk_frames
        self.shard_frames = shard_frames
        self.flush_interval = float(flush_interval)
        self.max_buffer_bytes = int(max_buffer_mb * 2**20)
        self.stats = WriterStats()
        offset = self.rank * self.num_envs if global_env_offset is None else global_env_offset

        root = fmt.open_or_create_root(
            self.path, fps=self.fps, video_prefix=video_prefix, config=config
        )
        self._groups = [
            fmt.create_env_group(
                root,
                rank=self.rank,
                gpu=self.gpu,
                env=e,
                global_env=offset + e,
                num_envs_in_worker=self.num_envs,
                fps=self.fps,
                overwrite=overwrite,
            )
            for e in range(self.num_envs)
        ]
        self._arrays: list[dict[str, zarr.Array]] = [{} for _ in range(self.num_envs)]
        self._capacity = 0
        self._shapes: dict[str, tuple[int, int]] | None = None
        self._free: list[_Chunk] = []
        self._buffers_allocated = 0
        self._max_buffers = 2
        self._pool_lock = threading.Condition()
        self._state_lock = threading.Lock()
        self._episode = np.zeros(self.num_envs, np.int32)
        self._episode_step = np.zeros(self.num_envs, np.int64)
        self._buffer_rows = 0  # rows per host buffer: a chunk, or a shard; set by the 1st frame
        self._queue: queue.Queue[_Chunk | object] = queue.Queue()
        self._last_commit = time.monotonic()
        self._pending = 0
        self._committed = 0
        self._error: BaseException | None = None
        self._d2h = adapters.DeviceToHost()  # pinned buffers, allocated on first CUDA input
        self._pool = ThreadPoolExecutor(max(1, threads), thread_name_prefix="evalframes-write")
        self._thread = threading.Thread(
            target=self._background, name=f"evalframes-writer-rank{rank}", daemon=True
        )
        self.closed = False
        self._thread.start()
        _OPEN_WRITERS.add(self)
        _install_exit_hooks()

    # ------------------------------------------------------------------ public API

    def __enter__(self) -> FrameWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        # An exception (or SIGTERM's SystemExit) ended the rollout early: every row appended
        # is still flushed, and the groups say "interrupted" rather than "complete".
        self._interrupted = exc_type is not None
        self.close()

    def __repr__(self) -> str:
        return (
            f"FrameWriter({str(self.path)!r}, rank={self.rank}, gpu={self.gpu}, "
            f"num_envs={self.num_envs}, rows={self.stats.rows}, closed={self.closed})"
        )

    @property
    def group_names(self) -> list[str]:
        return [fmt.group_name(self.rank, self.gpu, e) for e in range(self.num_envs)]

    @property
    def committed_rows(self) -> int:
        """Rows durably published in every group so far."""
        return self._committed

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
        self._raise_background_error()
        frames = self._frames_from(obs)
        row = self._row_scalars(reward, terminated, truncated)
        info_cols = adapters.info_columns(info, self.num_envs)
        chunk = self._current_chunk()
        i = chunk.rows
        for camera, batch in frames.items():
            _copy_frames(chunk.cameras[camera][:, i], batch)
        for name, values in row.items():
            chunk.scalars[name][:, i] = values
        self._store_info(chunk, i, info_cols)
        self._advance_episodes(row["terminated"] | row["truncated"])
        with self._state_lock:
            chunk.rows = i + 1
        self.stats.rows += 1
        self.stats.frames += self.num_envs * len(frames)
        self.stats.bytes_raw += sum(b.nbytes for b in frames.values())
        if chunk.rows == self._buffer_rows:
            self._submit(chunk)
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
        self._queue.put(_FLUSH)
        self._queue.join()
        self._raise_background_error()

    def close(self) -> None:
        """Flush, trim the arrays to the committed rows and mark the groups complete.

        If a write failed, the groups are marked ``failed`` (keeping every committed row)
        and :class:`WriterError` is raised. Leaving a ``with`` block by an exception marks
        them ``interrupted``.
        """
        if self.closed:
            return
        self.closed = True
        _OPEN_WRITERS.discard(self)
        self._queue.put(_FLUSH)
        self._queue.put(_STOP)
        self._thread.join()
        self._pool.shutdown(wait=True)
        self._finalize_groups()
        self.stats.bytes_stored = self._bytes_stored()
        log.info(
            "frame writer rank %d closed: %d rows, %d frames, %.1f MB stored",
            self.rank,
            self.stats.rows,
            self.stats.frames,
            self.stats.bytes_stored / 1e6,
        )
        self._raise_background_error()

    def __del__(self) -> None:
        if getattr(self, "closed", True) is False:
            log.warning("FrameWriter for %s was not closed; flushing at exit", self.path)

    # ------------------------------------------------------------------ rollout thread

    def _frames_from(self, obs: Any) -> dict[str, np.ndarray]:
        batches = adapters.to_camera_batches(obs, self.num_envs)
        if self.keep_cameras is not None:
            missing = [c for c in self.keep_cameras if c not in batches]
            if missing:
                raise adapters.FrameInputError(
                    f"rank {self.rank}: cameras {missing} requested but the observation has "
                    f"{sorted(batches)}"
                )
            batches = {c: batches[c] for c in self.keep_cameras}
        frames = adapters.batches_to_numpy(batches, self._d2h)
        self._check_shapes(frames)
        return frames

    def _check_shapes(self, frames: Mapping[str, np.ndarray]) -> None:
        shapes = {c: (int(f.shape[1]), int(f.shape[2])) for c, f in frames.items()}
        if self._shapes is None:
            if not shapes:
                raise adapters.FrameInputError(f"rank {self.rank}: observation has no cameras")
            for camera, (h, w) in shapes.items():
                if h <= 0 or w <= 0:
                    raise adapters.FrameInputError(f"camera {camera!r}: empty frames {h}x{w}")
            self._shapes = shapes
            self._configure_buffers()
            return
        if set(shapes) != set(self._shapes):
            raise adapters.FrameInputError(
                f"rank {self.rank}: cameras changed mid-run: now {sorted(shapes)}, "
                f"first step had {sorted(self._shapes)}"
            )
        for camera, shape in shapes.items():
            if shape != self._shapes[camera]:
                raise adapters.FrameInputError(
                    f"rank {self.rank}, camera {camera!r}: frame size changed from "
                    f"{self._shapes[camera]} to {shape} (H, W) mid-run"
                )

    def _configure_buffers(self) -> None:
        """Choose the chunk length for these frame sizes and how many buffers fit the cap."""
        assert self._shapes is not None
        largest = 3 * max(h * w for h, w in self._shapes.values())
        if self.chunk_frames is None:
            self.chunk_frames = _auto_chunk_frames(largest)
        if self.shard_frames is not None and self.shard_frames % self.chunk_frames:
            raise ValueError(
                f"shard_frames must be a multiple of chunk_frames ({self.chunk_frames}). "
                f"Got {self.shard_frames} instead."
            )
        self._buffer_rows = int(self.shard_frames or self.chunk_frames)
        frame_bytes = 3 * sum(h * w for h, w in self._shapes.values())
        per_chunk = self.num_envs * self._buffer_rows * frame_bytes
        count = self.max_buffer_bytes // per_chunk
        if count < 2:
            raise ValueError(
                f"rank {self.rank}: one chunk of {self._buffer_rows} frames x {self.num_envs} "
                f"envs x cameras {self._shapes} needs {per_chunk / 2**20:.1f} MiB and two are "
                f"needed, but max_buffer_mb is {self.max_buffer_bytes / 2**20:g}; raise "
                "max_buffer_mb or lower chunk_frames"
            )
        self._max_buffers = int(count)
        self._queue.put(_PREFAULT)

    def _row_scalars(self, reward: Any, terminated: Any, truncated: Any) -> dict[str, np.ndarray]:
        n = self.num_envs
        reward_v = (
            np.full(n, np.nan, np.float32)
            if reward is None
            else (adapters.as_env_vector(reward, n, "reward", np.float32))
        )
        term = (
            np.zeros(n, bool)
            if terminated is None
            else (adapters.as_env_vector(terminated, n, "terminated", bool))
        )
        trunc = (
            np.zeros(n, bool)
            if truncated is None
            else (adapters.as_env_vector(truncated, n, "truncated", bool))
        )
        return {
            "step": self._episode_step.copy(),
            "episode": self._episode.copy(),
            "reward": reward_v,
            "terminated": term,
            "truncated": trunc,
        }

    def _advance_episodes(self, done: np.ndarray) -> None:
        self._episode_step += 1
        self._episode_step[done] = 0
        self._episode[done] += 1

    def _store_info(self, chunk: _Chunk, row: int, columns: Mapping[str, np.ndarray]) -> None:
        for key, values in columns.items():
            buf = chunk.info.get(key)
            if buf is None:
                dtype = np.dtype(values.dtype)
                dtype = np.dtype("int64") if dtype.kind in "iu" else dtype
                buf = np.full((self.num_envs, self._buffer_rows), _fill_for(dtype), dtype)
                chunk.info[key] = buf
            if not np.can_cast(values.dtype, buf.dtype, casting="same_kind"):
                raise adapters.FrameInputError(
                    f"info key {key!r}: got {values.dtype} values after {buf.dtype} ones"
                )
            buf[:, row] = values

    def _new_chunk(self) -> _Chunk:
        assert self._shapes is not None
        n, t = self.num_envs, self._buffer_rows
        return _Chunk(
            cameras={c: np.empty((n, t, h, w, 3), np.uint8) for c, (h, w) in self._shapes.items()},
            scalars={k: np.zeros((n, t), d) for k, d in fmt.SCALARS.items()},
        )

    def _current_chunk(self) -> _Chunk:
        if self._chunk is not None:
            return self._chunk
        chunk = self._take_free_chunk()
        chunk.start, chunk.rows = self.stats.rows, 0
        chunk.info = {}
        with self._state_lock:
            self._chunk = chunk
        return chunk

    def _take_free_chunk(self) -> _Chunk:
        with self._pool_lock:
            if not self._free and self._buffers_allocated < self._max_buffers:
                self._buffers_allocated += 1
                return self._new_chunk()
            if not self._free:
                t0 = time.perf_counter()
                while not self._free:
                    self._raise_background_error()
                    self._pool_lock.wait(timeout=0.5)
                self.stats.blocked_seconds += time.perf_counter() - t0
            return self._free.pop()

    def _submit(self, chunk: _Chunk) -> None:
        with self._state_lock:
            if self._chunk is chunk:
                self._chunk = None
            self._pending += 1
            self.stats.queue_high_water = max(self.stats.queue_high_water, self._pending)
        self._queue.put(chunk)

    def _release(self, chunk: _Chunk) -> None:
        with self._pool_lock:
            self._free.append(chunk)
            self._pool_lock.notify()

    def _raise_background_error(self) -> None:
        if self._error is not None:
            raise WriterError(
                f"rank {self.rank}: writing frames to {str(self.path)!r} failed: {self._error}; "
                f"rows up to {self._committed} are committed and readable"
            ) from self._error

    # ------------------------------------------------------------------ background thread

    def _background(self) -> None:
        """Write queued full chunks; on a flush request or a quiet interval, the partial one."""
        while True:
            try:
                item = self._queue.get(timeout=self.flush_interval)
            except queue.Empty:
                self._guarded(self._flush_partial_chunk)
                continue
            try:
                if item is _STOP:
                    return
                if item is _FLUSH:
                    self._guarded(self._flush_partial_chunk)
                    continue
                if item is _PREFAULT:
                    self._guarded(self._prefault_buffers)
                    continue
                self._guarded(self._write_full_chunk, item)
                if time.monotonic() - self._last_commit > self.flush_interval:
                    self._guarded(self._flush_partial_chunk)
            finally:
                self._queue.task_done()

    def _prefault_buffers(self) -> None:
        """Allocate spare buffers and touch their pages here, not on the rollout thread."""
        for _ in range(PREFAULTED_BUFFERS):
            with self._pool_lock:
                if self._buffers_allocated >= self._max_buffers:
                    return
                self._buffers_allocated += 1
            chunk = self._new_chunk()
            for buf in chunk.cameras.values():
                for frames in buf:  # one env's rows at a time: short GIL holds
                    frames.fill(0)
            self._release(chunk)

    def _guarded(self, write: Any, *args: Any) -> None:
        """Run one write; keep the first failure for the rollout thread to raise."""
        if self._error is not None:
            return
        try:
            write(*args)
        except BaseException as e:  # noqa: BLE001 - surfaced on the next append/close
            self._error = e
            log.error("rank %d: frame store write failed: %s", self.rank, e)

    def _write_full_chunk(self, chunk: _Chunk) -> None:
        try:
            self._write_chunk(chunk, chunk.rows, chunk.info)
            self.stats.chunks_written += 1
        finally:
            with self._state_lock:
                self._pending -= 1
            self._release(chunk)

    def _flush_partial_chunk(self) -> None:
        """Write the filled rows of the chunk being appended to (bounded loss on a crash)."""
        with self._state_lock:
            chunk = self._chunk
            if chunk is None or self._pending or chunk.start + chunk.rows <= self._committed:
                return
            rows, info = chunk.rows, dict(chunk.info)
        self._write_chunk(chunk, rows, info)
        self.stats.partial_flushes += 1

    def _write_chunk(self, chunk: _Chunk, rows: int, info: Mapping[str, np.ndarray]) -> None:
        """Write a whole buffer of every array of every env, then publish the committed rows.

        Camera buffers are written whole, so zarr never reads back and merges a partial frame
        chunk; for a partly filled chunk the rows past ``rows`` (past the committed length,
        overwritten later) are zeros, which cost next to nothing to compress. Every file is
        replaced atomically, so a crash mid-write leaves the previous, committed content.
        """
        end = chunk.start + rows
        self._ensure_capacity(end, info)
        futures = [
            self._pool.submit(self._write_env, e, chunk, rows, info) for e in range(self.num_envs)
        ]
        for f in futures:
            f.result()
        futures = [self._pool.submit(fmt.commit_rows, group, end) for group in self._groups]
        for f in futures:
            f.result()
        self._committed = end
        self._last_commit = time.monotonic()

    def _write_env(
        self, env: int, chunk: _Chunk, rows: int, info: Mapping[str, np.ndarray]
    ) -> None:
        arrays = self._arrays[env]
        t0 = chunk.start
        t1 = t0 + self._buffer_rows
        for camera, buf in chunk.cameras.items():
            arrays[f"{fmt.CAMERAS}/{camera}"][t0:t1] = _filled_rows(buf[env], rows)
        for name, buf in chunk.scalars.items():
            arrays[name][t0:t1] = buf[env]
        for key, buf in info.items():
            arrays[f"{fmt.INFO}/{key}"][t0:t1] = buf[env]

    def _ensure_capacity(self, end: int, info: Mapping[str, np.ndarray]) -> None:
        """Create missing arrays and grow every array's shape (in big steps) to hold ``end``."""
        assert self._shapes is not None
        for env, group in enumerate(self._groups):
            arrays = self._arrays[env]
            if not arrays:
                arrays.update({name: group[name] for name in fmt.SCALARS})
                for camera, (h, w) in self._shapes.items():
                    arrays[f"{fmt.CAMERAS}/{camera}"] = fmt.create_camera_array(
                        group,
                        camera,
                        h,
                        w,
                        chunk_frames=self.chunk_frames,
                        codec=self.codec,
                        shard_frames=self.shard_frames,
                    )
                    _resize_rows(arrays[f"{fmt.CAMERAS}/{camera}"], self._capacity)
            for key, buf in info.items():
                path = f"{fmt.INFO}/{key}"
                if path not in arrays:
                    arrays[path] = fmt.create_info_array(group, key, buf.dtype.str)
                    _resize_rows(arrays[path], self._capacity)
        if end + self._buffer_rows <= self._capacity:
            return
        step = math.lcm(self._buffer_rows, fmt.SCALAR_CHUNK_ROWS)
        needed = end + self._buffer_rows
        self._capacity = max(needed, 2 * self._capacity)
        self._capacity = -(-self._capacity // step) * step
        futures = [
            self._pool.submit(_resize_rows, array, self._capacity)
            for arrays in self._arrays
            for array in arrays.values()
        ]
        for f in futures:
            f.result()

    def _finalize_groups(self) -> None:
        """Trim shapes to the committed rows and record the final status (best effort)."""
        status = "interrupted" if self._interrupted else "complete"
        status = "failed" if self._error is not None else status
        for env, group in enumerate(self._groups):
            try:
                for array in self._arrays[env].values():
                    _resize_rows(array, self._committed)
                fmt.commit_rows(group, self._committed, status=status)
            except Exception as e:  # noqa: BLE001 - committed rows stay readable regardless
                log.error("rank %d env %d: could not finalize group: %s", self.rank, env, e)

    def _bytes_stored(self) -> int:
        total = 0
        for name in self.group_names:
            for dirpath, _dirs, files in os.walk(self.path / name):
                total += sum(os.path.getsize(os.path.join(dirpath, f)) for f in files)
        return total


def _copy_frames(dst: np.ndarray, src: np.ndarray) -> None:
    """Copy ``(N, H, W, 3)`` frames; an RGBA view (``rgba[..., :3]``) one channel at a time.

    numpy copies a 3-of-4-bytes strided view element by element; per channel it is ~5x
    faster (480x480 x 4 envs: 4.0 ms -> 0.8 ms).
    """
    if src.flags.c_contiguous:
        dst[...] = src
        return
    for channel in range(3):
        dst[..., channel] = src[..., channel]


def _filled_rows(frames: np.ndarray, rows: int) -> np.ndarray:
    """``frames`` with the rows from ``rows`` on zeroed (a copy), or ``frames`` when all filled.

    The rollout thread may be writing row ``rows`` right now, so the buffer itself is not
    touched; the copy is of the filled rows only (zeros are lazily mapped pages).
    """
    if rows >= len(frames):
        return frames
    padded = np.zeros(frames.shape, frames.dtype)
    padded[:rows] = frames[:rows]
    return padded


def _auto_chunk_frames(frame_bytes: int) -> int:
    """64 rows, halved until one camera chunk fits :data:`MAX_CHUNK_BYTES` (at least 1).

    Big chunks amortise zarr's per-write overhead for small frames (64 at 128x128 and 256x256);
    big frames get fewer rows so buffers stay small (16 at 480x480, 4 at 960x960).
    """
    rows = 64
    while rows > 1 and rows * frame_bytes > MAX_CHUNK_BYTES:
        rows //= 2
    return rows


def _resize_rows(array: zarr.Array, rows: int) -> None:
    if array.shape[0] != rows:
        array.resize((rows, *array.shape[1:]))


def _fill_for(dtype: np.dtype) -> Any:
    return np.nan if dtype.kind == "f" else 0


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


def _checked_codec(spec: str | Mapping[str, Any] | FrameCodec) -> FrameCodec:
    """The codec, with its zarr codec chain built once so a bad setting fails here, not in
    the background thread at the first write (``ValueError`` naming the codec)."""
    codec = get_codec(spec)
    try:
        codec.zarr_codecs()
    except (TypeError, ValueError) as e:
        raise ValueError(f"frame codec {codec.get_config()}: {e}") from e
    return codec
