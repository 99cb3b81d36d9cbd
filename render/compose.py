"""Layouts: how the cameras of one env become the picture(s) of its video(s).

A :class:`Layout` turns a group's cameras ``{name: (height, width)}`` into one or more
:class:`Canvas` objects, one per output file. A canvas is plain data (where each camera's
frame goes and at what size), planned once per output; :meth:`Canvas.compose` then pastes
blocks of frames into it; uncovered areas are black. (Even dimensions, which yuv420p needs,
are the encoder's business: see :func:`render.encode.output_size`.)

Layouts live in a registry in the style of numcodecs: a dict plus :func:`register_layout`
and :func:`get_layout`; a layout's constructor kwargs are its config (``get_config`` /
``from_config``), so options can name a layout in JSON.

Built in:

* ``behavior``: the wrist cameras stacked on the left (together as tall as the head), every
  other camera (the head) on the right, all scaled to that common height;
* ``hstack``: every camera side by side, scaled to the tallest one's height;
* ``grid``: cameras in a near-square grid of equal cells, each fitted into its cell;
* ``separate``: one video per camera, at its own size.

>>> cams = {"zed": (48, 64), "left_realsense": (32, 32), "right_realsense": (32, 32)}
>>> [c.cameras for c in get_layout("behavior").canvases(cams)]
[('left_realsense', 'right_realsense', 'zed')]
>>> [(c.suffix, c.width, c.height) for c in get_layout("behavior").canvases(cams)]
[('', 88, 48)]
>>> [(c.suffix, c.width, c.height) for c in get_layout("separate").canvases(cams)]
[('_zed', 64, 48), ('_left_realsense', 32, 32), ('_right_realsense', 32, 32)]
>>> get_layout("grd")  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
render.compose.UnknownLayoutError: unknown layout 'grd'; choose from behavior, grid, hstack, ...
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, ClassVar

import numpy as np
from PIL import Image

from collect.registry import Registry, UnknownNameError

__all__ = [
    "BehaviorLayout",
    "Canvas",
    "GridLayout",
    "HStackLayout",
    "Layout",
    "SeparateLayout",
    "Tile",
    "UnknownLayoutError",
    "available_layouts",
    "get_layout",
    "register_layout",
]

CameraSizes = Mapping[str, tuple[int, int]]  # camera -> (height, width)


class UnknownLayoutError(UnknownNameError):
    """A layout name that is not registered."""


@dataclass(frozen=True)
class Tile:
    """One camera's place in a canvas: top-left corner and the size it is scaled to."""

    camera: str
    top: int
    left: int
    height: int
    width: int


@dataclass(frozen=True)
class Canvas:
    """The picture of one output: its size, the cameras' tiles, and the file name suffix."""

    suffix: str
    height: int
    width: int
    tiles: tuple[Tile, ...]

    @property
    def cameras(self) -> tuple[str, ...]:
        return tuple(t.camera for t in self.tiles)

    def compose(self, frames: Mapping[str, np.ndarray]) -> np.ndarray:
        """Paste a block of frames ``{camera: (T, h, w, 3)}`` into ``uint8 (T, H, W, 3)``.

        A single camera that fills the canvas at its own size is returned as is (no copy).
        """
        if len(self.tiles) == 1 and self._fills(frames[self.tiles[0].camera]):
            return np.ascontiguousarray(frames[self.tiles[0].camera])
        count = len(next(iter(frames.values())))
        out = np.zeros((count, self.height, self.width, 3), np.uint8)
        for tile in self.tiles:
            region = out[:, tile.top : tile.top + tile.height, tile.left : tile.left + tile.width]
            _paste_scaled(frames[tile.camera], region)
        return out

    def fitted(self, height: int, width: int) -> Canvas:
        """This canvas scaled to fit ``height x width`` (aspect kept), centred in it.

        Composing on the fitted canvas scales each camera once, straight to its final size
        (the mosaic's cells).
        """
        f = min(height / self.height, width / self.width)
        top, left = (height - round(self.height * f)) // 2, (width - round(self.width * f)) // 2
        tiles = tuple(
            Tile(
                t.camera,
                top + round(t.top * f),
                left + round(t.left * f),
                max(1, round(t.height * f)),
                max(1, round(t.width * f)),
            )
            for t in self.tiles
        )
        return Canvas(self.suffix, height, width, tiles)

    def _fills(self, block: np.ndarray) -> bool:
        tile = self.tiles[0]
        return block.shape[1:3] == (self.height, self.width) and (tile.top, tile.left) == (0, 0)


def _paste_scaled(block: np.ndarray, region: np.ndarray) -> None:
    """Copy frames into ``region``, resizing them (bilinear, PIL) when the sizes differ."""
    height, width = region.shape[1:3]
    if block.shape[1:3] == (height, width):
        region[...] = block
        return
    for src, dst in zip(block, region, strict=True):
        dst[...] = np.asarray(Image.fromarray(src).resize((width, height), Image.BILINEAR))


def _width_at(size: tuple[int, int], height: int) -> int:
    """Width of a camera of ``size`` scaled to ``height``, keeping its aspect ratio."""
    h, w = size
    return max(1, round(w * height / h))


