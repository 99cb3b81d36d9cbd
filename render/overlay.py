"""Text overlays: what happened at each frame, drawn on the frame, away from the scene centre.

With ``--overlay`` every frame gets two dark, semi-transparent bands, one along the top edge
and one along the bottom edge, and the scene between them is left as it was:

* top: ``ep 3  step 41``, then, from the row on which the episode's outcome is known to the
  episode's end, ``SUCCESS`` (green), ``FAILURE`` (red) or ``UNKNOWN`` (white: a finished
  episode whose outcome nothing tells), and on its very last row how it ended,
  ``TERMINATED`` or ``TRUNCATED`` (in the same colour);
* bottom: ``r +0.50`` (the row's reward), ``R +12.00`` (the episode's return so far) and each
  extra info key, ``success yes``.

The rows that show a success or a failure also get a green or red border; ``UNKNOWN`` gets
none. Outcomes are :mod:`render.episodes`' (an episode's outcome is known on its last row,
or from the first row its success key is true), and the bands cannot disagree: the success
key that decides the outcome is written as "true on any row of the episode so far", the same
test the outcome uses, so ``success no`` never stands under ``SUCCESS``. Text is drawn with
Pillow's built-in scalable font (no font files needed), at a size proportional to the frame
height (:data:`FONT_FRACTION`, at least :data:`MIN_FONT` pixels), so it reads the same at
128x128 and at 960x960; fields that do not fit on one line wrap onto a second line of the
band.

:class:`Overlay` is a :data:`render.plan.FrameTransform`: plain data (the rows' values, not
an open store), so it travels to Dask workers inside the plan. It draws rows by their index
in the group, so a segment of a video draws exactly what the whole video would.

>>> import numpy as np
>>> columns = {"episode": np.zeros(4, int), "step": np.arange(4), "reward": np.ones(4),
...            "return": np.arange(1.0, 5.0), "result": np.array(["", "", "", "FAILURE"]),
...            "end": np.array(["", "", "", "TRUNCATED"]),
...            "outcome": np.array([0, 0, 0, FAILURE])}
>>> overlay = Overlay.build(columns, first_row=0, height=128, width=128)
>>> overlay.lines
[('episode', 'step', 'result'), ('end',), ('reward', 'return')]
>>> frames = np.full((4, 128, 128, 3), 200, np.uint8)
>>> drawn = overlay(0, frames.copy())
>>> bool((drawn[:, 64, 64] == 200).all()), drawn[0, 8, 120].tolist()  # centre; shaded band
(True, [80, 80, 80])
>>> drawn[3, 64, 0].tolist(), drawn[2, 64, 0].tolist()  # red border once the failure is known
([220, 40, 40], [200, 200, 200])
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from collect.store import GroupReader

from .episodes import Episode
from .metadata import GroupMetadata, as_metadata

__all__ = [
    "FAILURE",
    "FONT_FRACTION",
    "MIN_FONT",
    "SUCCESS",
    "UNKNOWN",
    "Overlay",
    "TextBand",
    "field_text",
    "font",
    "font_size",
    "info_texts",
    "overlay_columns",
    "text_sprite",
]

FONT_FRACTION = 1 / 22  # font size / frame height
MIN_FONT = 9  # pixels; Pillow's default font stays readable down to about this size
BAND_SHADE = 0.4  # the bands keep this fraction of the scene's brightness
BORDER_FRACTION = 0.02  # of the frame's shorter side: the outcome border's width
SUCCESS, FAILURE, UNKNOWN = 1, 2, 3  # values of the "outcome" column (0: not known yet)
CODES = {"success": SUCCESS, "failure": FAILURE, "unknown": UNKNOWN}
WORDS = {SUCCESS: "SUCCESS", FAILURE: "FAILURE", UNKNOWN: "UNKNOWN"}
TEXT = (255, 255, 255)
COLOURS = {SUCCESS: (40, 200, 40), FAILURE: (220, 40, 40)}  # of the border; none for UNKNOWN
TEXT_COLOURS = {SUCCESS: (110, 240, 110), FAILURE: (255, 110, 110)}  # lighter: read on the band
TOP_FIELDS = ("episode", "step", "result", "end")
OUTCOME_FIELDS = ("result", "end")  # drawn in the outcome's colour
BOTTOM_FIELDS = ("reward", "return")  # then the info keys, as "info/<key>" columns
INFO = "info/"  # prefix of the info keys' columns (a key may be called "return" too)


@lru_cache
def font(size: int) -> ImageFont.FreeTypeFont:
    """Pillow's built-in scalable font at ``size`` pixels (cached per size)."""
    return ImageFont.load_default(size=size)


def font_size(height: int) -> int:
    """The overlay's font size for frames ``height`` pixels tall."""
    return max(MIN_FONT, round(height * FONT_FRACTION))


