"""Planning: which videos a render writes, from which rows, at what size, and which are fresh.

:func:`plan_outputs` turns a store and :class:`~render.options.RenderOptions` into a list of
plans, one per output file: an :class:`OutputPlan` per group (or one per camera with the
``separate`` layout, or one per episode with ``split_episodes``); :mod:`render.mosaic` adds a
:class:`~render.mosaic.MosaicPlan` with ``mosaic``. A plan is plain, picklable data:
everything a Dask worker needs to render one video, including its ``transforms`` (per-block
steps after composing, such as the :class:`~render.overlay.Overlay`) and the
:class:`~render.episodes.Episode` records the summary and the gallery show. Every plan is a
:class:`VideoPlan`: rows ``rows[0]:rows[1]`` of something, whose :meth:`VideoPlan.pictures`
yields the frames to encode; a segment of a long video is the same plan with a narrower row
range (see :mod:`render.segments`).

Every rendered video gets a sidecar ``.render/<name>.mp4.json`` in the output directory (a
hidden directory: ``ls OUT | grep behavior_video | wc -l`` still counts exactly the videos)
that records a fingerprint of what went into it: the store's identity, the group's
attributes (committed rows, status, cameras) and the options that change the picture. An
output is up to date when its video and sidecar exist, the fingerprints match, the render was
complete, and the video has the size in bytes the sidecar recorded.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from collect.location import StoreLocation
from collect.store import FrameStore, GroupReader, group_name

from .compose import Canvas
from .encode import WORK_DIR, output_size
from .episodes import Episode, OutcomeRule, outcome_rule, read_episodes, store_env_type
from .files import write_text_atomically
from .metadata import GroupMetadata, as_metadata
from .options import MAX_SIDE, MIN_SIDE, OptionError, RenderOptions, within_video_bounds
from .overlay import Overlay, overlay_columns
from .reader import RowBlock, open_group, read_blocks
from .report import OutputResult

__all__ = [
    "FrameTransform",
    "OutputPlan",
    "VideoPlan",
    "group_outcome_rule",
    "group_overlay",
    "is_up_to_date",
    "plan_outputs",
    "remove_sidecar",
    "sidecar_path",
    "write_sidecar",
]

log = logging.getLogger(__name__)

SIDECAR_DIR = WORK_DIR  # in the output directory: what each video was rendered from

# A per-block step after composing: (first row of the block, frames) -> frames of the same size.
FrameTransform = Callable[[int, np.ndarray], np.ndarray]

# A block of rows and its picture, None where the rows could not be read.
Pictures = Iterator[tuple[RowBlock, np.ndarray | None]]


@dataclass(frozen=True, kw_only=True)
class VideoPlan:
    """One video to render: rows ``rows[0]:rows[1]`` of ``group``, and how to encode them.

    Subclasses say where the pictures come from (:meth:`pictures`) and their size
    (:attr:`picture_size`); everything else (file, rows, encoding, sidecar, result) is here.
    """

    store: StoreLocation
    group: str  # the group it shows (the name results and the summary use)
    path: Path
    rows: tuple[int, int]
    fps: float
    size: tuple[int, int] | None
    options: RenderOptions
    fingerprint: str
    episodes: tuple[Episode, ...] = ()
    # (array path, kind) of each lost metadata array of the group: "partial metadata"
    partial_metadata: tuple[tuple[str, str], ...] = ()

    @property
    def frame_count(self) -> int:
        return self.rows[1] - self.rows[0]

    @property
    def sources(self) -> int:
        """How many groups the video reads (its cost, next to a one-group video)."""
        return 1

    @property
    def picture_size(self) -> tuple[int, int]:
        """``(width, height)`` of the pictures given to the encoder."""
        raise NotImplementedError

    @property
    def output_size(self) -> tuple[int, int]:
        """``(width, height)`` of the video."""
        return output_size(*self.picture_size, self.size)

    def pictures(self) -> Pictures:
        """Each block of the plan's rows with its picture (None where unreadable)."""
        raise NotImplementedError

    def with_rows(self, start: int, stop: int, path: Path) -> VideoPlan:
        """The same video, rows ``start:stop`` only, written to ``path`` (a segment)."""
        return dataclasses.replace(self, rows=(start, stop), path=path)

    def encoder_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of :class:`~render.encode.VideoEncoder` for this video."""
        return {
            "fps": self.fps,
            "size": self.size,
            "fit": self.options.fit,
            "encoder": self.options.encoder,
        }

    def result(self, status: str, **fields: Any) -> OutputResult:
        """An :class:`OutputResult` for this plan."""
        fields.setdefault("rows", self.frame_count)
        fields.setdefault("episodes", self.episodes)
        fields.setdefault("partial_metadata", dict(self.partial_metadata))
        return OutputResult(self.group, self.path, status, size=self.output_size, **fields)


@dataclass(frozen=True, kw_only=True)
class OutputPlan(VideoPlan):
    """A video of one group: its cameras composed on ``canvas``, then ``transforms``."""

    canvas: Canvas
    transforms: tuple[FrameTransform, ...] = ()

    @property
    def picture_size(self) -> tuple[int, int]:
        return self.canvas.width, self.canvas.height

    def pictures(self) -> Pictures:
        group = open_group(self.store, self.group)
        for block in read_blocks(group, self.canvas.cameras, *self.rows):
            if block.frames is None:
                yield block, None
                continue
            picture = self.canvas.compose(block.frames)
            for transform in self.transforms:
                picture = transform(block.start, picture)
            yield block, picture


def plan_outputs(
    store: FrameStore, out_dir: Path, options: RenderOptions
) -> tuple[list[VideoPlan], list[OutputResult]]:
    """Plans for every selected group, and a failed result for each group that cannot be read.

    ``ValueError`` when ``options.groups`` matches none of the store's groups (a typo would
    otherwise render nothing and succeed); a store without groups gives no plans.
    """
    names = store.group_names(options.groups)
    if not names and store.group_names():
        raise ValueError(
            f"no group of {store.location.url!r} matches {options.groups!r}; "
            f"its groups are {', '.join(_abbreviated(store.group_names()))}"
        )
    plans: list[VideoPlan] = []
    failures: list[OutputResult] = []
    for name in names:
        try:
            plans += _plan_group(store, store.group(name), out_dir, options)
        except OptionError:  # the options do not fit this store: a usage error
            raise
        except ValueError as e:  # StoreFormatError (damaged group) or no such camera/rows
            path = out_dir / f"{store.video_prefix}_{name}.mp4"
            log.error("group %s cannot be rendered: %s", name, e)
            failures.append(OutputResult(name, path, "failed", error=str(e)))
    return plans, failures


def _abbreviated(names: list[str], keep: int = 4) -> list[str]:
    return names if len(names) <= keep else [*names[:keep], f"... ({len(names)} in all)"]


def _plan_group(
    store: FrameStore, group: GroupReader, out_dir: Path, options: RenderOptions
) -> list[OutputPlan]:
    cameras = selected_cameras(group, options.cameras)
    meta = as_metadata(group)  # lost metadata arrays degrade the report, not the frames
    if meta.partial:
        log.warning("partial metadata, every frame still rendered: %s", "; ".join(meta.problems))
    rule = group_outcome_rule(store, meta, options)
    episodes = read_episodes(meta, rule)
    stem = f"{store.video_prefix}_{group_name(group.rank, group.gpu, group.env)}"
    fps = options.fps or store.fps
    plans = []
    for canvas in options.get_layout().canvases(cameras):
        overlay = group_overlay(meta, episodes, canvas, options, rule)
        for rows, suffix, shown in _row_ranges(group, episodes, options):
            identity = {
                "store": store.attrs.get("created"),
                "group": group.attrs,
                "options": options.output_config(),
                "canvas": asdict(canvas),
                "rows": rows,
                "fps": fps,
            }
            if overlay is not None:  # the outcomes it draws
                identity["outcomes"] = [(e.start, e.outcome, e.known_from) for e in episodes]
            if meta.partial:  # a repaired array changes what the video and report say
                identity["partial_metadata"] = meta.partial_metadata
            plans.append(
                OutputPlan(
                    store=store.location,
                    group=group.name,
                    path=out_dir / f"{stem}{suffix}{canvas.suffix}.mp4",
                    canvas=canvas,
                    rows=rows,
                    fps=fps,
                    size=scaled_size(canvas, options),
                    options=options,
                    fingerprint=digest(identity),
                    episodes=shown,
                    partial_metadata=tuple(meta.partial_metadata.items()),
                    transforms=() if overlay is None else (overlay.rows(*rows),),
                )
            )
    return plans


def _row_ranges(
    group: GroupReader, episodes: tuple[Episode, ...], options: RenderOptions
) -> list[tuple[tuple[int, int], str, tuple[Episode, ...]]]:
    """``(rows, file name suffix, episodes shown)`` of each video of a group."""
    if not options.split_episodes:
        return [((0, group.rows), "", episodes)]
    return [((e.start, e.stop), f"_episode{e.episode}", (e,)) for e in episodes]


def group_outcome_rule(
    store: FrameStore, group: GroupReader | GroupMetadata, options: RenderOptions
) -> OutcomeRule:
    """How the group's episodes get their outcome: ``options.success_key``, a stored success
    key, or the rule of the env type in the store's run config (see :mod:`render.episodes`)."""
    return outcome_rule(group, env_type=store_env_type(store), key=options.success_key)


