"""The eval runner: env workers as Dask tasks, each stepping its envs and recording them.

``run_eval(cfg)`` plans the env workers from ``cluster.component_placement`` and
``env.eval.total_num_envs`` (:mod:`collect.eval.placement`), runs one Dask task per worker rank
(a LocalCluster of processes, or an existing cluster), and, when ``video_cfg`` asks for both
``save_frames`` and ``save_video``, renders the MP4s from the store after the rollouts, out of
the hot path.
"""

from __future__ import annotations

import contextlib
import logging
import time
import uuid
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig, OmegaConf

from collect.dask_cluster import (
    dask_client,
    follow_events,
    request_stop,
    send_event,
    stop_requested,
)
from collect.location import StoreAccessError, StoreLocation
from collect.recorders import recorder_from_video_cfg
from collect.store import StoreFormatError, open_or_create_root, open_store, remove_store

from .config import ConfigError, num_devices, to_container
from .placement import EnvWorker, plan_env_workers

__all__ = ["EnvResult", "EvalSummary", "WorkerResult", "run_eval", "run_worker"]

log = logging.getLogger(__name__)
PROGRESS_EVERY = 10  # steps between progress messages (and stop checks) from a worker
STOP_SECONDS = 30.0  # how long Ctrl-C waits for the workers to close their recorders


class StopRequested(KeyboardInterrupt):
    """Raised in a worker when the driver was interrupted: its recorder marks the groups
    ``interrupted`` as for a Ctrl-C in the worker itself."""


@dataclass
class EnvResult:
    """Outcome of one env: finished episodes, their returns and successes."""

    rank: int
    gpu: int
    env: int
    global_env: int
    steps: int = 0
    returns: list[float] = field(default_factory=list)
    successes: list[bool] = field(default_factory=list)

    @property
    def episodes(self) -> int:
        return len(self.returns)

    @property
    def success_rate(self) -> float:
        return float(np.mean(self.successes)) if self.successes else float("nan")

    @property
    def mean_return(self) -> float:
        return float(np.mean(self.returns)) if self.returns else float("nan")


@dataclass
class WorkerResult:
    """What one env worker sends back: per-env results, timing and recorder statistics."""

    worker: EnvWorker
    envs: list[EnvResult]
    seconds: float
    recorder_stats: dict[str, Any] = field(default_factory=dict)


@dataclass
class EvalSummary:
    """The whole eval: every worker's result, and where the frames and videos are."""

    workers: list[WorkerResult]
    frames_path: str | None  # a path or a URL
    video_dir: Path | None
    videos: list[Path] = field(default_factory=list)
    render_ok: bool = True

    @property
    def envs(self) -> list[EnvResult]:
        return [env for worker in self.workers for env in worker.envs]

    def table(self) -> str:
        """A plain-text per-env table (episodes, mean return, success rate)."""
        lines = ["env                     episodes  mean return  success"]
        for e in self.envs:
            name = f"rank{e.rank}_gpu{e.gpu}_env{e.env}"
            lines.append(
                f"{name:<24}{e.episodes:>8}  {e.mean_return:>11.3f}  {e.success_rate:>7.2f}"
            )
        return "\n".join(lines)


class _EpisodeTracker:
    """Accumulates returns and successes per env from the stepped rewards and infos."""

    def __init__(self, worker: EnvWorker) -> None:
        self.results = [
            EnvResult(worker.rank, worker.gpu, e, worker.first_global_env + e)
            for e in range(worker.num_envs)
        ]
        self._running = np.zeros(worker.num_envs)
        self._success = np.zeros(worker.num_envs, bool)

    def update(self, reward: np.ndarray, done: np.ndarray, info: list[Mapping]) -> None:
        self._running += reward
        self._success |= np.array([bool(i.get("success", False)) for i in info])
        for env in np.flatnonzero(done):
            self.results[env].returns.append(float(self._running[env]))
            self.results[env].successes.append(bool(self._success[env]))
            self._running[env] = 0.0
            self._success[env] = False
        for result in self.results:
            result.steps += 1


