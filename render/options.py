"""RenderOptions: every option of a render, in one validated, JSON-round-trippable config.

The constructor's keyword arguments are the public attributes and the config (as in
numcodecs): ``RenderOptions.from_config(json.loads(json.dumps(o.get_config()))) == o``.
Fields marked ``output`` change the bytes of a video; only they go into the fingerprint
that decides whether an existing output is up to date, so changing ``workers`` or
``progress`` never re-renders anything, while changing ``crf`` or ``size`` does.

>>> opts = RenderOptions(size=(320, 240), crf=20, cameras=["zed"])
>>> opts.size, opts.cameras
((320, 240), ('zed',))
>>> " ".join(sorted(opts.output_config()))
'cameras codec crf fit fps layout overlay overlay_keys preset scale size'
>>> RenderOptions(fps=-1)
Traceback (most recent call last):
...
render.options.OptionError: fps must be a positive number. Got -1 instead.

Errors name the options as the caller knows them: :meth:`OptionError.render` with the CLI's
flag names gives ``--fps must be a positive number. Got -1 instead.``
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .compose import Layout, get_layout
from .encode import FITS, EncoderSettings

__all__ = [
    "MAX_SIDE",
    "MIN_SIDE",
    "OptionError",
    "RenderOptions",
    "check_video_size",
    "parse_size",
    "within_video_bounds",
]

MIN_SIDE, MAX_SIDE = 16, 8192  # pixels: smaller shows nothing, larger no encoder takes
_ENCODER = EncoderSettings()  # its defaults are the options' defaults


class OptionError(ValueError):
    """An option with a bad value. The message names options through a function: the
    fields' own names by default (Python callers), ``--flags`` for the command line.

    ``template`` is a :meth:`str.format` string whose ``{0}``, ``{1}``... are the ``fields``
    named; ``values`` fill the named placeholders.
    """

    def __init__(self, template: str, *fields: str, **values: Any) -> None:
        self.template, self.fields, self.values = template, fields, values
        super().__init__(self.render())

    def render(self, name: Callable[[str], str] = str) -> str:
        """The message, each option called ``name(field)``."""
        return self.template.format(*map(name, self.fields), **self.values)


def _output(default: Any) -> Any:
    """A field that changes the rendered bytes (part of the up-to-date fingerprint)."""
    return field(default=default, metadata={"output": True})


@dataclass(frozen=True)
class RenderOptions:
    """How to render a frame store into videos.

    Args:
        size: output ``(width, height)`` of every video, each from :data:`MIN_SIDE` to
            :data:`MAX_SIDE`; ``None`` keeps the composed size. Odd values are rounded up to
            even (yuv420p needs even dimensions; a note is logged).
        fit: how the picture goes into ``size`` when the aspect ratios differ: ``pad``
            (keep it, centred on black), ``crop`` (keep it, cut the overflow) or ``stretch``.
        scale: factor applied to the composed size instead of ``size``; ``None`` for 1.
        fps: playback rate; ``None`` uses the store's.
        codec, crf, preset, encoder_threads: the encoder's settings, see
            :class:`~render.encode.EncoderSettings` (:attr:`encoder`).
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
    fit: str = _output("pad")
    scale: float | None = _output(None)
    fps: float | None = _output(None)
    codec: str = _output(_ENCODER.codec)
    crf: int | None = _output(_ENCODER.crf)
    preset: str | None = _output(_ENCODER.preset)
    encoder_threads: int | None = _ENCODER.threads
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
        if self.size is not None:
            check_video_size(self.size, "size")
        if self.fit not in FITS:
            raise OptionError("{0} must be one of " + ", ".join(FITS) + ". Got {v!r} instead.",
                              "fit", v=self.fit)  # fmt: skip
        _check_positive("scale", self.scale)
        _check_positive("fps", self.fps)
        if self.size is not None and self.scale is not None:
            raise OptionError("pass {0} or {1}, not both", "size", "scale")
        if self.crf is not None and not (isinstance(self.crf, int) and 0 <= self.crf <= 63):
            raise OptionError("{0} must be an integer from 0 to 63. Got {v!r} instead.", "crf",
                              v=self.crf)  # fmt: skip
        for name in ("encoder_threads", "workers"):
            value = getattr(self, name)
            if value is not None and not _positive_int(value):
                raise OptionError("{0} must be a positive integer. Got {v!r} instead.", name,
                                  v=value)  # fmt: skip
        if self.segment_frames is not None and not _count(self.segment_frames):
            raise OptionError(
                "{0} must be a positive integer, 0 (never cut) or None (automatic). "
                "Got {v!r} instead.", "segment_frames", v=self.segment_frames,
            )  # fmt: skip
        if self.success_key is not None and not (
            isinstance(self.success_key, str) and self.success_key
        ):
            raise OptionError("{0} must be an info key name. Got {v!r} instead.",
                              "success_key", v=self.success_key)  # fmt: skip
        if self.overlay_keys is not None and not self.overlay:
            raise OptionError("{0} needs {1}", "overlay_keys", "overlay")
        if self.workers is not None and self.scheduler is not None:
            raise OptionError("pass {0} or {1}, not both", "scheduler", "workers")
        if self.cameras is not None and not self.cameras:
            raise OptionError("{0} must name at least one camera (or be None for all)",
                              "cameras")  # fmt: skip
        get_layout(self.layout)  # raises UnknownLayoutError for an unknown name

    @property
    def encoder(self) -> EncoderSettings:
        """The encoder settings these options give."""
        return EncoderSettings(self.codec, self.crf, self.preset, self.encoder_threads)

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


def check_video_size(size: Sequence[Any], field: str) -> None:
    """:class:`OptionError` (about ``field``) unless ``size`` is ``(width, height)`` with each
    side from :data:`MIN_SIDE` to :data:`MAX_SIDE` pixels."""
    shown = "x".join(map(str, size))
    if not (len(size) == 2 and all(_positive_int(v) for v in size)):
        raise OptionError("{0} must be two positive integers WxH. Got {v} instead.", field,
                          v=shown)  # fmt: skip
    if not within_video_bounds(size):
        raise OptionError("{0} must be from {lo}x{lo} to {hi}x{hi} pixels. Got {v} instead.",
                          field, v=shown, lo=MIN_SIDE, hi=MAX_SIDE)  # fmt: skip


def within_video_bounds(size: Sequence[int]) -> bool:
    """Each side from :data:`MIN_SIDE` to :data:`MAX_SIDE` pixels."""
    return all(MIN_SIDE <= v <= MAX_SIDE for v in size)


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
        raise OptionError("{0} must be a positive number. Got {v!r} instead.", name, v=value)


def _jsonable(value: Any) -> Any:
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, Mapping):
        return dict(value)
    return value
