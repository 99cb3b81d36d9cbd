"""The env registry: a dict from ``env_type`` name to env class, filled by :func:`register_env`.

>>> from collect.envs import ENV_TYPES
>>> sorted(ENV_TYPES)
['behavior', 'mujoco_tabletop', 'synthetic']
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from .base import VectorEnv

__all__ = ["ENV_TYPES", "UnknownNameError", "make_env", "register_env"]

EnvClass = TypeVar("EnvClass", bound="type[VectorEnv]")

ENV_TYPES: dict[str, type[VectorEnv]] = {}


class UnknownNameError(ValueError):
    """An unknown env type or policy name; the message lists the valid choices.

    >>> UnknownNameError.for_name("policy", "greedy", ["scripted", "random"]).args
    ("unknown policy 'greedy'; choose from random, scripted",)
    """

    @classmethod
    def for_name(cls, kind: str, name: object, choices: Iterable[str]) -> UnknownNameError:
        return cls(f"unknown {kind} {name!r}; choose from {', '.join(sorted(choices))}")


def register_env(name: str) -> Callable[[EnvClass], EnvClass]:
    """Class decorator: make ``make_env(name, ...)`` build this env class.

    The class gets ``env_type = name``. Registering another class under a taken name raises
    ``ValueError`` (re-registering the same class, e.g. on module reload, is allowed).
    """

    def decorate(cls: EnvClass) -> EnvClass:
        known = ENV_TYPES.get(name)
        if known is not None and known.__qualname__ != cls.__qualname__:
            raise ValueError(f"env_type {name!r} is already registered to {known.__qualname__}")
        cls.env_type = name
        ENV_TYPES[name] = cls
        return cls

    return decorate


def _check_options(cls: type[VectorEnv], env_type: str, options: dict[str, Any]) -> None:
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
    collect.envs.registry.UnknownNameError: unknown env_type 'mujoco'; choose from behavior, mujoco_tabletop, synthetic
    """  # noqa: E501
    cls = ENV_TYPES.get(env_type)
    if cls is None:
        raise UnknownNameError.for_name("env_type", env_type, ENV_TYPES)
    _check_options(cls, env_type, options)
    return cls(num_envs, seed=seed, **options)
