"""What recording costs the rollout: FrameWriter.append vs memcpy (and inline ffmpeg).

Input is what users feed, from real MuJoCo tabletop steps (4 envs x 3 cameras) collected
first, each step's frames its own arrays (deep copies):

* per-env RGBA dicts (OmniGibson structure), the headline: the observation list exactly as
  ``make_env("mujoco_tabletop", 4, tensor=False)`` emits it, one nested dict per env with
  ``uint8 (H, W, 4)`` frames (``[{"robot_r1": {"robot_r1:zed_link:Camera:0": {"rgb": ...},
  ..., "proprio": ...}}, ...]``); goal: append <= 1.5x memcpy;
* contiguous RGB batches: the same frames as ``{camera: uint8 (4, H, W, 3)}``; goal: append
  <= 1.2x memcpy.

For each resolution and input, two strategies alternate step by step in one run, so machine
load hits both alike:

* ``memcpy``: copying the same input bytes (every env's RGBA frame, 4 bytes/pixel; or the RGB
  batches) into the next slot of a preallocated, already-touched 256 MiB buffer (the floor);
* ``append``: ``FrameWriter.append(obs)`` with its defaults (zstd, writer subprocess);
* ``stream copy``: the same copy as ``memcpy`` with the streaming stores append fills the
  ring with (``collect._streamcopy``, where built; see :mod:`collect.ring`): append's own copy
  without the rest of it, so append/stream is what the append adds to its copies.

memcpy and stream copy each read a deep copy of append's input, so none finds frames another
just pulled into the cache. Steps are paced like a rollout: after each timed call the simulator
takes its turn (:class:`Simulator`; ``--pace simulate``, the default, steps the real env with
llvmpipe on one thread unless ``LP_NUM_THREADS`` says otherwise: a core left free, as GPU
rendering leaves it; ``--pace sleep`` sleeps its median step time), which is when the writer
process does its work. Reported: calling-thread ms per step (median and p99 after a warm-up
of 32 steps), append/memcpy (the goal's ratio) and append/stream copy. Then, measured alone
(one strategy at a time, paced the same way):

* writer CPU ms/frame: the writer process's user + system CPU over its whole life, as it
  reports it at ``close()`` (``stats.writer_cpu_seconds``, all its threads), so the work
  ``close()`` waits for (the last chunks, deferred recompression) is counted. Its start-up
  (interpreter, imports, opening the groups: psutil's reading once a ``flush()`` before the
  first append has returned) is subtracted and shown on its own, in ms;
* rollout CPU ms/frame: ``time.thread_time`` of the calling thread inside ``append`` (the
  rollout side starts no thread: the writer process allocates the ring's pages);
* blocked s and chunks deferred (``writer.stats``), and stored KB/frame
  (``stats.bytes_stored``) next to the raw RGB size;
* for RGB batches only, the inline alternative: one imageio-ffmpeg libx264 pipe per env and
  camera fed on the calling thread (ms per step, the ffmpeg processes' CPU, file bytes).
  It is timed alone, not interleaved: 12 encoders busy on the cores slow whatever runs next
  (the memcpy floor went from 0.2 to 0.5 ms at 128x128 on 2 cores).

Peak memory is about 9 GB at 960x960 with the default steps (three copies of the frames).

    python benchmarks/bench_hotpath.py                # 128 256 480 960, 120 steps (960: 60)
    python benchmarks/bench_hotpath.py --sizes 128 --steps 40
"""

from __future__ import annotations

import argparse
import copy
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import imageio_ffmpeg
import numpy as np
import psutil
from common import children_cpu, dir_bytes, load_average, markdown_table

from collect import FrameWriter
from collect.adapters import batches_to_numpy, camera_frames, to_camera_batches
from collect.ring import STREAMING_STORES

try:
    from collect import _streamcopy
except ImportError:  # not built: no stream copy column
    _streamcopy = None

NUM_ENVS = 4
FPS = 30.0
WARMUP_STEPS = 32  # excluded from the per-step statistics of every strategy
MEMCPY_BYTES = 256 * 2**20  # bigger than any cache, like the writer's ring
RGBA, RGB = "per-env RGBA dicts (OmniGibson structure)", "contiguous RGB batches"
KINDS = {  # input kind -> (what one step is, the append/memcpy to aim for)
    RGBA: (f"a list of {NUM_ENVS} env dicts, 3 cameras x uint8 (H, W, 4) each", 1.5),
    RGB: (f"{{camera: uint8 ({NUM_ENVS}, H, W, 3)}}", 1.2),
}

Observation = Any  # one step's input: a list of per-env dicts, or {camera: batch}


