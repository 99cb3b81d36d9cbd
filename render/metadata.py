"""Per-row metadata for rendering, with what is left when some of it is missing or damaged.

Frames do not depend on the metadata arrays (``step``, ``episode``, ``reward``,
``terminated``, ``truncated``, ``info/<key>``), so losing one must not lose a frame: "degrade,
don't drop". :func:`read_metadata` reads what is readable (through
:meth:`collect.store.GroupReader.read_metadata`) and fills the gaps as follows:

* ``reward`` lost: every row's reward is NaN, so returns are unknown (empty in
  ``episodes.csv``, ``-`` on the overlay);
* ``episode`` lost: episodes are derived from what remains: a new one wherever ``step`` does
  not increase (it is 0 at each episode start); without ``step``, after each row flagged
  ``terminated`` or ``truncated``; without any of them, the group is one episode. Derived
  episodes are numbered 0, 1, ...;
* ``step`` lost: the row's index inside its episode (what the writer stores);
* ``terminated`` / ``truncated`` lost: ``None``. An episode whose end the remaining flag does
  not show ends ``unknown`` (see :mod:`render.episodes`), so its outcome is unknown unless a
  success key says success;
* an info key lost: it is left out of :attr:`GroupMetadata.info`; a success key among the
  lost ones makes outcomes unknown (not silently decided by another rule).

:attr:`GroupMetadata.damage` names every lost array; the summary table, ``episodes.csv``,
``summary.json`` and the gallery mark such a video ``partial metadata``.

>>> import shutil, tempfile, numpy as np
>>> from collect import FrameWriter, open_store
>>> path = tempfile.mkdtemp() + "/demo.zarr"
>>> with FrameWriter(path, num_envs=1, fps=10) as writer:
...     for t in range(5):
...         writer.append(np.zeros((1, 8, 8, 3), np.uint8), reward=1.0, truncated=t == 1)
>>> shutil.rmtree(path + "/rank0_gpu0_env0/episode")
>>> meta = read_metadata(open_store(path).group("rank0_gpu0_env0"))
>>> meta.episode.tolist(), meta.partial_text(), meta.derived
([0, 0, 1, 1, 1], 'episode missing', {'episode': 'from step'})
"""

from __future__ import annotations

import weakref
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from collect.store import SCALARS, GroupReader

__all__ = ["GroupMetadata", "as_metadata", "partial_text", "read_metadata"]

INFO = "info/"
_cache: weakref.WeakKeyDictionary[GroupReader, GroupMetadata] = weakref.WeakKeyDictionary()


@dataclass(frozen=True, eq=False)
class GroupMetadata:
    """Every per-row value rendering needs, for all committed rows of one group.

    ``terminated`` / ``truncated`` are None when lost; ``info`` holds the readable info keys;
    ``damage``: array path -> ``(kind, message)`` for each lost array (``kind``: ``missing``,
    ``metadata unreadable``, ``too short``, ``unreadable``); ``derived``: array -> what its
    values were derived from, for the ones filled in.
    """

    name: str
    rows: int
    episode: np.ndarray
    step: np.ndarray
    reward: np.ndarray
    terminated: np.ndarray | None
    truncated: np.ndarray | None
    info: Mapping[str, np.ndarray] = field(default_factory=dict)
    damage: Mapping[str, tuple[str, str]] = field(default_factory=dict)
    derived: Mapping[str, str] = field(default_factory=dict)

    @property
    def info_keys(self) -> list[str]:
        """The readable info keys, sorted."""
        return sorted(self.info)

    @property
    def lost_info_keys(self) -> list[str]:
        """Info keys whose array is missing or damaged."""
        return sorted(p.removeprefix(INFO) for p in self.damage if p.startswith(INFO))

    @property
    def partial(self) -> bool:
        """Whether some metadata array is missing or damaged."""
        return bool(self.damage)

    @property
    def partial_metadata(self) -> dict[str, str]:
        """``{array path: kind}`` of the lost arrays (``{"reward": "missing"}``)."""
        return {path: kind for path, (kind, _) in self.damage.items()}

    @property
    def problems(self) -> list[str]:
        """The full message of each lost array (names group, array and what is wrong)."""
        return [message for _, message in self.damage.values()]

    def partial_text(self) -> str:
        """``"reward missing, info/success unreadable"``; ``""`` when nothing is lost."""
        return partial_text(self.partial_metadata)

    def scalar(self, key: str) -> np.ndarray:
        """A standard scalar (flags: False where lost) or an info key's values (NaN where
        lost); ``KeyError`` for an info key the group never had."""
        if key in SCALARS:
            value = getattr(self, key)
            return np.zeros(self.rows, bool) if value is None else value
        if key in self.info:
            return self.info[key]
        if key in self.lost_info_keys:
            return np.full(self.rows, np.nan)
        raise KeyError(f"group {self.name!r} has no info key {key!r}")

    def episodes(self) -> list[tuple[int, int, int]]:
        """``(episode, start_row, stop_row)`` of each episode, as
        :meth:`collect.store.GroupReader.episodes` gives them (from derived numbers if lost)."""
        if not self.rows:
            return []
        cuts = np.flatnonzero(np.diff(self.episode)) + 1
        starts = [0, *cuts.tolist()]
        stops = [*cuts.tolist(), self.rows]
        return [(int(self.episode[a]), a, b) for a, b in zip(starts, stops, strict=True)]


