"""Episodes of a group: where each one starts and ends, its return, and its outcome.

The writer stores, per row, the in-episode ``step``, the ``episode`` number, ``reward``,
``terminated``, ``truncated`` and ``info/<key>``; a terminated or truncated row is the last
row of its episode. From these, :func:`read_episodes` makes one :class:`Episode` per episode.
Its **outcome** is ``success``, ``failure`` or ``unknown``, by the group's
:class:`OutcomeRule` (:func:`outcome_rule`), in this order:

1. a **success info key**: the one named by ``--success-key``, else the first stored of
   :data:`SUCCESS_KEYS`. An episode succeeded if the key was true on any of its rows (from
   that row on, its outcome is known); a finished episode where it never was, failed;
2. else the **env's declared rule** (:data:`collect.outcomes.END_OUTCOMES`, found by the
   ``env.env_type`` of the run config in the store root): the built-in tabletop env declares
   terminated = success, truncated = failure. The outcome is known on the episode's last row;
3. else ``unknown``. Termination alone says nothing: for most Gymnasium tasks it is a failure.

The **last episode is partial** when its last row is neither terminated nor truncated: the
recording stopped (or crashed) in the middle of it. Its outcome is unknown unless the success
key was already true.

With **partial metadata** (:mod:`render.metadata`: a lost array is filled in or left out,
never a reason to drop the group's frames) an episode whose end flags are lost ends
``unknown`` (neither ``terminated``, ``truncated`` nor ``partial`` can be told) and its
outcome is unknown unless its success key was true; a lost success key makes every outcome
of the group unknown rather than falling back to the env's rule; a lost reward makes returns
``None``.

The overlay, ``--split-episodes``, the summary table, the gallery and the run report
(``episodes.csv``, ``summary.json``) all read episodes from here, so they agree on what an
episode and an outcome are.

>>> import tempfile, numpy as np
>>> from collect import FrameWriter, open_store
>>> path = tempfile.mkdtemp() + "/demo.zarr"
>>> with FrameWriter(path, num_envs=1, fps=10) as writer:
...     for t in range(7):
...         writer.append(np.zeros((1, 8, 8, 3), np.uint8), reward=1.0, truncated=t == 2)
>>> group = open_store(path).group("rank0_gpu0_env0")
>>> [(e.episode, e.start, e.stop, e.reward, e.end, e.outcome) for e in read_episodes(group)]
[(0, 0, 3, 3.0, 'truncated', 'unknown'), (1, 3, 7, 4.0, 'partial', 'unknown')]
>>> rule = outcome_rule(group, env_type="mujoco_tabletop")
>>> rule.source, [e.outcome for e in read_episodes(group, rule)]
('env rule of mujoco_tabletop', ['failure', 'unknown'])
>>> describe(read_episodes(group, rule))
{'episodes': '2, last partial', 'return': '3.50', 'success': '0/1, 1 unknown'}
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from collect.outcomes import Outcome, end_outcomes, env_type_of
from collect.store import FrameStore, GroupReader

from .metadata import GroupMetadata, as_metadata

__all__ = [
    "SUCCESS_KEYS",
    "Episode",
    "Outcome",
    "OutcomeRule",
    "counts_text",
    "describe",
    "outcome_counts",
    "outcome_rule",
    "read_episodes",
    "store_env_type",
    "success_key",
    "success_text",
    "verdict",
]

# info keys that say whether an episode succeeded, in order of preference
SUCCESS_KEYS = ("success", "is_success", "episode.success_once")
OUTCOMES: tuple[Outcome, ...] = ("success", "failure", "unknown")

End = Literal["terminated", "truncated", "partial", "unknown"]  # unknown: end flags lost


@dataclass(frozen=True)
class OutcomeRule:
    """How the episodes of one group get their outcome (see the module docstring).

    ``key``: the success info key, if the group has one; ``ends``: without a key, the outcome
    each way of ending means (``{"terminated": "success"}``), as the env declares it;
    ``source``: where the rule comes from, in words (for reports).
    """

    key: str | None = None
    ends: Mapping[str, Outcome] = field(default_factory=dict)
    source: str = "none (no success key, no env rule)"


@dataclass(frozen=True)
class Episode:
    """Rows ``start:stop`` of a group: one episode, how it ended, its return and outcome.

    ``reward`` is the sum of the episode's rewards (``None`` when none were stored);
    ``known_from`` is the first row whose picture may show the outcome (``None`` when the
    episode has none to show: it was cut off before it was known).
    """

    episode: int
    start: int
    stop: int
    reward: float | None
    end: End
    outcome: Outcome
    known_from: int | None = None

    @property
    def frames(self) -> int:
        return self.stop - self.start

    @property
    def partial(self) -> bool:
        return self.end == "partial"

    @property
    def success(self) -> bool | None:
        """True / False for a known outcome, None for ``unknown``."""
        return None if self.outcome == "unknown" else self.outcome == "success"


def success_key(group: GroupReader | GroupMetadata) -> str | None:
    """The info key that tells success in this group (see :data:`SUCCESS_KEYS`), if any,
    readable or lost."""
    meta = as_metadata(group)
    stored = {*meta.info_keys, *meta.lost_info_keys}
    return next((k for k in SUCCESS_KEYS if k in stored), None)


def store_env_type(store: FrameStore) -> str | None:
    """The env type recorded in the store's run config (``env.env_type``), if any."""
    return env_type_of(store.attrs.get("config"))


