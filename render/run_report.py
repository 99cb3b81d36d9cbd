"""The run report: ``OUT/episodes.csv`` and ``OUT/summary.json``, written by every render.

* ``episodes.csv``: one row per episode of every selected group, with the columns
  :data:`CSV_COLUMNS`: ``group, rank, gpu, env`` (the env's index in its worker),
  ``episode`` (the stored episode number), ``first_row`` and ``last_row`` (rows of the group,
  both inclusive), ``steps`` (rows of the episode: ``last_row - first_row + 1``, the frames of
  its video), ``return`` (sum of its rewards; empty when none were stored), ``outcome``
  (``success``, ``failure`` or ``unknown``; see :mod:`render.episodes`), ``terminated`` and
  ``truncated`` (how its last row ended; ``true``/``false``) and ``partial`` (``true`` when
  the recording stopped before the episode ended): all three empty when the end flags are
  lost; ``partial_metadata`` (the group's metadata arrays that are missing or damaged, as
  ``reward missing, info/success unreadable``; empty when complete: see
  :mod:`render.metadata`).
* ``summary.json``: the store (path, creation time), the render's ``date`` (UTC), the run
  ``config`` recorded in the store root and its ``config_digest`` (:func:`config_digest`: two
  runs with the same digest ran the same config), then per env (``envs``, by group name) and for the
  whole run (``overall``): episode counts (``episodes``, ``finished``, ``partial``,
  ``end_unknown``: end flags lost),
  ``outcomes`` (a count per outcome), ``success_rate`` (successes over the episodes whose
  outcome is known; ``null`` when none is known), ``mean_return``, and per env the
  ``outcome_rule`` used. A group whose episodes cannot be read is listed with its ``error``.
  Per env, ``partial_metadata`` (``{array path: kind}``, ``{}`` when complete) and, when not
  empty, ``metadata_problems`` (the full messages) and ``derived`` (arrays filled in from
  others, e.g. ``{"episode": "from step"}``); ``overall.partial_metadata_envs`` counts the
  envs with partial metadata. Their frames are all rendered; their numbers are what is left.

Both files are replaced atomically (:func:`render.files.write_text_atomically`), so a reader
never sees half of one.
"""

from __future__ import annotations

import csv
import datetime as _dt
import hashlib
import io
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from collect.store import FrameStore, parse_group_name

from .episodes import Episode, outcome_counts, read_episodes
from .files import write_text_atomically
from .metadata import as_metadata, partial_text
from .options import RenderOptions
from .plan import group_outcome_rule

__all__ = [
    "CSV_COLUMNS",
    "EPISODES_CSV",
    "SUMMARY_JSON",
    "GroupEpisodes",
    "config_digest",
    "episode_rows",
    "read_run",
    "summarize",
    "write_run_report",
]

log = logging.getLogger(__name__)

EPISODES_CSV = "episodes.csv"
SUMMARY_JSON = "summary.json"
CSV_COLUMNS = (
    "group", "rank", "gpu", "env", "episode", "first_row", "last_row", "steps", "return",
    "outcome", "terminated", "truncated", "partial", "partial_metadata",
)  # fmt: skip


@dataclass(frozen=True)
class GroupEpisodes:
    """The episodes of one group and the rule that gave their outcomes, or why unreadable."""

    group: str
    episodes: tuple[Episode, ...] = ()
    rule: str = ""
    error: str | None = None
    partial_metadata: dict[str, str] = field(default_factory=dict)  # array path -> kind
    metadata_problems: tuple[str, ...] = ()
    derived: dict[str, str] = field(default_factory=dict)

    @property
    def place(self) -> dict[str, int]:
        """``{"rank": r, "gpu": g, "env": e}`` from the group's name."""
        rank, gpu, env = parse_group_name(self.group)
        return {"rank": rank, "gpu": gpu, "env": env}


def read_run(store: FrameStore, options: RenderOptions) -> list[GroupEpisodes]:
    """The episodes of every group ``options.groups`` selects, with the render's outcome rule.

    A group whose metadata cannot be read (or lacks ``--success-key``) gets an ``error``
    instead of episodes; the others are unaffected. A group that lost some metadata array
    gets the episodes of what is left and says which arrays (:mod:`render.metadata`).
    """
    groups = []
    for name in store.group_names(options.groups):
        try:
            meta = as_metadata(store.group(name))
            rule = group_outcome_rule(store, meta, options)
            episodes = read_episodes(meta, rule)
            groups.append(
                GroupEpisodes(
                    name,
                    episodes,
                    rule.source,
                    partial_metadata=meta.partial_metadata,
                    metadata_problems=tuple(meta.problems),
                    derived=dict(meta.derived),
                )
            )
        except (ValueError, KeyError, OSError) as e:  # damaged group; success key not stored
            log.warning("run report: group %s has no episodes: %s", name, e)
            groups.append(GroupEpisodes(name, error=str(e)))
    return groups


