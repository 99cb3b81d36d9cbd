"""What recording every env costs a whole rollout: evalframes vs inline encoding vs RecordVideo.

The built-in MuJoCo tabletop env, 4 envs x 3 cameras at each ``--sizes``, one env worker run
in-process, scripted policy. Strategies, each a full short rollout of ``--steps`` steps in a
fresh subprocess (so peak memory is its own), alternating A B C ... C B A ... for
``--repeats`` repetitions, so machine load, and its drift over a repetition, hits all alike:

* ``floor``: the eval runner's loop with nothing recorded (``save_frames`` and ``save_video``
  off);
* ``zstd`` / ``jpeg``: ``save_frames: true``, the store's default codec and JPEG q90;
  ``zstd-batch`` / ``zstd-normal``: zstd with the writer process at ``SCHED_BATCH`` or at
  normal priority instead of the default ``SCHED_IDLE``;
* ``inline``: ``save_video: true`` alone, the seed's per-env libx264 encoding on the rollout
  thread (:class:`collect.recorders.InlineVideos`);
* ``gym-floor`` / ``recordvideo``: what a Gymnasium user would write: each env a single
  ``gymnasium.Env`` (render_mode ``rgb_array``, ``render()`` = the three cameras side by side,
  as the inline videos), stepped by ``gymnasium.vector.SyncVectorEnv``, without and with
  ``gymnasium.wrappers.RecordVideo`` (the installed package, every episode recorded) around
  each env. RecordVideo is compared with its own floor, since the env wrapping differs.

The first four run the eval runner's own loop (:func:`collect.eval.runner.run_worker`: vector env,
policy, the recorder that :func:`collect.recorders.recorder_from_video_cfg` picks for the
default ``video_cfg``), minus env creation and a few warm-up steps, which are not timed.
Timed: ``reset``, the steps and closing the recorder (its last chunks or encodes), so work
left for the end is counted. Reported per strategy (medians over repetitions): wall ms per
step and the slowdown against the floor of the same repetition (median of the per-pair
ratios), CPU ms per step (process + children: the ffmpeg encoders), memory after the last
step, bytes on disk per camera frame, and for evalframes the time
``render_store`` then takes to make the MP4s (first repetition), so the total cost shows.

Each size runs twice: with llvmpipe rendering on every core (Mesa's default: recording competes
with the simulator for all CPU) and with ``LP_NUM_THREADS=1`` (a core left free, as when a GPU
renders; only the floor and zstd at each writer priority, and both pinned: the rollout kept
off the free core, the writer on it), with goals of +15% and +5% for ``save_frames``. The rollout
process's CPU per frame added by recording is its own (``time.process_time``); the writer
process's CPU (it reports it at close) counts in the all-processes CPU column; memory is the
PSS of the rollout, its children and the writer process, sampled once after the last step (a
sample costs the rollout CPU, see :func:`base_job`).

A second table reruns every strategy at ``--memory-size`` with two episode lengths (random
policy, so episodes last until truncation): recording memory should not grow with the
episode; RecordVideo keeps each episode's frames in memory until the episode ends.

    python benchmarks/bench_rollout.py                  # 128 256 480 960, ~30 min on 2 cores
    python benchmarks/bench_rollout.py --sizes 480 960 --lp-threads all 1
    python benchmarks/bench_rollout.py --quick          # smoke test, ~1 min
    python benchmarks/bench_rollout.py --sizes 256 --steps 200 --repeats 5
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from bench_hotpath import FPS, NUM_ENVS
from common import (
    PeakTreeRss,
    answer_as_child,
    cpu_seconds,
    dir_bytes,
    load_average,
    markdown_table,
    run_child_job,
)

CAMERAS = 3
WARMUP_STEPS = 5  # untimed steps after env creation: first renders compile llvmpipe shaders
SEED = 0


@dataclass(frozen=True)
class Strategy:
    """One way of recording (or not) a rollout.

    ``kind`` is ``runner`` (the eval runner's loop with ``video_cfg`` updated by ``video``) or
    ``gym`` (SyncVectorEnv of single Gymnasium envs, ``record``: RecordVideo around each).
    ``floor`` names the strategy its slowdown is measured against. ``pinned``: the rollout
    process runs on every CPU but the last (as ``taskset`` would pin it) and the writer
    process, if any, on the last (``video_cfg.writer_cpus``); with a core left free only.
    """

    name: str
    label: str
    kind: str
    floor: str
    video: dict[str, Any] = field(default_factory=dict)
    record: bool = False
    renders: bool = False  # stores frames: render_store turns them into MP4s afterwards
    pinned: bool = False


STRATEGIES = {
    s.name: s
    for s in (
        Strategy("floor", "no recording (floor)", "runner", "floor", video={}),
        Strategy(
            "zstd", "evalframes save_frames, zstd (writer at SCHED_IDLE, default)", "runner",
            "floor",
            video={"save_frames": True, "codec": "zstd"}, renders=True,
        ),
        Strategy(
            "zstd-batch", "evalframes save_frames, zstd, writer at SCHED_BATCH", "runner", "floor",
            video={"save_frames": True, "codec": "zstd", "writer_priority": "batch"},
        ),
        Strategy(
            "zstd-normal", "evalframes save_frames, zstd, writer at normal priority", "runner",
            "floor", video={"save_frames": True, "codec": "zstd", "writer_priority": "normal"},
        ),
        Strategy(
            "floor-pinned", "no recording, rollout pinned (floor)", "runner", "floor-pinned",
            pinned=True,
        ),
        Strategy(
            "zstd-pinned", "evalframes save_frames, zstd, rollout pinned, writer_cpus: the free "
            "core", "runner", "floor-pinned", video={"save_frames": True, "codec": "zstd"},
            pinned=True,
        ),
        Strategy(
            "jpeg", "evalframes save_frames, jpeg q90", "runner", "floor",
            video={"save_frames": True, "codec": {"id": "jpeg", "quality": 90}}, renders=True,
        ),
        Strategy(
            "inline", "inline libx264 per env (seed)", "runner", "floor",
            video={"save_video": True},
        ),
        Strategy("gym-floor", "gymnasium SyncVectorEnv (floor)", "gym", "gym-floor"),
        Strategy(
            "recordvideo", "gymnasium RecordVideo per env", "gym", "gym-floor", record=True
        ),
    )
}  # fmt: skip
SAVE_FRAMES = ("zstd", "zstd-batch", "zstd-normal", "zstd-pinned", "jpeg")
FREE_CORE = ("floor", "zstd", "zstd-batch", "zstd-normal", "floor-pinned", "zstd-pinned")
PINNED = tuple(name for name, s in STRATEGIES.items() if s.pinned)
MEMORY_STRATEGIES = [n for n in STRATEGIES if n not in ("zstd-batch", "zstd-normal", *PINNED)]


def timed(call: Any) -> float:
    """Seconds that ``call()`` took."""
    t0 = time.perf_counter()
    call()
    return time.perf_counter() - t0


# ----------------------------------------------------------------------------- runner path


def video_cfg(
    strategy: Strategy, out: Path, chunk_frames: int | None, writer_cpu: int | None
) -> dict:
    """The default config's ``env.eval.video_cfg`` with the strategy's switches, under ``out``.

    ``chunk_frames`` ``None`` keeps the default (FrameWriter picks it for the frame size);
    ``writer_cpu``: the CPU a pinned strategy's writer runs on.
    """
    from collect.eval.config import load_config, to_container

    cfg = to_container(load_config(overrides=[f"runner.output_dir={out}"]))
    video = cfg["env"]["eval"]["video_cfg"]
    video.update({"save_frames": False, "save_video": False, **strategy.video})
    if strategy.pinned and strategy.video.get("save_frames"):
        video["writer_cpus"] = writer_cpu
    if chunk_frames is not None:
        video["chunk_frames"] = chunk_frames
    return video


class RunnerRollout:
    """The eval runner's worker loop: one vector env, a policy, the video_cfg's recorder."""

    def __init__(self, strategy: Strategy, job: dict, out: Path) -> None:
        from collect.eval.envs import make_env, make_policy

        self.env = make_env(
            "mujoco_tabletop", NUM_ENVS, seed=SEED, image_size=job["size"], tensor=False,
            max_episode_steps=job["episode_steps"],
        )  # fmt: skip
        self.policy = make_policy(job["policy"], self.env, seed=SEED)
        self.video = video_cfg(strategy, out, job["chunk_frames"], job.get("writer_cpu"))
        self.writer_stats: Any = None  # the FrameWriter's stats, when the strategy records

    def warm_up(self, steps: int) -> None:
        obs = self.env.reset(seed=SEED)
        for _ in range(steps):
            obs, *_ = self.env.step(self.policy(obs))

    def run(self, steps: int, peak: PeakTreeRss) -> tuple[int, float]:
        """Reset, step and record ``steps`` steps as ``run_worker`` does, then close the
        recorder; returns the camera frames recorded and the seconds closing took."""
        from collect import FrameWriter
        from collect.recorders import recorder_from_video_cfg

        recorder = recorder_from_video_cfg(self.video, rank=0, accelerator_id=0, num_envs=NUM_ENVS)
        if isinstance(recorder, FrameWriter):
            peak.track(recorder.writer_pid)
            self.writer_stats = recorder.stats
        obs = self.env.reset(seed=SEED)
        for step in range(steps):
            obs, reward, terminated, truncated, info = self.env.step(self.policy(obs))
            if step == steps - 1:  # the runner ends each epoch's episodes cleanly
                truncated = truncated | ~terminated
            recorder.append(obs, reward, terminated, truncated, info)
        peak.sample()
        return steps * NUM_ENVS * CAMERAS, timed(recorder.close)

    def close(self) -> None:
        self.env.close()

    def store(self) -> Path:
        return Path(self.video["frames_path"])

    def outputs(self) -> Path:
        if self.video["save_frames"]:
            return self.store()
        return Path(self.video["video_base_dir"])


# ----------------------------------------------------------------------------- gymnasium path


def tabletop_gym_env(size: int, index: int, episode_steps: int, policy: str) -> Any:
    """Env ``index`` of the tabletop task as one ``gymnasium.Env`` (built on first use, so
    the runner strategies never import gymnasium)."""
    import gymnasium
    from gymnasium import spaces

    from collect.adapters import batches_to_numpy, to_camera_batches
    from collect.eval.envs import CAMERA_NAMES, make_env, make_policy
    from collect.recorders import side_by_side

    class TabletopGymEnv(gymnasium.Env):
        """One tabletop env: obs = ``{camera: (H, W, 3)}``; ``render()`` = cameras side by
        side, from the frames the step already rendered (a real MuJoCo gym env would render
        again, which only favours RecordVideo here)."""

        metadata = {"render_modes": ["rgb_array"], "render_fps": FPS}  # noqa: RUF012
        render_mode = "rgb_array"

        def __init__(self) -> None:
            self.sim = make_env(
                "mujoco_tabletop", 1, seed=SEED + index, image_size=size, tensor=False,
                max_episode_steps=episode_steps,
            )  # fmt: skip
            self.policy = make_policy(policy, self.sim, seed=SEED + index)
            image = spaces.Box(0, 255, (size, size, 3), np.uint8)
            self.observation_space = spaces.Dict({c: image for c in CAMERA_NAMES})
            self.action_space = spaces.Box(-1.0, 1.0, (self.sim.action_dim,), np.float32)
            self._frames: dict[str, np.ndarray] = {}

        def _observe(self, obs: list[dict]) -> dict[str, np.ndarray]:
            batches = batches_to_numpy(to_camera_batches(obs, 1))
            self._frames = {camera: batch[0] for camera, batch in batches.items()}
            return self._frames

        def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple:
            super().reset(seed=seed)
            return self._observe(self.sim.reset(seed=seed)), {}

        def step(self, action: np.ndarray) -> tuple:
            obs, reward, terminated, truncated, info = self.sim.step(action[None])
            success = {"success": info[0]["success"]}
            done = bool(terminated[0]), bool(truncated[0])
            return self._observe(obs), float(reward[0]), *done, success

        def render(self) -> np.ndarray:
            return side_by_side([frame[None] for frame in self._frames.values()])[0]

        def act(self) -> np.ndarray:
            """The policy's action for this env (the scripted one reads the sim's state)."""
            return self.policy(None)[0]

        def close(self) -> None:
            self.sim.close()

    return TabletopGymEnv()


class GymRollout:
    """Gymnasium's way: SyncVectorEnv of single envs, RecordVideo around each if recording."""

    def __init__(self, strategy: Strategy, job: dict, out: Path) -> None:
        self.envs = [
            tabletop_gym_env(job["size"], i, job["episode_steps"], job["policy"])
            for i in range(NUM_ENVS)
        ]
        self.record = strategy.record
        self.out = out / "videos"

    def warm_up(self, steps: int) -> None:
        for env in self.envs:
            env.reset(seed=SEED)
            for _ in range(steps):
                env.step(env.act())

    def _wrapped(self, index: int) -> Any:
        from gymnasium.wrappers import RecordVideo

        env = self.envs[index]
        if not self.record:
            return env
        return RecordVideo(
            env, str(self.out / f"env{index}"), episode_trigger=lambda _: True,
            name_prefix=f"env{index}", fps=int(FPS), disable_logger=True,
        )  # fmt: skip

    def run(self, steps: int, peak: PeakTreeRss) -> tuple[int, float]:
        """Reset and step ``steps`` steps, then close (RecordVideo encodes the last episodes);
        returns the camera frames recorded (reset frames included) and the seconds closing took.
        """
        from gymnasium.vector import SyncVectorEnv

        vec = SyncVectorEnv([lambda i=i: self._wrapped(i) for i in range(NUM_ENVS)])
        vec.reset(seed=SEED)
        for _ in range(steps):
            vec.step(np.stack([env.act() for env in self.envs]))
        peak.sample()
        return (steps + 1) * NUM_ENVS * CAMERAS, timed(vec.close)

    def close(self) -> None:
        pass  # SyncVectorEnv.close closed the envs

    def outputs(self) -> Path:
        return self.out


