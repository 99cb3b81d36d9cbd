"""The shared-memory ring between the rollout thread and the writer process.

One anonymous memory file (``memfd``) holds a header page of counters and ``slots`` row slots.
A row slot holds one step of every env and camera, exactly as the simulator produced it
(``uint8 (H, W, C)`` frames, ``C`` = 1, 3 or 4): the rollout thread writes row ``r`` into slot
``r % slots`` with one memcpy per frame, and the writer process copies it out (dropping
alpha) and then advances :attr:`RingHeader.consumed`. The file has no name, so nothing is left
behind in ``/dev/shm`` when both processes die; the child inherits the file descriptor.

Each frame is placed at the address its source has modulo :data:`FRAME_ALIGN` (a table of
offsets at the start of the slot records where): a memcpy between buffers whose addresses
differ modulo 32 runs ~25% slower on the benchmark's AMD EPYC (glibc's ``rep movsb``), and the
frames a simulator returns come from the heap at any 16-byte offset. A contiguous
``(N, H, W, C)`` batch goes in as one block, its frames back to back: one copy per camera.

The rollout copies frames in with streaming stores where the compiled helper
(``collect/_streamcopy.c``) is built and the CPU has them (x86-64): the ring's lines go to
memory without being read first or evicting the simulator's data from the cache, a third
faster than glibc's memcpy there (:data:`STREAMING_STORES`). Without the helper, numpy copies.

>>> layout = RingLayout(num_envs=2, cameras={"zed": (4, 4, 4)}, slots=3)
>>> ring = FrameRing.create(layout)
>>> slot = ring.slot(4)
>>> slot.put("zed", np.full((2, 4, 4, 4), 7, np.uint8))
>>> [int(frame[0, 0, 0]) for frame in slot.frames("zed")][1], layout.row_bytes
(7, 128)
>>> ring.close()
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
import logging
import mmap
import os
import threading
from dataclasses import dataclass

import numpy as np

__all__ = [
    "HEADER_BYTES",
    "STREAMING_STORES",
    "FrameRing",
    "RingHeader",
    "RingLayout",
    "RowSlot",
    "copy_channels",
    "create_memfd",
    "lower_thread_priority",
]

log = logging.getLogger(__name__)

HEADER_BYTES = mmap.PAGESIZE
FRAME_ALIGN = 64  # a frame's offset in its slot matches its source's address modulo this
_MADV_POPULATE_READ = 22  # Linux >= 5.14: fault pages in without touching their contents
_MADV_POPULATE_WRITE = 23
_libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)  # releases the GIL

try:
    from ._streamcopy import NON_TEMPORAL
    from ._streamcopy import place as _stream_place
except ImportError:  # not built (no C compiler at install time): numpy copies instead
    NON_TEMPORAL, _stream_place = False, None
STREAMING_STORES = bool(NON_TEMPORAL)  # whether frames reach the ring by streaming stores


def create_memfd(size: int, name: str = "evalframes-ring") -> int:
    """A new anonymous shared memory file of ``size`` bytes, close-on-exec: the writer process
    gets it through ``pass_fds``, no other child of the rollout does."""
    fd = os.memfd_create(name)
    os.ftruncate(fd, size)
    return fd


class _Counter:
    """One int64 field of the header page, read and written in place."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.index = owner.FIELDS.index(name)

    def __get__(self, header: RingHeader, owner: type | None = None) -> int:
        return header.values[self.index]

    def __set__(self, header: RingHeader, value: int) -> None:
        header.values[self.index] = int(value)


class RingHeader:
    """Counters both processes see: rows appended (written by the rollout side), rows
    consumed from the ring, rows committed and failed (0 or 1; written by the writer process).

    Each field has one writer; aligned 8-byte stores, so a reader never sees a torn value.
    """

    FIELDS = ("appended", "consumed", "committed", "failed")
    appended, consumed, committed, failed = _Counter(), _Counter(), _Counter(), _Counter()

    def __init__(self, fd: int) -> None:
        self._map = mmap.mmap(fd, HEADER_BYTES)
        self.values = memoryview(self._map).cast("q")  # reads are Python ints, not numpy's


