"""What recording costs the rollout thread: FrameWriter.append vs memcpy vs inline ffmpeg.

For each resolution (4 envs x 3 cameras of real MuJoCo tabletop frames), in one run and
alternating strategies step by step, so machine load hits all three alike:

* ``memcpy``: copying the same bytes into a preallocated buffer (the floor);
* ``append``: ``FrameWriter.append`` on the calling thread (store codec: zstd, default);
* ``inline``: writing the same frames to one imageio-ffmpeg libx264 pipe per env and camera,
  as inline per-env video writers do.

Appends are paced like a rollout: between steps the benchmark sleeps for the simulator's own
step time (measured while collecting the frames), which is when the writer's background
threads and ffmpeg do their work. Reported: calling-thread ms per step (median, p99), the
ratio to memcpy and to the inline write, background CPU ms per frame (writer: process CPU
minus the calling thread's; inline: ffmpeg children's CPU), and bytes stored per frame.

    python benchmarks/bench_hotpath.py                # 128 256 480 960
    python benchmarks/bench_hotpath.py --sizes 128 --steps 60
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import imageio_ffmpeg
import numpy as np

from collect import FrameWriter
from collect.adapters import batches_to_numpy, to_camera_batches

NUM_ENVS = 4


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


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_size(size: int, steps: int, workdir: Path) -> dict[str, dict[str, float]]:
    frames, sim_time = collect_frames(size, steps)
    fps = 30.0
    frames_per_step = NUM_ENVS * len(frames[0])
    memcpy = Memcpy(frames[0])
    store = Store(workdir / f"{size}.zarr", fps)
    inline_dir = workdir / f"inline{size}"
    inline_dir.mkdir()
    cpu_children0 = children_cpu()
    inline = Inline(inline_dir, frames[0], fps)
    strategies = {"memcpy": memcpy, "append": store, "inline": inline}
    times: dict[str, list[float]] = {name: [] for name in strategies}
    proc_cpu0, main_cpu0 = time.process_time(), time.thread_time()
    for batch in frames:
        for name, strategy in strategies.items():
            t0 = time.perf_counter()
            strategy.step(batch)
            times[name].append(time.perf_counter() - t0)
            time.sleep(sim_time)  # the simulator's turn: background work happens now
    store.close()
    # The writer's background threads are the only other CPU users in this process.
    writer_bg = (time.process_time() - proc_cpu0) - (time.thread_time() - main_cpu0)
    inline.close()
    inline_cpu = children_cpu() - cpu_children0
    stored = store.writer.stats.bytes_stored
    inline_bytes = sum(f.stat().st_size for f in inline_dir.iterdir())
    n_frames = steps * frames_per_step
    return {
        name: {
            "median_ms": 1000 * statistics.median(ts),
            "p99_ms": 1000 * float(np.percentile(ts, 99)),
            "bg_cpu_ms_per_frame": {
                "memcpy": 0.0,
                "append": 1000 * writer_bg / n_frames,
                "inline": 1000 * inline_cpu / n_frames,
            }[name],
            "bytes_per_frame": {"memcpy": 0, "append": stored, "inline": inline_bytes}[name]
            / n_frames,
            "raw_bytes_per_frame": sum(b[0].nbytes for b in frames[0].values()) / len(frames[0]),
            "sim_ms": 1000 * sim_time,
            "blocked_s": store.writer.stats.blocked_seconds if name == "append" else 0.0,
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
