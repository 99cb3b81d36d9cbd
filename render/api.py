"""``render_store``: the one call that renders a frame store (the CLI and the eval runner use it).

>>> import tempfile, numpy as np
>>> from collect import FrameWriter
>>> root = tempfile.mkdtemp()
>>> with FrameWriter(root + "/frames.zarr", rank=0, gpu=1, num_envs=2, fps=10) as writer:
...     for t in range(12):
...         writer.append({"zed": np.full((2, 32, 48, 3), 10 * t, np.uint8)})
>>> report = render_store(root + "/frames.zarr", root + "/videos")
>>> report.ok, [p.name for p in report.outputs]
(True, ['behavior_video_rank0_gpu1_env0.mp4', 'behavior_video_rank0_gpu1_env1.mp4'])
>>> [r.status for r in render_store(root + "/frames.zarr", root + "/videos").results]
['up to date', 'up to date']
"""

from __future__ import annotations

import dataclasses
import logging
import os
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from collect.location import StoreLocation
from collect.store import open_store

from .encode import check_codec
from .gallery import write_gallery
from .job import run_plans
from .mosaic import plan_mosaic
from .options import RenderOptions
from .plan import is_up_to_date, plan_outputs
from .report import OutputResult, RenderReport
from .run_report import write_run_report

__all__ = ["render_store"]

log = logging.getLogger(__name__)


def render_store(
    store: str | os.PathLike | StoreLocation,
    out: str | Path,
    options: RenderOptions | None = None,
    *,
    storage_options: Mapping[str, Any] | None = None,
    **changes: Any,
) -> RenderReport:
    """Render one video per group of the frame store ``store`` into the directory ``out``.

    ``store`` is a path or a URL (``s3://bucket/run.zarr``, with ``storage_options`` for
    fsspec or credentials from the environment); the Dask workers read it directly.

    ``options`` (default: :class:`~render.options.RenderOptions`'s defaults) with
    ``changes`` applied as :func:`dataclasses.replace` does: ``render_store(s, o, crf=20)``,
    or ``render_store(s, o, saved_options, overwrite=True)``.

    Videos are named ``{video_prefix}_rank{r}_gpu{g}_env{e}.mp4`` (``split_episodes`` adds
    ``_episode{n}``, the ``separate`` layout ``_{camera}``); ``mosaic`` adds
    ``{video_prefix}_mosaic.mp4`` and ``gallery`` an ``index.html`` with posters. Every
    render (not a dry run) also writes the run report, ``episodes.csv`` and ``summary.json``
    (see :mod:`render.run_report`). Outputs that are up to date with their group and these
    options are left alone unless ``overwrite``.

    Raises ``TypeError`` for a change that is no option, ``ValueError`` for invalid options
    (:class:`~render.options.OptionError`; an unknown layout or codec, a ``groups`` glob that
    matches no group...), ``FileNotFoundError`` / :class:`~collect.store.StoreFormatError`
    for a missing or foreign store, :class:`~collect.location.StoreAccessError` for one that
    cannot be reached, ``NotADirectoryError`` when ``out`` is a file, and
    ``ConnectionError`` when the scheduler cannot be reached. Failures of single outputs do
    not raise: they are in the report (``report.ok`` is False), and every other output is
    still rendered.
    """
    names = {f.name for f in dataclasses.fields(RenderOptions)}
    unknown = sorted(set(changes) - names)
    if unknown:
        raise TypeError(
            f"render_store() got unknown options {unknown}; the options are RenderOptions' "
            f"fields: {', '.join(sorted(names))}"
        )
    options = dataclasses.replace(options or RenderOptions(), **changes)
    if options.size is not None and any(side % 2 for side in options.size):
        even = "x".join(str(side + side % 2) for side in options.size)
        log.warning(
            "size %s is rounded up to %s: the videos' yuv420p needs even sides",
            "x".join(map(str, options.size)), even,
        )  # fmt: skip
    started = time.perf_counter()
    check_codec(options.encoder)
    frame_store = open_store(store, storage_options)
    out_dir = _output_dir(Path(out), create=not options.dry_run)
    plans, failures = plan_outputs(frame_store, out_dir, options)
    mosaic = plan_mosaic(frame_store, plans, out_dir, options) if options.mosaic else None
    plans += [mosaic] if mosaic else []
    fresh = {p.path for p in plans if not options.overwrite and is_up_to_date(p)}
    todo = [p for p in plans if p.path not in fresh]
    log.info("%d outputs to render, %d up to date", len(todo), len(fresh))
    if options.dry_run:
        done = {p.path: p.result("would render", frames=p.frame_count) for p in todo}
    else:
        done = {r.path: r for r in run_plans(todo, options)}
    results: list[OutputResult] = [
        done[p.path] if p.path in done else p.result("up to date", frames=p.frame_count)
        for p in plans
    ]
    order = {name: i for i, name in enumerate(frame_store.group_names(options.groups))}
    results = sorted(
        results + failures, key=lambda r: order.get(r.group, len(order))
    )  # stable: keeps cameras and episodes in order, the mosaic last
    if not options.dry_run:
        write_run_report(out_dir, frame_store, options)  # episodes.csv, summary.json
    if options.gallery and not options.dry_run:
        write_gallery(out_dir, results, title=f"{frame_store.location.name}: evalframes videos")
    return RenderReport(results, seconds=time.perf_counter() - started, dry_run=options.dry_run)


def _output_dir(out: Path, create: bool) -> Path:
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(
            f"output path {str(out)!r} is a file; pass a directory (it is created if missing)"
        )
    if create:
        try:
            out.mkdir(parents=True, exist_ok=True)
            tempfile.TemporaryFile(dir=out).close()
        except OSError as e:
            raise PermissionError(
                f"output directory {str(out)!r} is not writable: {e.strerror}"
            ) from e
    return out
