"""The Dask cluster the eval runner and the renderer share.

One way to get a client (connect to a running scheduler, or start a local cluster that is
closed with the client), one connection timeout, one way for tasks to report progress to the
driver (a Dask event on a topic, :func:`send_event` / :func:`follow_events`), and Dask's own
loggers kept at WARNING unless asked (:func:`quiet_dask_logs`): a local cluster otherwise
prints a line per worker start into the progress bars.

>>> with dask_client(None, 1, processes=False) as client:
...     client.submit(sum, [1, 2]).result()
3
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from typing import Any

__all__ = [
    "CONNECT_TIMEOUT",
    "connect",
    "dask_client",
    "follow_events",
    "quiet_dask_logs",
    "send_event",
]

CONNECT_TIMEOUT = "20s"


def quiet_dask_logs(level: int) -> None:
    """Set Dask's own loggers (configured when distributed is imported) to ``level``."""
    import distributed  # noqa: F401  (its import sets the levels we override)

    for name in list(logging.root.manager.loggerDict):
        if name.split(".")[0] in ("distributed", "bokeh", "tornado"):
            logging.getLogger(name).setLevel(level)


def connect(scheduler: str) -> Any:
    """A client of the running scheduler at ``scheduler``; ``ConnectionError`` saying how to
    start one when it cannot be reached within :data:`CONNECT_TIMEOUT`."""
    from distributed import Client

    try:
        return Client(scheduler, timeout=CONNECT_TIMEOUT)
    except (OSError, TimeoutError) as e:
        raise ConnectionError(
            f"cannot connect to the Dask scheduler at {scheduler!r} ({e}); "
            "start one with `dask scheduler` or leave out --scheduler"
        ) from e


@contextlib.contextmanager
def dask_client(scheduler: str | None, workers: int, *, processes: bool) -> Iterator[Any]:
    """A client of ``scheduler``, or of a new local cluster of ``workers`` single-thread
    workers (``processes``: one process each, else threads of this process); closed after,
    the local cluster too. Task errors reach the caller as exceptions, not as log lines."""
    from distributed import Client, LocalCluster

    if scheduler is not None:
        with connect(scheduler) as client:
            yield client
        return
    cluster = LocalCluster(
        n_workers=workers,
        threads_per_worker=1,
        processes=processes,
        dashboard_address=None,
        silence_logs=logging.CRITICAL,
    )
    with cluster, Client(cluster) as client:
        yield client


def send_event(topic: str, payload: Any) -> None:
    """From a task: send ``payload`` to the driver's :func:`follow_events` on ``topic``
    (nothing outside a Dask worker)."""
    from distributed import get_worker

    with contextlib.suppress(ValueError):  # ValueError: not running inside a Dask worker
        get_worker().log_event(topic, payload)


@contextlib.contextmanager
def follow_events(
    client: Any, topic: str, handler: Callable[[tuple[float, Any]], None]
) -> Iterator[None]:
    """Call ``handler((time, payload))`` for each event tasks send on ``topic`` while inside."""
    client.subscribe_topic(topic, handler)
    try:
        yield
    finally:
        client.unsubscribe_topic(topic)
