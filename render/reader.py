"""Reading rows of a group for rendering: chunk-sized blocks, damage noted, read ahead.

:func:`read_blocks` walks a row range in blocks of the stored chunk size (the efficient read
unit) through collect's :class:`~collect.store.GroupReader`. A block that cannot be read
(truncated or corrupt chunk) is yielded with its error instead of frames, so the caller can
render what is readable and report the rows it skipped. :func:`prefetch` runs any iterator in
a background thread a few items ahead, which is how decompression and composing overlap with
encoding. :func:`open_group` opens a group where a task runs (on a Dask worker), saying which
host could not reach the store.

>>> with prefetch(range(5)) as items:
...     list(items)
[0, 1, 2, 3, 4]
"""

from __future__ import annotations

import contextlib
import queue
import socket
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

from collect.location import StoreAccessError, StoreLocation
from collect.store import GroupReader, StoreFormatError, open_store

__all__ = ["RenderError", "RowBlock", "open_group", "prefetch", "read_blocks"]

T = TypeVar("T")
PREFETCH_BLOCKS = 2  # blocks read ahead of the encoder (each is chunk_frames rows)


class RenderError(RuntimeError):
    """An output cannot be rendered at all (store unreachable, no readable rows)."""


def open_group(store: StoreLocation, name: str) -> GroupReader:
    """Open group ``name`` of the store; :class:`RenderError` naming this host if unreachable."""
    try:
        return open_store(store).group(name)
    except (FileNotFoundError, StoreAccessError) as e:
        raise RenderError(
            f"frame store {store.url!r} is not readable on host {socket.gethostname()} "
            f"({e}); the store must be reachable by every Dask worker"
        ) from e


@dataclass(frozen=True)
class RowBlock:
    """Rows ``start:stop`` of a group: ``frames`` per camera, or the ``error`` that hid them."""

    start: int
    stop: int
    frames: dict[str, np.ndarray] | None
    error: str | None = None


def read_blocks(
    group: GroupReader, cameras: Sequence[str], start: int, stop: int
) -> Iterator[RowBlock]:
    """Blocks of rows ``start:stop`` of ``cameras``, aligned to the stored chunks."""
    block = max(group.chunk_frames(c) for c in cameras)
    first = start - start % block
    for begin in range(first, stop, block):
        a, b = max(begin, start), min(begin + block, stop)
        try:
            yield RowBlock(a, b, {c: group.frames(c, a, b) for c in cameras})
        except StoreFormatError as e:
            yield RowBlock(a, b, None, str(e))


_END = object()


@contextlib.contextmanager
def prefetch(items: Iterable[T], depth: int = PREFETCH_BLOCKS) -> Iterator[Iterator[T]]:
    """Produce ``items`` in a background thread, at most ``depth`` ahead of the consumer.

    The thread starts on entering the ``with`` block (so reading starts while, say, ffmpeg
    starts up) and is stopped and joined on leaving it, however the block ends. The
    producer's exception is raised from the iterator.
    """
    ready: queue.Queue[tuple[object, BaseException | None]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                if not _put(ready, (item, None), stop):
                    return
            _put(ready, (_END, None), stop)
        except BaseException as e:  # noqa: BLE001 - handed to the consuming thread
            _put(ready, (_END, e), stop)

    thread = threading.Thread(target=produce, name="render-read-ahead", daemon=True)
    thread.start()
    try:
        yield _consume(ready)
    finally:
        stop.set()
        thread.join()


def _consume(ready: queue.Queue) -> Iterator[T]:
    while True:
        item, error = ready.get()
        if error is not None:
            raise error
        if item is _END:
            return
        yield item


def _put(
    ready: queue.Queue, entry: tuple[object, BaseException | None], stop: threading.Event
) -> bool:
    """Put unless the consumer has gone; False when it has."""
    while not stop.is_set():
        try:
            ready.put(entry, timeout=0.1)
            return True
        except queue.Full:
            continue
    return False
