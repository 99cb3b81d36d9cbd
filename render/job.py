"""The Dask job: one task per output video, on local threads or on a Dask cluster.

The graph is the same everywhere: one ``render_output(plan)`` task per planned output. It
runs on

* Dask's threaded scheduler by default (ffmpeg does the heavy work in its own processes, so
  threads are enough; x264 already uses every core);
* ``workers=N``: a local ``dask.distributed`` cluster of N single-thread workers (pair with
  ``encoder_threads=1``: one encoder thread per worker, as on a cluster);
* ``scheduler=ADDRESS``: a running ``dask.distributed`` scheduler. Its workers open the store
  and write the videos themselves, so both paths must be reachable from every worker.

Progress is counted in rows: local tasks update the bar directly; tasks on distributed
workers send Dask events that the client turns into bar updates.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import uuid
from collections.abc import Iterator, Sequence
from typing import Any

import dask
from tqdm import tqdm

from .options import RenderOptions
from .pipeline import Progress, render_output
from .plan import OutputPlan
from .report import OutputResult

__all__ = ["run_plans"]

CONNECT_TIMEOUT = "10s"


def run_plans(plans: Sequence[OutputPlan], options: RenderOptions) -> list[OutputResult]:
    """Render every plan on the scheduler the options name; results in plan order."""
    if not plans:
        return []
    total = sum(p.frame_count for p in plans)
    disable = None if options.progress is None else not options.progress
    with tqdm(total=total, unit="frame", desc="render", disable=disable, file=sys.stderr) as bar:
        if options.scheduler is None and options.workers is None:
            return _run_threads(plans, bar)
        with _client(options) as client:
            return _run_distributed(client, plans, bar)


def _graph(plans: Sequence[OutputPlan], progress: Progress | None) -> list[Any]:
    """One delayed ``render_output`` per plan, with keys that name the output."""
    token = uuid.uuid4().hex[:8]
    task = dask.delayed(render_output, pure=False)
    return [task(p, progress, dask_key_name=f"render-{p.path.stem}-{token}") for p in plans]


def _run_threads(plans: Sequence[OutputPlan], bar: tqdm) -> list[OutputResult]:
    lock = threading.Lock()

    def progress(rows: int) -> None:
        with lock:
            bar.update(rows)

    return list(dask.compute(*_graph(plans, progress), scheduler="threads"))


@contextlib.contextmanager
def _client(options: RenderOptions) -> Iterator[Any]:
    """A distributed client: connected to ``options.scheduler`` or to a new local cluster."""
    from distributed import Client, LocalCluster

    if options.scheduler is None:
        cluster = LocalCluster(
            n_workers=options.workers,
            threads_per_worker=1,
            processes=False,
            dashboard_address=None,
        )
        with cluster, Client(cluster) as client:
            yield client
        return
    try:
        client = Client(options.scheduler, timeout=CONNECT_TIMEOUT)
    except (OSError, TimeoutError) as e:
        raise ConnectionError(
            f"cannot connect to the Dask scheduler at {options.scheduler!r} ({e}); "
            "start one with `dask scheduler` or leave out --scheduler"
        ) from e
    with client:
        yield client


class _EventProgress:
    """Progress from a distributed worker: a Dask event the client subscribes to."""

    def __init__(self, topic: str) -> None:
        self.topic = topic

    def __call__(self, rows: int) -> None:
        from distributed import get_worker

        get_worker().log_event(self.topic, rows)


def _run_distributed(client: Any, plans: Sequence[OutputPlan], bar: tqdm) -> list[OutputResult]:
    topic = f"evalframes-render-{uuid.uuid4().hex}"
    client.subscribe_topic(topic, lambda event: bar.update(event[1]))
    try:
        results = client.gather(client.compute(_graph(plans, _EventProgress(topic))))
    finally:
        client.unsubscribe_topic(topic)
    bar.update(bar.total - bar.n)  # events still in flight when the results arrived
    return list(results)