# ----------------------------------------------------------------------------- one child run


def render_cost(store: Path, out: Path) -> dict[str, float]:
    """Wall and CPU seconds ``render_store`` (default options) takes for the store, and bytes."""
    from render import render_store

    cpu0, t0 = cpu_seconds(), time.perf_counter()
    report = render_store(store, out, progress=False)
    seconds, cpu = time.perf_counter() - t0, cpu_seconds() - cpu0
    if not report.ok:
        raise RuntimeError(report.summary())
    return {"render_s": seconds, "render_cpu_s": cpu, "mp4_bytes": dir_bytes(out)}


def run_child(job: dict) -> dict[str, Any]:
    """One timed rollout of one strategy (in its own process); returns its measurements."""
    strategy = STRATEGIES[job["strategy"]]
    out = Path(job["out"])
    if strategy.pinned:  # before the env starts llvmpipe's threads: they inherit it
        cpus = sorted(os.sched_getaffinity(0))
        os.sched_setaffinity(0, cpus[:-1] or cpus)
        job = {**job, "writer_cpu": cpus[-1]}
    rollout_type = RunnerRollout if strategy.kind == "runner" else GymRollout
    rollout = rollout_type(strategy, job, out)
    rollout.warm_up(WARMUP_STEPS)
    with PeakTreeRss(interval=job["pss_every_s"]) as peak:
        cpu0, main0, t0 = cpu_seconds(), time.process_time(), time.perf_counter()
        frames, close_s = rollout.run(job["steps"], peak)
        wall, cpu = time.perf_counter() - t0, cpu_seconds() - cpu0
        main_cpu = time.process_time() - main0
    rollout.close()
    writer = getattr(rollout, "writer_stats", None)
    result = {
        **job,
        "wall_s": wall,
        "close_s": close_s,
        "cpu_s": cpu + (writer.writer_cpu_seconds if writer else 0.0),
        "main_cpu_s": main_cpu,
        "blocked_s": writer.blocked_seconds if writer else 0.0,
        "deferred_peak_bytes": writer.deferred_bytes_peak if writer else 0,
        "peak_rss_bytes": peak.peak_bytes,
        "frames": frames,
        "disk_bytes": dir_bytes(rollout.outputs()),
    }
    if job["render"] and strategy.renders:
        result.update(render_cost(rollout.store(), out / "mp4"))
    return result


