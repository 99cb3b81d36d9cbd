"""The gallery: ``OUT/index.html``, every video of a render in a grid, viewable offline.

With ``--gallery`` a render ends by writing, in the output directory,

* ``posters/<video>.png``: the last frame of each video (where an episode's outcome shows,
  with ``--overlay``), at most :data:`POSTER_WIDTH` wide, taken by ffmpeg from the finished
  file; a poster newer than its video is kept;
* ``index.html``: one self-contained page (inline CSS and a few lines of inline JavaScript;
  no server, no CDN, nothing fetched) that links the videos and posters by relative paths,
  so it works from ``file://`` and keeps working when the folder is copied. The mosaic, if
  any, comes first; then a card per video with its name, episodes (a partial last episode is
  marked), mean return and successes, and a border in the colour of its verdict
  (:func:`render.episodes.verdict`). Cards can be filtered by verdict or partial episodes and
  sorted by name, return or success rate.

Both files are written under temporary names and renamed, like the videos.
"""

from __future__ import annotations

import html
import logging
import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import quote

from .encode import EncodeError, run_ffmpeg
from .episodes import describe, outcome_counts, verdict
from .files import write_text_atomically
from .report import OutputResult

__all__ = ["POSTER_DIR", "POSTER_WIDTH", "write_gallery", "write_poster"]

log = logging.getLogger(__name__)

POSTER_DIR = "posters"
POSTER_WIDTH = 480  # pixels; posters are previews, the video has the full size
POSTER_THREADS = 4  # ffmpeg processes taking posters at once
_HAS_FILE = ("rendered", "partial", "up to date")


def write_gallery(out_dir: Path, results: Sequence[OutputResult], *, title: str) -> Path:
    """Write the posters and ``index.html`` for the videos among ``results``; its path."""
    videos = [r for r in results if r.status in _HAS_FILE and r.path.exists()]
    with ThreadPoolExecutor(POSTER_THREADS) as pool:
        posters = list(pool.map(lambda r: _poster_or_none(r.path), videos))
    cards = {r.path: _card(r, p) for r, p in zip(videos, posters, strict=True)}
    mosaic = [cards[r.path] for r in videos if r.group == "mosaic"]
    others = [cards[r.path] for r in videos if r.group != "mosaic"]
    page = _TEMPLATE.format(
        title=html.escape(title), count=len(others), mosaic="".join(mosaic), cards="\n".join(others)
    )
    index = out_dir / "index.html"
    write_text_atomically(index, page)
    return index


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


def _card(result: OutputResult, poster: Path | None) -> str:
    """The HTML of one video's card, with the data attributes the page filters and sorts on."""
    shown = describe(result.episodes)
    counts = outcome_counts(result.episodes)
    known = counts["success"] + counts["failure"]
    partial = bool(result.episodes) and result.episodes[-1].partial
    attributes = {
        "class": "card mosaic" if result.group == "mosaic" else "card",
        "data-name": result.path.name,
        "data-verdict": verdict(result.episodes),
        "data-partial": "1" if partial else "0",
        "data-return": shown["return"] if shown["return"] not in ("", "-") else "",
        "data-rate": f"{counts['success'] / known:.4f}" if known else "",
    }
    video = {"src": quote(result.path.name), "controls": "", "muted": "", "preload": "metadata"}
    if poster is not None:
        video["poster"] = f"{POSTER_DIR}/{quote(poster.name)}"
    facts = [("frames", f"{result.frames}"), *((k, v) for k, v in shown.items() if v)]
    if result.status == "partial":
        facts.append(("note", "unreadable rows skipped"))
    items = "".join(f"<dt>{html.escape(k)}</dt><dd>{html.escape(v)}</dd>" for k, v in facts)
    return (
        f"<figure {_attrs(attributes)}><video {_attrs(video)}></video>"
        f"<figcaption><a href='{quote(result.path.name)}'>{html.escape(result.path.name)}</a>"
        f"<dl>{items}</dl></figcaption></figure>"
    )


def _attrs(attributes: dict[str, str]) -> str:
    return " ".join(f'{k}="{html.escape(v)}"' if v else k for k, v in attributes.items())


_TEMPLATE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>
  body {{ background: #16181c; color: #e6e6e6; font: 14px system-ui, sans-serif; margin: 16px; }}
  h1 {{ font-size: 20px; margin: 0 0 12px; }}
  .controls {{ margin: 0 0 14px; display: flex; gap: 16px; align-items: center; }}
  .grid {{ display: grid; gap: 14px;
           grid-template-columns: repeat(auto-fill, minmax(260px, 1fr)); }}
  .card {{ margin: 0; background: #23262d; border: 3px solid #555; border-radius: 6px;
           overflow: hidden; }}
  .card[data-verdict=success] {{ border-color: #2fb344; }}
  .card[data-verdict=failure] {{ border-color: #d63939; }}
  .card[data-verdict=mixed] {{ border-color: #f59f00; }}
  .card.mosaic {{ max-width: 960px; margin-bottom: 16px; border-color: #4a6fa5; }}
  video {{ width: 100%; display: block; background: #000; }}
  figcaption {{ padding: 6px 8px 8px; }}
  figcaption a {{ color: #9ec5fe; word-break: break-all; }}
  dl {{ display: grid; grid-template-columns: auto 1fr; gap: 2px 10px; margin: 6px 0 0; }}
  dt {{ color: #9aa0a6; }} dd {{ margin: 0; }}
  [hidden] {{ display: none; }}
</style>
</head>
<body>
<h1>{title}</h1>
{mosaic}
<div class="controls">
  <label>show <select id="filter">
    <option value="all">all</option><option value="success">successful</option>
    <option value="failure">failed</option><option value="mixed">mixed</option>
    <option value="unknown">unknown outcome</option>
    <option value="partial">partial last episode</option>
  </select></label>
  <label>sort by <select id="sort">
    <option value="name">name</option><option value="return-desc">return, highest first</option>
    <option value="return-asc">return, lowest first</option>
    <option value="rate-desc">success rate, highest first</option>
    <option value="rate-asc">success rate, lowest first</option>
  </select></label>
  <span id="shown">{count} videos</span>
</div>
<div class="grid" id="grid">
{cards}
</div>
<script>
(() => {{
  const grid = document.getElementById("grid");
  const cards = [...grid.children];
  const filter = document.getElementById("filter"), sort = document.getElementById("sort");
  // a missing value sorts last both ways
  const num = (card, key, missing) =>
    card.dataset[key] === "" ? missing : Number(card.dataset[key]);
  const order = {{
    "name": (a, b) => a.dataset.name.localeCompare(b.dataset.name, undefined, {{numeric: true}}),
    "return-desc": (a, b) => num(b, "return", -Infinity) - num(a, "return", -Infinity),
    "return-asc": (a, b) => num(a, "return", Infinity) - num(b, "return", Infinity),
    "rate-desc": (a, b) => num(b, "rate", -1) - num(a, "rate", -1),
    "rate-asc": (a, b) => num(a, "rate", 2) - num(b, "rate", 2),
  }};
  function update() {{
    const wanted = filter.value;
    let shown = 0;
    for (const card of [...cards].sort(order[sort.value])) {{
      const match = wanted === "all" || card.dataset.verdict === wanted
        || (wanted === "partial" && card.dataset.partial === "1");
      card.hidden = !match;
      shown += match;
      grid.appendChild(card);
    }}
    document.getElementById("shown").textContent = shown + " of " + cards.length + " videos";
  }}
  filter.addEventListener("change", update);
  sort.addEventListener("change", update);
}})();
</script>
</body>
</html>
"""
