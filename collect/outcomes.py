"""What the end of an episode means for each env type: the one table envs declare it in.

An episode's outcome (``success``, ``failure`` or ``unknown``) comes first from a success info
key stored with the frames (see :mod:`render.episodes`). Without one, only the env knows what
its ``terminated`` and ``truncated`` flags mean: reaching the goal terminates the built-in
tabletop env, but for most Gymnasium tasks (``InvertedPendulum-v5``: the pole fell)
termination means failure. So nothing is assumed: an env type that has a rule declares it in
:data:`END_OUTCOMES`, and every other env's episodes stay ``unknown``.

The env type of a store is the ``env.env_type`` of the run config that the eval runner records
in the store's root (:func:`env_type_of`). This module imports nothing but the standard
library, so the renderer reads the rules without importing any env (or MuJoCo).

>>> end_outcomes(env_type_of({"env": {"env_type": "mujoco_tabletop"}}))
{'terminated': 'success', 'truncated': 'failure'}
>>> end_outcomes(None), env_type_of({})
({}, None)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

__all__ = ["END_OUTCOMES", "Outcome", "end_outcomes", "env_type_of"]

Outcome = Literal["success", "failure", "unknown"]

# env_type -> {how an episode ended: what that means}. Ends left out stay "unknown".
END_OUTCOMES: dict[str, dict[str, Outcome]] = {
    # the cube reached the goal -> terminated; the step limit -> truncated
    "mujoco_tabletop": {"terminated": "success", "truncated": "failure"},
    # even-indexed envs terminate at the end of every episode, "succeeding"
    "synthetic": {"terminated": "success", "truncated": "failure"},
    # behavior: OmniGibson also terminates on failure conditions; its info key
    # ("success", from info["done"]["success"]) is the only truth, so no rule here.
}


def end_outcomes(env_type: str | None) -> dict[str, Outcome]:
    """``{end: outcome}`` declared for ``env_type`` (empty when it declares none)."""
    return dict(END_OUTCOMES.get(env_type or "", {}))


def env_type_of(config: Mapping[str, Any] | None) -> str | None:
    """``env.env_type`` of a run config (the store root's ``config``), or None without one."""
    env = (config or {}).get("env")
    env_type = env.get("env_type") if isinstance(env, Mapping) else None
    return env_type if isinstance(env_type, str) else None
