"""Rendering one output: read blocks -> compose -> transforms -> ffmpeg, read ahead in a thread.

:func:`render_output` is the Dask task: it takes one :class:`~render.plan.OutputPlan`, runs
on whichever worker picks it up, and returns an :class:`~render.report.OutputResult` instead
of raising, so one bad group never stops the others. A background thread reads and
decompresses the next blocks and composes them while the calling thread feeds ffmpeg, so a
render runs at the speed of the slower side, not their sum.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable, Iterator

import numpy as np

from collect.store import GroupReader, open_store

from .encode import VideoEncoder
from .plan import OutputPlan, remove_sidecar, write_sidecar
from .reader import RowBlock, prefetch, read_blocks
from .report import OutputResult

__all__ = ["RenderError", "render_output"]

log = logging.getLogger(__name__)

Progress = Callable[[int], None]  # called with the number of rows just processed


class RenderError(RuntimeError):
    """An output cannot be rendered at all (store unreachable, no readable rows)."""


def render_output(plan: OutputPlan, progress: Progress | None = None) -> OutputResult:
    """Render one video; failures come back as a ``failed`` result with the reason."""
    started = time.perf_counter()
    try:
        frames, skipped = _encode(plan, _open_group(plan), progress)
    except Exception as e:  # noqa: BLE001 - reported in the result; the other outputs go on
        log.error("%s failed: %s", plan.path.name, e)
        return plan.result("failed", error=str(e), seconds=time.perf_counter() - started)
    status = "partial" if skipped else "rendered"
    return plan.result(
        status, frames=frames, skipped_rows=skipped, seconds=time.perf_counter() - started
    )


def _open_group(plan: OutputPlan) -> GroupReader:
    try:
        return open_store(plan.store).group(plan.group)
    except FileNotFoundError as e:
        raise RenderError(
            f"frame store {str(plan.store)!r} is not readable on host {socket.gethostname()} "
            f"({e}); the store path must be reachable by every Dask worker"
        ) from e


def _encode(
    plan: OutputPlan, group: GroupReader, progress: Progress | None
) -> tuple[int, list[tuple[int, int]]]:
    """Encode the plan's rows; frames written and the row spans skipped as unreadable."""
    plan.path.parent.mkdir(parents=True, exist_ok=True)
    remove_sidecar(plan)
    skipped: list[tuple[int, int]] = []
    errors: list[str] = []
    width, height = plan.canvas.width, plan.canvas.height
    with (
        prefetch(_pictures(plan, group)) as pictures,  # reading starts before ffmpeg does
        VideoEncoder(plan.path, width, height, **plan.encoder_kwargs()) as encoder,
    ):
        for block, picture in pictures:
            if picture is None:
                log.warning(
                    "%s: skipping rows %d:%d: %s", plan.group, block.start, block.stop, block.error
                )
                _extend(skipped, block.start, block.stop)
                errors.append(str(block.error))
            else:
                encoder.write(picture)
            if progress is not None:
                progress(block.stop - block.start)
        if encoder.frames == 0:
            raise RenderError(f"{plan.group}: no readable rows ({errors[0]})")
    write_sidecar(plan, frames=encoder.frames, complete=not skipped)
    return encoder.frames, skipped


def _pictures(plan: OutputPlan, group: GroupReader) -> Iterator[tuple[RowBlock, np.ndarray | None]]:
    """Each block of rows with its composed, transformed picture (None if unreadable)."""
    for block in read_blocks(group, plan.canvas.cameras, *plan.rows):
        if block.frames is None:
            yield block, None
            continue
        picture = plan.canvas.compose(block.frames)
        for transform in plan.transforms:
            picture = transform(block.start, picture)
        yield block, picture


def _extend(spans: list[tuple[int, int]], start: int, stop: int) -> None:
    """Append ``start:stop`` to a list of row spans, merging with the last one if adjacent."""
    if spans and spans[-1][1] == start:
        spans[-1] = (spans[-1][0], stop)
    else:
        spans.append((start, stop))
