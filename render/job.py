"""The Dask job: one task per output video, on local threads or on a Dask cluster.

The graph is the same everywhere: one ``render_output(plan)`` task per planned output, or,
for a long video cut into segments (:mod:`render.segments`), one ``render_segment`` task per
segment and a ``join_segments`` task that depends on them. It runs on

* Dask's threaded scheduler by default (ffmpeg does the heavy work in its own processes, so
  threads are enough; x264 already uses every core);
* ``workers=N``: a local ``dask.distributed`` cluster of N single-thread workers (pair with
  ``encoder_threads=1``: one encoder thread per worker, as on a cluster);
* ``scheduler=ADDRESS``: a running ``dask.distributed`` scheduler. Its workers open the store
  (a shared path, or an object-store URL they read directly) and write the videos
  themselves, so the store and the output directory must be reachable from every worker.

Progress is counted in rows: local tasks update the bar directly; tasks on distributed
workers send Dask events that the client turns into bar updates. How many tasks can run at
once (threads, local workers, or the scheduler's worker threads) decides whether long videos
are cut into segments automatically.
"""

from __future__ import annotations

import sys
import threading
import uuid
from collections.abc import Sequence
from typing import Any

import dask
import dask.system
from tqdm import tqdm

from collect.dask_cluster import dask_client, follow_events, send_event

from .options import RenderOptions
from .pipeline import Progress, render_output, render_segment
from .plan import VideoPlan
from .report import OutputResult
from .segments import join_segments, segment_count, split

__all__ = ["run_plans"]


def run_plans(plans: Sequence[VideoPlan], options: RenderOptions) -> list[OutputResult]:
    """Render every plan on the scheduler the options name; results in plan order."""
    if not plans:
        return []
    total = sum(p.frame_count for p in plans)
    disable = None if options.progress is None else not options.progress
    with tqdm(total=total, unit="frame", desc="render", disable=disable, file=sys.stderr) as bar:
        if options.scheduler is None and options.workers is None:
            return _run_threads(plans, options, bar)
        with dask_client(options.scheduler, options.workers or 1, processes=False) as client:
            return _run_distributed(client, plans, options, bar)


def _graph(
    plans: Sequence[VideoPlan], options: RenderOptions, slots: int, progress: Progress | None
) -> list[Any]:
    """One delayed result per plan, with keys that name the output.

    A plan that is cut into segments becomes its segment tasks and the join that needs them.
    A plan that reads many groups (the mosaic) is as much work as all the others together, so
    it is cut as if it were the only video: its pieces then fill the workers' idle time.
    """
    token = uuid.uuid4().hex[:8]
    render = dask.delayed(render_output, pure=False)
    segment = dask.delayed(render_segment, pure=False)
    join = dask.delayed(join_segments, pure=False)
    tasks = []
    for plan in plans:
        name = f"{plan.path.stem}-{token}"
        outputs = 1 if plan.sources > 1 else len(plans)
        count = segment_count(
            plan.frame_count, options.segment_frames, outputs=outputs, slots=slots
        )
        if count == 1:
            tasks.append(render(plan, progress, dask_key_name=f"render-{name}"))
            continue
        parts = [
            segment(part, progress, dask_key_name=f"segment-{name}-{i}")
            for i, part in enumerate(split(plan, count))
        ]
        tasks.append(join(plan, parts, dask_key_name=f"join-{name}"))
    return tasks


def _run_threads(
    plans: Sequence[VideoPlan], options: RenderOptions, bar: tqdm
) -> list[OutputResult]:
    lock = threading.Lock()

    def progress(rows: int) -> None:
        with lock:
            bar.update(rows)

    # the threaded scheduler runs as many tasks at once as there are cores
    graph = _graph(plans, options, dask.system.CPU_COUNT, progress)
    return list(dask.compute(*graph, scheduler="threads"))


class _EventProgress:
    """Progress from a distributed worker: a Dask event on the driver's topic."""

    def __init__(self, topic: str) -> None:
        self.topic = topic

    def __call__(self, rows: int) -> None:
        send_event(self.topic, rows)


def _run_distributed(
    client: Any, plans: Sequence[VideoPlan], options: RenderOptions, bar: tqdm
) -> list[OutputResult]:
    topic = f"evalframes-render-{uuid.uuid4().hex}"
    slots = sum(client.nthreads().values()) or 1
    with follow_events(client, topic, lambda event: bar.update(event[1])):
        results = client.gather(
            client.compute(_graph(plans, options, slots, _EventProgress(topic)))
        )
    bar.update(bar.total - bar.n)  # events still in flight when the results arrived
    return list(results)
