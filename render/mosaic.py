"""The mosaic: every env of a render tiled in one extra video, to see all of them at once.

With ``--mosaic`` a render also writes ``{video_prefix}_mosaic.mp4`` (never instead of the
per-env videos): the selected groups in a near-square grid, row by row in (rank, gpu, env)
order, each cell labelled ``rank{r} gpu{g} env{e}``. The video is as long as the longest
group; a group that ends earlier holds its last frame. Each cell shows the group's picture as
the per-env video does (the layout's first canvas: with ``separate``, the first camera),
scaled once, straight to the cell's size. Cells are as large as the largest per-env video,
shrunk until the mosaic fits in :data:`MAX_SIZE`. With ``--overlay`` each cell gets the
overlay its per-env video has (:func:`render.plan.group_overlay`: the same bands, outcome
border and info keys, drawn at the cell's size so the text stays readable), and the label
moves just below the cell's top band, where it hides none of the overlay's text.

A :class:`MosaicPlan` is a :class:`~render.plan.VideoPlan` like any other: it has a sidecar,
is skipped when up to date, and can be cut into segments (:mod:`render.segments`).
Unreadable rows of one group show as black in its cell (logged); the other cells go on.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from collect.store import FrameStore, GroupReader, StoreFormatError

from .compose import Canvas
from .encode import output_size
from .episodes import read_episodes
from .metadata import as_metadata
from .options import RenderOptions
from .overlay import MIN_FONT, Overlay, font, text_sprite
from .plan import (
    Pictures,
    VideoPlan,
    digest,
    group_outcome_rule,
    group_overlay,
    scaled_size,
    selected_cameras,
)
from .reader import RowBlock, open_group

__all__ = ["MAX_SIZE", "Cell", "MosaicPlan", "plan_mosaic"]

log = logging.getLogger(__name__)

MAX_SIZE = (1920, 1080)  # (width, height) the mosaic is shrunk to fit in
LABEL_FRACTION = 1 / 12  # label font size / cell height
BLOCK_ROWS = 64  # rows composed at a time (bounded memory with many groups)
GAP = 2  # black pixels between cells


@dataclass(frozen=True)
class Cell:
    """One group's place in the mosaic: its picture fitted to the cell, its label, and the
    overlay drawn on it (``None`` without ``--overlay``)."""

    group: str
    rows: int  # the group's rows; later mosaic rows hold its last frame
    canvas: Canvas  # the group's picture, fitted to the cell
    top: int
    left: int
    label: str
    overlay: Overlay | None = None

    @property
    def label_top(self) -> int:
        """Pixel row of the label in the cell: under the overlay's top band, if any."""
        return 0 if self.overlay is None else self.overlay.bands[0].bottom


@dataclass(frozen=True, kw_only=True)
class MosaicPlan(VideoPlan):
    """The mosaic video: ``cells`` on a ``width x height`` picture."""

    cells: tuple[Cell, ...]
    width: int
    height: int
    font_size: int

    @property
    def picture_size(self) -> tuple[int, int]:
        return self.width, self.height

    @property
    def sources(self) -> int:
        return len(self.cells)

    def pictures(self) -> Pictures:
        groups = {cell.group: open_group(self.store, cell.group) for cell in self.cells}
        labels = {cell.group: text_sprite(cell.label, self.font_size) for cell in self.cells}
        held: dict[str, np.ndarray] = {}  # last frame of each group that has ended
        for start in range(self.rows[0], self.rows[1], BLOCK_ROWS):
            stop = min(start + BLOCK_ROWS, self.rows[1])
            picture = np.zeros((stop - start, self.height, self.width, 3), np.uint8)
            for cell in self.cells:
                region = picture[
                    :,
                    cell.top : cell.top + cell.canvas.height,
                    cell.left : cell.left + cell.canvas.width,
                ]
                _fill_cell(region, cell, groups[cell.group], start, held)
                _paste_label(region[:, cell.label_top :], *labels[cell.group])
            yield RowBlock(start, stop, None), picture


def _fill_cell(
    region: np.ndarray, cell: Cell, group: GroupReader, start: int, held: dict[str, np.ndarray]
) -> None:
    """The cell's rows ``start:start + len(region)``: the group's frames, then its last one."""
    live = max(0, min(len(region), cell.rows - start))
    if live:
        region[:live] = _read(cell, group, start, start + live)
    if live < len(region):
        if cell.group not in held:
            held[cell.group] = _read(cell, group, cell.rows - 1, cell.rows)[0]
        region[live:] = held[cell.group]


def _read(cell: Cell, group: GroupReader, start: int, stop: int) -> np.ndarray:
    """The group's rows composed at the cell's size, overlay drawn; black where they cannot be
    read (no overlay there: the per-env video skips those rows)."""
    try:
        frames = {c: group.frames(c, start, stop) for c in cell.canvas.cameras}
    except StoreFormatError as e:
        log.warning("mosaic: %s rows %d:%d unreadable, shown black: %s", cell.group, start, stop, e)
        return np.zeros((stop - start, cell.canvas.height, cell.canvas.width, 3), np.uint8)
    picture = cell.canvas.compose(frames)
    return picture if cell.overlay is None else cell.overlay(start, picture)


