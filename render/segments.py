"""Segments: one long video encoded as row ranges by separate tasks, joined without re-encoding.

A single long env is one ffmpeg process, so it keeps one core busy (with ``encoder_threads=1``,
as on a cluster where each Dask worker owns a core) however many workers there are. Cut into
``n`` segments, it is ``n`` tasks that run in parallel, plus a join:

* **cutting** (:func:`split`): balanced row ranges; each segment is a plan of its own
  (:meth:`~render.plan.VideoPlan.with_rows`) written to ``OUT/.render/segments/``, so every
  segment is a separate encode that starts with an IDR frame: the join needs no re-encode.
  Per-row transforms (the overlay) draw by row index, so a segment draws what the whole video
  would;
* **joining** (:func:`join_segments`): ffmpeg's concat demuxer with ``-c copy``, into a partial
  file renamed to the final name only after two checks on the MP4 index: exactly the frames
  the segments hold, and one duration for every frame (a gap or overlap at a join would show
  as a different duration: a stutter). The demuxer shifts each file by the durations of those
  before it, which it takes from the MP4 header in whole milliseconds unless told: 1000
  frames at 30 fps are 33.333... s, and the next file would start 0.3 ms early. So the list
  gives each file's exact duration (frames / fps, in microseconds, from the cumulative frame
  count so that rounding never adds up). Then the sidecar is written, as for a whole video,
  and the segment files are removed;
* **how many** (:func:`segment_count`): ``segment_frames=N`` cuts every video into pieces of
  about N frames; ``0`` never cuts; ``None`` (automatic) cuts only when there are fewer videos
  than parallel slots (Dask workers or threads), into at most ``slots // videos`` pieces of at
  least :data:`AUTO_MIN_FRAMES` frames: each segment costs an ffmpeg start, a keyframe and the
  encoder's look-ahead warm-up, which only pays off when cores would otherwise sit idle.

>>> segment_count(2000, None, outputs=1, slots=2), segment_count(2000, None, outputs=4, slots=2)
(2, 1)
>>> segment_count(900, 300, outputs=8, slots=2), segment_count(900, 0, outputs=1, slots=16)
(3, 1)
>>> split_rows((100, 200), 3)
[(100, 133), (133, 167), (167, 200)]
"""

from __future__ import annotations

import glob
import itertools
import logging
import math
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

from . import mp4
from .encode import EncodeError, check_frame_count, partial_path, run_ffmpeg
from .pipeline import extend_spans
from .plan import SIDECAR_DIR, VideoPlan, remove_sidecar, write_sidecar
from .report import OutputResult

__all__ = [
    "AUTO_MIN_FRAMES",
    "join_segments",
    "join_videos",
    "segment_count",
    "split",
    "split_rows",
]

log = logging.getLogger(__name__)

AUTO_MIN_FRAMES = 500  # automatic segments are at least this long
SEGMENT_DIR = "segments"  # under OUT/.render/


