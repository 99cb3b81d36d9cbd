"""Recompressing chunks the writer stored raw while the ring was filling faster than zstd.

Under :func:`collect.codecs.deferred_compression` the writer process stores a camera chunk as
its raw bytes (tagged, so readers decode it like any other). :class:`Compactor` turns those
files into zstd ones later: in a ``SCHED_IDLE`` thread while the rollout runs (only CPU nobody
else wants), and whatever is left when the writer closes. Each file is rewritten whole and
replaced atomically (temp file + rename), so a reader or a crash sees either version.
"""

from __future__ import annotations

import logging
import queue
import threading
from pathlib import Path

from . import codecs
from .ring import lower_thread_priority
from .store import replace_file

__all__ = ["Compactor", "compact_file"]

log = logging.getLogger(__name__)


def compact_file(path: Path, level: int) -> int:
    """Recompress one raw-stored chunk file with zstd; the bytes it saved (0 if not raw)."""
    data = path.read_bytes()
    if not codecs.is_deferred(data):
        return 0
    parts = codecs.zstd_chunk(memoryview(data)[1:], level)
    replace_file(path, parts)
    return len(data) - sum(len(part) for part in parts)


class Compactor:
    """Chunk files waiting for zstd, compacted by an idle-priority thread."""

    def __init__(self, level: int) -> None:
        self.level = level
        self.pending_bytes = 0  # raw bytes not yet compacted (the disk budget counts these)
        self.peak_bytes = 0
        self._queue: queue.Queue[tuple[Path, int] | None] = queue.Queue()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="evalframes-compact", daemon=True)
        self._thread.start()

    def add(self, path: Path, raw_bytes: int) -> None:
        with self._lock:
            self.pending_bytes += raw_bytes
            self.peak_bytes = max(self.peak_bytes, self.pending_bytes)
        self._queue.put((path, raw_bytes))

    def finish(self) -> None:
        """Wait until every file still waiting is compacted (the writer is closing)."""
        self._queue.put(None)
        self._thread.join()

    def _run(self) -> None:
        lower_thread_priority()
        while (item := self._queue.get()) is not None:
            path, raw_bytes = item
            try:
                compact_file(path, self.level)
            except OSError as e:  # the store was removed or the disk is full: stays raw
                log.warning("could not recompress %s: %s", path, e)
            with self._lock:
                self.pending_bytes -= raw_bytes
