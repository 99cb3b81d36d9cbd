"""``env_type: behavior``: a thin adapter over OmniGibson's ``VectorEnvironment``.

OmniGibson needs NVIDIA Isaac Sim and an RTX GPU, so this module is never exercised by the
test suite beyond its error path; everything OmniGibson-specific sits in this file.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import numpy as np

from collect.adapters import to_camera_batches

from .base import VectorEnv
from .registry import register_env

__all__ = ["BehaviorEnv"]

INSTALL_HINT = (
    "omnigibson is not installed; the behavior env needs NVIDIA Isaac Sim and an RTX GPU "
    "(install Isaac Sim, then `pip install omnigibson`, see "
    "https://behavior.stanford.edu/omnigibson/getting_started/installation.html), "
    "or use the built-in simulator with `env_type: mujoco_tabletop`"
)


def _import_omnigibson() -> Any:
    try:
        import omnigibson
    except ImportError as e:
        raise ImportError(INSTALL_HINT) from e
    return omnigibson


def _load_config(config: Mapping | str | os.PathLike | None) -> dict:
    """An OmniGibson env config as a plain dict, from a mapping or a YAML file path."""
    from omegaconf import DictConfig, OmegaConf

    if config is None:
        raise ValueError(
            "env_type 'behavior' needs the option config: an OmniGibson env config "
            "(a dict, or the path of its YAML file)"
        )
    if isinstance(config, (str, os.PathLike)):
        config = OmegaConf.load(config)
    if isinstance(config, DictConfig):
        return OmegaConf.to_container(config, resolve=True)
    return dict(config)


def _first(result: Any) -> Any:
    """``obs`` from ``env.reset()``, which returns ``(obs, info)`` in OmniGibson >= 1.0."""
    return result[0] if isinstance(result, tuple) else result


def _success(info: Mapping) -> bool:
    """OmniGibson reports task success as ``info["done"]["success"]``."""
    done = info.get("done", {})
    return bool(done.get("success", False)) if isinstance(done, Mapping) else False


@register_env("behavior")
class BehaviorEnv(VectorEnv):
    """OmniGibson (BEHAVIOR) envs with this package's step contract and auto-reset.

    Observations are OmniGibson's own (the structure every other env imitates). The camera
    names and sizes come from the first observation; ``action_dim`` from the robot.
    A sub-env that is auto-reset at a step is reset before the shared simulator step and
    reports the observation ``reset()`` returned.

    Args:
        num_envs: number of OmniGibson envs in this worker (one simulator).
        seed: kept for the interface; OmniGibson seeds through its config.
        config: the OmniGibson env config, a dict or the path of a YAML file.
        max_episode_steps: truncate episodes after this many steps (``None``: OmniGibson's
            own termination conditions only).

    Examples - without OmniGibson, the error says how to install it:

    >>> from collect.eval.envs import make_env
    >>> make_env("behavior", 1, config={})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ImportError: omnigibson is not installed; ... `env_type: mujoco_tabletop`
    """

    def __init__(
        self,
        num_envs: int,
        *,
        seed: int = 0,
        config: Mapping | str | os.PathLike | None = None,
        max_episode_steps: int | None = None,
    ) -> None:
        og = _import_omnigibson()
        self._venv = og.VectorEnvironment(num_envs, _load_config(config))
        self._obs = [_first(env.reset()) for env in self._venv.envs]
        self._og_truncated = np.zeros(num_envs, dtype=bool)
        batches = to_camera_batches(self._obs, num_envs)
        super().__init__(
            num_envs,
            seed=seed,
            action_dim=int(self._venv.envs[0].robots[0].action_dim),
            camera_names=list(batches),
            image_size={name: tuple(b.shape[1:3]) for name, b in batches.items()},
            max_episode_steps=max_episode_steps,
        )

    def close(self) -> None:
        self._venv.close()

    def _reset_envs(self, indices: np.ndarray) -> None:
        for i in indices:
            self._obs[i] = _first(self._venv.envs[i].reset())
        self._og_truncated[indices] = False

    def _advance(
        self, actions: np.ndarray, active: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        import torch

        obs, rewards, terminated, truncated, infos = self._venv.step(
            [torch.as_tensor(a, dtype=torch.float32) for a in actions]
        )
        for i in np.flatnonzero(active):
            self._obs[i] = obs[i]
        self._og_truncated = np.asarray(truncated, dtype=bool)
        success = np.array([_success(info) for info in infos], dtype=bool)
        return np.asarray(rewards, dtype=np.float64), success, np.asarray(terminated, bool)

    def _out_of_time(self) -> np.ndarray:
        return self._og_truncated | super()._out_of_time()

    def _observe(self) -> list[dict]:
        return list(self._obs)
