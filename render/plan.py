"""Planning: which videos a render writes, from which rows, at what size, and which are fresh.

:func:`plan_outputs` turns a store and :class:`~render.options.RenderOptions` into a list of
:class:`OutputPlan`, one per output file (a group gives one, or one per camera with the
``separate`` layout). A plan is plain, picklable data: everything a Dask worker needs to
render one video. Later features fit here as more plans per group (per-episode row ranges,
segments of a long video) or as ``transforms`` (per-block steps after composing, e.g. text
overlays), without changing the pipeline.

Every rendered video gets a sidecar ``.render/<name>.mp4.json`` in the output directory (a
hidden directory: ``ls OUT | grep behavior_video | wc -l`` still counts exactly the videos)
that records a fingerprint of what went into it: the store's identity, the group's
attributes (committed rows, status, cameras) and the options that change the picture. An
output is up to date when its video and sidecar exist, the fingerprints match, the render was
complete, and the video has the size in bytes the sidecar recorded.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from collect.store import FrameStore, GroupReader, group_name

from .compose import Canvas
from .encode import output_size
from .options import RenderOptions
from .report import OutputResult

__all__ = [
    "FrameTransform",
    "OutputPlan",
    "is_up_to_date",
    "plan_outputs",
    "remove_sidecar",
    "sidecar_path",
    "write_sidecar",
]

log = logging.getLogger(__name__)

SIDECAR_DIR = ".render"  # in the output directory: what each video was rendered from

# A per-block step after composing: (first row of the block, frames) -> frames of the same size.
FrameTransform = Callable[[int, np.ndarray], np.ndarray]


@dataclass(frozen=True)
class OutputPlan:
    """One video to render: rows ``rows[0]:rows[1]`` of ``group`` composed on ``canvas``."""

    store: Path
    group: str
    path: Path
    canvas: Canvas
    rows: tuple[int, int]
    fps: float
    size: tuple[int, int] | None
    options: RenderOptions
    fingerprint: str
    transforms: tuple[FrameTransform, ...] = ()

    @property
    def frame_count(self) -> int:
        return self.rows[1] - self.rows[0]

    @property
    def output_size(self) -> tuple[int, int]:
        """``(width, height)`` of the video."""
        return output_size(self.canvas.width, self.canvas.height, self.size)

    def encoder_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of :class:`~render.encode.VideoEncoder` for this video."""
        o = self.options
        return {
            "fps": self.fps,
            "size": self.size,
            "codec": o.codec,
            "crf": o.crf,
            "preset": o.preset,
            "threads": o.encoder_threads,
        }

    def result(self, status: str, **fields: Any) -> OutputResult:
        """An :class:`OutputResult` for this plan."""
        fields.setdefault("rows", self.frame_count)
        return OutputResult(self.group, self.path, status, size=self.output_size, **fields)


def plan_outputs(
    store: FrameStore, out_dir: Path, options: RenderOptions
) -> tuple[list[OutputPlan], list[OutputResult]]:
    """Plans for every selected group, and a failed result for each group that cannot be read.

    ``ValueError`` when ``options.groups`` matches none of the store's groups (a typo would
    otherwise render nothing and succeed); a store without groups gives no plans.
    """
    names = store.group_names(options.groups)
    if not names and store.group_names():
        raise ValueError(
            f"no group of {str(store.path)!r} matches {options.groups!r}; "
            f"its groups are {', '.join(_abbreviated(store.group_names()))}"
        )
    plans: list[OutputPlan] = []
    failures: list[OutputResult] = []
    for name in names:
        try:
            plans += _plan_group(store, store.group(name), out_dir, options)
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
    cameras = _selected_cameras(group, options.cameras)
    stem = f"{store.video_prefix}_{group_name(group.rank, group.gpu, group.env)}"
    rows = (0, group.rows)
    fps = options.fps or store.fps
    plans = []
    for canvas in options.get_layout().canvases(cameras):
        size = _scaled(canvas, options)
        identity = {
            "store": store.attrs.get("created"),
            "group": group.attrs,
            "options": options.output_config(),
            "canvas": asdict(canvas),
            "rows": rows,
            "fps": fps,
        }
        plans.append(
            OutputPlan(
                store=store.path.resolve(),
                group=group.name,
                path=out_dir / f"{stem}{canvas.suffix}.mp4",
                canvas=canvas,
                rows=rows,
                fps=fps,
                size=size,
                options=options,
                fingerprint=_digest(identity),
            )
        )
    return plans


def _selected_cameras(
    group: GroupReader, names: tuple[str, ...] | None
) -> dict[str, tuple[int, int]]:
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


def _scaled(canvas: Canvas, options: RenderOptions) -> tuple[int, int] | None:
    """The requested output size of a canvas: ``size``, the scaled canvas, or None."""
    if options.scale is None:
        return options.size
    return (
        max(2, round(canvas.width * options.scale)),
        max(2, round(canvas.height * options.scale)),
    )


def _digest(identity: dict[str, Any]) -> str:
    text = json.dumps(identity, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def sidecar_path(video: Path) -> Path:
    """``.render/name.mp4.json`` next to ``name.mp4``."""
    return video.parent / SIDECAR_DIR / f"{video.name}.json"


def is_up_to_date(plan: OutputPlan) -> bool:
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


def remove_sidecar(plan: OutputPlan) -> None:
    """Forget the previous render of this output (done before re-rendering it)."""
    sidecar_path(plan.path).unlink(missing_ok=True)


def write_sidecar(plan: OutputPlan, frames: int, complete: bool) -> None:
    """Record what the video at ``plan.path`` holds (atomically: temp file + rename)."""
    meta = {
        "fingerprint": plan.fingerprint,
        "complete": complete,
        "frames": frames,
        "bytes": plan.path.stat().st_size,
        "store": str(plan.store),
        "group": plan.group,
        "rows": list(plan.rows),
        "fps": plan.fps,
        "size": list(plan.output_size),
        "options": plan.options.output_config(),
    }
    path = sidecar_path(plan.path)
    path.parent.mkdir(exist_ok=True)
    partial = path.with_name(f"{path.stem}.{uuid.uuid4().hex}.partial.json")
    try:
        partial.write_text(json.dumps(meta, indent=1, sort_keys=True))
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
