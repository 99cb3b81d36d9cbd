"""A dependency-free synthetic env (numpy only) whose frames are known exactly, for tests.

Every frame is :func:`synthetic_frame` of (env, step in episode, camera, episode, seed), so a
test can check any recorded row pixel for pixel from the row's ``info`` (``episode.index``,
``episode.step``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .base import CAMERA_NAMES, DEFAULT_IMAGE_SIZE, ImageSize, VectorEnv
from .registry import register_env

__all__ = ["SyntheticEnv", "synthetic_frame"]


def synthetic_frame(
    env_index: int,
    step: int,
    h: int,
    w: int,
    camera_index: int = 0,
    *,
    episode: int = 0,
    seed: int = 0,
) -> np.ndarray:
    """The synthetic env's RGBA ``uint8 (h, w, 4)`` frame for one env, step and camera.

    Red is a horizontal ramp that scrolls by 5 levels per step (period 256 steps), green a
    vertical ramp offset by 85 per camera index, blue a constant coding env, episode and
    seed (``(37 * env_index + 11 * episode + 101 * seed) % 256``), alpha 255. ``step`` is
    the step within the episode (``info["episode"]["step"]``, 0 for the first frame).

    >>> frame = synthetic_frame(env_index=1, step=2, h=4, w=8, camera_index=1)
    >>> frame.shape, frame.dtype
    ((4, 8, 4), dtype('uint8'))
    >>> frame[0, :, 0].tolist()  # red: (32 * x + 5 * step) % 256
    [10, 42, 74, 106, 138, 170, 202, 234]
    >>> frame[:, 0, 1].tolist(), int(frame[0, 0, 2]), int(frame[0, 0, 3])
    ([85, 149, 213, 21], 37, 255)
    """
    frame = np.empty((h, w, 4), dtype=np.uint8)
    frame[..., 0] = (np.arange(w) * 256 // w + 5 * step) % 256
    frame[..., 1] = ((np.arange(h) * 256 // h + 85 * camera_index) % 256)[:, None]
    frame[..., 2] = (37 * env_index + 11 * episode + 101 * seed) % 256
    frame[..., 3] = 255
    return frame


class _ZeroPolicy:
    """The synthetic env ignores actions, so its "scripted" policy sends zeros."""

    def __init__(self, env: SyntheticEnv) -> None:
        self.env = env

    def __call__(self, obs: Any) -> np.ndarray:
        return np.zeros((self.env.num_envs, self.env.action_dim), dtype=np.float32)


@register_env("synthetic")
class SyntheticEnv(VectorEnv):
    """Synthetic frames with exactly known content, in OmniGibson's observation structure.

    Envs with an even index succeed (``terminated``) at step ``episode_length`` of every
    episode; odd ones never succeed and are truncated at that step, so both kinds of episode
    end occur. ``max_episode_steps``, if given, truncates any env earlier. The reward at
    episode step ``s`` is ``s / episode_length``. Actions are checked for shape and otherwise
    ignored.

    Args:
        num_envs: number of envs.
        seed: coded into the frames' blue channel (use e.g. the worker rank).
        image_size: ``int``, ``(h, w)`` or ``{camera: size}`` (default 128).
        episode_length: steps until even envs succeed; an int or one value per env.
        max_episode_steps: truncation limit for every env (``None``: no extra limit).
        action_dim: size of the (ignored) action vector.
        tensor: frames as torch tensors (``None``: if torch is importable) or numpy.

    Examples - frames equal :func:`synthetic_frame`:

    >>> import numpy as np
    >>> env = SyntheticEnv(3, seed=7, image_size=(6, 10), episode_length=[2, 3, 4], tensor=False)
    >>> obs = env.reset()
    >>> obs, reward, terminated, truncated, info = env.step(np.zeros((3, env.action_dim)))
    >>> rgb = obs[2]["robot_r1"]["robot_r1:right_realsense_link:Camera:0"]["rgb"]
    >>> bool((rgb == synthetic_frame(2, 1, 6, 10, camera_index=2, seed=7)).all())
    True
    >>> reward.tolist()
    [0.5, 0.3333333432674408, 0.25]
    """

    def __init__(
        self,
        num_envs: int,
        *,
        seed: int = 0,
        image_size: ImageSize = DEFAULT_IMAGE_SIZE,
        episode_length: int | Sequence[int] = 8,
        max_episode_steps: int | None = None,
        action_dim: int = 4,
        tensor: bool | None = None,
    ) -> None:
        lengths = np.broadcast_to(np.asarray(episode_length, dtype=np.int64), (num_envs,))
        if (lengths < 1).any():
            raise ValueError(f"episode_length must be >= 1. Got {episode_length!r} instead.")
        super().__init__(
            num_envs,
            seed=seed,
            action_dim=action_dim,
            camera_names=CAMERA_NAMES,
            image_size=image_size,
            max_episode_steps=max_episode_steps,
            tensor=tensor,
        )
        self.episode_length = lengths.copy()
        self._succeeds = np.arange(self.num_envs) % 2 == 0

    def scripted_policy(self, *, seed: int = 0) -> _ZeroPolicy:
        return _ZeroPolicy(self)

    def _reset_envs(self, indices: np.ndarray) -> None:
        """Nothing to reset: frames are a function of the episode counters."""

    def _advance(
        self, actions: np.ndarray, active: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        reward = self._episode_step / self.episode_length
        success = self._succeeds & (self._episode_step >= self.episode_length)
        return reward, success, success

    def _out_of_time(self) -> np.ndarray:
        """Odd envs time out where even ones succeed; ``max_episode_steps`` applies to all."""
        timed_out = ~self._succeeds & (self._episode_step >= self.episode_length)
        return timed_out | super()._out_of_time()

    def _observe(self) -> list[dict]:
        return [self._env_obs(self._frames(i)) for i in range(self.num_envs)]

    def _frames(self, index: int) -> dict[str, np.ndarray]:
        step, episode = int(self._episode_step[index]), int(self._episode[index])
        return {
            camera: synthetic_frame(index, step, h, w, c, episode=episode, seed=self.seed)
            for c, (camera, (h, w)) in enumerate(self.image_sizes.items())
        }
