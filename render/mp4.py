"""The frame count of an MP4 file, read from its index (the video track's sample table).

Every rendered video is checked against the number of frames written to ffmpeg. Reading the
``moov`` index (ISO/IEC 14496-12: ``moov/trak/mdia/hdlr`` names the track kind,
``.../minf/stbl/stsz`` counts its samples) takes well under a millisecond, where asking ffmpeg
to count packets costs a process start (~15 ms per video, measured at 256x256) and decoding
the file costs a lot more. A file whose index is missing or cut short (an interrupted write)
raises :class:`Mp4Error`. :func:`frame_durations` reads the same track's decoding time table
(``.../stbl/stts``): a joined video (:mod:`render.segments`) must have one duration for every
frame, or it stutters at a join.

>>> import tempfile, numpy as np
>>> from render.encode import VideoEncoder
>>> path = tempfile.mkdtemp() + "/demo.mp4"
>>> with VideoEncoder(path, 32, 32, fps=5) as encoder:
...     encoder.write(np.zeros((7, 32, 32, 3), np.uint8))
>>> count_frames(path), frame_durations(path)
(7, [(7, 2048)])
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

__all__ = ["Mp4Error", "count_frames", "frame_durations"]


class Mp4Error(ValueError):
    """The file is not a complete MP4, or has no video track."""


def count_frames(path: str | Path) -> int:
    """Samples (frames) of the first video track of an MP4 file."""
    stsz = _sample_table(path, b"stsz")
    return struct.unpack(">I", _field(stsz, 8, 4))[0]


def frame_durations(path: str | Path) -> list[tuple[int, int]]:
    """``(frames, duration)`` runs of the first video track, durations in its time base."""
    stts = _sample_table(path, b"stts")
    (entries,) = struct.unpack(">I", _field(stts, 4, 4))
    _field(stts, 8, 8 * entries)  # the whole table is there
    return [struct.unpack_from(">II", stts, 8 + 8 * i) for i in range(entries)]


def _sample_table(path: str | Path, kind: bytes) -> bytes:
    """The body of box ``kind`` in the sample table of the file's first video track."""
    with open(path, "rb") as f:
        moov = _top_level(f, b"moov", path)
    for box, trak in _boxes(moov):
        if box == b"trak" and _field(_descend(trak, b"mdia", b"hdlr"), 8, 4) == b"vide":
            return _descend(trak, b"mdia", b"minf", b"stbl", kind)
    raise Mp4Error(f"{path}: no video track in the MP4 index")


def _header(data: bytes) -> tuple[int, bytes, int]:
    """``(size, kind, header length)`` of a box from its first 16 bytes (size 0: to the end)."""
    size, kind = struct.unpack_from(">I4s", data)
    if size == 1:
        return struct.unpack_from(">Q", data, 8)[0], kind, 16
    return size, kind, 8


def _top_level(f: BinaryIO, wanted: bytes, path: str | Path) -> bytes:
    """The body of a top-level box; the top-level boxes must fill the file exactly.

    Other boxes (``mdat``, the frames) are skipped by seeking, not read.
    """
    end = f.seek(0, 2)
    pos, found = 0, None
    while pos + 8 <= end:
        f.seek(pos)
        size, kind, head = _header(f.read(16).ljust(16, b"\0"))
        size = size or end - pos  # size 0: the box runs to the end of the file
        if size < head:
            break
        if kind == wanted and found is None:
            found = (pos + head, size - head)
        pos += size
    if pos != end or found is None:
        raise Mp4Error(f"{path}: the file is cut short or has no {wanted.decode()} box")
    f.seek(found[0])
    return f.read(found[1])


def _boxes(data: bytes) -> Iterator[tuple[bytes, bytes]]:
    """``(kind, body)`` of each box in ``data``."""
    pos = 0
    while pos + 8 <= len(data):
        size, kind, head = _header(data[pos : pos + 16].ljust(16, b"\0"))
        size = size or len(data) - pos
        if size < head or pos + size > len(data):
            raise Mp4Error(f"MP4 box {kind!r} is cut short")
        yield kind, data[pos + head : pos + size]
        pos += size


def _descend(data: bytes, *kinds: bytes) -> bytes:
    """The body of the first ``kinds[0]/kinds[1]/...`` box path inside ``data``."""
    for kind in kinds:
        data = next((body for k, body in _boxes(data) if k == kind), b"")
    return data


def _field(data: bytes, offset: int, length: int) -> bytes:
    if len(data) < offset + length:
        raise Mp4Error("MP4 index is incomplete")
    return data[offset : offset + length]