def partial_text(partial: Mapping[str, str]) -> str:
    """``{"reward": "missing"}`` as ``"reward missing"``, comma-separated."""
    return ", ".join(f"{path} {kind}" for path, kind in partial.items())


def as_metadata(group: GroupReader | GroupMetadata) -> GroupMetadata:
    """``group``'s metadata: itself when already read, else :func:`read_metadata` (read once
    per reader)."""
    if isinstance(group, GroupMetadata):
        return group
    if group not in _cache:
        _cache[group] = read_metadata(group)
    return _cache[group]


def read_metadata(group: GroupReader) -> GroupMetadata:
    """The group's metadata, lost arrays filled in as the module docstring says; never raises
    for a lost metadata array."""
    raw = group.read_metadata()
    values, rows = raw.values, raw.rows
    terminated = _flag(values.get("terminated"))
    truncated = _flag(values.get("truncated"))
    derived: dict[str, str] = {}
    episode = values.get("episode")
    if episode is None:
        found = _derive_episodes(rows, values.get("step"), terminated, truncated)
        episode, derived["episode"] = found
    step = values.get("step")
    if step is None:
        step, derived["step"] = _steps_in_episode(episode), "row in episode"
    reward = values.get("reward")
    if reward is None:
        reward = np.full(rows, np.nan, np.float32)
    info = {p.removeprefix(INFO): v for p, v in values.items() if p.startswith(INFO)}
    return GroupMetadata(
        name=group.name,
        rows=rows,
        episode=np.asarray(episode),
        step=np.asarray(step),
        reward=np.asarray(reward),
        terminated=terminated,
        truncated=truncated,
        info=info,
        damage=dict(raw.damage),
        derived=derived,
    )


def _flag(values: np.ndarray | None) -> np.ndarray | None:
    return None if values is None else np.asarray(values).astype(bool)


def _derive_episodes(
    rows: int,
    step: np.ndarray | None,
    terminated: np.ndarray | None,
    truncated: np.ndarray | None,
) -> tuple[np.ndarray, str]:
    """Episode numbers 0, 1, ... from what is left, and what they came from."""
    starts = np.zeros(rows, bool)
    if step is not None:
        starts[1:] = np.diff(np.asarray(step, np.int64)) <= 0  # step restarts at 0
        source = "from step"
    else:
        flags = [f for f in (terminated, truncated) if f is not None]
        if not flags:
            return np.zeros(rows, np.int32), "one episode (no step, episode or end flags)"
        ended = np.logical_or.reduce(flags)
        starts[1:] = ended[:-1]  # the row after an end starts the next episode
        source = "from the end flags"
    return np.cumsum(starts, dtype=np.int32), source


def _steps_in_episode(episode: np.ndarray) -> np.ndarray:
    """Each row's index inside its episode (a new episode wherever the number changes)."""
    rows = len(episode)
    if not rows:
        return np.zeros(0, np.int64)
    start = np.zeros(rows, bool)
    start[0] = True
    start[1:] = np.diff(episode) != 0
    first = np.maximum.accumulate(np.where(start, np.arange(rows), 0))
    return (np.arange(rows) - first).astype(np.int64)
