"""RLinf drop-in: record every env and camera of an RLinf env worker into a frame store.

RLinf's env workers wrap each env in ``RecordVideo(env, cfg.env.eval.video_cfg)``
(``rlinf/envs/wrappers/record_video.py``), which tiles all envs into one MP4 per epoch, encoded
in the worker. :class:`RecordFrames` takes its place with the same constructor and methods and
records each env into its own group ``rank{r}_gpu{g}_env{e}`` of a frame store instead, so
``python -m render STORE OUT`` makes one video per env afterwards
(``behavior_video_rank{r}_gpu{g}_env{e}.mp4``). In an RLinf env worker::

    from collect.rlinf import RecordFrames
    env = RecordFrames(env, env_cfg.video_cfg, worker_info=self.worker_info)

Cameras come from RLinf's wrapped observations: ``main_images`` ``[N, H, W, C]`` is ``zed``,
``wrist_images`` ``[N, 2, H, W, C]`` is ``left_realsense`` / ``right_realsense``, any other
image batch (``[N, H, W, C]`` or ``[N, K, H, W, C]``) is named by its key. Numpy arrays and
torch tensors are accepted.

Examples - an env with RLinf's chunked-step contract, 4 steps per chunk, only the last observed:

>>> import tempfile, numpy as np
>>> from collect import open_store
>>> def observation(value):
...     return {"main_images": np.full((2, 8, 8, 3), value, np.uint8),
...             "wrist_images": np.full((2, 2, 8, 8, 3), value, np.uint8),
...             "states": np.zeros((2, 4), np.float32)}
>>> class TwoEnvs:
...     num_envs = 2
...     def reset(self):
...         return observation(0), {}
...     def chunk_step(self, actions):
...         rewards, flags = np.full((2, 4), 0.5), np.zeros((2, 4), bool)
...         infos = [{"episode": {"success_once": np.array([False, True])}}] * 4
...         return [None, None, None, observation(1)], rewards, flags, flags, infos
>>> path = tempfile.mkdtemp() + "/frames.zarr"
>>> video_cfg = {"frames_path": path, "fps": 10, "extra_info_on_video": ["episode.success_once"]}
>>> env = RecordFrames(TwoEnvs(), video_cfg)
>>> _ = env.reset()
>>> _ = env.chunk_step(np.zeros((2, 4, 7)))
>>> env.flush_video()
>>> env.close()
>>> group = open_store(path).group("rank0_gpu0_env1")
>>> sorted(group.cameras), group.rows, group.scalar("reward").tolist()
(['left_realsense', 'right_realsense', 'zed'], 2, [nan, 2.0])
>>> group.scalar("episode.success_once").tolist()  # absent from the reset info: False
[False, True]
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

import numpy as np

from . import adapters
from .adapters import FrameInputError
from .recorders import recorder_from_video_cfg
from .writer import FrameWriter

__all__ = ["RecordFrames", "find_fps", "pipeline_stage", "rlinf_cameras"]

log = logging.getLogger(__name__)

MAIN_CAMERA = "zed"
WRIST_CAMERAS = ("left_realsense", "right_realsense")
DEFAULT_FPS = 30.0
_IMAGE_CHANNELS = (1, 3, 4)


class RecordFrames:
    """Record every env of an RLinf env (one pipeline stage of a worker) into a frame store.

    A drop-in for RLinf's ``RecordVideo(env, video_cfg)``: ``reset``, ``step``, ``chunk_step``
    return what the env returns and record each observed step as one row per env;
    ``flush_video()`` (RLinf calls it at the end of each eval epoch) starts new episodes and
    writes everything recorded so far; ``close()`` closes the store's groups and the env. Any
    other attribute is the wrapped env's (``is_start`` can be set through the wrapper).

    Rows follow RLinf's ``chunk_step`` contract, ``(obs_list, rewards, terminations,
    truncations, infos_list)`` with ``[N, chunk_steps]`` rewards and flags:

    * a ``None`` entry of ``obs_list`` (``skip_intermediate_obs_in_chunk``) records nothing; its
      reward is added to the next recorded row, its flags carried to it, so returns and episode
      ends stay right;
    * on auto-reset, the ``final_obs`` / ``final_observation`` of the last info (its
      ``final_info`` for the info columns) is recorded first, carrying the chunk's flags, then
      the reset observation, which starts the next episode of the envs that ended (reward not
      given, flags false). Envs that did not end show the same step in both rows.

    Info columns are the ``video_cfg.extra_info_on_video`` keys (dotted paths into the info
    dicts, ``episode.success_once``); a key absent from an info leaves the row empty, a value
    that is not one number per env is skipped with a warning.

    Args:
        env: the RLinf env (``num_envs`` attribute; observations are RLinf's wrapped dicts).
        video_cfg: RLinf's ``video_cfg`` (an OmegaConf ``DictConfig``, a dict or an object with
            attributes). The store is ``frames_path``, else ``{video_base_dir}/frames.zarr``,
            as for the eval runner; writer options are the runner's keys (``codec``,
            ``chunk_frames``, ``flush_interval``, ``max_buffer_mb``, ``writer_priority``,
            ``writer_cpus``, ``defer_mb``, ``video_prefix``, ``overwrite``). ``save_video`` /
            ``save_frames`` are not read: wrapping the env is the choice to record.
        worker_info: RLinf's ``WorkerInfo`` (or anything with ``rank`` and
            ``accelerator_rank``) naming the groups ``rank{rank}_gpu{accelerator_rank}_env{e}``;
            ``None``: rank 0, gpu 0.
        fps: playback rate; ``None``: ``video_cfg.fps``, else the env's
            ``cfg.init_params.sim_config.control_freq`` or ``metadata["render_fps"]``, else 30.

    Pipeline stages (``rollout.pipeline_stage_num > 1``): RLinf builds one env per stage and
    numbers them as logical processes, ``seed_offset = rank * stage_num + stage_id`` out of
    ``total_num_processes = world_size * stage_num``. Stage ``s`` holds envs
    ``s * num_envs .. (s + 1) * num_envs - 1`` of its worker and global envs
    ``(rank * stage_num + s) * num_envs + i``, and records them under those numbers (see
    :func:`pipeline_stage`): the stages of a worker write its groups side by side.
    """

    env: Any
    video_cfg: Any
    writer: FrameWriter
    num_envs: int
    fps: float
    info_keys: list[str]
    stage_id: int
    num_stages: int
    _reward: np.ndarray | None  # rewards of steps since the last recorded row (None: none)
    _terminated: np.ndarray
    _truncated: np.ndarray
    _bad_info_keys: set[str]

    def __init__(
        self,
        env: Any,
        video_cfg: Any,
        worker_info: Any = None,
        *,
        fps: float | None = None,
    ) -> None:
        self.env = env  # first: attribute look-ups fall through to it
        self.video_cfg = video_cfg
        cfg = _plain_config(video_cfg)
        self.num_envs = int(getattr(env, "num_envs", 1))
        rank, gpu = _rank_and_gpu(worker_info)
        self.stage_id, self.num_stages = pipeline_stage(env, worker_info)
        self.fps = find_fps(cfg, env) if fps is None else float(fps)
        self.info_keys = _info_keys(cfg.get("extra_info_on_video"))
        recorder = recorder_from_video_cfg(
            {**cfg, "save_frames": True, "fps": self.fps},
            rank=rank,
            accelerator_id=gpu,
            num_envs=self.num_envs,
            first_env=self.stage_id * self.num_envs,
            num_envs_in_worker=self.num_stages * self.num_envs,
            config=_run_config(cfg, env),
        )
        assert isinstance(recorder, FrameWriter)  # save_frames=True
        self.writer = recorder
        self._bad_info_keys = set()
        self._clear_pending()

    def __getattr__(self, name: str) -> Any:
        # Only reached for names this wrapper lacks: RLinf reads env attributes through it.
        if name.startswith("_") or name in ("env", "writer"):
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        return getattr(self.env, name)

    def __repr__(self) -> str:
        return f"RecordFrames({self.env!r}, writer={self.writer!r})"

    @property
    def is_start(self) -> Any:
        return self.env.is_start

    @is_start.setter
    def is_start(self, value: Any) -> None:
        self.env.is_start = value

    # ------------------------------------------------------------------ RecordVideo's methods

    def reset(self, *args: Any, **kwargs: Any) -> Any:
        """Reset the env and record its first frames as the start of a new episode of every env."""
        result = self.env.reset(*args, **kwargs)
        obs, info = result if isinstance(result, tuple) else (result, None)
        self.writer.start_new_episodes()
        self._clear_pending()
        self._append(obs, info)
        return result

    def step(self, action: Any, *args: Any, **kwargs: Any) -> Any:
        """Step the env once and record the step (with ``final_observation`` on auto-reset)."""
        result = self.env.step(action, *args, **kwargs)
        obs, reward, terminated, truncated, info = result[:5]
        if isinstance(info, Mapping):  # RecordVideo's rule: the info's terminations win
            terminated = info.get("terminations", terminated)
        self._record_chunk([obs], reward, terminated, truncated, [info])
        return result

    def chunk_step(self, *args: Any, **kwargs: Any) -> Any:
        """Step a chunk of actions and record every observed step of it (see the class doc)."""
        result = self.env.chunk_step(*args, **kwargs)
        self._record_chunk(*result[:5])
        return result

    def flush_video(self, video_sub_dir: str | None = None) -> None:
        """End the epoch: every env's next row starts a new episode; write what was recorded.

        ``video_sub_dir`` is accepted for RecordVideo's signature; videos are made by
        ``python -m render``, one per env, named by group.
        """
        if video_sub_dir is not None:
            log.debug("RecordFrames.flush_video: video_sub_dir %r not used", video_sub_dir)
        self.writer.start_new_episodes()
        self._clear_pending()
        if self.writer.stats.rows:
            self.writer.flush()

    def update_reset_state_ids(self) -> None:
        """Forwarded to the env when it has it (RLinf calls it between epochs)."""
        update = getattr(self.env, "update_reset_state_ids", None)
        if callable(update):
            update()

    def close(self) -> Any:
        """Write every row and mark the groups complete, then close the env."""
        try:
            self.writer.close()
        finally:
            close = getattr(self.env, "close", None)
            result = close() if callable(close) else None
        return result

    # ------------------------------------------------------------------ recording

    def _record_chunk(
        self, obs_list: Any, rewards: Any, terminations: Any, truncations: Any, infos_list: Any
    ) -> None:
        if not isinstance(obs_list, (list, tuple)):
            obs_list = [obs_list]
        steps = len(obs_list)
        if isinstance(infos_list, (list, tuple)):
            infos = [*infos_list, *[None] * (steps - len(infos_list))]
        else:  # one info for the chunk: that of its last step
            infos = [*[None] * (steps - 1), infos_list]
        rewards = _per_step(rewards, self.num_envs, steps, "rewards", np.float64)
        terminations = _per_step(terminations, self.num_envs, steps, "terminations", bool)
        truncations = _per_step(truncations, self.num_envs, steps, "truncations", bool)
        final_obs, final_info = _final_observation(infos[-1] if steps else None)
        for t, obs in enumerate(obs_list):
            self._add_pending(rewards, terminations, truncations, t)
            if t == steps - 1 and final_obs is not None:
                self._append_pending(final_obs, infos[t] if final_info is None else final_info)
                if obs is not None:
                    self._append(obs, infos[t])  # the reset frame: reward not given
            elif obs is not None:
                self._append_pending(obs, infos[t])

    def _add_pending(
        self, rewards: np.ndarray | None, term: np.ndarray, trunc: np.ndarray, t: int
    ) -> None:
        if rewards is not None:
            step = rewards[:, t]
            self._reward = step.copy() if self._reward is None else self._reward + step
        self._terminated |= term[:, t]
        self._truncated |= trunc[:, t]

    def _append_pending(self, obs: Any, info: Any) -> None:
        """One row with the rewards and flags of the steps since the last row."""
        self.writer.append(
            rlinf_cameras(obs),
            reward=self._reward,
            terminated=self._terminated,
            truncated=self._truncated,
            info=self._info_columns(info),
        )
        self._clear_pending()

    def _append(self, obs: Any, info: Any) -> None:
        self.writer.append(rlinf_cameras(obs), info=self._info_columns(info))

    def _clear_pending(self) -> None:
        self._reward = None
        self._terminated = np.zeros(self.num_envs, bool)
        self._truncated = np.zeros(self.num_envs, bool)

    def _info_columns(self, info: Any) -> dict[str, np.ndarray]:
        """The ``extra_info_on_video`` values of one info dict, one number per env."""
        columns = {}
        for key in self.info_keys:
            value = lookup_info(info, key)
            if value is None or key in self._bad_info_keys:
                continue
            try:
                columns.update(adapters.info_columns({key: value}, self.num_envs))
            except FrameInputError as e:
                log.warning("RecordFrames: extra_info_on_video key %r not recorded: %s", key, e)
                self._bad_info_keys.add(key)
        return columns


# ---------------------------------------------------------------------- helpers


def rlinf_cameras(obs: Any) -> dict[str, Any]:
    """``{camera: (N, H, W, C) batch}`` from an RLinf observation dict (views, no copies).

    >>> obs = {"main_images": np.zeros((3, 4, 6, 3), np.uint8),
    ...        "wrist_images": np.zeros((3, 2, 4, 4, 3), np.uint8),
    ...        "extra_view_images": np.zeros((3, 5, 5, 3), np.uint8),
    ...        "states": np.zeros((3, 32)), "task_descriptions": ["push"] * 3}
    >>> {name: batch.shape for name, batch in rlinf_cameras(obs).items()}
    {'zed': (3, 4, 6, 3), 'left_realsense': (3, 4, 4, 3), 'right_realsense': (3, 4, 4, 3), 'extra_view_images': (3, 5, 5, 3)}
    """  # noqa: E501
    if not isinstance(obs, Mapping):
        raise FrameInputError(
            f"expected RLinf's observation dict (main_images, wrist_images, ...), "
            f"got {type(obs).__name__}"
        )
    cameras: dict[str, Any] = {}
    for key, value in obs.items():
        if not _is_image_batch(value):
            continue
        if len(value.shape) == 4:
            cameras[MAIN_CAMERA if key == "main_images" else str(key)] = value
            continue
        views = value.shape[1]
        names = (
            WRIST_CAMERAS
            if key == "wrist_images" and views == len(WRIST_CAMERAS)
            else [f"{key}_{k}" for k in range(views)]
        )
        cameras.update((name, value[:, k]) for k, name in enumerate(names))
    if not cameras:
        raise FrameInputError(
            f"observation has no image batches (keys {sorted(map(str, obs))}); expected "
            "main_images [N, H, W, C] and/or wrist_images [N, 2, H, W, C]"
        )
    return cameras


def _is_image_batch(value: Any) -> bool:
    """An ``[N, H, W, C]`` or ``[N, K, H, W, C]`` array or tensor, channels last."""
    if not (isinstance(value, np.ndarray) or adapters.is_tensor(value)):
        return False
    return len(value.shape) in (4, 5) and value.shape[-1] in _IMAGE_CHANNELS


def lookup_info(info: Any, key: str) -> Any:
    """``info[key]``, else the value at the dotted path ``key`` (``episode.success_once``).

    >>> lookup_info({"episode": {"success_once": True}}, "episode.success_once")
    True
    >>> lookup_info({"episode": {}}, "episode.return") is None
    True
    """
    if not isinstance(info, Mapping):
        return None
    if key in info:
        return info[key]
    value: Any = info
    for part in key.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def pipeline_stage(env: Any, worker_info: Any) -> tuple[int, int]:
    """``(stage_id, stage_num)`` of an RLinf env inside its worker; ``(0, 1)`` if unknown.

    RLinf's env worker builds stage ``s`` with ``seed_offset = rank * stage_num + s`` and
    ``total_num_processes = world_size * stage_num``; ``WorkerInfo.group_world_size`` is the
    world size.

    >>> from types import SimpleNamespace as NS
    >>> pipeline_stage(NS(seed_offset=5, total_num_processes=6), NS(rank=2, group_world_size=3))
    (1, 2)
    >>> pipeline_stage(NS(), None)
    (0, 1)
    """
    offset = getattr(env, "seed_offset", None)
    total = getattr(env, "total_num_processes", None)
    world = getattr(worker_info, "group_world_size", None)
    rank = getattr(worker_info, "rank", 0)
    known = all(isinstance(v, (int, np.integer)) for v in (offset, total, world, rank))
    if not known or world <= 0 or total % world:
        return 0, 1
    stages = total // world
    stage = offset - rank * stages
    if not 0 <= stage < stages:
        log.warning(
            "RecordFrames: seed_offset %s is not one of rank %s's %s stages; taking stage 0",
            offset,
            rank,
            stages,
        )
        return 0, 1
    return int(stage), int(stages)


def find_fps(video_cfg: Mapping[str, Any], env: Any) -> float:
    """``video_cfg["fps"]``, else the env's control frequency or ``metadata["render_fps"]``,
    else 30 (RecordVideo's order).

    >>> from types import SimpleNamespace as NS
    >>> find_fps({"fps": None}, NS(metadata={"render_fps": 15})), find_fps({}, NS())
    (15.0, 30.0)
    """
    if video_cfg.get("fps") is not None:
        return float(video_cfg["fps"])
    init_params = getattr(getattr(env, "cfg", None), "init_params", None)
    sim_config = getattr(init_params, "sim_config", None)
    control_freq = getattr(sim_config, "control_freq", None)
    if control_freq is not None:
        return float(control_freq)
    metadata = getattr(env, "metadata", None)
    if isinstance(metadata, Mapping) and metadata.get("render_fps") is not None:
        return float(metadata["render_fps"])
    return DEFAULT_FPS


def _rank_and_gpu(worker_info: Any) -> tuple[int, int]:
    if worker_info is None:
        return 0, 0
    try:
        return int(worker_info.rank), int(worker_info.accelerator_rank)
    except (AttributeError, TypeError, ValueError):
        raise TypeError(
            "worker_info must be RLinf's WorkerInfo or an object with integer rank and "
            f"accelerator_rank. Got {worker_info!r} instead."
        ) from None


def _plain_config(video_cfg: Any) -> dict[str, Any]:
    """``video_cfg`` as a plain dict: OmegaConf configs resolved, objects by their attributes."""
    if video_cfg is None:
        return {}
    if type(video_cfg).__module__.startswith("omegaconf"):
        from omegaconf import OmegaConf

        return dict(OmegaConf.to_container(video_cfg, resolve=True))  # type: ignore[arg-type]
    if isinstance(video_cfg, Mapping):
        return dict(video_cfg)
    if hasattr(video_cfg, "__dict__"):
        return dict(vars(video_cfg))
    raise TypeError(
        f"video_cfg must be a mapping or an object with attributes. Got {video_cfg!r} instead."
    )


def _info_keys(keys: Any) -> list[str]:
    """``extra_info_on_video`` as a list of keys (one string is one key)."""
    if not keys:
        return []
    if isinstance(keys, str):
        return [keys]
    return [str(k) for k in keys]


def _per_step(values: Any, num_envs: int, steps: int, name: str, dtype: Any) -> np.ndarray | None:
    """``(num_envs, steps)`` numpy from RLinf's ``[N, chunk_steps]`` (or ``[N]`` for one step)."""
    if values is None:
        return None if dtype is np.float64 else np.zeros((num_envs, steps), bool)
    if adapters.is_tensor(values):
        values = values.detach().cpu().numpy()
    array = np.asarray(values)
    if array.ndim <= 1 and steps == 1:
        return adapters.as_env_vector(array, num_envs, name, dtype)[:, None]
    if array.shape != (num_envs, steps):
        raise FrameInputError(
            f"chunk_step {name} must have shape (num_envs, chunk_steps) = {(num_envs, steps)}. "
            f"Got {array.shape} instead."
        )
    return array.astype(dtype, copy=False)


def _final_observation(info: Any) -> tuple[Any, Any]:
    """``(final_obs, final_info)`` of an auto-reset step's info, ``(None, None)`` otherwise."""
    if not isinstance(info, Mapping):
        return None, None
    final_obs = info.get("final_obs")
    if final_obs is None:
        final_obs = info.get("final_observation")
    return final_obs, (info.get("final_info") if final_obs is not None else None)


def _run_config(video_cfg: Mapping[str, Any], env: Any) -> dict[str, Any]:
    """What the store root records about the run: the env type and the video_cfg (JSON)."""
    env_cfg = getattr(env, "cfg", None)
    env_type = getattr(env_cfg, "env_type", None)
    if env_type is None and isinstance(env_cfg, Mapping):
        env_type = env_cfg.get("env_type")
    config: dict[str, Any] = {"eval": {"video_cfg": video_cfg}}
    if env_type is not None:
        config = {"env_type": str(env_type), **config}
    return json.loads(json.dumps({"env": config}, default=str))
