"""Policies for the built-in envs: ``policy(obs) -> actions (num_envs, action_dim)``.

``random`` works with every env; ``scripted`` is the env's own controller
(:meth:`VectorEnv.scripted_policy`), which may read the env's state directly.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import numpy as np

from collect.registry import Registry

from .base import VectorEnv

__all__ = ["POLICIES", "Policy", "RandomPolicy", "make_policy"]


class Policy(Protocol):
    """Maps a batch observation to a float ``(num_envs, action_dim)`` action array."""

    def __call__(self, obs: Any) -> np.ndarray: ...


class RandomPolicy:
    """Uniform random actions in ``[-1, 1]`` (every built-in env takes normalised actions).

    >>> from collect.eval.envs import make_env
    >>> env = make_env("synthetic", 3, action_dim=2)
    >>> policy = RandomPolicy(env, seed=1)
    >>> actions = policy(env.reset())
    >>> actions.shape, bool((abs(actions) <= 1).all())
    ((3, 2), True)
    """

    def __init__(self, env: VectorEnv, *, seed: int = 0) -> None:
        self.env = env
        self._rng = np.random.default_rng(seed)

    def __call__(self, obs: Any) -> np.ndarray:
        shape = (self.env.num_envs, self.env.action_dim)
        return self._rng.uniform(-1.0, 1.0, shape).astype(np.float32)


def _scripted(env: VectorEnv, *, seed: int = 0) -> Policy:
    return env.scripted_policy(seed=seed)


POLICIES: Registry[Callable[..., Policy]] = Registry("policy")
POLICIES.register("random")(RandomPolicy)
POLICIES.register("scripted")(_scripted)


def make_policy(name: str, env: VectorEnv, *, seed: int = 0) -> Policy:
    """The policy ``name`` (``random`` or ``scripted``) for ``env``.

    Unknown names raise :class:`UnknownNameError` listing the choices; ``scripted`` on an env
    without a scripted controller raises ``ValueError``.

    >>> from collect.eval.envs import make_env
    >>> env = make_env("synthetic", 2)
    >>> make_policy("scripted", env)(env.reset()).tolist()
    [[0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]]
    >>> make_policy("greedy", env)
    Traceback (most recent call last):
    ...
    collect.registry.UnknownNameError: unknown policy 'greedy'; choose from random, scripted
    """
    return POLICIES[name](env, seed=seed)
