"""The vector-env contract shared by every built-in env, with episode bookkeeping and auto-reset.

Observations use OmniGibson's raw structure (one dict per env), so the recorder runs the same
adapter path as with the real simulator::

    [{"robot_r1": {"robot_r1:zed_link:Camera:0": {"rgb": uint8 (H, W, 4)},
                   "robot_r1:left_realsense_link:Camera:0": {"rgb": ...},
                   "robot_r1:right_realsense_link:Camera:0": {"rgb": ...},
                   "proprio": float32 (D,)}},          # proprio only where the env has it
     ...]

Frames are torch tensors when torch is importable (``tensor=None``), numpy arrays otherwise.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

if TYPE_CHECKING:
    from .policies import Policy

__all__ = [
    "CAMERA_NAMES",
    "DEFAULT_IMAGE_SIZE",
    "ROBOT_NAME",
    "ImageSize",
    "StepResult",
    "VectorEnv",
    "resolve_image_sizes",
    "sensor_key",
]

ROBOT_NAME = "robot_r1"
CAMERA_NAMES = ("zed", "left_realsense", "right_realsense")
DEFAULT_IMAGE_SIZE = 128

ImageSize = int | Sequence[int] | Mapping[str, int | Sequence[int]]
StepResult = tuple[list[dict], np.ndarray, np.ndarray, np.ndarray, list[dict]]


def sensor_key(camera: str, robot: str = ROBOT_NAME) -> str:
    """OmniGibson's sensor name for an R1Pro camera.

    >>> sensor_key("zed")
    'robot_r1:zed_link:Camera:0'
    """
    return f"{robot}:{camera}_link:Camera:0"


def _one_size(value: int | Sequence[int], camera: str) -> tuple[int, int]:
    size = (value, value) if isinstance(value, (int, np.integer)) else tuple(value)
    if len(size) != 2 or not all(isinstance(s, (int, np.integer)) and s > 0 for s in size):
        raise ValueError(
            f"image_size for camera {camera!r} must be a positive int or (height, width). "
            f"Got {value!r} instead."
        )
    return int(size[0]), int(size[1])


def resolve_image_sizes(
    image_size: ImageSize, cameras: Sequence[str]
) -> dict[str, tuple[int, int]]:
    """``{camera: (height, width)}`` from one size for all cameras or a per-camera mapping.

    Cameras missing from a mapping get the default size (128).

    >>> resolve_image_sizes({"zed": (96, 128)}, ["zed", "left_realsense"])
    {'zed': (96, 128), 'left_realsense': (128, 128)}
    """
    if not isinstance(image_size, Mapping):
        return {camera: _one_size(image_size, camera) for camera in cameras}
    unknown = sorted(set(image_size) - set(cameras))
    if unknown:
        raise ValueError(
            f"image_size names unknown camera {unknown[0]!r}; cameras are {', '.join(cameras)}"
        )
    return {c: _one_size(image_size.get(c, DEFAULT_IMAGE_SIZE), c) for c in cameras}


def _resolve_tensor(tensor: bool | None) -> bool:
    """``tensor=None`` means torch tensors if torch is importable."""
    if tensor is None:
        return importlib.util.find_spec("torch") is not None
    if tensor and importlib.util.find_spec("torch") is None:
        raise ImportError('tensor=True needs torch; pip install "evalframes[torch]"')
    return bool(tensor)


class VectorEnv:
    """A batch of ``num_envs`` independent envs stepped together, Gymnasium-vector style.

    ``reset(seed=None) -> obs`` starts a new episode in every env. ``step(actions)`` takes a
    ``(num_envs, action_dim)`` array and returns ``(obs, reward, terminated, truncated, info)``
    with ``reward`` float32 ``(N,)``, ``terminated``/``truncated`` bool ``(N,)`` and ``info`` a
    list of N dicts ``{"success": bool, "episode": {"index": int, "step": int, "return":
    float, "success_once": bool}}`` (``episode.step`` counts the steps taken in the episode:
    0 for its first frame).

    Auto-reset ("next-step" mode, as Gymnasium's ``AutoresetMode.NEXT_STEP``): when env ``i``
    is terminated (task done) or truncated (``max_episode_steps`` reached) at step ``t``, the
    obs of step ``t`` is the *last* frame of the finished episode. At step ``t + 1`` env ``i``
    ignores its action and starts a new episode: its obs is the new episode's *first* frame
    (what ``reset`` would return for it), with reward 0, ``terminated = truncated = False``,
    ``success = False`` and ``episode.step == 0``, ``episode.index`` one higher. So every
    step's obs can be recorded as one row, and episode ends sit on the rows flagged
    terminated/truncated.

    Subclasses implement ``_reset_envs``, ``_advance`` and ``_observe``.

    Examples - two synthetic envs whose episodes end after 2 steps, then auto-reset:

    >>> import numpy as np
    >>> from collect.eval.envs import make_env
    >>> env = make_env("synthetic", 2, image_size=8, episode_length=2, tensor=False)
    >>> obs = env.reset(seed=0)
    >>> sorted(obs[0]["robot_r1"])
    ['robot_r1:left_realsense_link:Camera:0', 'robot_r1:right_realsense_link:Camera:0', 'robot_r1:zed_link:Camera:0']
    >>> ends = []
    >>> for _ in range(4):
    ...     obs, reward, terminated, truncated, info = env.step(np.zeros((2, env.action_dim)))
    ...     ends.append((terminated.tolist(), truncated.tolist(), info[0]["episode"]["step"]))
    >>> ends
    [([False, False], [False, False], 1), ([True, False], [False, True], 2), ([False, False], [False, False], 0), ([False, False], [False, False], 1)]
    >>> env.close()
    """  # noqa: E501

    env_type: ClassVar[str] = ""
    num_envs: int
    camera_names: list[str]
    action_dim: int
    image_sizes: dict[str, tuple[int, int]]
    max_episode_steps: int | None
    seed: int
    tensor: bool

    def __init__(
        self,
        num_envs: int,
        *,
        seed: int,
        action_dim: int,
        camera_names: Sequence[str] = CAMERA_NAMES,
        image_size: ImageSize = DEFAULT_IMAGE_SIZE,
        max_episode_steps: int | None = None,
        tensor: bool | None = None,
    ) -> None:
        if not isinstance(num_envs, (int, np.integer)) or num_envs < 1:
            raise ValueError(f"num_envs must be a positive integer. Got {num_envs!r} instead.")
        if max_episode_steps is not None and max_episode_steps < 1:
            raise ValueError(
                f"max_episode_steps must be a positive integer or None. "
                f"Got {max_episode_steps!r} instead."
            )
        self.num_envs = int(num_envs)
        self.camera_names = list(camera_names)
        self.action_dim = action_dim
        self.image_sizes = resolve_image_sizes(image_size, self.camera_names)
        self.max_episode_steps = max_episode_steps
        self.tensor = _resolve_tensor(tensor)
        self._seed_rngs(seed)
        # Episode bookkeeping; episode counters start at -1 and are incremented on reset.
        self._episode = np.full(self.num_envs, -1, dtype=np.int64)
        self._episode_step = np.zeros(self.num_envs, dtype=np.int64)
        self._return = np.zeros(self.num_envs, dtype=np.float64)
        self._success_once = np.zeros(self.num_envs, dtype=bool)
        self._needs_reset = np.zeros(self.num_envs, dtype=bool)
        self._success = np.zeros(self.num_envs, dtype=bool)
        self._started = False

    # -- public API ------------------------------------------------------------------------

    def reset(self, seed: int | None = None) -> list[dict]:
        """Start a new episode in every env (episode index 0); return the first frames."""
        if seed is not None:
            self._seed_rngs(seed)
        self._episode[:] = -1
        self._start_episodes(np.arange(self.num_envs))
        self._needs_reset[:] = False
        self._success[:] = False
        self._started = True
        return self._observe()

    def step(self, actions: Any) -> StepResult:
        """Advance every env one step; see the class docstring for the auto-reset contract."""
        if not self._started:
            raise RuntimeError(f"{type(self).__name__}: call reset() before step()")
        actions = self._check_actions(actions)
        resetting = self._needs_reset.copy()
        if resetting.any():
            self._start_episodes(np.flatnonzero(resetting))
        active = ~resetting
        self._episode_step[active] += 1
        reward, success, done = self._advance(actions, active)
        reward = np.where(active, reward, 0.0).astype(np.float32)
        success = np.asarray(success, dtype=bool) & active
        terminated = np.asarray(done, dtype=bool) & active
        truncated = active & ~terminated & self._out_of_time()
        self._return += reward
        self._success = success
        self._success_once |= success
        self._needs_reset = terminated | truncated
        return self._observe(), reward, terminated, truncated, self.infos()

    def infos(self) -> list[dict]:
        """The ``info`` list of the latest ``step`` (after ``reset``: that of the first frames)."""
        return [
            {
                "success": bool(self._success[i]),
                "episode": {
                    "index": int(self._episode[i]),
                    "step": int(self._episode_step[i]),
                    "return": float(self._return[i]),
                    "success_once": bool(self._success_once[i]),
                },
                **self._extra_info(i),
            }
            for i in range(self.num_envs)
        ]

    def scripted_policy(self, *, seed: int = 0) -> Policy:
        """The env's built-in scripted policy (``make_policy("scripted", env)``)."""
        raise ValueError(f"env_type {self.env_type!r} has no scripted policy; use policy 'random'")

    def close(self) -> None:
        """Release simulator resources (renderers, processes); the base env holds none."""

    def __enter__(self) -> VectorEnv:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- hooks for subclasses --------------------------------------------------------------

    def _reset_envs(self, indices: np.ndarray) -> None:
        """Put the envs ``indices`` in the initial state of a new episode."""
        raise NotImplementedError

    def _advance(
        self, actions: np.ndarray, active: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Step the ``active`` envs with their actions; return per-env (reward, success, done).

        ``done`` is the env's own termination (task achieved or failed); truncation by
        ``max_episode_steps`` is handled by the base class. ``self._episode_step`` already
        counts this step. Values of inactive envs are ignored.
        """
        raise NotImplementedError

    def _observe(self) -> list[dict]:
        """The current OmniGibson-structured observation of every env."""
        raise NotImplementedError

    def _extra_info(self, index: int) -> dict[str, Any]:
        """Env-specific ``info`` entries of env ``index`` (numbers or bools)."""
        return {}

    # -- helpers ---------------------------------------------------------------------------

    def _seed_rngs(self, seed: int) -> None:
        """One generator per env, so env ``i``'s episodes depend only on (seed, i)."""
        self.seed = int(seed)
        self._rngs = [np.random.default_rng([self.seed, i]) for i in range(self.num_envs)]

    def _start_episodes(self, indices: np.ndarray) -> None:
        self._episode[indices] += 1
        self._episode_step[indices] = 0
        self._return[indices] = 0.0
        self._success_once[indices] = False
        self._reset_envs(indices)

    def _out_of_time(self) -> np.ndarray:
        if self.max_episode_steps is None:
            return np.zeros(self.num_envs, dtype=bool)
        return self._episode_step >= self.max_episode_steps

    def _check_actions(self, actions: Any) -> np.ndarray:
        if type(actions).__module__.startswith("torch"):
            actions = actions.detach().cpu().numpy()
        array = np.asarray(actions, dtype=np.float64)
        expected = (self.num_envs, self.action_dim)
        if array.shape != expected:
            raise ValueError(
                f"actions must have shape (num_envs, action_dim) = {expected}. "
                f"Got {array.shape} instead."
            )
        if not np.isfinite(array).all():
            env = int(np.flatnonzero(~np.isfinite(array).all(axis=1))[0])
            raise ValueError(f"actions of env {env} contain NaN or inf")
        return array

    def _output(self, array: np.ndarray) -> Any:
        """An array as returned in observations: a torch tensor (sharing memory) or numpy."""
        if self.tensor:
            import torch

            return torch.from_numpy(array)
        return array

    def _env_obs(self, frames: Mapping[str, np.ndarray], **extra: np.ndarray) -> dict:
        """One env's observation in OmniGibson's structure from ``{camera: (H, W, 4)}``."""
        robot: dict[str, Any] = {
            sensor_key(camera): {"rgb": self._output(frame)} for camera, frame in frames.items()
        }
        robot.update((key, self._output(value)) for key, value in extra.items())
        return {ROBOT_NAME: robot}