def group_overlay(
    group: GroupReader | GroupMetadata,
    episodes: tuple[Episode, ...],
    canvas: Canvas,
    options: RenderOptions,
    rule: OutcomeRule,
) -> Overlay | None:
    """The overlay for every row of the group on this canvas, or None without ``overlay``
    (the per-env videos' and the mosaic's cells', so both draw the same). An info key whose
    array is lost is drawn as ``-``; one the group never had is a ``ValueError``."""
    if not options.overlay:
        return None
    meta = as_metadata(group)
    keys = options.overlay_keys
    if keys is None:
        keys = (rule.key,) if rule.key else ()
    missing = [k for k in keys if k not in meta.info_keys and k not in meta.lost_info_keys]
    if missing:
        raise ValueError(
            f"group {meta.name!r} has no info key {', '.join(map(repr, missing))}; "
            f"it has {', '.join(meta.info_keys) or 'none'}"
        )
    columns = overlay_columns(meta, episodes, keys, outcome_key=rule.key)
    return Overlay.build(columns, first_row=0, height=canvas.height, width=canvas.width)


def selected_cameras(
    group: GroupReader, names: tuple[str, ...] | None
) -> dict[str, tuple[int, int]]:
    """``{camera: (height, width)}`` of ``names`` (all when None); ValueError naming the
    group when it has no rows or lacks one of them."""
    if not group.cameras or not group.rows:
        raise ValueError(
            f"group {group.name!r} has no committed rows (status {group.status}); nothing to render"
        )
    if names is None:
        return dict(group.cameras)
    missing = [c for c in names if c not in group.cameras]
    if missing:
        raise ValueError(
            f"group {group.name!r} has no camera {', '.join(map(repr, missing))}; "
            f"it has {', '.join(group.cameras)}"
        )
    return {c: group.cameras[c] for c in names}


