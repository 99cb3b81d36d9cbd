"""What recording costs the rollout thread: FrameWriter.append vs memcpy vs inline ffmpeg.

For each resolution (4 envs x 3 cameras of real MuJoCo tabletop frames), in one run and
alternating strategies step by step, so machine load hits all three alike:

* ``memcpy``: copying the same bytes into a preallocated buffer (the floor);
* ``append``: ``FrameWriter.append`` on the calling thread (store codec: zstd, default);
* ``inline``: writing the same frames to one imageio-ffmpeg libx264 pipe per env and camera,
  as inline per-env video writers do.

Appends are paced like a rollout: between steps the benchmark sleeps for the simulator's own
step time (measured while collecting the frames), which is when the writer's background
threads and ffmpeg do their work. Reported: calling-thread ms per step (median and p99 after
a warm-up of 32 steps), the ratio to memcpy and to the inline write, then, measured alone
(one strategy at a time, so 12 inline encoders do not slow the writer's threads or the other
way round): background CPU ms per frame (writer: process CPU minus the calling thread's;
inline: the ffmpeg processes' CPU) and bytes stored per frame.

    python benchmarks/bench_hotpath.py                # 128 256 480 960
    python benchmarks/bench_hotpath.py --sizes 128 --steps 60
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import imageio_ffmpeg
import numpy as np
from common import children_cpu

from collect import FrameWriter
from collect.adapters import batches_to_numpy, to_camera_batches

NUM_ENVS = 4
FPS = 30.0
WARMUP_STEPS = 32  # excluded from the per-step statistics of every strategy


def collect_frames(size: int, steps: int) -> tuple[list[dict[str, np.ndarray]], float]:
    """Real tabletop frames for ``steps`` steps, and the simulator's median step time (s)."""
    from collect.envs import make_env, make_policy

    env = make_env("mujoco_tabletop", NUM_ENVS, seed=0, image_size=size, tensor=False)
    policy = make_policy("scripted", env)
    obs = env.reset(seed=0)
    frames, times = [], []
    for _ in range(steps):
        t0 = time.perf_counter()
        obs, *_ = env.step(policy(obs))
        times.append(time.perf_counter() - t0)
        batches = batches_to_numpy(to_camera_batches(obs, NUM_ENVS))
        frames.append({cam: np.ascontiguousarray(b) for cam, b in batches.items()})
    env.close()
    return frames, statistics.median(times)


class Memcpy:
    """Copy each step into a preallocated ring buffer (what append must at least do)."""

    def __init__(self, sample: dict[str, np.ndarray]) -> None:
        self.buffers = {c: np.empty((16, *b.shape), b.dtype) for c, b in sample.items()}
        self.row = 0

    def step(self, batch: dict[str, np.ndarray]) -> None:
        for cam, frames in batch.items():
            self.buffers[cam][self.row % 16] = frames
        self.row += 1

    def close(self) -> None:
        pass


class Store:
    """FrameWriter with its defaults."""

    def __init__(self, path: Path, fps: float) -> None:
        self.writer = FrameWriter(path, rank=0, gpu=0, num_envs=NUM_ENVS, fps=fps)

    def step(self, batch: dict[str, np.ndarray]) -> None:
        self.writer.append(batch)

    def close(self) -> None:
        self.writer.close()


