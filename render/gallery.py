"""The gallery: ``OUT/index.html``, every video of a render, with the run's results, offline.

With ``--gallery`` a render ends by writing, in the output directory,

* ``posters/<video>.png``: the last frame of each video (where an episode's outcome shows,
  with ``--overlay``), at most :data:`POSTER_WIDTH` wide, taken by ffmpeg from the finished
  file; a poster newer than its video is kept;
* ``index.html``: one self-contained page (inline CSS and a few lines of inline JavaScript;
  no server, no CDN, nothing fetched) that links the videos and posters by relative paths,
  so it works from ``file://`` and keeps working when the folder is copied.

The page opens with the **run summary**, from ``summary.json`` (:mod:`render.run_report`,
written just before, so the page and the file cannot disagree): the overall success rate
(``1/3``: successes over the episodes whose outcome is known; ``unknown`` when none is), envs,
episodes, the render's date and a digest of the run config with its env type. Then a
**legend** of the border colours (:func:`render.episodes.verdict`: green success, red
failure, amber mixed, grey unknown: neutral, not a failure), the mosaic if any, and a card per
video with its name, episodes (a partial last episode is marked), mean return and successes,
and a ``partial metadata`` badge when metadata arrays of its env were lost
(:mod:`render.metadata`).
When an env has more than one video (``--split-episodes``, the ``separate`` layout) the cards
are **grouped under their env**, one section each with the env's own totals.

Cards can be filtered by verdict, partial episodes or partial metadata and sorted by name,
return or success rate; the choice is **kept in the URL**
(``index.html#filter=failure&sort=rate-desc``; a query string works too), so a link or a
reload shows the same view.

The page is the Jinja2 template ``render/templates/gallery.html.j2`` (package data), rendered
with autoescape on: every name and value from the store is escaped by Jinja, none by hand.
Both files are written under temporary names and renamed, like the videos.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2

from collect.outcomes import env_type_of
from collect.store import parse_group_name

from .encode import EncodeError, run_ffmpeg
from .episodes import counts_text, describe, outcome_counts, verdict
from .files import write_text_atomically
from .report import OutputResult
from .run_report import SUMMARY_JSON, config_digest

__all__ = [
    "POSTER_DIR",
    "POSTER_WIDTH",
    "TEMPLATE",
    "Card",
    "Section",
    "render_page",
    "run_overview",
    "write_gallery",
    "write_poster",
]

log = logging.getLogger(__name__)

POSTER_DIR = "posters"
POSTER_WIDTH = 480  # pixels; posters are previews, the video has the full size
POSTER_THREADS = 4  # ffmpeg processes taking posters at once
TEMPLATE = "gallery.html.j2"  # in render/templates/
_HAS_FILE = ("rendered", "partial", "up to date")


@dataclass(frozen=True)
class Card:
    """One video on the page: its link, poster, the values it is filtered and sorted on
    (``verdict``, ``partial``, ``mean_return``, ``rate``: text, empty when unknown) and the
    facts shown under it."""

    group: str
    name: str
    src: str  # relative URL of the video
    poster: str | None
    verdict: str
    partial: bool
    mean_return: str
    rate: str
    facts: tuple[tuple[str, str], ...]
    mosaic: bool = False
    badge: str = ""  # "partial metadata: reward missing"


@dataclass(frozen=True)
class Section:
    """An env's heading (``rank0 gpu0 env0``, its totals) and the cards of its videos."""

    group: str
    label: str
    totals: str
    cards: list[Card] = field(default_factory=list)


def write_gallery(
    out_dir: Path,
    results: Sequence[OutputResult],
    *,
    title: str,
    summary: Mapping[str, Any] | None = None,
) -> Path:
    """Write the posters and ``index.html`` for the videos among ``results``; its path.

    ``summary`` is the content of ``summary.json``; by default it is read from ``out_dir``
    (the page then says when there is none).
    """
    videos = [r for r in results if r.status in _HAS_FILE and r.path.exists()]
    with ThreadPoolExecutor(POSTER_THREADS) as pool:
        posters = list(pool.map(lambda r: _poster_or_none(r.path), videos))
    cards = [_card(r, p) for r, p in zip(videos, posters, strict=True)]
    if summary is None:
        summary = _read_summary(out_dir / SUMMARY_JSON)
    index = out_dir / "index.html"
    write_text_atomically(index, render_page(title, cards, summary))
    return index


def render_page(title: str, cards: Sequence[Card], summary: Mapping[str, Any] | None) -> str:
    """The HTML of the gallery: the template filled with the run summary and the cards."""
    videos = [c for c in cards if not c.mosaic]
    sections = _sections(videos, (summary or {}).get("envs", {}))
    return _template().render(
        title=title,
        overview=run_overview(summary) if summary else None,
        mosaic=[c for c in cards if c.mosaic],
        sections=sections,
        grouped=any(len(s.cards) > 1 for s in sections),
        count=len(videos),
    )