def scaled_size(canvas: Canvas, options: RenderOptions) -> tuple[int, int] | None:
    """The requested output size of a canvas: ``size``, the scaled canvas, or None.

    :class:`~render.options.OptionError` when ``scale`` makes a side smaller than
    :data:`~render.options.MIN_SIDE` or larger than :data:`~render.options.MAX_SIDE`.
    """
    if options.scale is None:
        return options.size
    size = (round(canvas.width * options.scale), round(canvas.height * options.scale))
    if not within_video_bounds(size):
        raise OptionError(
            "{0} {scale:g} makes {w}x{h} videos of {w0}x{h0} pictures; each side must be "
            "from {lo} to {hi} pixels", "scale", scale=options.scale, w=size[0], h=size[1],
            w0=canvas.width, h0=canvas.height, lo=MIN_SIDE, hi=MAX_SIDE,
        )  # fmt: skip
    return size


def digest(identity: dict[str, Any]) -> str:
    """A fingerprint of what goes into a video (JSON, keys sorted, hashed)."""
    text = json.dumps(identity, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def sidecar_path(video: Path) -> Path:
    """``.render/name.mp4.json`` next to ``name.mp4``."""
    return video.parent / SIDECAR_DIR / f"{video.name}.json"


def is_up_to_date(plan: VideoPlan) -> bool:
    """Whether the video at ``plan.path`` is a complete render of exactly this plan."""
    try:
        meta = json.loads(sidecar_path(plan.path).read_text())
        return (
            meta.get("fingerprint") == plan.fingerprint
            and meta.get("complete") is True
            and meta.get("bytes") == plan.path.stat().st_size
        )
    except (OSError, ValueError):
        return False


def remove_sidecar(plan: VideoPlan) -> None:
    """Forget the previous render of this output (done before re-rendering it)."""
    sidecar_path(plan.path).unlink(missing_ok=True)


def write_sidecar(plan: VideoPlan, frames: int, complete: bool) -> None:
    """Record what the video at ``plan.path`` holds (atomically: temp file + rename)."""
    meta = {
        "fingerprint": plan.fingerprint,
        "complete": complete,
        "frames": frames,
        "bytes": plan.path.stat().st_size,
        "store": plan.store.url,
        "group": plan.group,
        "rows": list(plan.rows),
        "fps": plan.fps,
        "size": list(plan.output_size),
        "options": plan.options.output_config(),
    }
    path = sidecar_path(plan.path)
    path.parent.mkdir(exist_ok=True)
    write_text_atomically(path, json.dumps(meta, indent=1, sort_keys=True))