def _canvas(suffix: str, tiles: list[Tile]) -> Canvas:
    """The smallest canvas holding ``tiles``."""
    height = max(t.top + t.height for t in tiles)
    width = max(t.left + t.width for t in tiles)
    return Canvas(suffix, height, width, tuple(tiles))


def _row(cameras: CameraSizes, names: list[str], height: int, left: int = 0) -> list[Tile]:
    """Tiles of ``names`` side by side from ``left``, each scaled to ``height``."""
    tiles = []
    for name in names:
        width = _width_at(cameras[name], height)
        tiles.append(Tile(name, 0, left, height, width))
        left += width
    return tiles


@dataclass(frozen=True)
class Layout:
    """Base class: constructor kwargs are the config; ``canvases`` plans the outputs."""

    id: ClassVar[str]

    def canvases(self, cameras: CameraSizes) -> list[Canvas]:
        """One canvas per output file for a group with these cameras (in this order)."""
        raise NotImplementedError

    def get_config(self) -> dict[str, Any]:
        config = {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}
        return {"id": self.id, **config}

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Layout:
        return cls(**{k: v for k, v in config.items() if k != "id"})


_LAYOUTS: Registry[type[Layout]] = Registry("layout", UnknownLayoutError)


def register_layout(cls: type[Layout]) -> type[Layout]:
    """Add a layout class to the registry under its ``id`` (usable as a decorator)."""
    return _LAYOUTS.register(cls.id)(cls)


def available_layouts() -> list[str]:
    """Registered layout names, sorted."""
    return _LAYOUTS.names()


def get_layout(spec: str | Mapping[str, Any] | Layout) -> Layout:
    """A layout from its name, its config (``{"id": name, ...}``) or itself."""
    if isinstance(spec, Layout):
        return spec
    config = {"id": spec} if isinstance(spec, str) else dict(spec)
    return _LAYOUTS[config.get("id")].from_config(config)


@register_layout
@dataclass(frozen=True)
class BehaviorLayout(Layout):
    """Wrist cameras stacked on the left, the other cameras (the head) on the right.

    The right-hand cameras are scaled to the tallest one's height, and the wrists share that
    height equally; a group without wrist cameras shows just the others, and vice versa.
    """

    id: ClassVar[str] = "behavior"
    wrists: tuple[str, ...] = ("left_realsense", "right_realsense")

    def __post_init__(self) -> None:
        object.__setattr__(self, "wrists", tuple(self.wrists))

    def canvases(self, cameras: CameraSizes) -> list[Canvas]:
        left = [c for c in self.wrists if c in cameras]
        right = [c for c in cameras if c not in self.wrists]
        # the right-hand cameras set the height; wrists alone keep their own heights
        height = max((cameras[c][0] for c in right), default=sum(cameras[c][0] for c in left))
        column = self._wrist_column(cameras, left, height)
        column_width = max((t.width for t in column), default=0)
        return [_canvas("", column + _row(cameras, right, height, left=column_width))]

    @staticmethod
    def _wrist_column(cameras: CameraSizes, names: list[str], height: int) -> list[Tile]:
        tiles, top = [], 0
        for i, name in enumerate(names):
            share = height // len(names) + (i < height % len(names))
            tiles.append(Tile(name, top, 0, share, _width_at(cameras[name], share)))
            top += share
        return tiles


@register_layout
@dataclass(frozen=True)
class HStackLayout(Layout):
    """Every camera side by side, scaled to the tallest camera's height."""

    id: ClassVar[str] = "hstack"

    def canvases(self, cameras: CameraSizes) -> list[Canvas]:
        height = max(h for h, _ in cameras.values())
        return [_canvas("", _row(cameras, list(cameras), height))]


@register_layout
@dataclass(frozen=True)
class GridLayout(Layout):
    """Cameras row by row in equal cells (the largest camera's size), fitted and centred.

    ``columns``: cells per row; ``None`` picks a near-square grid.
    """

    id: ClassVar[str] = "grid"
    columns: int | None = None

    def __post_init__(self) -> None:
        if self.columns is not None and not (isinstance(self.columns, int) and self.columns > 0):
            raise ValueError(
                f"grid columns must be a positive integer. Got {self.columns!r} instead."
            )

    def canvases(self, cameras: CameraSizes) -> list[Canvas]:
        columns = min(self.columns or math.ceil(math.sqrt(len(cameras))), len(cameras))
        rows = math.ceil(len(cameras) / columns)
        cell_h = max(h for h, _ in cameras.values())
        cell_w = max(w for _, w in cameras.values())
        tiles = []
        for i, (name, (h, w)) in enumerate(cameras.items()):
            fit = min(cell_h / h, cell_w / w)
            th, tw = max(1, round(h * fit)), max(1, round(w * fit))
            top = (i // columns) * cell_h + (cell_h - th) // 2
            left = (i % columns) * cell_w + (cell_w - tw) // 2
            tiles.append(Tile(name, top, left, th, tw))
        return [Canvas("", rows * cell_h, columns * cell_w, tuple(tiles))]


@register_layout
@dataclass(frozen=True)
class SeparateLayout(Layout):
    """One video per camera at the camera's own size; file names end in ``_{camera}``."""

    id: ClassVar[str] = "separate"

    def canvases(self, cameras: CameraSizes) -> list[Canvas]:
        return [_canvas(f"_{name}", [Tile(name, 0, 0, h, w)]) for name, (h, w) in cameras.items()]