@dataclass(frozen=True)
class RingLayout:
    """What one row slot holds: ``cameras`` maps each camera to its ``(H, W, C)`` as fed.

    A slot is a table of where each frame starts (a ``uint32`` per env and camera, from the
    start of the camera's area), then each camera's area: room for its ``num_envs`` frames,
    each rounded up to a multiple of :data:`FRAME_ALIGN` plus :data:`FRAME_ALIGN`, so that
    frames fit at any offset below it, one by one or as one block.
    """

    num_envs: int
    cameras: dict[str, tuple[int, int, int]]
    slots: int

    @functools.cached_property
    def row_bytes(self) -> int:
        """Bytes of one row's frames, as fed."""
        return sum(self.camera_bytes(c) for c in self.cameras)

    def camera_bytes(self, camera: str) -> int:
        return self.num_envs * self.frame_bytes(camera)

    def frame_bytes(self, camera: str) -> int:
        h, w, c = self.cameras[camera]
        return h * w * c

    def frame_place_bytes(self, camera: str) -> int:
        """Room for one frame of ``camera`` at any offset below :data:`FRAME_ALIGN`."""
        return _round_up(self.frame_bytes(camera), FRAME_ALIGN) + FRAME_ALIGN

    @property
    def table_bytes(self) -> int:
        return _round_up(_OFFSET.itemsize * self.num_envs * len(self.cameras), FRAME_ALIGN)

    @property
    def slot_bytes(self) -> int:
        """Bytes of one row slot: the offsets table and every camera's area."""
        areas = sum(self.num_envs * self.frame_place_bytes(c) for c in self.cameras)
        return self.table_bytes + areas

    @property
    def ring_bytes(self) -> int:
        """Bytes of the slots, rounded up to whole pages."""
        return _round_up(self.slots * self.slot_bytes, mmap.PAGESIZE)


_OFFSET = np.dtype(np.uint32)  # a frame's start in its camera's area