class Inline:
    """One imageio-ffmpeg libx264 writer per env and camera, fed on the calling thread."""

    def __init__(self, out: Path, sample: dict[str, np.ndarray], fps: float) -> None:
        out.mkdir(parents=True, exist_ok=True)
        self.writers = {}
        for cam, batch in sample.items():
            h, w = batch.shape[1:3]
            for env in range(NUM_ENVS):
                gen = imageio_ffmpeg.write_frames(
                    str(out / f"{cam}_env{env}.mp4"),
                    (w, h),
                    fps=fps,
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


def paced(strategy: Memcpy | Store | Inline, frames: list, sim_time: float) -> list[float]:
    """Feed every step to one strategy, sleeping the simulator's step time in between."""
    times = []
    for batch in frames:
        t0 = time.perf_counter()
        strategy.step(batch)
        times.append(time.perf_counter() - t0)
        time.sleep(sim_time)
    return times


def interleaved_times(frames: list, sim_time: float, workdir: Path) -> dict[str, list[float]]:
    """Calling-thread seconds per step, strategies alternating step by step (A B C A B C)."""
    strategies = {
        "memcpy": Memcpy(frames[0]),
        "append": Store(workdir / "timed.zarr", FPS),
        "inline": Inline(workdir / "timed_inline", frames[0], FPS),
    }
    times: dict[str, list[float]] = {name: [] for name in strategies}
    for batch in frames:
        for name, strategy in strategies.items():
            t0 = time.perf_counter()
            strategy.step(batch)
            times[name].append(time.perf_counter() - t0)
            time.sleep(sim_time)  # the simulator's turn: background work happens now
    for strategy in strategies.values():
        strategy.close()
    return times


def store_cpu(frames: list, sim_time: float, path: Path) -> tuple[float, int]:
    """Background CPU seconds of a FrameWriter alone (process CPU minus the calling thread)."""
    store = Store(path, FPS)
    proc0, main0 = time.process_time(), time.thread_time()
    paced(store, frames, sim_time)
    store.close()
    background = (time.process_time() - proc0) - (time.thread_time() - main0)
    return background, store.writer.stats.bytes_stored


def inline_cpu(frames: list, sim_time: float, out: Path) -> tuple[float, int]:
    """CPU seconds of the inline ffmpeg encoders alone (their processes), and bytes written."""
    before = children_cpu()
    inline = Inline(out, frames[0], FPS)
    paced(inline, frames, sim_time)
    inline.close()
    return children_cpu() - before, sum(f.stat().st_size for f in out.iterdir())


def run_size(size: int, steps: int, workdir: Path) -> dict[str, dict[str, float]]:
    frames, sim_time = collect_frames(size, steps)
    n_frames = steps * NUM_ENVS * len(frames[0])
    raw = sum(b[0].nbytes for b in frames[0].values()) / len(frames[0])
    times = interleaved_times(frames, sim_time, workdir / f"{size}")
    warmup = min(WARMUP_STEPS, steps // 4)  # buffer first-touch, ffmpeg start-up
    store_s, store_bytes = store_cpu(frames, sim_time, workdir / f"{size}.zarr")
    inline_s, inline_bytes = inline_cpu(frames, sim_time, workdir / f"{size}_inline")
    cpu = {"memcpy": 0.0, "append": store_s, "inline": inline_s}
    stored = {"memcpy": 0, "append": store_bytes, "inline": inline_bytes}
    return {
        name: {
            "median_ms": 1000 * statistics.median(ts[warmup:]),
            "p99_ms": 1000 * float(np.percentile(ts[warmup:], 99)),
            "bg_cpu_ms_per_frame": 1000 * cpu[name] / n_frames,
            "bytes_per_frame": stored[name] / n_frames,
            "raw_bytes_per_frame": raw,
            "sim_ms": 1000 * sim_time,
        }
        for name, ts in times.items()
    }


def print_table(results: dict[int, dict[str, dict[str, float]]]) -> None:
    header = (
        "| size | sim ms/step | memcpy ms | append ms (p99) | inline ms (p99) | append/memcpy "
        "| append/inline | bg CPU ms/frame: store vs x264 | stored KB/frame (raw) |"
    )
    print(header)
    print("|---" * (header.count("|") - 1) + "|")
    for size, r in results.items():
        m, a, i = r["memcpy"], r["append"], r["inline"]
        print(
            f"| {size} | {a['sim_ms']:.1f} | {m['median_ms']:.2f} "
            f"| {a['median_ms']:.2f} ({a['p99_ms']:.2f}) "
            f"| {i['median_ms']:.2f} ({i['p99_ms']:.2f}) "
            f"| {a['median_ms'] / m['median_ms']:.2f}x | {a['median_ms'] / i['median_ms']:.2f}x "
            f"| {a['bg_cpu_ms_per_frame']:.2f} vs {i['bg_cpu_ms_per_frame']:.2f} "
            f"| {a['bytes_per_frame'] / 1e3:.1f} ({a['raw_bytes_per_frame'] / 1e3:.0f}) |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[128, 256, 480, 960])
    parser.add_argument("--steps", type=int, default=120, help="steps per size (960: half)")
    args = parser.parse_args()
    os.environ.setdefault("MUJOCO_GL", "egl")
    workdir = Path(tempfile.mkdtemp(prefix="bench_hotpath_"))
    try:
        results = {}
        for size in args.sizes:
            steps = args.steps // 2 if size >= 960 else args.steps
            results[size] = run_size(size, steps, workdir)
        print(f"# bench_hotpath: {NUM_ENVS} envs x 3 cameras, {os.cpu_count()} cores")
        print_table(results)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
