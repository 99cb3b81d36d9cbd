"""RenderOptions: every option of a render, in one validated, JSON-round-trippable config.

The constructor's keyword arguments are the public attributes and the config (as in
numcodecs): ``RenderOptions.from_config(json.loads(json.dumps(o.get_config()))) == o``.
Fields marked ``output`` change the bytes of a video; only they go into the fingerprint
that decides whether an existing output is up to date, so changing ``workers`` or
``progress`` never re-renders anything, while changing ``crf`` or ``size`` does.

>>> opts = RenderOptions(size=(320, 240), crf=20, cameras=["zed"])
>>> opts.size, opts.cameras
((320, 240), ('zed',))
>>> sorted(opts.output_config())
['cameras', 'codec', 'crf', 'fps', 'layout', 'overlay', 'overlay_keys', 'preset', 'scale', 'size']
>>> RenderOptions(fps=-1)
Traceback (most recent call last):
...
ValueError: fps must be a positive number. Got -1 instead.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .compose import Layout, get_layout

__all__ = ["RenderOptions", "parse_size"]


def _output(default: Any) -> Any:
    """A field that changes the rendered bytes (part of the up-to-date fingerprint)."""
    return field(default=default, metadata={"output": True})


@dataclass(frozen=True)
class RenderOptions:
    """How to render a frame store into videos.

    Args:
        size: output ``(width, height)`` of every video; ``None`` keeps the composed size.
            Odd values are rounded up to even (yuv420p needs even dimensions).
        scale: factor applied to the composed size instead of ``size``; ``None`` for 1.
        fps: playback rate; ``None`` uses the store's.
        codec: ffmpeg video encoder (``libx264`` plays everywhere).
        crf: constant rate factor (lower is better; 23 is x264's default); ``None`` omits it,
            for encoders without one.
        preset: encoder speed/size preset; ``None`` omits it.
        encoder_threads: threads per encoder (x264 ``-threads``); ``None`` lets ffmpeg choose
            (all cores). Use 1 with one Dask worker per core.
        cameras: cameras to use, in this order; ``None`` uses every camera of a group.
        layout: layout name or config (see :mod:`render.compose`).
        overlay: draw step, episode, reward, return, termination and ``overlay_keys`` on
            every frame, and a green/red border on the last frames of a successful/failed
            episode (see :mod:`render.overlay`).
        overlay_keys: info keys shown by the overlay; ``None`` shows the success key (see
            ``success_key``) when the group stores one.
        success_key: the info key that tells whether an episode succeeded (true on any of
            its rows); ``None`` uses the first stored of ``success``, ``is_success``,
            ``episode.success_once``, else the env's declared rule, else the outcome is
            ``unknown`` (see :mod:`render.episodes`). A group without this key fails.
        split_episodes: one video per episode (``..._episode{n}.mp4``) instead of one per env.
        mosaic: also write ``{video_prefix}_mosaic.mp4``, every env tiled in a grid.
        gallery: also write ``index.html`` and a poster per video (see :mod:`render.gallery`).
        segment_frames: cut videos into segments of this many frames, encoded by separate
            tasks and joined without re-encoding; ``None`` cuts long videos when there are
            fewer videos than Dask workers (see :mod:`render.segments`); ``0`` never cuts.
        groups: glob selecting groups by name (``rank0_*``).
        overwrite: re-render outputs that are up to date.
        dry_run: plan only; report what would be rendered.
        scheduler: address of a running ``dask.distributed`` scheduler.
        workers: start a local Dask cluster with this many single-thread workers.
        progress: progress bar on stderr; ``None`` shows it only on a terminal.
    """

    size: tuple[int, int] | None = _output(None)
    scale: float | None = _output(None)
    fps: float | None = _output(None)
    codec: str = _output("libx264")
    crf: int | None = _output(23)
    preset: str | None = _output("medium")
    encoder_threads: int | None = None
    cameras: tuple[str, ...] | None = _output(None)
    layout: str | Mapping[str, Any] = _output("behavior")
    overlay: bool = _output(False)
    overlay_keys: tuple[str, ...] | None = _output(None)
    success_key: str | None = None  # in the fingerprint through the outcomes it gives
    split_episodes: bool = False
    mosaic: bool = False
    gallery: bool = False
    segment_frames: int | None = None
    groups: str = "*"
    overwrite: bool = False
    dry_run: bool = False
    scheduler: str | None = None
    workers: int | None = None
    progress: bool | None = None

    def __post_init__(self) -> None:
        # normalise sequences from JSON or the CLI to tuples (hashable, frozen)
        if self.size is not None:
            object.__setattr__(self, "size", tuple(self.size))
        if self.cameras is not None:
            object.__setattr__(self, "cameras", tuple(self.cameras))
        if self.overlay_keys is not None:
            object.__setattr__(self, "overlay_keys", tuple(self.overlay_keys))
        self._validate()

    def _validate(self) -> None:
        if self.size is not None and not _is_size(self.size):
            shown = "x".join(map(str, self.size))
            raise ValueError(f"size must be two positive integers WxH. Got {shown} instead.")
        _check_positive("scale", self.scale)
        _check_positive("fps", self.fps)
        if self.size is not None and self.scale is not None:
            raise ValueError("pass size or scale, not both")
        if self.crf is not None and not (isinstance(self.crf, int) and 0 <= self.crf <= 63):
            raise ValueError(f"crf must be an integer from 0 to 63. Got {self.crf!r} instead.")
        if self.encoder_threads is not None and not _positive_int(self.encoder_threads):
            raise ValueError(
                f"encoder_threads must be a positive integer. Got {self.encoder_threads!r} instead."
            )
        if self.segment_frames is not None and not _count(self.segment_frames):
            raise ValueError(
                "segment_frames must be a positive integer, 0 (never cut) or None (automatic). "
                f"Got {self.segment_frames!r} instead."
            )
        if self.success_key is not None and not (
            isinstance(self.success_key, str) and self.success_key
        ):
            raise ValueError(
                f"success_key must be an info key name. Got {self.success_key!r} instead."
            )
        if self.overlay_keys is not None and not self.overlay:
            raise ValueError("overlay_keys needs overlay=True (--overlay)")
        if self.workers is not None and not _positive_int(self.workers):
            raise ValueError(f"workers must be a positive integer. Got {self.workers!r} instead.")
        if self.workers is not None and self.scheduler is not None:
            raise ValueError("pass scheduler or workers, not both")
        if self.cameras is not None and not self.cameras:
            raise ValueError("cameras must name at least one camera (or be None for all)")
        get_layout(self.layout)  # raises UnknownLayoutError for an unknown name

    def get_layout(self) -> Layout:
        """The :class:`~render.compose.Layout` these options name."""
        return get_layout(self.layout)

    def get_config(self) -> dict[str, Any]:
        """JSON-serialisable config; ``from_config`` rebuilds an equal object."""
        return {f.name: _jsonable(getattr(self, f.name)) for f in dataclasses.fields(self)}

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> RenderOptions:
        return cls(**config)

    def output_config(self) -> dict[str, Any]:
        """The part of the config that changes the rendered videos."""
        config = self.get_config()
        return {
            f.name: config[f.name] for f in dataclasses.fields(self) if f.metadata.get("output")
        }


def parse_size(text: str) -> tuple[int, int]:
    """``"640x480"`` -> ``(640, 480)``; ``ValueError`` naming the expected form otherwise.

    >>> parse_size("640x480")
    (640, 480)
    """
    parts = text.lower().split("x")
    try:
        width, height = (int(p) for p in parts)
    except ValueError:
        raise ValueError(
            f"size must look like WIDTHxHEIGHT (640x480). Got {text!r} instead."
        ) from None
    return width, height


def _is_size(size: Sequence[Any]) -> bool:
    return len(size) == 2 and all(_positive_int(v) for v in size)


def _count(value: Any) -> bool:
    """A non-negative int (and not a bool)."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _positive_int(value: Any) -> bool:
    return _count(value) and value > 0


def _check_positive(name: str, value: float | None) -> None:
    if value is None:
        return
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not (ok and math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a positive number. Got {value!r} instead.")


def _jsonable(value: Any) -> Any:
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, Mapping):
        return dict(value)
    return value
