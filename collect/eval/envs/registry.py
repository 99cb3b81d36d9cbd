"""The env registry: a dict from ``env_type`` name to env class, filled by :func:`register_env`.

>>> from collect.eval.envs import ENV_TYPES
>>> sorted(ENV_TYPES)
['behavior', 'mujoco_tabletop', 'synthetic']
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from collect.registry import Registry, UnknownNameError

if TYPE_CHECKING:
    from .base import VectorEnv

__all__ = ["ENV_TYPES", "UnknownNameError", "check_options", "make_env", "register_env"]

EnvClass = TypeVar("EnvClass", bound="type[VectorEnv]")

ENV_TYPES: Registry[type[VectorEnv]] = Registry("env_type")


def register_env(name: str) -> Callable[[EnvClass], EnvClass]:
    """Class decorator: make ``make_env(name, ...)`` build this env class.

    The class gets ``env_type = name``. Registering another class under a taken name raises
    ``ValueError`` (re-registering the same class, e.g. on module reload, is allowed).
    """

    def decorate(cls: EnvClass) -> EnvClass:
        ENV_TYPES.register(name)(cls)
        cls.env_type = name
        return cls

    return decorate


def check_options(cls: type[VectorEnv], env_type: str, options: dict[str, Any]) -> None:
    """Raise ``TypeError`` naming the env type and its options when an option is unknown."""
    accepted = [
        p.name
        for p in inspect.signature(cls.__init__).parameters.values()
        if p.kind is inspect.Parameter.KEYWORD_ONLY
    ]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise TypeError(
            f"env_type {env_type!r} has no option {unknown[0]!r}; "
            f"its options are {', '.join(sorted(accepted))}"
        )


def make_env(env_type: str, num_envs: int, *, seed: int = 0, **options: Any) -> VectorEnv:
    """Build a registered vector env with ``num_envs`` sub-envs (call ``reset()`` before use).

    ``options`` are the env class's keyword arguments (``image_size``, ``max_episode_steps``,
    ...). An unknown ``env_type`` raises :class:`UnknownNameError` listing the choices; an
    unknown option raises ``TypeError`` listing the env's options.

    >>> make_env("mujoco", 2)
    Traceback (most recent call last):
    ...
    collect.registry.UnknownNameError: unknown env_type 'mujoco'; choose from behavior, mujoco_tabletop, synthetic
    """  # noqa: E501
    cls = ENV_TYPES[env_type]
    check_options(cls, env_type, options)
    return cls(num_envs, seed=seed, **options)