def run_worker(worker: EnvWorker, cfg: dict[str, Any], progress: str | None = None) -> WorkerResult:
    """Run one env worker: step its envs for every rollout epoch and record every step.

    The last step of each epoch is marked truncated, so each epoch's episodes end cleanly in
    the stored ``episode`` counter.
    """
    from .envs import make_env, make_policy

    t0 = time.perf_counter()
    env_cfg, eval_cfg = cfg["env"], cfg["env"]["eval"]
    seed = int(cfg["runner"]["seed"]) + 1000 * worker.rank
    options = dict(env_cfg.get("options") or {})
    if env_cfg.get("image_size") is not None:
        options["image_size"] = env_cfg["image_size"]
    env = make_env(
        env_cfg["env_type"],
        worker.num_envs,
        seed=seed,
        max_episode_steps=eval_cfg["max_episode_steps"],
        **options,
    )
    recorder = recorder_from_video_cfg(
        eval_cfg["video_cfg"],
        rank=worker.rank,
        accelerator_id=worker.gpu,
        num_envs=worker.num_envs,
        first_global_env=worker.first_global_env,
        config=cfg,
    )
    tracker = _EpisodeTracker(worker)
    steps = eval_cfg["max_episode_steps"]
    # Leaving the block by an exception marks the groups failed (interrupted on Ctrl-C or
    # StopRequested).
    try:
        with contextlib.ExitStack() as stack:
            stack.callback(env.close)
            stack.enter_context(recorder)
            policy = make_policy(env_cfg["policy"], env)
            for epoch in range(eval_cfg["rollout_epoch"]):
                obs = env.reset(seed=seed + epoch)
                for step in range(steps):
                    obs, reward, terminated, truncated, info = env.step(policy(obs))
                    if step == steps - 1:
                        truncated = np.asarray(truncated) | ~np.asarray(terminated)
                    recorder.append(obs, reward, terminated, truncated, info)
                    tracker.update(np.asarray(reward), np.asarray(terminated | truncated), info)
                    done_steps = epoch * steps + step + 1
                    reporting = done_steps % PROGRESS_EVERY == 0 or step == steps - 1
                    if progress is not None and reporting:
                        _report(progress, worker.rank, done_steps)
    except StopRequested:
        log.info("rank %d: stopped: the run was interrupted", worker.rank)
    stats = getattr(recorder, "stats", None)
    return WorkerResult(
        worker, tracker.results, time.perf_counter() - t0, asdict(stats) if stats else {}
    )


def _report(progress: str, rank: int, done_steps: int) -> None:
    """Tell the driver how far this worker is; :class:`StopRequested` if it asked to stop."""
    send_event(progress, (rank, done_steps))
    if stop_requested(f"{progress}-stop"):
        raise StopRequested


def _follow_progress(
    client: Any, futures: list[Any], topic: str, workers: list[EnvWorker], total: int
) -> None:
    """Per-worker progress bars (stderr, off when not a TTY) until every task is done."""
    from distributed import wait
    from tqdm.auto import tqdm

    bars = {
        w.rank: tqdm(
            total=total, desc=f"env worker rank{w.rank} gpu{w.gpu}", position=w.rank, disable=None
        )
        for w in workers
    }

    def update(event: tuple[float, tuple[int, int]]) -> None:
        rank, done = event[1]
        bars[rank].update(done - bars[rank].n)

    try:
        with follow_events(client, topic, update):
            wait(futures)
    finally:
        for bar in bars.values():
            bar.close()


def run_eval(cfg: DictConfig, *, scheduler: str | None = None, client: Any = None) -> EvalSummary:
    """Run the whole eval described by ``cfg`` (see ``collect/eval/configs/default.yaml``)."""
    workers = plan_env_workers(
        OmegaConf.to_container(cfg.cluster.component_placement),
        cfg.env.eval.total_num_envs,
        num_devices(cfg),
    )
    video = cfg.env.eval.video_cfg
    plain = to_container(cfg)
    if video.save_frames:
        _prepare_store(str(video.frames_path), overwrite=bool(video.overwrite))
        _create_object_store_root(video, plain)
    with contextlib.ExitStack() as stack:
        if client is None:  # a LocalCluster of one process per env worker, or the scheduler
            client = stack.enter_context(dask_client(scheduler, len(workers), processes=True))
        run_id = uuid.uuid4().hex[:12]  # unique task keys: a shared cluster caches results
        topic = f"evalframes-progress-{run_id}"
        futures = [
            client.submit(run_worker, w, plain, topic, pure=False, key=f"env-rank{w.rank}-{run_id}")
            for w in workers
        ]
        total = cfg.env.eval.max_episode_steps * cfg.env.eval.rollout_epoch
        try:
            _follow_progress(client, futures, topic, workers, total)
            results = client.gather(futures)
        except KeyboardInterrupt:
            _stop_workers(client, futures, f"{topic}-stop")
            raise
        summary = EvalSummary(
            workers=results,
            frames_path=str(video.frames_path) if video.save_frames else None,
            video_dir=Path(video.video_base_dir) if video.save_video else None,
        )
        if video.save_frames and video.save_video:
            _render_after_rollouts(summary, cfg, client)
        elif video.save_video:
            summary.videos = sorted(Path(video.video_base_dir).glob(f"{video.video_prefix}_*.mp4"))
        return summary