def outcome_rule(
    group: GroupReader | GroupMetadata, *, env_type: str | None = None, key: str | None = None
) -> OutcomeRule:
    """The rule for ``group``: the success info ``key`` (``--success-key``), else a stored
    one of :data:`SUCCESS_KEYS`, else the rule ``env_type`` declares, else none. A success
    key whose array is lost gives no rule (outcomes unknown), not the env's.

    ``ValueError`` naming the group and its keys when ``key`` is given and not stored.
    """
    meta = as_metadata(group)
    if key is not None and key not in {*meta.info_keys, *meta.lost_info_keys}:
        raise ValueError(
            f"group {meta.name!r} has no info key {key!r} (--success-key); "
            f"it has {', '.join(meta.info_keys) or 'none'}"
        )
    key = key or success_key(meta)
    if key is not None and key in meta.lost_info_keys:
        return OutcomeRule(source=f"none (info key {key!r} is lost: outcomes unknown)")
    if key is not None:
        return OutcomeRule(key=key, source=f"info key {key!r}")
    ends = end_outcomes(env_type)
    if ends:
        return OutcomeRule(ends=ends, source=f"env rule of {env_type}")
    return OutcomeRule()


def read_episodes(
    group: GroupReader | GroupMetadata, rule: OutcomeRule | None = None
) -> tuple[Episode, ...]:
    """Every episode in the group's committed rows, in order, with outcomes by ``rule``
    (default: the group's success key, if any; no env rule). Lost metadata arrays are
    filled in (:mod:`render.metadata`), never a reason to raise."""
    meta = as_metadata(group)
    rule = outcome_rule(meta) if rule is None else rule
    reward = meta.reward
    ended = {"terminated": meta.terminated, "truncated": meta.truncated}
    succeeded = _truthy(meta.scalar(rule.key)) if rule.key else None
    episodes = []
    for number, start, stop in meta.episodes():
        end = _end(ended, stop - 1)
        rewards = reward[start:stop]
        total = None if np.isnan(rewards).all() else float(np.nansum(rewards, dtype=np.float64))
        outcome, known = _outcome(rule, end, succeeded, start, stop)
        episodes.append(Episode(number, start, stop, total, end, outcome, known))
    return tuple(episodes)


def _end(ended: dict[str, np.ndarray | None], last: int) -> End:
    """How the episode whose last row is ``last`` ended; ``unknown`` when a lost flag (None)
    could have said otherwise."""
    for name in ("terminated", "truncated"):
        flags = ended[name]
        if flags is not None and flags[last]:
            return name  # type: ignore[return-value]
    return "unknown" if any(f is None for f in ended.values()) else "partial"


def _truthy(values: np.ndarray) -> np.ndarray:
    """Info values as booleans: non-zero and not NaN."""
    values = np.asarray(values)
    if values.dtype.kind == "f":
        return np.nan_to_num(values, nan=0.0) != 0
    return values != 0


def _outcome(
    rule: OutcomeRule, end: End, succeeded: np.ndarray | None, start: int, stop: int
) -> tuple[Outcome, int | None]:
    """``(outcome, first row it is known on)`` of the episode in rows ``start:stop``."""
    if succeeded is not None:
        hits = np.flatnonzero(succeeded[start:stop])
        if len(hits):
            return "success", start + int(hits[0])
        return ("unknown", None) if end in ("partial", "unknown") else ("failure", stop - 1)
    if end in ("partial", "unknown"):
        return "unknown", None
    return rule.ends.get(end, "unknown"), stop - 1  # "unknown" is known at the end, too


def outcome_counts(episodes: Sequence[Episode]) -> dict[Outcome, int]:
    """``{"success": k, "failure": m, "unknown": u}`` over ``episodes``."""
    return {o: sum(e.outcome == o for e in episodes) for o in OUTCOMES}


def verdict(episodes: Sequence[Episode]) -> Literal["success", "failure", "mixed", "unknown"]:
    """One word for a video's episodes: all known ones succeeded, none did, some did, or
    none is known (what the gallery filters on)."""
    counts = outcome_counts(episodes)
    if not counts["success"] + counts["failure"]:
        return "unknown"
    if not counts["failure"]:
        return "success"
    return "mixed" if counts["success"] else "failure"


def describe(episodes: Sequence[Episode]) -> dict[str, str]:
    """Texts for tables: episode count (and a partial last one), mean return, successes.

    ``success`` is ``"k/n"``: k successful out of the n episodes whose outcome is known,
    then how many are unknown (``"2/3, 1 unknown"``); ``"unknown"`` when none is known.
    """
    if not episodes:
        return {"episodes": "", "return": "", "success": ""}
    count = f"{len(episodes)}"
    if episodes[-1].partial:
        count += " (partial)" if len(episodes) == 1 else ", last partial"
    rewards = [e.reward for e in episodes if e.reward is not None]
    return {
        "episodes": count,
        "return": f"{np.mean(rewards):.2f}" if rewards else "-",
        "success": success_text(episodes),
    }


def success_text(episodes: Sequence[Episode]) -> str:
    """``"k/n"`` over known outcomes, ``", u unknown"`` added; ``"unknown"`` if none known
    (``""`` for no episode)."""
    return counts_text(outcome_counts(episodes)) if episodes else ""


def counts_text(counts: Mapping[str, int], *, percent: bool = False) -> str:
    """``"k/n"`` (``percent``: ``"k/n (p%)"``) successes over known outcomes from
    ``{outcome: count}``, ``", u unknown"`` added; ``"unknown"`` if none is known.

    >>> counts_text({"success": 1, "failure": 2, "unknown": 2}, percent=True)
    '1/3 (33%), 2 unknown'
    """
    success, failure, unknown = (counts.get(k, 0) for k in OUTCOMES)
    known = success + failure
    if not known:
        return "unknown"
    text = f"{success}/{known}" + (f" ({100 * success / known:.0f}%)" if percent else "")
    return text + (f", {unknown} unknown" if unknown else "")