def run_job(job: dict) -> dict[str, Any]:
    """Run one child process for ``job`` and parse its JSON result."""
    return run_child_job(__file__, job, f"{job['strategy']} at {job['size']}")


def alternate(jobs: list[dict], repeats: int, workdir: Path) -> list[dict]:
    """Run ``jobs`` ``repeats`` times, in order and then backwards (A B C C B A ...: a VM
    getting faster or slower favours neither side of a pair); rendering on the first."""
    results = []
    for rep in range(repeats):
        for job in jobs if rep % 2 == 0 else jobs[::-1]:
            out = workdir / f"{job['strategy']}_{job['size']}_{job['lp_threads']}_{rep}"
            results.append(run_job({**job, "rep": rep, "out": str(out), "render": rep == 0}))
            print(
                f"  {job['size']} LP {job['lp_threads'] or 'all'} {job['strategy']:<12} rep {rep}: "
                f"{1000 * results[-1]['wall_s'] / job['steps']:.1f} ms/step",
                file=sys.stderr,
            )
    return results


# ----------------------------------------------------------------------------- tables


def by_strategy(results: list[dict]) -> dict[str, list[dict]]:
    """Runs of each strategy, in repetition order."""
    runs: dict[str, list[dict]] = {}
    for r in sorted(results, key=lambda r: r["rep"]):
        runs.setdefault(r["strategy"], []).append(r)
    return runs