class Simulator:
    """The real tabletop env: it produces the inputs first, then takes its turn between two
    timed calls, as in a rollout.

    ``pace="simulate"`` steps it (its output dropped): what a rollout thread does between two
    appends, so the core stays busy and its caches hold the simulator's data. ``"sleep"``
    sleeps the median step time instead: the core idles, and in this VM the first
    microseconds of Python after waking run several times slower (a poll of a pipe: 3 us
    after a busy 80 ms, 65 us after a sleep), which a rollout thread busy simulating does
    not see.
    """

    def __init__(self, size: int, pace: str) -> None:
        from collect.eval.envs import make_env, make_policy

        self.env = make_env("mujoco_tabletop", NUM_ENVS, seed=0, image_size=size, tensor=False)
        self.policy = make_policy("scripted", self.env)
        self.obs = self.env.reset(seed=0)
        self.pace = pace
        self.step_time = 0.0  # median seconds per step, set by collect

    def collect(self, steps: int) -> list[list[dict]]:
        """``steps`` real observations (frames deep-copied); sets the median step time."""
        observations, times = [], []
        for _ in range(steps):
            t0 = time.perf_counter()
            self.step()
            times.append(time.perf_counter() - t0)
            observations.append(copy.deepcopy(self.obs))
        self.step_time = statistics.median(times)
        return observations

    def step(self) -> None:
        self.obs, *_ = self.env.step(self.policy(self.obs))

    def take_turn(self) -> None:
        """The simulator's turn: background work (the writer process) happens now."""
        if self.pace == "sleep":
            time.sleep(self.step_time)
        else:
            self.step()

    def close(self) -> None:
        self.env.close()


def rgb_batches(observations: list[list[dict]]) -> list[dict[str, np.ndarray]]:
    """The same frames as contiguous ``{camera: (N, H, W, 3)}`` batches (new arrays)."""
    return [
        {
            c: np.ascontiguousarray(b)
            for c, b in batches_to_numpy(to_camera_batches(o, NUM_ENVS)).items()
        }
        for o in observations
    ]


def flat_frames(obs: Observation) -> list[np.ndarray]:
    """The arrays of one step's input, in order: every env's frame of every camera, or the
    camera batches."""
    arrays = []
    for frames in camera_frames(obs, NUM_ENVS).values():
        arrays.extend(frames if isinstance(frames, list) else [frames])
    return arrays