def episode_rows(groups: Sequence[GroupEpisodes]) -> list[dict[str, Any]]:
    """One ``episodes.csv`` row per episode (values as written, :data:`CSV_COLUMNS` keys)."""
    rows = []
    for g in groups:
        for e in g.episodes:
            rows.append(
                {
                    "group": g.group,
                    **g.place,
                    "episode": e.episode,
                    "first_row": e.start,
                    "last_row": e.stop - 1,
                    "steps": e.frames,
                    "return": "" if e.reward is None else repr(e.reward),
                    "outcome": e.outcome,
                    **_end_flags(e),
                    "partial_metadata": partial_text(g.partial_metadata),
                }
            )
    return rows


def _flag(value: bool) -> str:
    return "true" if value else "false"


def _end_flags(episode: Episode) -> dict[str, str]:
    """``terminated``, ``truncated``, ``partial`` as written: empty when the end is unknown."""
    if episode.end == "unknown":  # the end flags are lost
        return dict.fromkeys(("terminated", "truncated", "partial"), "")
    return {
        "terminated": _flag(episode.end == "terminated"),
        "truncated": _flag(episode.end == "truncated"),
        "partial": _flag(episode.partial),
    }


def _counts(episodes: Sequence[Episode]) -> dict[str, Any]:
    """Episode counts, outcome counts, success rate over known outcomes, mean return."""
    outcomes = outcome_counts(episodes)
    known = outcomes["success"] + outcomes["failure"]
    rewards = [e.reward for e in episodes if e.reward is not None]
    partial = sum(e.partial for e in episodes)
    unknown = sum(e.end == "unknown" for e in episodes)  # end flags lost
    return {
        "episodes": len(episodes),
        "finished": len(episodes) - partial - unknown,
        "partial": partial,
        "end_unknown": unknown,
        "outcomes": outcomes,
        "success_rate": outcomes["success"] / known if known else None,
        "mean_return": float(np.mean(rewards)) if rewards else None,
    }


def summarize(
    store: FrameStore, groups: Sequence[GroupEpisodes], *, date: str | None = None
) -> dict[str, Any]:
    """The content of ``summary.json`` (``date`` defaults to now, UTC)."""
    envs: dict[str, Any] = {}
    for g in groups:
        entry: dict[str, Any] = {**g.place}
        if g.error is not None:
            entry["error"] = g.error
        else:
            entry.update(outcome_rule=g.rule, **_counts(g.episodes))
            entry.update(_metadata_entry(g))
        envs[g.group] = entry
    readable = [g for g in groups if g.error is None]
    overall = {
        "envs": len(readable),
        "unreadable_envs": len(groups) - len(readable),
        "partial_metadata_envs": sum(bool(g.partial_metadata) for g in readable),
        **_counts([e for g in readable for e in g.episodes]),
    }
    now = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    return {
        "store": store.location.url,
        "store_created": store.attrs.get("created"),
        "date": date or now,
        "config": store.attrs.get("config", {}),
        "config_digest": config_digest(store.attrs.get("config")),
        "overall": overall,
        "envs": envs,
    }


def _metadata_entry(group: GroupEpisodes) -> dict[str, Any]:
    """``partial_metadata`` always; ``metadata_problems`` and ``derived`` when there are any."""
    entry: dict[str, Any] = {"partial_metadata": dict(group.partial_metadata)}
    if group.metadata_problems:
        entry["metadata_problems"] = list(group.metadata_problems)
    if group.derived:
        entry["derived"] = dict(group.derived)
    return entry


def config_digest(config: Any) -> str | None:
    """The first 12 hex digits of the SHA-256 of the run config as canonical JSON (keys
    sorted, no spaces): short enough to read, enough to tell two configs apart. ``None``
    when the store recorded no config."""
    if not config:
        return None
    text = json.dumps(config, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def write_run_report(out_dir: Path, store: FrameStore, options: RenderOptions) -> tuple[Path, Path]:
    """Write ``episodes.csv`` and ``summary.json`` into ``out_dir``; their paths."""
    groups = read_run(store, options)
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(episode_rows(groups))
    episodes, summary = out_dir / EPISODES_CSV, out_dir / SUMMARY_JSON
    write_text_atomically(episodes, text.getvalue())
    write_text_atomically(summary, json.dumps(summarize(store, groups), indent=1) + "\n")
    log.info("run report: %s, %s", episodes, summary)
    return episodes, summary