def _stop_workers(client: Any, futures: list[Any], stop: str) -> None:
    """Ctrl-C: ask every worker to stop at its next progress step and close its recorder
    (groups ``interrupted``); wait :data:`STOP_SECONDS` at most (a second Ctrl-C: none)."""
    from distributed import wait

    with contextlib.suppress(KeyboardInterrupt, TimeoutError, Exception):
        request_stop(client, stop)
        wait(futures, timeout=STOP_SECONDS)


def _render_after_rollouts(summary: EvalSummary, cfg: DictConfig, client: Any) -> None:
    """Render one MP4 per env group from the store (the offline renderer, run right away)."""
    from render import render_store

    video = cfg.env.eval.video_cfg
    options = _render_options(video)
    report = render_store(
        video.frames_path,
        video.video_base_dir,
        fps=video.fps,
        scheduler=client.scheduler.address,
        **options,
    )
    log.info("render after rollouts:\n%s", report.summary())
    summary.videos = sorted(Path(p) for p in report.outputs)
    summary.render_ok = report.ok


def _prepare_store(store: str, *, overwrite: bool) -> None:
    """Before any worker starts: a store already at ``store`` (a path or a URL) holds another
    run, which is replaced as a whole with ``overwrite`` and refused without (one store, one
    run: groups of two runs side by side would render as one). A location that cannot be
    used (bad URL, missing bucket, credentials) stops the run here."""
    key = "env.eval.video_cfg.frames_path"
    location = StoreLocation.of(store)
    if location.is_local and not location.path.exists():
        return
    try:
        groups = open_store(location).group_names()
    except StoreAccessError as e:
        raise ConfigError(f"{key}: {e}") from None
    except FileNotFoundError:
        return
    except (StoreFormatError, OSError) as e:
        raise ConfigError(
            f"{key}: {store!r} exists and is not an evalframes frame store ({e}); "
            "choose another path"
        ) from None
    if not groups:
        return
    if not overwrite:
        raise ConfigError(
            f"{key}: {store!r} already holds a run ({len(groups)} env groups); set "
            "env.eval.video_cfg.overwrite=true to replace it, or choose another frames_path"
        )
    log.warning("replacing the previous run in %s (%d env groups)", store, len(groups))
    remove_store(location)


def _create_object_store_root(video: DictConfig, config: dict[str, Any]) -> None:
    """On object stores, create the store's root before any worker starts, as the workers
    would (they open it): credentials that may read but not write fail here, in one line,
    rather than inside every worker."""
    location = StoreLocation.of(str(video.frames_path))
    if location.is_local:
        return
    try:
        open_or_create_root(
            location, fps=float(video.fps), video_prefix=str(video.video_prefix), config=config
        )
    except (StoreAccessError, StoreFormatError) as e:
        raise ConfigError(f"env.eval.video_cfg.frames_path: {e}") from None


def _render_options(video: DictConfig) -> dict[str, Any]:
    """``video_cfg.render``, with RLinf's ``info_on_video`` (the overlay) and
    ``extra_info_on_video`` (the info keys it shows) where ``render`` does not say."""
    options = OmegaConf.to_container(video.get("render", {}))
    options.setdefault("overlay", bool(video.get("info_on_video", False)))
    extra = list(video.get("extra_info_on_video") or [])
    if options["overlay"] and extra:
        options.setdefault("overlay_keys", extra)
    return options