def overlay_columns(
    group: GroupReader | GroupMetadata,
    episodes: Sequence[Episode],
    keys: Sequence[str],
    *,
    outcome_key: str | None = None,
) -> dict[str, np.ndarray]:
    """Every value the overlay draws, one array per field, for all of the group's rows.

    ``return`` is the episode's return so far; ``outcome`` is :data:`SUCCESS`,
    :data:`FAILURE` or :data:`UNKNOWN` from the row the episode's outcome is known on
    (:attr:`Episode.known_from`) to its end, else 0; ``result`` is the outcome's word there
    and ``end`` the flag that ended the episode, on its last row. The info key
    ``outcome_key`` (the one that decides outcomes) is written as true from its first true
    row to the episode's end, as the outcome reads it. Lost metadata arrays are filled in by
    :mod:`render.metadata` (a lost reward or info key reads ``-``).
    """
    meta = as_metadata(group)
    reward = meta.reward.astype(np.float64)
    rows = len(reward)
    columns = {
        "episode": meta.episode,
        "step": meta.step,
        "reward": reward,
        "return": np.zeros(rows),
        "result": np.full(rows, "", dtype=object),
        "end": np.full(rows, "", dtype=object),
        "outcome": np.zeros(rows, np.int8),
    }
    for e in episodes:
        span = slice(e.start, e.stop)
        columns["return"][span] = np.nan if e.reward is None else np.nancumsum(reward[span])
        if e.end in ("terminated", "truncated"):
            columns["end"][e.stop - 1] = e.end.upper()
        if e.known_from is not None:
            code = CODES[e.outcome]
            columns["outcome"][e.known_from : e.stop] = code
            columns["result"][e.known_from : e.stop] = WORDS[code]
    for key in keys:
        values = meta.scalar(key)
        if key == outcome_key:
            values = _true_so_far(values, episodes)
        columns[INFO + key] = info_texts(values)
    return columns


def _true_so_far(values: np.ndarray, episodes: Sequence[Episode]) -> np.ndarray:
    """Per row: was the value true (non-zero, not NaN) on any row of its episode up to here."""
    truthy = np.nan_to_num(np.asarray(values, np.float64), nan=0.0) != 0
    for e in episodes:
        truthy[e.start : e.stop] = np.logical_or.accumulate(truthy[e.start : e.stop])
    return truthy


def field_text(name: str, value: object) -> str:
    """How one field of one row is written (``""``: nothing to show on this row)."""
    if name == "episode":
        return f"ep {value}"
    if name == "step":
        return f"step {value}"
    if name in OUTCOME_FIELDS:
        return str(value)
    if name in ("reward", "return"):
        label = "r" if name == "reward" else "R"
        return f"{label} -" if math.isnan(value) else f"{label} {value:+.2f}"
    return f"{name.removeprefix(INFO)} {value}"  # an info key: see info_texts


def info_texts(values: np.ndarray) -> np.ndarray:
    """An info key's values as the overlay writes them: ``yes``/``no`` for flags (booleans,
    or numbers that are all 0 or 1), 3 significant digits otherwise, ``-`` for NaN."""
    values = np.asarray(values)
    number = values.astype(np.float64)
    finite = number[~np.isnan(number)]
    flag = values.dtype.kind == "b" or bool(np.isin(finite, (0.0, 1.0)).all())
    texts = [
        "-" if math.isnan(v) else ("yes" if v else "no") if flag else f"{v:.3g}"
        for v in number.tolist()
    ]
    return np.array(texts, dtype=object)


@dataclass(frozen=True)
class TextBand:
    """A shaded strip of the frame, pixel rows ``top:bottom``, with lines of fields."""

    top: int
    bottom: int
    lines: tuple[tuple[str, ...], ...]
    inset: int  # pixels above the first line kept free for the border