def pair_slowdowns(runs: dict[str, list[dict]], name: str) -> list[float]:
    """wall(strategy) / wall(its floor, same repetition) - 1, for each repetition."""
    pairs = zip(runs[name], runs[STRATEGIES[name].floor], strict=True)
    return [r["wall_s"] / f["wall_s"] - 1 for r, f in pairs]


def slowdown(runs: dict[str, list[dict]], name: str) -> float:
    """Median over repetitions of the slowdown against the floor of the same repetition."""
    return statistics.median(pair_slowdowns(runs, name))


def per_step_ms(runs: list[dict], key: str) -> float:
    return 1000 * statistics.median(r[key] / r["steps"] for r in runs)


def rollout_rows(size: int, lp: str, results: list[dict]) -> list[list[Any]]:
    """One table row per strategy at one size and llvmpipe setting."""
    runs = by_strategy(results)
    return [strategy_row(size, lp, runs, name) for name in runs]


def strategy_row(size: int, lp: str, runs: dict[str, list[dict]], name: str) -> list[Any]:
    """Medians of one strategy's runs; slowdown and extra cost against its floor."""
    own, floor = runs[name], STRATEGIES[name].floor
    wall = per_step_ms(own, "wall_s")
    render = per_step_ms(own[:1], "render_s") if "render_s" in own[0] else None
    extra = wall - per_step_ms(runs[floor], "wall_s") + (render or 0.0)
    main_added = statistics.median(
        (r["main_cpu_s"] - f["main_cpu_s"]) / r["frames"]
        for r, f in zip(own, runs[floor], strict=True)
    )
    is_floor = floor == name
    return [
        size, lp, STRATEGIES[name].label, f"{wall:.1f}",
        "" if is_floor else f"{100 * slowdown(runs, name):+.1f}%",
        f"{statistics.median(r['close_s'] for r in own):.2f}",
        f"{per_step_ms(own, 'cpu_s'):.1f}",
        "" if is_floor else f"{1000 * main_added:+.2f}",
        f"{statistics.median(r['blocked_s'] for r in own):.2f}",
        f"{statistics.median(r['peak_rss_bytes'] for r in own) / 2**20:.0f}",
        f"{statistics.median(r['deferred_peak_bytes'] for r in own) / 2**20:.0f}",
        f"{statistics.median(r['disk_bytes'] / r['frames'] for r in own) / 1e3:.1f}",
        "" if render is None else f"{render:.1f}",
        "" if is_floor else f"{extra:.1f}",
    ]  # fmt: skip


