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
import warnings
from collections.abc import Callable, Iterator
from typing import Any

__all__ = [
    "CONNECT_TIMEOUT",
    "connect",
    "dask_client",
    "follow_events",
    "quiet_dask_logs",
    "request_stop",
    "send_event",
    "stop_requested",
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
    with warnings.catch_warnings():  # another cluster on this host holds the HTTP port
        warnings.filterwarnings("ignore", "Port .* is already in use", UserWarning)
        cluster = LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=processes,
            dashboard_address=None,
            silence_logs=logging.CRITICAL,
            **({"preload": [__name__]} if processes else {}),  # dask_setup: Ctrl-C: the driver's
        )
    try:
        with cluster, Client(cluster) as client:
            yield client
    except BaseException:
        quiet_dask_logs(logging.ERROR)  # a teardown after an error or Ctrl-C says nothing more
        raise


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


def request_stop(client: Any, name: str) -> None:
    """Ask the tasks that poll :func:`stop_requested` with ``name`` to stop."""
    from distributed import Event

    Event(name, client=client).set()


def stop_requested(name: str) -> bool:
    """From a task: whether the driver called :func:`request_stop` (False outside a worker)."""
    from distributed import Event, get_worker

    try:
        get_worker()
    except ValueError:
        return False
    return Event(name).is_set()


def dask_setup(worker: Any) -> None:
    """Preloaded into the processes of :func:`dask_client`'s local clusters: a Ctrl-C in the
    terminal reaches the whole process group, and only the driver should act on it (it asks
    the tasks to stop and closes the cluster); a worker process would die with a traceback."""
    import signal
    import threading

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)
