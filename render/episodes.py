"""Episodes of a group: where each one starts and ends, its return, and whether it succeeded.

The writer stores, per row, the in-episode ``step``, the ``episode`` number, ``reward``,
``terminated``, ``truncated`` and ``info/<key>``; a terminated or truncated row is the last
row of its episode. From these, :func:`read_episodes` makes one :class:`Episode` per episode:

* **success** comes from the info key ``success`` (or ``episode.success_once``) when the group
  stores one: an episode succeeded if the key was true on any of its rows. Without such a
  key, a terminated episode counts as a success and a truncated one (time limit) as a failure;
* the **last episode is partial** when its last row is neither terminated nor truncated: the
  recording stopped (or crashed) in the middle of it. Its outcome is unknown unless the
  success key was already true.

The overlay, ``--split-episodes``, the summary table and the gallery all read episodes from
here, so they agree on what an episode and a success are.

>>> import tempfile, numpy as np
>>> from collect import FrameWriter, open_store
>>> path = tempfile.mkdtemp() + "/demo.zarr"
>>> with FrameWriter(path, num_envs=1, fps=10) as writer:
...     for t in range(7):
...         writer.append(np.zeros((1, 8, 8, 3), np.uint8), reward=1.0, truncated=t == 2)
>>> [(e.episode, e.start, e.stop, e.reward, e.end, e.success) for e in
...  read_episodes(open_store(path).group("rank0_gpu0_env0"))]
[(0, 0, 3, 3.0, 'truncated', False), (1, 3, 7, 4.0, 'partial', None)]
>>> describe(read_episodes(open_store(path).group("rank0_gpu0_env0")))
{'episodes': '2, last partial', 'return': '3.50', 'success': '0/1'}
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from collect.store import GroupReader

__all__ = ["SUCCESS_KEYS", "Episode", "describe", "read_episodes", "success_key", "verdict"]

# info keys that say whether an episode succeeded, in order of preference
SUCCESS_KEYS = ("success", "episode.success_once")

End = Literal["terminated", "truncated", "partial"]


@dataclass(frozen=True)
class Episode:
    """Rows ``start:stop`` of a group: one episode, how it ended, its return and success.

    ``reward`` is the sum of the episode's rewards (``None`` when none were stored);
    ``success`` is ``None`` when it cannot be told (a partial episode without a success key
    that was true).
    """

    episode: int
    start: int
    stop: int
    reward: float | None
    end: End
    success: bool | None

    @property
    def frames(self) -> int:
        return self.stop - self.start

    @property
    def partial(self) -> bool:
        return self.end == "partial"


def success_key(group: GroupReader) -> str | None:
    """The info key that tells success in this group (see :data:`SUCCESS_KEYS`), if any."""
    return next((k for k in SUCCESS_KEYS if k in group.info_keys), None)


def read_episodes(group: GroupReader) -> tuple[Episode, ...]:
    """Every episode in the group's committed rows, in order."""
    reward = group.scalar("reward")
    ended = {name: group.scalar(name).astype(bool) for name in ("terminated", "truncated")}
    key = success_key(group)
    succeeded = _truthy(group.scalar(key)) if key else None
    episodes = []
    for number, start, stop in group.episodes():
        end = _end(ended, stop - 1)
        rewards = reward[start:stop]
        total = None if np.isnan(rewards).all() else float(np.nansum(rewards, dtype=np.float64))
        episodes.append(
            Episode(number, start, stop, total, end, _success(end, succeeded, start, stop))
        )
    return tuple(episodes)


def _end(ended: dict[str, np.ndarray], last: int) -> End:
    if ended["terminated"][last]:
        return "terminated"
    if ended["truncated"][last]:
        return "truncated"
    return "partial"


def _truthy(values: np.ndarray) -> np.ndarray:
    """Info values as booleans: non-zero and not NaN."""
    values = np.asarray(values)
    if values.dtype.kind == "f":
        return np.nan_to_num(values, nan=0.0) != 0
    return values != 0


def _success(end: End, succeeded: np.ndarray | None, start: int, stop: int) -> bool | None:
    if succeeded is None:  # no success key: reaching the goal terminates, a time limit truncates
        return None if end == "partial" else end == "terminated"
    if succeeded[start:stop].any():
        return True
    return None if end == "partial" else False


def verdict(episodes: Sequence[Episode]) -> Literal["success", "failure", "mixed", "unknown"]:
    """One word for a video's episodes: all decided ones succeeded, none did, some did, or
    none is decided (what the gallery filters on)."""
    decided = [e.success for e in episodes if e.success is not None]
    if not decided:
        return "unknown"
    if all(decided):
        return "success"
    return "mixed" if any(decided) else "failure"


def describe(episodes: Sequence[Episode]) -> dict[str, str]:
    """Texts for tables: episode count (and a partial last one), mean return, successes.

    ``success`` is ``"k/n"``: k successful out of the n episodes whose outcome is known.
    """
    if not episodes:
        return {"episodes": "", "return": "", "success": ""}
    count = f"{len(episodes)}"
    if episodes[-1].partial:
        count += " (partial)" if len(episodes) == 1 else ", last partial"
    rewards = [e.reward for e in episodes if e.reward is not None]
    decided = [e.success for e in episodes if e.success is not None]
    return {
        "episodes": count,
        "return": f"{np.mean(rewards):.2f}" if rewards else "-",
        "success": f"{sum(decided)}/{len(decided)}" if decided else "?",
    }
