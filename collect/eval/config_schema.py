"""What evalframes reads from a config, with the type of each key, and the checks made on it.

RLinf files carry far more than an eval runner reads (actor, rollout model, algorithm, hydra,
simulator settings). Only the keys in :data:`READ_KEYS` are evalframes': they are resolved,
type-checked and, in the sections of :data:`CLOSED` (``env.eval.video_cfg`` and its
``render``), no other key is allowed. Everything else is left as written.

>>> check_value("env.eval.total_num_envs", 0)
Traceback (most recent call last):
...
collect.eval.config_schema.SchemaError: env.eval.total_num_envs must be a positive integer. Got 0 instead.
>>> closest_key("env.eval.video_cfg.save_frame", ["env.eval.video_cfg.save_frames", "env.eval"])
'env.eval.video_cfg.save_frames'
"""  # noqa: E501

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "CLOSED",
    "NEAR_MISS_CUTOFF",
    "OPEN",
    "READ_KEYS",
    "SchemaError",
    "check_value",
    "closest_key",
    "known_keys",
    "render_option_names",
]

NEAR_MISS_CUTOFF = 0.85  # a foreign key this close to an evalframes key is taken as a typo


class SchemaError(ValueError):
    """A key evalframes reads holds a value of the wrong kind; the message names the key."""


@dataclass(frozen=True)
class Kind:
    """What a key may hold: a predicate, and its description for the error message."""

    test: Callable[[Any], bool]
    text: str


def _int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _strings(v: Any) -> bool:
    return isinstance(v, str) or (
        isinstance(v, (list, tuple)) and all(isinstance(x, str) for x in v)
    )


def _size(v: Any) -> bool:
    if _int(v):
        return v > 0
    if isinstance(v, (list, tuple)):
        return len(v) == 2 and all(_int(x) and x > 0 for x in v)
    return isinstance(v, Mapping)


def _optional(kind: Kind) -> Kind:
    return Kind(lambda v: v is None or kind.test(v), f"{kind.text} or null")


POSITIVE_INT = Kind(lambda v: _int(v) and v > 0, "a positive integer")
INT = Kind(_int, "an integer")
POSITIVE = Kind(lambda v: _number(v) and v > 0, "a positive number")
NON_NEGATIVE = Kind(lambda v: _number(v) and v >= 0, "a number >= 0")
BOOL = Kind(lambda v: isinstance(v, bool), "true or false")
STR = Kind(lambda v: isinstance(v, str) and bool(v), "a non-empty string")
MAPPING = Kind(lambda v: isinstance(v, Mapping), "a mapping")
STRINGS = Kind(_strings, "a list of info keys")
IMAGE_SIZE = Kind(_size, "a positive int, [height, width] or {camera: size}")
CPUS = Kind(lambda v: _int(v) or isinstance(v, str), "CPU ids: 1, '2-3', '0,2'")
CODEC = Kind(lambda v: isinstance(v, (str, Mapping)), "a codec name or {id: name, ...}")

#: Every key the runner reads, with its kind. Sections marked in CLOSED allow no other key.
READ_KEYS: dict[str, Kind] = {
    "cluster.num_nodes": POSITIVE_INT,
    "cluster.num_gpus_per_node": _optional(POSITIVE_INT),
    "cluster.component_placement": MAPPING,
    "runner.output_dir": STR,
    "runner.seed": INT,
    "env.env_type": _optional(STR),
    "env.policy": STR,
    "env.image_size": _optional(IMAGE_SIZE),
    "env.options": MAPPING,
    "env.eval.env_type": STR,
    "env.eval.total_num_envs": POSITIVE_INT,
    "env.eval.max_episode_steps": POSITIVE_INT,
    "env.eval.rollout_epoch": POSITIVE_INT,
    "env.eval.video_cfg": MAPPING,
    "env.eval.video_cfg.save_frames": BOOL,
    "env.eval.video_cfg.save_video": BOOL,
    "env.eval.video_cfg.fps": POSITIVE,
    "env.eval.video_cfg.video_base_dir": STR,
    "env.eval.video_cfg.frames_path": STR,
    "env.eval.video_cfg.video_prefix": STR,
    "env.eval.video_cfg.info_on_video": BOOL,
    "env.eval.video_cfg.extra_info_on_video": _optional(STRINGS),
    "env.eval.video_cfg.codec": CODEC,
    "env.eval.video_cfg.chunk_frames": _optional(POSITIVE_INT),
    "env.eval.video_cfg.flush_interval": POSITIVE,
    "env.eval.video_cfg.max_buffer_mb": POSITIVE,
    "env.eval.video_cfg.writer_priority": STR,
    "env.eval.video_cfg.writer_cpus": _optional(CPUS),
    "env.eval.video_cfg.defer_mb": NON_NEGATIVE,
    "env.eval.video_cfg.overwrite": BOOL,
    "env.eval.video_cfg.use_high_res_cameras": _optional(BOOL),  # RLinf's behavior env reads it
    "env.eval.video_cfg.render": MAPPING,  # RenderOptions' fields, checked by RenderOptions
}

#: Sections evalframes owns whole: a key in them that is not in READ_KEYS is an error.
CLOSED = ("env.eval.video_cfg", "env.eval.video_cfg.render")
#: Sections shared with RLinf: foreign keys are fine, unless they look like a typo of ours.
OPEN = ("cluster", "runner", "env", "env.eval")
#: RenderOptions fields the runner sets itself (from video_cfg and the Dask client).
RENDER_SET_BY_RUNNER = ("fps", "scheduler")


def render_option_names() -> list[str]:
    """The keys allowed under ``env.eval.video_cfg.render``: RenderOptions' fields."""
    from render.options import RenderOptions

    names = (f.name for f in dataclasses.fields(RenderOptions))
    return sorted(n for n in names if n not in RENDER_SET_BY_RUNNER)


def known_keys() -> list[str]:
    """Every key evalframes knows, render options included (overrides may set these)."""
    render = [f"env.eval.video_cfg.render.{name}" for name in render_option_names()]
    return [*READ_KEYS, *render]


def check_value(key: str, value: Any) -> None:
    """Raise :class:`SchemaError` when ``value`` is not of ``key``'s kind."""
    kind = READ_KEYS.get(key)
    if kind is not None and not kind.test(value):
        raise SchemaError(f"{key} must be {kind.text}. Got {value!r} instead.")


def closest_key(key: str, candidates: Iterable[str], cutoff: float = 0.6) -> str | None:
    """The candidate most like ``key`` (difflib), or None when none is close."""
    matches = difflib.get_close_matches(key, list(candidates), n=1, cutoff=cutoff)
    return matches[0] if matches else None