def _paste_label(region: np.ndarray, add: np.ndarray, keep: np.ndarray) -> None:
    """The label in the cell's top-left corner, on every frame of the block at once."""
    h, w = min(add.shape[0], region.shape[1]), min(add.shape[1], region.shape[2])
    corner = region[:, :h, :w]
    corner[...] = (corner * keep[:h, :w] + add[:h, :w]).astype(np.uint8)


def plan_mosaic(
    store: FrameStore, plans: Sequence[VideoPlan], out_dir: Path, options: RenderOptions
) -> MosaicPlan | None:
    """The mosaic of the groups the ``plans`` show (None when there are none)."""
    names = list(dict.fromkeys(p.group for p in plans))
    if not names:
        return None
    groups = [store.group(name) for name in names]
    pictures = [_picture(group, options) for group in groups]
    columns = math.ceil(math.sqrt(len(groups)))
    rows = math.ceil(len(groups) / columns)
    cell_w, cell_h = _cell_size(pictures, options, columns, rows)
    font_size = max(MIN_FONT, round(cell_h * LABEL_FRACTION))
    cells = []
    for i, (group, picture) in enumerate(zip(groups, pictures, strict=True)):
        canvas = picture.fitted(cell_h, cell_w)
        cell = Cell(
            group=group.name,
            rows=group.rows,
            canvas=canvas,
            top=(i // columns) * (cell_h + GAP),
            left=(i % columns) * (cell_w + GAP),
            label=_label(group, font_size, cell_w),
            overlay=_cell_overlay(store, group, canvas, options),
        )
        cells.append(cell)
    width = columns * (cell_w + GAP) - GAP
    height = rows * (cell_h + GAP) - GAP
    length = max(group.rows for group in groups)
    fps = options.fps or store.fps
    identity = {
        "store": store.attrs.get("created"),
        "groups": [group.attrs for group in groups],
        "options": options.output_config(),
        "cells": [asdict(replace(cell, overlay=None)) for cell in cells],
        "fps": fps,
    }
    if options.overlay:  # the outcomes the overlays draw, as for a per-env video
        identity["outcomes"] = {c.group: _outcomes(c.overlay) for c in cells if c.overlay}
    return MosaicPlan(
        store=store.location,
        group="mosaic",
        path=out_dir / f"{store.video_prefix}_mosaic.mp4",
        rows=(0, length),
        fps=fps,
        size=None,
        options=options,
        fingerprint=digest(identity),
        cells=tuple(cells),
        width=width,
        height=height,
        font_size=font_size,
    )


def _cell_overlay(
    store: FrameStore, group: GroupReader, canvas: Canvas, options: RenderOptions
) -> Overlay | None:
    """The overlay of the group's per-env video, planned for the cell's canvas (from what is
    left of its metadata, as the per-env video's)."""
    if not options.overlay:
        return None
    meta = as_metadata(group)
    rule = group_outcome_rule(store, meta, options)
    return group_overlay(meta, read_episodes(meta, rule), canvas, options, rule)


def _outcomes(overlay: Overlay) -> list[tuple[int, int]]:
    """``(first row, outcome code)`` wherever the drawn outcome changes (for the fingerprint)."""
    codes = np.asarray(overlay.columns["outcome"])
    changes = np.flatnonzero(np.diff(codes, prepend=-1))
    return [(int(row), int(codes[row])) for row in changes]


def _cell_size(
    pictures: Sequence[Canvas], options: RenderOptions, columns: int, rows: int
) -> tuple[int, int]:
    """``(width, height)`` of a cell: the largest per-env video, shrunk to fit MAX_SIZE."""
    sizes = [output_size(c.width, c.height, scaled_size(c, options)) for c in pictures]
    width, height = max(w for w, _ in sizes), max(h for _, h in sizes)
    shrink = min(
        1.0,
        (MAX_SIZE[0] - GAP * (columns - 1)) / (columns * width),
        (MAX_SIZE[1] - GAP * (rows - 1)) / (rows * height),
    )
    return max(2, int(width * shrink)), max(2, int(height * shrink))


def _label(group: GroupReader, font_size: int, width: int) -> str:
    """``rank0 gpu1 env3``, or ``r0 g1 e3`` when that does not fit in the cell."""
    label = f"rank{group.rank} gpu{group.gpu} env{group.env}"
    if font(font_size).getlength(label) <= width * 0.9:
        return label
    return f"r{group.rank} g{group.gpu} e{group.env}"


def _picture(group: GroupReader, options: RenderOptions) -> Canvas:
    """The group's picture as its (first) per-env video composes it."""
    return options.get_layout().canvases(selected_cameras(group, options.cameras))[0]