def segment_count(frames: int, segment_frames: int | None, *, outputs: int, slots: int) -> int:
    """How many segments a video of ``frames`` frames is cut into (1: not cut).

    ``outputs`` videos are rendered on ``slots`` parallel tasks; ``segment_frames`` is the
    option (see the module docstring).
    """
    if segment_frames == 0:
        return 1
    if segment_frames is not None:
        return max(1, math.ceil(frames / segment_frames))
    if outputs >= slots:
        return 1
    return max(1, min(slots // outputs, frames // AUTO_MIN_FRAMES))


def split_rows(rows: tuple[int, int], count: int) -> list[tuple[int, int]]:
    """``rows`` cut into ``count`` ranges whose lengths differ by at most one."""
    start, stop = rows
    cuts = [start + round(i * (stop - start) / count) for i in range(count + 1)]
    return list(itertools.pairwise(cuts))


def split(plan: VideoPlan, count: int) -> list[VideoPlan]:
    """The plans of ``count`` segments of ``plan``, written under ``OUT/.render/segments/``.

    Segment files a killed render of the same video left there are removed first.
    """
    folder = plan.path.parent / SIDECAR_DIR / SEGMENT_DIR
    for leftover in folder.glob(f"{glob.escape(plan.path.stem)}.*"):
        leftover.unlink(missing_ok=True)
    token = uuid.uuid4().hex[:8]  # two renders of the same output never share segment files
    return [
        plan.with_rows(a, b, folder / f"{plan.path.stem}.{token}.{i:03d}.mp4")
        for i, (a, b) in enumerate(split_rows(plan.rows, count))
    ]


def join_segments(plan: VideoPlan, parts: Sequence[OutputResult]) -> OutputResult:
    """The Dask task after a video's segment tasks: join their files into ``plan.path``.

    Returns the video's result: ``failed`` (with the first segment's error) when a segment
    failed, ``partial`` when segments skipped unreadable rows. The segment files are removed
    whatever happens.
    """
    started = time.perf_counter()
    slowest = max((r.seconds for r in parts), default=0.0)
    try:
        failed = next((r for r in parts if r.status == "failed"), None)
        if failed is not None:
            where = f"segment {parts.index(failed) + 1} of {len(parts)}"
            return plan.result("failed", error=f"{where}: {failed.error}", seconds=slowest)
        frames = sum(r.frames for r in parts)
        skipped: list[tuple[int, int]] = []
        for r in parts:
            for span in r.skipped_rows:
                extend_spans(skipped, *span)
        remove_sidecar(plan)
        join_videos([r.path for r in parts], plan.path, frames, plan.fps)
        write_sidecar(plan, frames=frames, complete=not skipped)
    except Exception as e:  # noqa: BLE001 - reported in the result, as render_output does
        log.error("%s failed: %s", plan.path.name, e)
        return plan.result("failed", error=str(e), seconds=slowest)
    finally:
        for r in parts:
            r.path.unlink(missing_ok=True)
    seconds = slowest + time.perf_counter() - started  # the segments ran side by side
    status = "partial" if skipped else "rendered"
    return plan.result(status, frames=frames, skipped_rows=skipped, seconds=seconds)


def join_videos(parts: Sequence[Path], path: Path, frames: int, fps: float) -> None:
    """Concatenate MP4 files of ``fps`` frames a second into ``path`` without re-encoding.

    Atomic and checked: :class:`~render.encode.EncodeError` when ffmpeg fails or the result
    does not hold exactly ``frames`` frames of one duration each.
    """
    listing = path.parent / SIDECAR_DIR / SEGMENT_DIR / f"{path.stem}.{uuid.uuid4().hex}.txt"
    listing.parent.mkdir(parents=True, exist_ok=True)
    listing.write_text(_concat_list(parts, fps))
    partial = partial_path(path)
    # the concat demuxer shifts each file's timestamps by the durations of those before it
    args = ["-f", "concat", "-safe", "0", "-i", str(listing), "-map", "0:v", "-c", "copy"]
    args += ["-movflags", "+faststart", "-f", "mp4", str(partial)]
    try:
        run_ffmpeg(args, path.name)
        check_frame_count(partial, frames, path.name, args)
        _check_even_timing(partial, path.name)
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)
        listing.unlink(missing_ok=True)


def _check_even_timing(video: Path, name: str) -> None:
    """Every frame but the last must last as long as the first (no stutter at a join)."""
    runs = mp4.frame_durations(video)
    if runs and runs[-1][0] == 1:  # muxers may give the very last frame its own duration
        runs = runs[:-1]
    if len({duration for _, duration in runs}) > 1:
        shown = ", ".join(f"{n} x {d}" for n, d in runs[:6])
        raise EncodeError(f"{name}: uneven frame durations after joining segments ({shown})")


def _concat_list(parts: Sequence[Path], fps: float) -> str:
    """The concat demuxer's input: each file with its exact duration (see the module doc)."""
    lines, done, start = [], 0, 0
    for part in parts:
        done += mp4.count_frames(part)
        stop = round(done * 1_000_000 / fps)  # microseconds, the demuxer's precision
        lines += [f"file {_quoted(part.resolve())}", f"duration {stop - start}us"]
        start = stop
    return "\n".join(lines) + "\n"


def _quoted(path: Path) -> str:
    """A path quoted for an ffmpeg concat list (single quotes; ``'`` written as ``'\\''``)."""
    return "'" + str(path).replace("'", "'\\''") + "'"
