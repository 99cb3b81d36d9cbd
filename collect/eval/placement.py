"""Worker placement, RLinf style: which env worker runs on which accelerator, with how many envs.

``cluster.component_placement`` maps component names to device ids: ``"0-3"``, ``"0,2,5"``,
``"0-1,4"``, a single id, or ``"all"`` (every declared device). A key may name several
components at once (``"rollout,env": "0-1"``). Env worker ``rank`` r runs on the r-th id of the
env placement; that id is its ``gpu``. ``total_num_envs`` is split evenly over the env workers.

>>> for worker in plan_env_workers({"env": "0-1", "rollout": "2-3"}, total_num_envs=4):
...     print(worker)
EnvWorker(rank=0, gpu=0, num_envs=2, first_global_env=0)
EnvWorker(rank=1, gpu=1, num_envs=2, first_global_env=2)
>>> parse_placement("0-1,4")
[0, 1, 4]
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["EnvWorker", "PlacementError", "component_ids", "parse_placement", "plan_env_workers"]


class PlacementError(ValueError):
    """A placement string or env split that cannot be honoured; the message says which key."""


@dataclass(frozen=True)
class EnvWorker:
    """One env worker: its rank, accelerator id, envs, and the global index of its env 0."""

    rank: int
    gpu: int
    num_envs: int
    first_global_env: int


def parse_placement(
    spec: Any, num_devices: int | None = None, *, key: str = "placement"
) -> list[int]:
    """Device ids from ``"0-3"``, ``"0,2"``, ``"0-1,4"``, ``3`` or ``"all"`` (needs num_devices)."""
    if isinstance(spec, int) and not isinstance(spec, bool):
        return [_non_negative(spec, spec, key)]
    text = str(spec).strip()
    if text == "all":
        if not num_devices:
            raise PlacementError(
                f"{key}: 'all' needs the device count; set cluster.num_gpus_per_node "
                "(times cluster.num_nodes)"
            )
        return list(range(num_devices))
    ids: list[int] = []
    for part in (p.strip() for p in text.split(",")):
        ids.extend(_parse_part(part, text, key))
    if len(set(ids)) != len(ids):
        raise PlacementError(f"{key}: placement {text!r} lists a device twice")
    return ids


def _parse_part(part: str, text: str, key: str) -> list[int]:
    try:
        if "-" in part:
            start_text, end_text = part.split("-", 1)
            start, end = int(start_text), int(end_text)
            if end < start:
                raise PlacementError(
                    f"{key}: placement {text!r}: range {part!r} ends before it starts"
                )
            return list(range(_non_negative(start, text, key), end + 1))
        return [_non_negative(int(part), text, key)]
    except ValueError as e:
        if isinstance(e, PlacementError):
            raise
        raise PlacementError(
            f"{key}: cannot parse placement {text!r}; "
            "use forms like '0-3', '0,2,5', '0-1,4' or 'all'"
        ) from e


def _non_negative(value: int, text: Any, key: str) -> int:
    if value < 0:
        raise PlacementError(f"{key}: placement {text!r} has a negative device id")
    return value


def component_ids(
    placement: Mapping[str, Any], component: str, num_devices: int | None = None
) -> list[int]:
    """Device ids of one component, looking through shared keys like ``"rollout,env"``.

    A component named by two keys is an error (which one wins would be a guess).
    """
    keys = [key for key in placement if component in (k.strip() for k in str(key).split(","))]
    if not keys:
        raise PlacementError(
            f"cluster.component_placement has no entry for {component!r} (keys: {list(placement)})"
        )
    if len(keys) > 1:
        raise PlacementError(
            f"cluster.component_placement names {component!r} in {len(keys)} keys "
            f"({', '.join(map(repr, keys))}); keep one"
        )
    key = keys[0]
    return parse_placement(placement[key], num_devices, key=f"cluster.component_placement.{key}")


def plan_env_workers(
    placement: Mapping[str, Any], total_num_envs: int, num_devices: int | None = None
) -> list[EnvWorker]:
    """One :class:`EnvWorker` per env placement id, ``total_num_envs`` split evenly."""
    gpus = component_ids(placement, "env", num_devices)
    if total_num_envs <= 0:
        raise PlacementError(
            f"env.eval.total_num_envs must be positive. Got {total_num_envs} instead."
        )
    if total_num_envs % len(gpus):
        raise PlacementError(
            f"env.eval.total_num_envs={total_num_envs} does not divide evenly over "
            f"{len(gpus)} env workers (placement {gpus}); use a multiple of {len(gpus)}"
        )
    per_worker = total_num_envs // len(gpus)
    return [
        EnvWorker(rank=r, gpu=g, num_envs=per_worker, first_global_env=r * per_worker)
        for r, g in enumerate(gpus)
    ]