ROLLOUT_HEADERS = [
    "size", "llvmpipe threads", "strategy", "wall ms/step", "slowdown vs floor", "close s",
    "CPU ms/step (all processes)", "rollout-process CPU ms/frame added", "append blocked s",
    "PSS MiB after the last step", "raw chunks on disk, peak MiB", "disk KB/frame (final)",
    "render ms/step", "eval + render extra ms/step",
]  # fmt: skip


def size_goal(lp: str) -> float:
    """The issue's slowdown goal for save_frames: 5% with a core left free (LP_NUM_THREADS=1,
    what GPU rendering leaves), 15% with llvmpipe on every core."""
    return 0.05 if lp == "1" else 0.15


def goal_rows(size: int, lp: str, results: list[dict]) -> list[list[str]]:
    """save_frames' slowdown against the goal for this llvmpipe setting (and inline's)."""
    runs = by_strategy(results)
    inline = f"{100 * slowdown(runs, 'inline'):+.1f}%" if "inline" in runs else ""
    rows = []
    for name in SAVE_FRAMES:
        if name not in runs:
            continue
        ours, cap = slowdown(runs, name), size_goal(lp)
        rows.append([
            size, lp, STRATEGIES[name].label, f"{100 * ours:+.1f}%",
            f"<= {100 * cap:.0f}%: {verdict(ours <= cap)}", spread(runs, name), inline,
        ])  # fmt: skip
    return rows


