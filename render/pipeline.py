"""Rendering one output: read blocks -> compose -> transforms -> ffmpeg, read ahead in a thread.

:func:`render_output` is the Dask task: it takes one plan (:class:`~render.plan.VideoPlan`),
runs on whichever worker picks it up, and returns an :class:`~render.report.OutputResult`
instead of raising, so one bad group never stops the others. A background thread reads and
decompresses the next blocks and composes them (:meth:`~render.plan.VideoPlan.pictures`)
while the calling thread feeds ffmpeg, so a render runs at the speed of the slower side, not
their sum. :func:`render_segment` is the same for one segment of a long video: no sidecar,
the join (:mod:`render.segments`) writes it for the whole video.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from .encode import VideoEncoder
from .plan import VideoPlan, remove_sidecar, write_sidecar
from .reader import RenderError, prefetch
from .report import OutputResult

__all__ = ["RenderError", "render_output", "render_segment"]

log = logging.getLogger(__name__)

Progress = Callable[[int], None]  # called with the number of rows just processed


def render_output(plan: VideoPlan, progress: Progress | None = None) -> OutputResult:
    """Render one video and its sidecar; failures come back as a ``failed`` result."""
    return _attempt(plan, progress, sidecar=True)


def render_segment(plan: VideoPlan, progress: Progress | None = None) -> OutputResult:
    """Render one segment of a video (``plan.path`` is the segment's file); no sidecar."""
    return _attempt(plan, progress, sidecar=False)


def _attempt(plan: VideoPlan, progress: Progress | None, sidecar: bool) -> OutputResult:
    started = time.perf_counter()
    try:
        if sidecar:
            remove_sidecar(plan)
        frames, skipped = _encode(plan, progress)
        if sidecar:
            write_sidecar(plan, frames=frames, complete=not skipped)
    except Exception as e:  # noqa: BLE001 - reported in the result; the other outputs go on
        log.error("%s failed: %s", plan.path.name, e)
        return plan.result("failed", error=str(e), seconds=time.perf_counter() - started)
    status = "partial" if skipped else "rendered"
    return plan.result(
        status, frames=frames, skipped_rows=skipped, seconds=time.perf_counter() - started
    )


def _encode(plan: VideoPlan, progress: Progress | None) -> tuple[int, list[tuple[int, int]]]:
    """Encode the plan's rows; frames written and the row spans skipped as unreadable."""
    plan.path.parent.mkdir(parents=True, exist_ok=True)
    skipped: list[tuple[int, int]] = []
    errors: list[str] = []
    with (
        prefetch(plan.pictures()) as pictures,  # reading starts before ffmpeg does
        VideoEncoder(plan.path, *plan.picture_size, **plan.encoder_kwargs()) as encoder,
    ):
        for block, picture in pictures:
            if picture is None:
                log.warning(
                    "%s: skipping rows %d:%d: %s", plan.group, block.start, block.stop, block.error
                )
                extend_spans(skipped, block.start, block.stop)
                errors.append(str(block.error))
            else:
                encoder.write(picture)
            if progress is not None:
                progress(block.stop - block.start)
        if encoder.frames == 0:
            raise RenderError(f"{plan.group}: no readable rows ({errors[0]})")
    return encoder.frames, skipped


def extend_spans(spans: list[tuple[int, int]], start: int, stop: int) -> None:
    """Append ``start:stop`` to a list of row spans, merging with the last one if adjacent."""
    if spans and spans[-1][1] == start:
        spans[-1] = (spans[-1][0], stop)
    else:
        spans.append((start, stop))