class Memcpy:
    """Copy each step's arrays into the next slot of a preallocated, touched buffer, with
    ``copy`` (numpy's: glibc memcpy; or the ring's streaming copy)."""

    def __init__(self, sample: list[np.ndarray], copy: Callable[[Any, Any], None]) -> None:
        slots = max(2, MEMCPY_BYTES // sum(a.nbytes for a in sample))
        self.slots = [[np.full_like(a, 1) for a in sample] for _ in range(slots)]
        self.row = 0
        self.copy = copy

    def step(self, arrays: list[np.ndarray]) -> None:
        for dst, src in zip(self.slots[self.row % len(self.slots)], arrays, strict=True):
            self.copy(dst, src)
        self.row += 1

    def close(self) -> None:
        self.slots.clear()


class Store:
    """FrameWriter with its defaults."""

    def __init__(self, path: Path) -> None:
        self.writer = FrameWriter(path, rank=0, gpu=0, num_envs=NUM_ENVS, fps=FPS)

    def step(self, obs: Observation) -> None:
        self.writer.append(obs)

    def close(self) -> None:
        self.writer.close()


class Inline:
    """One imageio-ffmpeg libx264 writer per env and camera, fed RGB on the calling thread."""

    def __init__(self, out: Path, sample: dict[str, np.ndarray]) -> None:
        out.mkdir(parents=True, exist_ok=True)
        self.writers = {}
        for cam, batch in sample.items():
            h, w = batch.shape[1:3]
            for env in range(NUM_ENVS):
                gen = imageio_ffmpeg.write_frames(
                    str(out / f"{cam}_env{env}.mp4"),
                    (w, h),
                    fps=FPS,
                    codec="libx264",
                    macro_block_size=1,
                    ffmpeg_log_level="error",
                )
                gen.send(None)
                self.writers[cam, env] = gen

    def step(self, batch: dict[str, np.ndarray]) -> None:
        for (cam, env), gen in self.writers.items():
            gen.send(batch[cam][env])

    def close(self) -> None:
        for gen in self.writers.values():
            gen.close()


def interleaved_times(
    feeds: dict[str, tuple[Memcpy | Store, list]], sim: Simulator
) -> dict[str, list[float]]:
    """Calling-thread seconds per step, strategies alternating step by step (A B A B)."""
    times: dict[str, list[float]] = {name: [] for name in feeds}
    steps = len(next(iter(feeds.values()))[1])
    for i in range(steps):
        for name, (strategy, inputs) in feeds.items():
            t0 = time.perf_counter()
            strategy.step(inputs[i])
            times[name].append(time.perf_counter() - t0)
            sim.take_turn()
    for strategy, _ in feeds.values():
        strategy.close()
    return times


@dataclass(frozen=True)
class WriterCost:
    """One FrameWriter measured alone; CPU in ms per frame."""

    writer_ms: float  # writer process, start-up excluded
    startup_ms: float  # writer process before the first append (total, not per frame)
    rollout_ms: float  # the calling thread inside append
    blocked_s: float
    chunks_deferred: int
    stored_bytes: float  # per frame


def process_cpu(pid: int) -> float:
    """User + system CPU seconds of a live process."""
    times = psutil.Process(pid).cpu_times()
    return times.user + times.system


def writer_alone(inputs: list[Observation], sim: Simulator, path: Path) -> WriterCost:
    """CPU of a FrameWriter fed alone, paced like a rollout."""
    writer = FrameWriter(path, rank=0, gpu=0, num_envs=NUM_ENVS, fps=FPS)
    writer.flush()  # returns once the writer process has started and opened the groups
    startup = process_cpu(writer.writer_pid)
    rollout = 0.0
    for obs in inputs:
        t0 = time.thread_time()
        writer.append(obs)
        rollout += time.thread_time() - t0
        sim.take_turn()
    writer.close()  # the writer process reports its CPU (every thread) when it has finished
    stats = writer.stats
    lifetime = stats.writer_cpu_seconds
    return WriterCost(
        writer_ms=1000 * (lifetime - startup) / stats.frames,
        startup_ms=1000 * startup,
        rollout_ms=1000 * rollout / stats.frames,
        blocked_s=stats.blocked_seconds,
        chunks_deferred=stats.chunks_deferred,
        stored_bytes=stats.bytes_stored / stats.frames,
    )


@dataclass(frozen=True)
class InlineCost:
    """The inline x264 writers measured alone."""

    step_ms: tuple[float, float]  # median, p99 calling-thread ms per step after the warm-up
    cpu_ms: float  # the ffmpeg processes, per frame
    stored_bytes: float  # per frame


def inline_alone(
    inputs: list[dict[str, np.ndarray]], sim: Simulator, out: Path, warmup: int
) -> InlineCost:
    """Inline writers fed alone, paced like a rollout."""
    before = children_cpu()
    inline, times = Inline(out, inputs[0]), []
    for batch in inputs:
        t0 = time.perf_counter()
        inline.step(batch)
        times.append(time.perf_counter() - t0)
        sim.take_turn()
    inline.close()  # waits for the ffmpeg processes: their CPU is now in RUSAGE_CHILDREN
    frames = len(inputs) * len(inline.writers)
    return InlineCost(
        step_ms=median_p99(times, warmup),
        cpu_ms=1000 * (children_cpu() - before) / frames,
        stored_bytes=dir_bytes(out) / frames,
    )


def median_p99(times: list[float], warmup: int) -> tuple[float, float]:
    kept = times[warmup:]
    return 1000 * statistics.median(kept), 1000 * float(np.percentile(kept, 99))


@dataclass(frozen=True)
class Result:
    """One input kind at one size."""

    size: int
    sim_ms: float
    raw_bytes: int  # RGB bytes of one frame
    times: dict[str, tuple[float, float]]  # memcpy, append -> (median, p99) ms per step
    writer: WriterCost
    x264: InlineCost | None


def run_kind(size: int, inputs: list, sim: Simulator, workdir: Path, *, inline: bool) -> Result:
    """Time memcpy, append and stream copy interleaved (the copies from deep copies of
    ``inputs``), then measure append (and inline) alone."""
    copiers = {"memcpy": np.copyto, "stream copy": _streamcopy and _streamcopy.copy}
    feeds: dict[str, tuple[Memcpy | Store, list]] = {}
    for name, copier in copiers.items():
        if copier is not None:
            sources = [flat_frames(obs) for obs in copy.deepcopy(inputs)]
            feeds[name] = (Memcpy(sources[0], copier), sources)
        if name == "memcpy":
            feeds["append"] = (Store(workdir / "timed.zarr"), inputs)
    times = interleaved_times(feeds, sim)
    del feeds
    warmup = min(WARMUP_STEPS, len(inputs) // 4)  # first touches, ffmpeg start-up
    h, w = flat_frames(inputs[0])[0].shape[-3:-1]
    return Result(
        size=size,
        sim_ms=1000 * sim.step_time,
        raw_bytes=3 * h * w,
        times={name: median_p99(ts, warmup) for name, ts in times.items()},
        writer=writer_alone(inputs, sim, workdir / "alone.zarr"),
        x264=inline_alone(inputs, sim, workdir / "inline", warmup) if inline else None,
    )


def run_size(size: int, steps: int, pace: str, workdir: Path) -> dict[str, Result]:
    """Both input kinds at one size (in memory: at most two copies of the frames)."""
    print(f"bench_hotpath: {size}x{size}, {steps} steps", file=sys.stderr)
    sim = Simulator(size, pace)
    try:
        observations = sim.collect(steps)
        rgba = run_kind(size, observations, sim, workdir / f"{size}_rgba", inline=False)
        batches = rgb_batches(observations)
        del observations
        rgb = run_kind(size, batches, sim, workdir / f"{size}_rgb", inline=True)
    finally:
        sim.close()
    return {RGBA: rgba, RGB: rgb}


def _ms(times: tuple[float, float]) -> str:
    return f"{times[0]:.2f} ({times[1]:.2f})"


def _ratio(r: Result, other: float) -> str:
    return f"{r.times['append'][0] / other:.2f}x"


def _stream(r: Result, value: Callable[[float], str]) -> str:
    """``value`` of the stream copy's median, or "not built" without the helper."""
    times = r.times.get("stream copy")
    return value(times[0]) if times else "not built"


# (header, value, inline only)
COLUMNS: list[tuple[str, Callable[[Result], object], bool]] = [
    ("size", lambda r: r.size, False),
    ("sim ms/step", lambda r: f"{r.sim_ms:.1f}", False),
    ("memcpy ms", lambda r: f"{r.times['memcpy'][0]:.2f}", False),
    ("append ms (p99)", lambda r: _ms(r.times["append"]), False),
    ("inline x264 ms (p99), alone", lambda r: _ms(r.x264.step_ms), True),
    ("stream copy ms", lambda r: _stream(r, lambda ms: f"{ms:.2f}"), False),
    ("append/memcpy", lambda r: _ratio(r, r.times["memcpy"][0]), False),
    ("append/stream copy", lambda r: _stream(r, lambda ms: _ratio(r, ms)), False),
    ("append/inline", lambda r: _ratio(r, r.x264.step_ms[0]), True),
    ("writer CPU ms/frame (start-up ms)",
     lambda r: f"{r.writer.writer_ms:.2f} ({r.writer.startup_ms:.0f})", False),
    ("x264 CPU ms/frame", lambda r: f"{r.x264.cpu_ms:.2f}", True),
    ("rollout CPU ms/frame", lambda r: f"{r.writer.rollout_ms:.3f}", False),
    ("blocked s", lambda r: f"{r.writer.blocked_s:.2f}", False),
    ("chunks deferred", lambda r: r.writer.chunks_deferred, False),
    ("stored KB/frame (raw RGB)",
     lambda r: f"{r.writer.stored_bytes / 1000:.1f} ({r.raw_bytes / 1000:.0f})", False),
    ("x264 KB/frame", lambda r: f"{r.x264.stored_bytes / 1000:.1f}", True),
]  # fmt: skip


def table(results: list[Result]) -> str:
    """One markdown table of one input kind, a row per size (inline columns if measured)."""
    inline = results[0].x264 is not None
    columns = [(h, value) for h, value, inline_only in COLUMNS if inline or not inline_only]
    rows = [[value(r) for _, value in columns] for r in results]
    return markdown_table([h for h, _ in columns], rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[128, 256, 480, 960])
    parser.add_argument("--steps", type=int, default=120, help="steps per size (960: half)")
    parser.add_argument(
        "--pace", choices=["simulate", "sleep"], default="simulate",
        help="between timed calls: step the simulator (default) or sleep as long",
    )  # fmt: skip
    args = parser.parse_args()
    os.environ.setdefault("MUJOCO_GL", "egl")
    os.environ.setdefault("LP_NUM_THREADS", "1")  # a core left free, as GPU rendering leaves
    workdir = Path(tempfile.mkdtemp(prefix="bench_hotpath_"))
    load_before = load_average()
    try:
        results = []
        for size in args.sizes:
            steps = args.steps // 2 if size >= 960 else args.steps
            results.append(run_size(size, steps, args.pace, workdir))
        print(
            f"bench_hotpath: {NUM_ENVS} envs x 3 cameras, {os.cpu_count()} cores, "
            f"paced by {args.pace} (LP_NUM_THREADS={os.environ['LP_NUM_THREADS']}), "
            f"load average {load_before} before, {load_average()} after; append fills the ring "
            f"with {'streaming stores' if STREAMING_STORES else 'memcpy (no streaming stores)'}"
        )
        for kind, (step, goal) in KINDS.items():
            print(f"\n{kind}, one step = {step}; goal: append <= {goal}x memcpy\n")
            print(table([r[kind] for r in results]))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