@dataclass(frozen=True, eq=False)
class Overlay:
    """Draws the overlay on blocks of frames whose first row is ``first_row`` (a transform).

    Build it with :meth:`build`; ``columns`` hold the values of rows ``first_row`` onwards.
    """

    first_row: int
    columns: Mapping[str, np.ndarray]
    bands: tuple[TextBand, ...]
    font_size: int
    border: int

    @classmethod
    def build(
        cls, columns: Mapping[str, np.ndarray], *, first_row: int, height: int, width: int
    ) -> Overlay:
        """An overlay for ``height x width`` frames: font size, lines and bands planned once.

        Fields are packed into lines by the widest text each takes on any of these rows, so
        the bands keep their size for the whole video.
        """
        size = font_size(height)
        border = max(2, round(min(height, width) * BORDER_FRACTION))
        room = width - 2 * (_margin(size) + border)
        top = _pack(columns, TOP_FIELDS, size, room)
        extra = tuple(k for k in columns if k.startswith(INFO))
        bottom = _pack(columns, (*BOTTOM_FIELDS, *extra), size, room)
        # the bands make room for the border, so that it never hides text
        top_height, bottom_height = (
            border + _band_height(size, len(lines)) for lines in (top, bottom)
        )
        bands = (
            TextBand(0, top_height, top, border),
            TextBand(height - bottom_height, height, bottom, 0),
        )
        return cls(first_row, dict(columns), bands, size, border)

    @property
    def lines(self) -> list[tuple[str, ...]]:
        """The fields of each line, top band first."""
        return [line for band in self.bands for line in band.lines]

    def rows(self, start: int, stop: int) -> Overlay:
        """The same overlay for rows ``start:stop`` of the group only (for a shorter video)."""
        a, b = start - self.first_row, stop - self.first_row
        columns = {k: v[a:b] for k, v in self.columns.items()}
        return Overlay(start, columns, self.bands, self.font_size, self.border)

    def __call__(self, start: int, frames: np.ndarray) -> np.ndarray:
        """Draw on ``frames`` (rows ``start``...), in place when they are writeable."""
        if not frames.flags.writeable:
            frames = frames.copy()
        for i, frame in enumerate(frames):
            index = start - self.first_row + i
            for band in self.bands:
                self._draw_band(frame[band.top : band.bottom], band, index)
            colour = COLOURS.get(int(self.columns["outcome"][index]))
            if colour is not None:
                _paint_border(frame, self.border, colour)
        return frames

    def _draw_band(self, region: np.ndarray, band: TextBand, index: int) -> None:
        """Shade ``region`` and write the row's fields on it, line by line."""
        image = Image.fromarray((region * BAND_SHADE).astype(np.uint8))
        draw = ImageDraw.Draw(image)
        face = font(self.font_size)
        gap = face.getlength(GAP)
        margin = _margin(self.font_size)
        outcome = int(self.columns["outcome"][index])
        for number, fields in enumerate(band.lines):
            x = self.border + margin
            y = band.inset + margin + number * _line_height(self.font_size)
            for name in fields:
                text = field_text(name, self.columns[name][index])
                if text:
                    colour = TEXT_COLOURS.get(outcome, TEXT) if name in OUTCOME_FIELDS else TEXT
                    draw.text((x, y), text, font=face, fill=colour)
                    x += face.getlength(text) + gap
        region[...] = np.asarray(image)


GAP = "  "  # between two fields of a line


def _margin(size: int) -> int:
    return max(2, size // 4)


def _line_height(size: int) -> int:
    return round(size * 1.25)


def _band_height(size: int, lines: int) -> int:
    return 2 * _margin(size) + lines * _line_height(size)


def _pack(
    columns: Mapping[str, np.ndarray], fields: Sequence[str], size: int, width: float
) -> tuple[tuple[str, ...], ...]:
    """Fields in lines no wider than ``width`` (greedy), by each field's widest text."""
    face = font(size)
    gap = face.getlength(GAP)
    lines: list[list[str]] = [[]]
    used = 0.0
    for name in fields:
        wide = max((face.getlength(t) for t in _longest_texts(name, columns[name])), default=0)
        if lines[-1] and used + gap + wide > width:
            lines.append([])
            used = 0.0
        used += (gap if lines[-1] else 0.0) + wide
        lines[-1].append(name)
    return tuple(tuple(line) for line in lines)


def _longest_texts(name: str, values: np.ndarray, keep: int = 8) -> list[str]:
    """The ``keep`` longest texts (in characters) a field takes: the candidates for widest."""
    texts = {field_text(name, v) for v in _unique(values)}
    return sorted(texts, key=len)[-keep:]


def _unique(values: np.ndarray) -> list[object]:
    if values.dtype.kind == "f":  # NaN != NaN: np.unique would keep every one of them
        finite = values[~np.isnan(values)]
        return [*np.unique(finite).tolist(), *([math.nan] if len(finite) < len(values) else [])]
    return np.unique(values).tolist()


def _paint_border(frame: np.ndarray, width: int, colour: tuple[int, int, int]) -> None:
    frame[:width] = colour
    frame[-width:] = colour
    frame[:, :width] = colour
    frame[:, -width:] = colour


def text_sprite(text: str, size: int) -> tuple[np.ndarray, np.ndarray]:
    """``(add, keep)``: white ``text`` on a dark box, for pasting on many frames at once.

    Pasted as ``region * keep + add`` (float32, ``(h, w, 3)`` and ``(h, w, 1)``): the mosaic's
    labels are drawn once and pasted on every frame this way.
    """
    face = font(size)
    margin = max(1, size // 4)
    width = round(face.getlength(text)) + 2 * margin
    height = round(size * 1.25) + 2 * margin
    mask = Image.new("L", (width, height), 0)
    ImageDraw.Draw(mask).text((margin, margin), text, font=face, fill=255)
    alpha = np.asarray(mask, np.float32)[..., None] / 255
    # text over a box that darkens what is under it as the bands do
    return np.array(TEXT, np.float32) * alpha, (1 - alpha) * BAND_SHADE