def spread(runs: dict[str, list[dict]], name: str) -> str:
    """Each repetition's slowdown in %, e.g. ``"+3.1, -2.0, +9.4"``: how far apart they lie
    says how far the median can be trusted."""
    return ", ".join(f"{100 * x:+.1f}" for x in pair_slowdowns(runs, name))


GOAL_HEADERS = [
    "size", "llvmpipe threads", "strategy", "slowdown (median)", "goal",
    "slowdown of each repetition, %", "inline slowdown",
]  # fmt: skip


def verdict(ok: bool) -> str:
    return "met" if ok else "**missed**"


def memory_rows(results: list[dict], lengths: list[int]) -> list[list[str]]:
    """Peak RSS of each strategy at each episode length, and the growth between them."""
    rows = []
    for name in MEMORY_STRATEGIES:
        strategy = STRATEGIES[name]
        peaks = [
            r["peak_rss_bytes"] / 2**20
            for length in lengths
            for r in results
            if r["strategy"] == name and r["steps"] == length
        ]
        rows.append([strategy.label, *(f"{p:.0f}" for p in peaks), f"{peaks[-1] - peaks[0]:+.0f}"])
    return rows


# ----------------------------------------------------------------------------- main


def base_job(args: argparse.Namespace, name: str, size: int, steps: int, policy: str) -> dict:
    """A timed rollout's settings. Its memory is sampled once, after the last step: a PSS
    sample of the rollout and its writer process costs ~8 ms of CPU (smaps walks every mapped
    page, the ring's too) on a thread of the rollout process, which a floor without a ring
    does not pay. Sampled once a second, recording runs added 0.60 ms (480) and 2.31 ms (960)
    of rollout-process CPU per frame to the append's 0.16 / 0.52; without it, 480 added none
    and 960 0.3-1.2 ms (RESULTS.md, second update of 2026-12-07). Recording's memory is flat
    in time (the ring is prefaulted at start); the memory table samples every 0.2 s for true
    peaks."""
    return {
        "strategy": name, "size": size, "steps": steps, "episode_steps": steps,
        "policy": policy, "chunk_frames": args.chunk_frames, "lp_threads": None,
        "pss_every_s": None,
    }  # fmt: skip