def run_overview(summary: Mapping[str, Any]) -> list[tuple[str, str]]:
    """``(label, text)`` rows of the run summary at the top of the page, from ``summary.json``.

    >>> run_overview({"date": "2025-01-02T03:04:05+00:00", "config": {},
    ...               "overall": {"envs": 2, "unreadable_envs": 0, "episodes": 5, "partial": 2,
    ...                           "outcomes": {"success": 1, "failure": 2, "unknown": 2}}})
    ... # doctest: +NORMALIZE_WHITESPACE
    [('success rate', '1/3 (33%), 2 unknown'), ('envs', '2'), ('episodes', '5 (2 partial)'),
     ('date', '2025-01-02 03:04:05 UTC'), ('config', 'none recorded')]
    """
    overall = summary.get("overall", {})
    envs = f"{overall.get('envs', 0)}"
    notes = [
        f"{overall[key]} {words}"
        for key, words in (
            ("unreadable_envs", "unreadable"),
            ("partial_metadata_envs", "with partial metadata"),
        )
        if overall.get(key)
    ]
    envs += f" ({', '.join(notes)})" if notes else ""
    config = summary.get("config") or {}
    digest = summary.get("config_digest") or config_digest(config)
    described = f"{digest}, env {env_type_of(config) or 'type not recorded'}"
    return [
        ("success rate", counts_text(overall.get("outcomes", {}), percent=True)),
        ("envs", envs),
        ("episodes", _episodes_text(overall)),
        ("date", _date_text(summary.get("date", ""))),
        ("config", described if digest else "none recorded"),
    ]


def _episodes_text(counts: Mapping[str, Any]) -> str:
    text = f"{counts.get('episodes', 0)}"
    return text + (f" ({counts['partial']} partial)" if counts.get("partial") else "")


def _date_text(date: str) -> str:
    """``2025-01-02T03:04:05+00:00`` as ``2025-01-02 03:04:05 UTC``."""
    return date.replace("T", " ").replace("+00:00", " UTC")


def _env_totals(entry: Mapping[str, Any] | None) -> str:
    """One line of an env's totals from its ``summary.json`` entry."""
    if not entry:
        return ""
    if "error" in entry:
        return f"episodes unreadable: {entry['error']}"
    parts = [
        f"{_episodes_text(entry)} episodes",
        f"success {counts_text(entry['outcomes'], percent=True)}",
    ]
    if entry.get("mean_return") is not None:
        parts.append(f"mean return {entry['mean_return']:.2f}")
    if entry.get("partial_metadata"):
        lost = ", ".join(f"{path} {kind}" for path, kind in entry["partial_metadata"].items())
        parts.append(f"partial metadata: {lost}")
    return " · ".join(parts)


def _sections(cards: Sequence[Card], envs: Mapping[str, Any]) -> list[Section]:
    """The cards grouped by env, envs in the order of their first card."""
    sections: dict[str, Section] = {}
    for card in cards:
        if card.group not in sections:
            sections[card.group] = Section(
                card.group, _env_label(card.group), _env_totals(envs.get(card.group))
            )
        sections[card.group].cards.append(card)
    return list(sections.values())


def _env_label(group: str) -> str:
    try:
        rank, gpu, env = parse_group_name(group)
    except ValueError:
        return group
    return f"rank{rank} gpu{gpu} env{env}"


def _read_summary(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        log.warning("gallery without the run summary (%s): %s", path.name, e)
        return None


@lru_cache(maxsize=1)
def _template() -> jinja2.Template:
    """The packaged template, autoescaped; an undefined name is an error, not blank text."""
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("render", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    return environment.get_template(TEMPLATE)


def write_poster(video: Path) -> Path:
    """``posters/<video stem>.png`` next to the video: its last frame (kept when fresh)."""
    poster = video.parent / POSTER_DIR / f"{video.stem}.png"
    if poster.exists() and poster.stat().st_mtime_ns >= video.stat().st_mtime_ns:
        return poster
    poster.parent.mkdir(exist_ok=True)
    partial = poster.with_name(f"{poster.stem}.{uuid.uuid4().hex}.partial.png")
    # from 1 s before the end, each decoded frame overwrites the image: the last one stays
    args = ["-sseof", "-1", "-i", str(video), "-vf", f"scale='min({POSTER_WIDTH},iw)':-2"]
    args += ["-update", "1", "-f", "image2", str(partial)]
    try:
        run_ffmpeg(args, video.name)
        partial.replace(poster)
    finally:
        partial.unlink(missing_ok=True)
    return poster


def _poster_or_none(video: Path) -> Path | None:
    """A poster is a nicety: a video without one still gets its card."""
    try:
        return write_poster(video)
    except (EncodeError, OSError) as e:
        log.warning("no poster for %s: %s", video.name, e)
        return None


def _card(result: OutputResult, poster: Path | None) -> Card:
    """One video's card: what the page shows and the values it filters and sorts on."""
    shown = describe(result.episodes)
    counts = outcome_counts(result.episodes)
    known = counts["success"] + counts["failure"]
    facts = [("frames", f"{result.frames}"), *((k, v) for k, v in shown.items() if v)]
    if result.status == "partial":
        facts.append(("note", "unreadable rows skipped"))
    return Card(
        group=result.group,
        name=result.path.name,
        src=quote(result.path.name),
        poster=None if poster is None else f"{POSTER_DIR}/{quote(poster.name)}",
        verdict=verdict(result.episodes),
        partial=bool(result.episodes) and result.episodes[-1].partial,
        mean_return=shown["return"] if shown["return"] not in ("", "-") else "",
        rate=f"{counts['success'] / known:.4f}" if known else "",
        facts=tuple(facts),
        mosaic=result.group == "mosaic",
        badge=result.metadata_note(),
    )