def _round_up(n: int, multiple: int) -> int:
    return -(-n // multiple) * multiple


class RowSlot:
    """One row's slot: the rollout side :meth:`put` s each camera's frames, the writer process
    reads them back with :meth:`frames`."""

    def __init__(self, ring_bytes: np.ndarray, layout: RingLayout, index: int) -> None:
        start = index * layout.slot_bytes
        entries = layout.num_envs * len(layout.cameras)
        self._offsets = ring_bytes[start : start + entries * _OFFSET.itemsize].view(_OFFSET)
        self._bytes = ring_bytes
        self._shapes = layout.cameras
        self._areas: dict[str, int] = {}  # camera -> its area's start in ring_bytes
        self._table_index: dict[str, int] = {}  # camera -> its env 0's entry in the table
        self._places: dict[str, list[int]] = {}  # camera -> each env's frame place, one by one
        self._steps: dict[str, list[int]] = {}  # camera -> each env's frame in a block
        self._frame_bytes = {camera: layout.frame_bytes(camera) for camera in layout.cameras}
        area = start + layout.table_bytes
        for i, camera in enumerate(layout.cameras):
            envs, place = range(layout.num_envs), layout.frame_place_bytes(camera)
            self._areas[camera] = area
            self._table_index[camera] = i * layout.num_envs
            self._places[camera] = [e * place for e in envs]
            self._steps[camera] = [e * self._frame_bytes[camera] for e in envs]
            area += layout.num_envs * place
        self._views: dict[tuple[str, int, int], np.ndarray] = {}

    def put(self, camera: str, frames: np.ndarray | list[np.ndarray]) -> None:
        """Copy ``camera``'s frames (an ``(N, H, W, C)`` batch or N ``(H, W, C)`` frames as
        the layout says, any strides): a contiguous batch as one block, else frame by frame,
        each at its source's address modulo :data:`FRAME_ALIGN`."""
        first = self._table_index[camera]
        entries = self._offsets[first : first + len(self._places[camera])]
        if _stream_place is not None:
            try:
                entries[:] = self._streamed(camera, frames)
                return
            except ValueError:  # strided, or channels other than the layout's: numpy, below
                pass
        if isinstance(frames, np.ndarray) and frames.flags.c_contiguous:
            offset = frames.__array_interface__["data"][0] % FRAME_ALIGN
            entries[:] = [offset + step for step in self._steps[camera]]
            copy_channels(self._view(camera, offset, len(frames)), frames)
            return
        if isinstance(frames, np.ndarray):  # frame e starts e strides past the first
            address, stride = frames.__array_interface__["data"][0], frames.strides[0]
            addresses = [address + e * stride for e in range(len(frames))]
        else:
            addresses = [frame.__array_interface__["data"][0] for frame in frames]
        places = self._places[camera]
        offsets = [place + a % FRAME_ALIGN for place, a in zip(places, addresses, strict=True)]
        entries[:] = offsets
        for frame, offset in zip(frames, offsets, strict=True):
            copy_channels(self._view(camera, offset), frame)

    def _streamed(self, camera: str, frames: np.ndarray | list[np.ndarray]) -> list[int]:
        """Each frame's offset, after placing them with the streaming helper: one call per
        frame (or per batch), as ``ValueError`` unless each is a contiguous block of the
        layout's size."""
        area, size = self._areas[camera], self._frame_bytes[camera]
        if isinstance(frames, np.ndarray):
            batch = len(self._steps[camera]) * size
            offset = _stream_place(self._bytes, area, FRAME_ALIGN, frames, batch)
            return [offset + step for step in self._steps[camera]]
        places = self._places[camera]
        return [
            place + _stream_place(self._bytes, area + place, FRAME_ALIGN, frame, size)
            for place, frame in zip(places, frames, strict=True)
        ]

    def frames(self, camera: str) -> list[np.ndarray]:
        """``camera``'s frames, env by env, where :meth:`put` copied them."""
        first = self._table_index[camera]
        offsets = self._offsets[first : first + len(self._places[camera])].tolist()
        return [self._view(camera, offset) for offset in offsets]

    def _view(self, camera: str, offset: int, frames: int = 0) -> np.ndarray:
        """The ``(H, W, C)`` frame at ``offset`` in ``camera``'s area (or ``frames`` of them,
        ``(frames, H, W, C)``)."""
        key = (camera, offset, frames)
        view = self._views.get(key)
        if view is None:
            shape = self._shapes[camera] if not frames else (frames, *self._shapes[camera])
            start = self._areas[camera] + offset
            size = int(np.prod(shape))
            view = self._views[key] = self._bytes[start : start + size].reshape(shape)
        return view


class FrameRing:
    """Row slots in shared memory (after the header page of the same memory file)."""

    def __init__(self, fd: int, layout: RingLayout, *, writable: bool) -> None:
        self.layout = layout
        access = mmap.ACCESS_WRITE if writable else mmap.ACCESS_READ
        self._map = mmap.mmap(fd, layout.ring_bytes, access=access, offset=HEADER_BYTES)
        self._bytes = np.frombuffer(self._map, np.uint8)
        self._slots = [RowSlot(self._bytes, layout, i) for i in range(layout.slots)]
        self._populating: threading.Thread | None = None

    @classmethod
    def create(cls, layout: RingLayout, fd: int | None = None) -> FrameRing:
        """Size the memory file for ``layout`` (a new one if ``fd`` is None) and map it."""
        if fd is None:
            fd = create_memfd(HEADER_BYTES)
        os.ftruncate(fd, HEADER_BYTES + layout.ring_bytes)
        return cls(fd, layout, writable=True)

    def slot(self, row: int) -> RowSlot:
        """The slot that holds row ``row``."""
        return self._slots[row % self.layout.slots]

    def populate_async(self, *, write: bool, idle: bool = False) -> None:
        """Map every page of the ring now, in a thread (``idle``: at ``SCHED_IDLE``), so that
        no copy page-faults.

        Both processes call it as the layout is known: the writer process (``write=False``)
        allocates the pages at its low priority, and the rollout side's mapping of pages that
        exist costs ~5x less than allocating them, ~25x less than the page fault of a first
        write to each; :meth:`populate_slot` covers a slot the thread has not reached yet.
        ``madvise(MADV_POPULATE_*)`` fills the page tables without touching the contents, so
        it is safe while rows are being written. It runs through ctypes, outside the GIL.
        """
        advice = _MADV_POPULATE_WRITE if write else _MADV_POPULATE_READ

        def populate() -> None:
            if idle:
                lower_thread_priority()
            step = 16 * 2**20  # slot order: the first slots are ready first
            for offset in range(0, self._bytes.nbytes, step):
                if not self._populate(offset, step, advice):
                    return

        self._populating = threading.Thread(
            target=populate, name="evalframes-populate", daemon=True
        )
        self._populating.start()

    def populate_slot(self, row: int) -> None:
        """Map the pages of row ``row``'s slot for writing before its first copy, unless
        :meth:`populate_async` has mapped them all already (one call instead of a page fault
        per 4 KiB page: ~11 us each in this VM; on mapped pages it still costs ~0.2 us each)."""
        if self._populating is not None and not self._populating.is_alive():
            return
        size = self.layout.slot_bytes
        self._populate(row % self.layout.slots * size, size, _MADV_POPULATE_WRITE)

    def _populate(self, offset: int, length: int, advice: int) -> bool:
        """``madvise`` the ring's bytes ``[offset, offset + length)``; False where the kernel
        lacks it (before 5.14: pages are then faulted in by the first copy)."""
        start = offset - offset % mmap.PAGESIZE
        length = min(offset + length, self._bytes.nbytes) - start
        address = ctypes.c_void_p(self._bytes.ctypes.data + start)
        if _libc.madvise(address, ctypes.c_size_t(length), advice):
            log.debug("madvise populate unsupported: %s", os.strerror(ctypes.get_errno()))
            return False
        return True

    def close(self) -> None:
        if self._populating is not None:
            self._populating.join()
        self._slots.clear()
        del self._bytes
        with contextlib.suppress(BufferError):  # a view is still held: the mapping goes with it
            self._map.close()


def copy_channels(dst: np.ndarray, src: np.ndarray) -> None:
    """``dst[...] = src`` for frames in their channels' last axis: a different channel count
    (gray, RGB, RGBA) by its colour channels, and a channel-strided view (``rgba[..., :3]``)
    one channel at a time. The rollout copies frames as fed into a slot with it, the writer
    process copies them out into RGB chunks.

    Contiguous RGBA frames go into contiguous RGB ones in one pass per frame
    (:func:`_rgba_frame_into_rgb`); other channel-strided views one channel at a time, as
    numpy copies a 3-of-4-bytes strided view element by element (per channel: ~5x faster,
    480x480 x 4 envs: 4.0 ms -> 0.8 ms).
    """
    if src.shape[-1] == dst.shape[-1] and (src.flags.c_contiguous or src.shape[-1] == 1):
        np.copyto(dst, src)
        return
    if src.shape[-1] == 1:
        dst[..., :3] = src  # gray into a colour slot: broadcast
        return
    if src.shape[-1] == 4 and dst.shape[-1] == 3 and _frames_contiguous(src, dst):
        for index in np.ndindex(dst.shape[:-3]):
            _rgba_frame_into_rgb(dst[index], src[index])
        return
    for channel in range(min(src.shape[-1], dst.shape[-1], 3)):
        dst[..., channel] = src[..., channel]


def _frames_contiguous(*arrays: np.ndarray) -> bool:
    """Whether every ``(H, W, C)`` frame of each array is one C-contiguous block."""
    for array in arrays:
        if array.ndim < 3 or array.size == 0:
            return False
        if not array[(0,) * (array.ndim - 3)].flags.c_contiguous:  # the first frame: all alike
            return False
    return True


def _rgba_frame_into_rgb(dst: np.ndarray, src: np.ndarray) -> None:
    """Copy one contiguous ``(H, W, 4)`` frame into a contiguous ``(H, W, 3)`` one.

    Each pixel is moved as one 4-byte word to every third byte of ``dst``, in order, so
    pixel ``p + 1`` overwrites the alpha byte pixel ``p`` left behind: one pass over the frame
    where per-channel copies take three (480x480 from the ring, in the writer process:
    0.67 -> 0.32 ms). The last pixel's three bytes are copied apart (its word would spill
    past ``dst``). It relies on numpy copying into a 1-D view in order, element by element;
    ``tests/test_writer.py`` checks every byte, neighbours included.
    """
    pixels = src.shape[0] * src.shape[1]
    if pixels < 2:
        dst[...] = src[..., :3]
        return
    words = src.reshape(-1).view(np.uint32)
    out = np.ndarray((pixels - 1,), np.uint32, buffer=dst, strides=(3,))
    out[...] = words[:-1]
    dst.reshape(-1, 3)[-1] = src.reshape(-1, 4)[-1, :3]


def lower_thread_priority() -> None:
    """Run the calling thread only when a CPU has nothing else to do (Linux ``SCHED_IDLE``
    applies per thread; elsewhere nothing changes)."""
    try:
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    except (AttributeError, OSError) as e:
        log.debug("SCHED_IDLE unavailable for this thread: %s", e)