def steps_at(size: int, steps: int) -> int:
    """Steps per rollout at ``size``: a third at 960x960 and up (a step costs ~3x 480's)."""
    return max(8, steps // 3) if size >= 960 else steps


def run_rollouts(args: argparse.Namespace, workdir: Path) -> tuple[list, list]:
    """The main table and the goals, one size and llvmpipe setting after the other. With a
    core left free (``LP_NUM_THREADS=1``) only the floors and zstd (priorities, pinned) run."""
    rows, goals = [], []
    for size in args.sizes:
        steps = steps_at(size, args.steps)
        for lp in args.lp_threads:
            names = [n for n in STRATEGIES if n not in PINNED] if lp == "all" else FREE_CORE
            if args.strategies:  # those asked for, and the floors they are measured against
                wanted = {*args.strategies, *(STRATEGIES[n].floor for n in args.strategies)}
                names = [n for n in names if n in wanted]
            jobs = [
                {**base_job(args, name, size, steps, "scripted"),
                 "lp_threads": None if lp == "all" else int(lp)}
                for name in names
            ]  # fmt: skip
            results = alternate(jobs, args.repeats, workdir)
            rows += rollout_rows(size, lp, results)
            goals += goal_rows(size, lp, results)
    return rows, goals


def run_memory(args: argparse.Namespace, workdir: Path) -> list[list[str]]:
    """Every strategy once per episode length at ``--memory-size`` (random policy)."""
    size = args.memory_size
    jobs = [
        base_job(args, name, size, length, "random")
        for length in args.memory_steps
        for name in MEMORY_STRATEGIES
    ]
    results = [
        run_job({**job, "rep": 0, "out": str(workdir / "mem"), "render": False, "pss_every_s": 0.2})
        for job in jobs
    ]
    return memory_rows(results, args.memory_steps)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[128, 256, 480, 960])
    parser.add_argument("--steps", type=int, default=80, help="steps per rollout (960: a third)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--lp-threads", nargs="+", default=["all", "1"], choices=["all", "1", "2"],
        help="llvmpipe render threads: all cores (Mesa's default), or 1 (a core left free, "
        "as GPU rendering leaves it); default: both",
    )  # fmt: skip
    parser.add_argument(
        "--strategies", nargs="+", choices=list(STRATEGIES), default=None,
        help="run only these (and their floors); default: all",
    )  # fmt: skip
    parser.add_argument(
        "--no-memory", action="store_true", help="skip the episode-length memory table"
    )
    parser.add_argument("--memory-size", type=int, default=256)
    parser.add_argument("--memory-steps", type=int, nargs=2, default=[40, 160])
    parser.add_argument(
        "--chunk-frames", type=int, default=None, help="store chunk rows (default: the writer's)"
    )
    parser.add_argument("--quick", action="store_true", help="smoke test: 128 only, short runs")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.quick:
        args.sizes, args.steps, args.repeats = [128], 24, 1
        args.lp_threads = ["all"]
        args.memory_size, args.memory_steps = 128, [12, 48]
    return args


def main() -> None:
    args = parse_args()
    if answer_as_child(args.child, run_child):
        return
    workdir = Path(tempfile.mkdtemp(prefix="bench_rollout_"))
    started, load_before = time.perf_counter(), load_average()
    try:
        rows, goals = run_rollouts(args, workdir)
        memory = [] if args.no_memory else run_memory(args, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"# bench_rollout: {NUM_ENVS} envs x {CAMERAS} cameras, {os.cpu_count()} cores\n")
    print(markdown_table(ROLLOUT_HEADERS, rows))
    print("\n" + markdown_table(GOAL_HEADERS, goals))
    lengths = [f"peak PSS MiB, {n}-step episodes" for n in args.memory_steps]
    if memory:
        print("\n" + markdown_table(["strategy", *lengths, "growth MiB"], memory))
    print(
        f"\n{args.steps} steps per rollout (960: {steps_at(960, args.steps)}), "
        f"{args.repeats} repeats (medians), memory at {args.memory_size}x{args.memory_size}; "
        f"{time.perf_counter() - started:.0f} s; load average before: {load_before}, "
        f"after: {load_average()}"
    )


if __name__ == "__main__":
    main()
