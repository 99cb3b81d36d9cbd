"""Gymnasium integration: record every sub-env of a vector env into a frame store.

>>> import os, tempfile
>>> os.environ.setdefault("MUJOCO_GL", "egl")
'egl'
>>> import gymnasium as gym
>>> from collect import open_store
>>> envs = gym.make_vec("InvertedPendulum-v5", num_envs=3, vectorization_mode="sync",
...                     render_mode="rgb_array", width=32, height=32)
>>> path = tempfile.mkdtemp() + "/frames.zarr"
>>> envs = RecordFrames(envs, path, fps=25)
>>> _ = envs.reset(seed=0)
>>> for _ in range(10):
...     _ = envs.step(envs.action_space.sample())
>>> envs.close()
>>> [(g.name, g.rows) for g in open_store(path).groups()]
[('rank0_gpu0_env0', 11), ('rank0_gpu0_env1', 11), ('rank0_gpu0_env2', 11)]
"""

from __future__ import annotations

import logging
import os
from typing import Any

import numpy as np

from .location import StoreLocation
from .writer import FrameWriter

__all__ = ["RecordFrames"]

log = logging.getLogger(__name__)

try:
    from gymnasium.vector import AutoresetMode, VectorEnv, VectorWrapper
except ImportError as e:  # pragma: no cover - depends on the environment
    raise ImportError('collect.wrappers needs gymnasium; pip install "evalframes[sim]"') from e


class RecordFrames(VectorWrapper):
    """Record the frames of every sub-env of a ``gymnasium.vector.VectorEnv``, one group each.

    Every ``reset`` and ``step`` appends one row per sub-env: the frame (``env.render()`` of
    each sub-env, or the image observation ``obs_key``), the reward, terminated/truncated and
    the scalar entries of ``info``. With Gymnasium's default ``NEXT_STEP`` autoreset the row of
    the terminating step holds the episode's last frame and the next row, the reset frame,
    starts the next episode. With ``SAME_STEP`` autoreset the last frame is taken from
    ``info["final_obs"]`` when recording an observation key; ``render()`` cannot show it, so
    that combination is refused.

    Args:
        env: the vector env (``render_mode="rgb_array"`` unless ``obs_key`` is given).
        store: frame store path or URL; ``rank``/``gpu``: name the groups
            ``rank{r}_gpu{g}_env{e}``.
        camera: camera name in the store (``"rgb"``).
        obs_key: record ``obs[obs_key]`` (``(N, H, W, C)`` images) instead of ``render()``.
        **writer_options: passed to :class:`collect.FrameWriter` (fps, codec, ...).
    """

    def __init__(
        self,
        env: VectorEnv,
        store: str | os.PathLike | StoreLocation,
        *,
        rank: int = 0,
        gpu: int = 0,
        camera: str = "rgb",
        obs_key: str | None = None,
        **writer_options: Any,
    ) -> None:
        super().__init__(env)
        self.camera, self.obs_key = camera, obs_key
        self.autoreset_mode = env.metadata.get("autoreset_mode", AutoresetMode.NEXT_STEP)
        if obs_key is None and env.render_mode != "rgb_array":
            raise ValueError(
                f"Render mode is {env.render_mode}, which is incompatible with RecordFrames. "
                'Create the env with render_mode="rgb_array", or pass obs_key= to record an '
                "image observation."
            )
        if obs_key is None and self.autoreset_mode == AutoresetMode.SAME_STEP:
            raise ValueError(
                "RecordFrames cannot record render() frames with SAME_STEP autoreset: the last "
                "frame of each episode is gone by the time step() returns. Use NEXT_STEP "
                "autoreset, or pass obs_key= to record the image observation."
            )
        self.writer = FrameWriter(
            store, rank=rank, gpu=gpu, num_envs=env.num_envs, **writer_options
        )

    def reset(self, *, seed: Any = None, options: Any = None) -> tuple[Any, dict]:
        obs, info = self.env.reset(seed=seed, options=options)
        self.writer.start_new_episodes()
        self.writer.append({self.camera: self._frames(obs, info, None)}, info=self._info(info))
        return obs, info

    def step(self, actions: Any) -> tuple[Any, Any, Any, Any, dict]:
        obs, reward, terminated, truncated, info = self.env.step(actions)
        done = np.asarray(terminated) | np.asarray(truncated)
        self.writer.append(
            {self.camera: self._frames(obs, info, done)},
            reward=reward,
            terminated=terminated,
            truncated=truncated,
            info=self._info(info),
        )
        return obs, reward, terminated, truncated, info

    def close(self) -> None:
        try:
            self.writer.close()
        finally:
            super().close()

    def _frames(self, obs: Any, info: dict, done: np.ndarray | None) -> np.ndarray:
        if self.obs_key is None:
            return np.stack(self.env.render())
        frames = np.array(obs[self.obs_key])
        if done is not None and self.autoreset_mode == AutoresetMode.SAME_STEP and done.any():
            for env in np.flatnonzero(done):
                frames[env] = info["final_obs"][env][self.obs_key]
        return frames

    def _info(self, info: dict) -> dict[str, np.ndarray]:
        """The per-env scalar entries of a vector info dict (others are not recordable)."""
        n = self.num_envs
        scalars = {}
        for key, value in info.items():
            if key.startswith("_") or key in ("final_obs", "final_info"):
                continue
            arr = np.asarray(value) if not isinstance(value, dict) else None
            if arr is not None and arr.shape == (n,) and arr.dtype.kind in "biuf":
                scalars[key] = arr
            else:
                log.debug("RecordFrames: info key %r is not one scalar per env; not recorded", key)
        return scalars
