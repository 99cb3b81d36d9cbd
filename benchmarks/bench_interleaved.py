"""Recording's share of a rollout, measured in blocks that alternate within one process.

``bench_rollout.py`` compares whole rollouts run one after the other, a minute or more apart;
on the benchmark VM a fixed loop's speed drifts by up to 2.7x within minutes
(``benchmarks/RESULTS.md``), so its pairs scatter by +-10 points and cannot tell +5% from +7%.
Here one rollout process alternates blocks of a few seconds, recording and not, so that drift
hits both sides of every pair alike:

* one env worker as the eval runner builds it (the built-in MuJoCo tabletop env, 4 envs x 3
  cameras, scripted policy, the default ``video_cfg`` with ``save_frames: true``: zstd, the
  writer process at ``SCHED_IDLE``), one ``FrameWriter`` open across all the blocks;
* each pair runs a recording block (every step appended) and a floor block (the same steps,
  nothing appended), in an order that alternates A B, B A, ... (ABBA: a slow trend moves both
  alike). A block is ``--chunks`` whole store chunks of steps (16 rows at 480x480, 4 at
  960x960);
* steady state, not warm-up and tail: a recording block starts after one untimed chunk of
  recorded steps (so the writer is compressing the previous chunk while the block fills the
  next, as in a long run) and is followed by untimed steps until the writer has written it
  all (``flush``), so its last chunk's compression does not land in the next floor block.
  Every timed recording block thus overlaps exactly ``--chunks`` chunks of the writer's work
  (unless the writer defers one, stored raw to recompress later: counted in the table).

The writer's start and end, which blocks leave out, are measured on a whole run first, in
the same process: a fresh writer records ``--run-steps`` steps (960: a third) and is closed
with its last chunk still to compress; ``open`` is its construction plus what its first
append (sizing the ring) took beyond the step, ``close`` what ``close()`` took. Not
counted: the writer process's own start-up (interpreter and imports, ~0.4-0.5 s of CPU at
``SCHED_IDLE``, ``bench_hotpath.py``'s start-up column), which overlaps the run's first steps.

Reported per size and llvmpipe setting: ms per step of each side (medians over pairs), the
steady slowdown (median of the per-pair ratios, with a 95% bootstrap interval of the median
and the 10th-90th percentile of the pairs), the rollout process's own CPU per step on each
side (``time.process_time``, its llvmpipe threads included), the append's own ms per step, the
writer process's CPU per frame, the chunks written, timed partial writes and chunks deferred,
and the slowdown of a whole run: steady plus (open + close) over the run's floor time, against
the goal (+5% with a core left free, ``LP_NUM_THREADS=1``; +15% with llvmpipe on both cores).

    python benchmarks/bench_interleaved.py --sizes 480 960 --lp-threads 1
    python benchmarks/bench_interleaved.py --sizes 480 --pairs 8 --chunks 1   # smoke test
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench_hotpath import NUM_ENVS
from bench_rollout import SEED, STRATEGIES, WARMUP_STEPS, RunnerRollout, size_goal, steps_at
from common import answer_as_child, load_average, markdown_table, run_child_job

BOOTSTRAP_SAMPLES = 2000


def run_child(job: dict) -> dict[str, Any]:
    """One process: a whole recorded run for the writer's start and end costs, then the
    alternating blocks on a second writer; the measurements of both."""
    rollout = RunnerRollout(STRATEGIES["zstd"], job, Path(job["out"]))
    env, policy = rollout.env, rollout.policy
    obs = env.reset(seed=SEED)

    def steps(count: int, writer: Any = None) -> tuple[float, float]:
        """Step ``count`` times, appending each step to ``writer`` if given; the wall and
        process CPU seconds they took."""
        nonlocal obs
        wall0, cpu0 = time.perf_counter(), time.process_time()
        for _ in range(count):
            obs, reward, terminated, truncated, info = env.step(policy(obs))
            if writer is not None:
                writer.append(obs, reward, terminated, truncated, info)
        return time.perf_counter() - wall0, time.process_time() - cpu0

    def open_writer(name: str) -> tuple[Any, float]:
        """A writer as the runner opens it, and the seconds its construction and first
        append (sizing the ring) took on the rollout thread, beyond the step itself."""
        from collect.recorders import recorder_from_video_cfg

        video = {**rollout.video, "frames_path": str(Path(job["out"]) / name)}
        t0 = time.perf_counter()
        writer = recorder_from_video_cfg(video, rank=0, accelerator_id=0, num_envs=NUM_ENVS)
        opened = time.perf_counter() - t0
        nonlocal obs
        obs, reward, terminated, truncated, info = env.step(policy(obs))
        t0 = time.perf_counter()
        writer.append(obs, reward, terminated, truncated, info)
        return writer, opened + time.perf_counter() - t0

    steps(WARMUP_STEPS)
    # The ends: a run of --run-steps steps, closed with its last chunk still to compress.
    writer, open_s = open_writer("run.zarr")
    steps(job["run_steps"] - 1, writer)
    t0 = time.perf_counter()
    writer.close()
    close_s = time.perf_counter() - t0
    run_stats = writer.stats

    # Steady state: blocks on chunk boundaries, a recording block between a lead-in chunk
    # (the writer compresses it while the block fills the next) and a flush.
    writer, _ = open_writer("steady.zarr")
    rows = writer.chunk_frames
    steps(rows - 1, writer)
    writer.flush()
    block = job["chunks"] * rows
    order = [("record", "floor"), ("floor", "record")]
    pairs = []
    for i in range(job["pairs"]):
        pair = {}
        for side in order[i % 2]:
            if side == "record":
                steps(rows, writer)
                pair["record"] = steps(block, writer)
                writer.flush()
            else:
                pair["floor"] = steps(block)
        pairs.append(pair)
    writer.close()
    env.close()
    stats = writer.stats
    return {
        **job,
        "block_steps": block,
        "open_s": open_s,
        "close_s": close_s,
        "pairs_measured": pairs,
        "writer_cpu_s": stats.writer_cpu_seconds,
        "writer_frames": stats.frames,
        "append_ms": 1000 * stats.append_seconds / stats.rows,
        "blocked_s": stats.blocked_seconds + run_stats.blocked_seconds,
        "chunks_deferred": stats.chunks_deferred + run_stats.chunks_deferred,
        "partial_flushes": stats.partial_flushes + run_stats.partial_flushes,
        "chunks_written": stats.chunks_written + run_stats.chunks_written,
    }


def run_job(job: dict) -> dict[str, Any]:
    """Run one child process for ``job`` and parse its JSON result."""
    return run_child_job(__file__, job, f"{job['size']} LP {job['lp_threads']}")


def bootstrap_median(values: list[float], seed: int = 0) -> tuple[float, float]:
    """95% bootstrap interval of the median of ``values``."""
    rng = random.Random(seed)
    medians = [
        statistics.median(rng.choices(values, k=len(values))) for _ in range(BOOTSTRAP_SAMPLES)
    ]
    cuts = statistics.quantiles(medians, n=40, method="inclusive")
    return cuts[0], cuts[-1]


def summary_row(result: dict) -> list[str]:
    """One table row: both sides' medians, the slowdown with its spread, the run's total."""
    pairs, block = result["pairs_measured"], result["block_steps"]
    ratios = [p["record"][0] / p["floor"][0] - 1 for p in pairs]
    floor_ms = 1000 * statistics.median(p["floor"][0] for p in pairs) / block
    record_ms = 1000 * statistics.median(p["record"][0] for p in pairs) / block
    cpu_ms = [1000 * statistics.median(p[side][1] for p in pairs) / block
              for side in ("floor", "record")]  # fmt: skip
    steady = statistics.median(ratios)
    low, high = bootstrap_median(ratios)
    deciles = statistics.quantiles(ratios, n=10, method="inclusive")
    ends_s = result["open_s"] + result["close_s"]
    run_steps = result["run_steps"]
    whole_run = steady + ends_s / (run_steps * floor_ms / 1000)
    lp = "all" if result["lp_threads"] is None else str(result["lp_threads"])
    goal = size_goal(lp)
    writer_ms = 1000 * result["writer_cpu_s"] / max(1, result["writer_frames"])
    return [
        result["size"], lp, f"{len(pairs)} x {block}", f"{floor_ms:.1f}", f"{record_ms:.1f}",
        f"{100 * steady:+.1f}%", f"{100 * low:+.1f} .. {100 * high:+.1f}",
        f"{100 * deciles[0]:+.1f} .. {100 * deciles[-1]:+.1f}",
        f"{cpu_ms[0]:.1f} / {cpu_ms[1]:.1f}", f"{result['append_ms']:.2f}", f"{writer_ms:.2f}",
        f"{result['open_s']:.2f} / {result['close_s']:.2f}", f"{result['blocked_s']:.2f}",
        f"{result['chunks_written']} / {result['partial_flushes']} / {result['chunks_deferred']}",
        f"{100 * whole_run:+.1f}%",
        f"<= {100 * goal:.0f}%: {'met' if whole_run <= goal else '**missed**'}",
    ]  # fmt: skip


HEADERS = [
    "size", "llvmpipe threads", "pairs x steps per block", "floor ms/step",
    "recording ms/step", "slowdown, steady (median of pairs)", "95% interval of the median",
    "pairs, 10th .. 90th percentile", "rollout-process CPU ms/step, floor / recording",
    "append ms/step",
    "writer CPU ms/frame", "open / close s (a run)", "append blocked s",
    "chunks written / timed partial writes / deferred",
    "slowdown of a run, open and close included", "goal",
]  # fmt: skip


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[480, 960])
    parser.add_argument(
        "--lp-threads", nargs="+", default=["1", "all"], choices=["all", "1"],
        help="llvmpipe render threads: 1 (a core left free, as GPU rendering leaves it) or "
        "all cores (Mesa's default); default: both",
    )  # fmt: skip
    parser.add_argument("--pairs", type=int, default=30, help="pairs of blocks per setting")
    parser.add_argument("--chunks", type=int, default=2, help="store chunks of steps per block")
    parser.add_argument(
        "--run-steps", type=int, default=300,
        help="rollout length the open and close costs are spread over (960: a third, as "
        "bench_rollout's)",
    )  # fmt: skip
    parser.add_argument("--child", help=argparse.SUPPRESS)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    if answer_as_child(args.child, run_child):
        return
    workdir = Path(tempfile.mkdtemp(prefix="bench_interleaved_"))
    started, load_before = time.perf_counter(), load_average()
    rows = []
    try:
        for size in args.sizes:
            for lp in args.lp_threads:
                job = {
                    "size": size, "lp_threads": None if lp == "all" else int(lp),
                    "pairs": args.pairs, "chunks": args.chunks, "episode_steps": 100_000,
                    "policy": "scripted", "chunk_frames": None,
                    "run_steps": steps_at(size, args.run_steps),
                    "out": str(workdir / f"{size}_{lp}"),
                }  # fmt: skip
                rows.append(summary_row(run_job(job)))
                print(f"  {size} LP {lp}: {rows[-1][5]} steady", file=sys.stderr)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"# bench_interleaved: {NUM_ENVS} envs x 3 cameras, {os.cpu_count()} cores\n")
    print(markdown_table(HEADERS, rows))
    print(
        f"\n{time.perf_counter() - started:.0f} s; load average before: {load_before}, "
        f"after: {load_average()}"
    )


if __name__ == "__main__":
    main()
