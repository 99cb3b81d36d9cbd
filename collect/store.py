"""Store format v1: the one place that knows how frames are laid out on disk.

Writers (:mod:`collect.writer`) create groups and publish rows through the functions here;
readers (:mod:`render` and tests) open stores with :func:`open_store` and read rows through
:class:`GroupReader`. Nobody else spells out a group name, an attribute key or an array path.
See ``docs/store-format.md`` for the format itself.

Layout::

    <store>.zarr/                     root; attrs["evalframes"] = {format, version, ...}
      rank{r}_gpu{g}_env{e}/          one group per env, one writer per group
        cameras/<camera>              uint8 (T, H, W, 3), time-chunked
        step episode reward terminated truncated
        info/<key>                    one scalar per row

The readable length of a group is ``attrs["committed_rows"]``, published by the writer after
the data of those rows is in every array; shapes may run ahead of it and are never trusted.

>>> import tempfile, numpy as np
>>> from collect import FrameWriter
>>> path = tempfile.mkdtemp() + "/demo.zarr"
>>> with FrameWriter(path, rank=0, gpu=0, num_envs=2, fps=10) as w:
...     for _ in range(3):
...         w.append({"zed": np.zeros((2, 8, 8, 3), np.uint8)}, reward=[0.0, 1.0])
>>> store = open_store(path)
>>> [(g.name, g.rows, g.cameras) for g in store.groups()]
[('rank0_gpu0_env0', 3, {'zed': (8, 8)}), ('rank0_gpu0_env1', 3, {'zed': (8, 8)})]
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import fnmatch
import logging
import os
import re
import shutil
import socket
import uuid
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import zarr
import zarr.codecs
import zarr.errors
import zarr.storage
from numcodecs import Zstd
from zarr.core.buffer import default_buffer_prototype
from zarr.core.sync import sync

from . import codecs as _codecs
from .location import StoreAccessError, StoreLocation

__all__ = [
    "CAMERAS",
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "SCALARS",
    "ArrayMissingError",
    "FrameStore",
    "GroupReader",
    "GroupWriter",
    "RowMetadata",
    "StoreFormatError",
    "create_env_group",
    "group_name",
    "is_metadata_path",
    "open_or_create_root",
    "open_store",
    "parse_group_name",
    "remove_store",
    "row_fill",
    "stored_bytes",
]

log = logging.getLogger(__name__)

FORMAT_NAME = "evalframes.frames"
FORMAT_VERSION = 1
DEFAULT_VIDEO_PREFIX = "behavior_video"
CAMERAS = "cameras"
INFO = "info"
COMMITTED = "committed_rows"
# Per-row scalar arrays every group has, with their dtypes.
SCALARS: dict[str, str] = {
    "step": "int64",
    "episode": "int32",
    "reward": "float32",
    "terminated": "bool",
    "truncated": "bool",
}
SCALAR_CHUNK_ROWS = 4096
# Row arrays' compression: zarr's default (zstd level 0, no checksum), spelled out because the
# writer process writes these chunk files itself (:class:`_RowChunks`).
_ROW_ZSTD_LEVEL = 0
_GROUP_RE = re.compile(r"^rank(\d+)_gpu(\d+)_env(\d+)$")


class StoreFormatError(ValueError):
    """The path is not a readable evalframes store, or a group in it is damaged."""


class ArrayMissingError(StoreFormatError):
    """An array of a group is not there at all (its ``zarr.json`` is gone)."""


def is_metadata_path(path: str) -> bool:
    """Whether the array at ``path`` of a group holds per-row metadata (a scalar of
    :data:`SCALARS` or ``info/<key>``) rather than frames: losing one loses no frame."""
    return path in SCALARS or path == INFO or path.startswith(f"{INFO}/")


def group_name(rank: int, gpu: int, env: int) -> str:
    """``rank{rank}_gpu{gpu}_env{env}``: the group of one env, and the suffix of its video."""
    return f"rank{rank}_gpu{gpu}_env{env}"


def parse_group_name(name: str) -> tuple[int, int, int]:
    """``(rank, gpu, env)`` from a group name; ``ValueError`` for anything else."""
    match = _GROUP_RE.match(name)
    if not match:
        raise ValueError(f"not an env group name: {name!r} (expected rank<r>_gpu<g>_env<e>)")
    rank, gpu, env = (int(x) for x in match.groups())
    return rank, gpu, env


# ----------------------------------------------------------------------------- writing side


def _root_attrs(fps: float, video_prefix: str, config: Mapping[str, Any] | None) -> dict:
    return {
        "evalframes": {"format": FORMAT_NAME, "version": FORMAT_VERSION},
        "fps": float(fps),
        "video_prefix": video_prefix,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "config": dict(config or {}),
    }


def open_or_create_root(
    store: str | os.PathLike | StoreLocation,
    *,
    fps: float,
    video_prefix: str = DEFAULT_VIDEO_PREFIX,
    config: Mapping[str, Any] | None = None,
) -> zarr.Group:
    """Open the store root for writing, creating it if needed; safe when many processes race.

    Never opens with ``mode="w"`` (that would delete other workers' groups). If the location
    holds a zarr group that is not an evalframes store, raise instead of writing into it.
    """
    location = StoreLocation.of(store)
    if location.is_local:
        try:
            location.path.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise OSError(f"cannot create frame store at {location.url!r}: {e.strerror}") from e
    attrs = _root_attrs(fps, video_prefix, config)
    with location.translated_errors("creating the store"):
        zarr_store = location.zarr_store(read_only=False)
        location.check_access(zarr_store)
        try:
            root = zarr.create_group(zarr_store, attributes=attrs, overwrite=False)
        except (zarr.errors.ContainsGroupError, zarr.errors.ContainsArrayError, FileExistsError):
            root = zarr.open_group(zarr_store, mode="r+")
        except PermissionError as e:
            if not location.is_local:
                raise
            raise PermissionError(f"frame store {location.url!r} is not writable: {e}") from e
    _check_root_format(root, location.url)
    return root


def create_env_group(
    root: zarr.Group,
    *,
    rank: int,
    gpu: int,
    env: int,
    global_env: int,
    num_envs_in_worker: int,
    fps: float,
    overwrite: bool = False,
) -> zarr.Group:
    """Create the group of one env with its scalar arrays (cameras come with the first frame)."""
    name = group_name(rank, gpu, env)
    attrs = {
        "rank": rank,
        "gpu": gpu,
        "env": env,
        "global_env": global_env,
        "num_envs_in_worker": num_envs_in_worker,
        "host": socket.gethostname(),
        "cameras": {},
        "fps": float(fps),
        "status": "recording",
        COMMITTED: 0,
    }
    if name in root and not overwrite:
        raise FileExistsError(
            f"group {name!r} already exists in frame store {root.store}; "
            "record into a new store path or pass overwrite=True"
        )
    group = root.create_group(name, attributes=attrs, overwrite=overwrite)
    for scalar, dtype in SCALARS.items():
        _create_row_array(group, scalar, dtype)
    return group


def _create_row_array(group: zarr.Group, path: str, dtype: str) -> zarr.Array:
    return group.create_array(
        path,
        shape=(0,),
        chunks=(SCALAR_CHUNK_ROWS,),
        dtype=dtype,
        fill_value=row_fill(dtype),
        config={"write_empty_chunks": True},
        compressors=[zarr.codecs.ZstdCodec(level=_ROW_ZSTD_LEVEL)],
    )


def row_fill(dtype: str | np.dtype) -> float:
    """What a row array holds where no value was given: NaN for floats, else 0 (false)."""
    return np.nan if np.dtype(dtype).kind == "f" else 0


def create_info_array(group: zarr.Group, key: str, dtype: str) -> zarr.Array:
    """Create ``info/<key>``; dotted keys (``episode.success_once``) are kept verbatim."""
    return _create_row_array(group, f"{INFO}/{key}", dtype)


def create_camera_array(
    group: zarr.Group,
    camera: str,
    height: int,
    width: int,
    *,
    chunk_frames: int,
    codec: _codecs.FrameCodec,
    shard_frames: int | None = None,
) -> zarr.Array:
    """Create ``cameras/<camera>`` and record its size in the group's attributes."""
    chunks = (chunk_frames, height, width, 3)
    shards = (shard_frames, height, width, 3) if shard_frames else None
    array = group.create_array(
        f"{CAMERAS}/{camera}",
        shape=(0, height, width, 3),
        chunks=chunks,
        shards=shards,
        dtype="uint8",
        fill_value=0,
        config={"write_empty_chunks": True},
        attributes={"codec": codec.get_config()},
        **codec.zarr_codecs(),
    )
    cameras = dict(group.attrs.get("cameras", {}))
    cameras[camera] = [height, width]
    group.attrs["cameras"] = cameras
    return array


def commit_rows(group: zarr.Group, rows: int, *, status: str | None = None) -> None:
    """Publish that the first ``rows`` rows of every array in ``group`` are written."""
    update: dict[str, Any] = {COMMITTED: int(rows)}
    if status is not None:
        update["status"] = status
    group.attrs.update(update)


def remove_store(store: StoreLocation) -> None:
    """Delete the whole store at ``store``: every group, the root, everything under it."""
    if store.is_local:
        shutil.rmtree(store.path)
        return
    zarr_store = store.zarr_store(read_only=False)
    with store.translated_errors("removing the store"):  # one listing, then bulk deletes
        sync(zarr_store.fs._rm(zarr_store.path, recursive=True))


def open_env_group(store: StoreLocation, name: str) -> zarr.Group:
    """Open an env group created by :func:`create_env_group`, for its one writer."""
    with store.translated_errors(f"opening group {name!r}"):
        return zarr.open_group(store.zarr_store(read_only=False), path=name, mode="r+")


class GroupWriter:
    """The arrays of one env's group as its one writer sees them: created, grown, written.

    Rows are written a whole buffer at a time (``rows_per_write``: a chunk, or a shard), so
    no chunk is ever merged with what was there (zarr's sharding codec still fetches a
    shard's previous version first). Shapes grow ahead of the rows in big steps;
    :func:`commit_rows` publishes what is readable.
    """

    def __init__(
        self,
        group: zarr.Group,
        *,
        codec: _codecs.FrameCodec,
        chunk_frames: int,
        shard_frames: int | None = None,
    ) -> None:
        self.group = group
        self.codec = codec
        self.chunk_frames = chunk_frames
        self.shard_frames = shard_frames
        # Reopened handles lose the creation config: every array here writes empty chunks
        # (the fill-value comparison costs more than it saves, and readers expect the files).
        self.arrays: dict[str, zarr.Array] = {
            name: group[name].with_config({"write_empty_chunks": True}) for name in SCALARS
        }
        self.capacity = 0
        self.written = 0  # no chunk has been written past this row
        # The default codec's chunks are written as files here rather than through zarr's
        # write path (thread pool, event loop, codec pipeline: half the writer process's CPU
        # per frame); sharded arrays and other codecs go through zarr.
        direct = isinstance(codec, _codecs.ZstdCodec_) and shard_frames is None
        self._direct_level = codec.level if direct else None
        self._row_chunks = _RowChunks(self)

    @property
    def rows_per_write(self) -> int:
        return int(self.shard_frames or self.chunk_frames)

    def add_camera(self, camera: str, height: int, width: int) -> None:
        path = f"{CAMERAS}/{camera}"
        if path not in self.arrays:
            self.arrays[path] = create_camera_array(
                self.group,
                camera,
                height,
                width,
                chunk_frames=self.chunk_frames,
                codec=self.codec,
                shard_frames=self.shard_frames,
            )
            _resize_rows(self.arrays[path], self.capacity)

    def add_info(self, key: str, dtype: np.dtype) -> None:
        path = f"{INFO}/{key}"
        if path not in self.arrays:
            self.arrays[path] = create_info_array(self.group, key, np.dtype(dtype).str)
            _resize_rows(self.arrays[path], self.capacity)

    def grow(self, capacity: int) -> None:
        """Make every array at least ``capacity`` rows long."""
        if capacity > self.capacity:
            self.capacity = capacity
            for array in self.arrays.values():
                _resize_rows(array, capacity)

    def write(
        self,
        start: int,
        cameras: Mapping[str, np.ndarray],
        scalars: Mapping[str, np.ndarray],
        info: Mapping[str, np.ndarray],
    ) -> None:
        """Write one whole buffer of rows from ``start``: ``(T, H, W, 3)`` frames, ``(T,)``
        scalars and info columns. Every file is replaced atomically."""
        stop = start + self.rows_per_write
        self.written = max(self.written, stop)
        for camera, frames in cameras.items():
            if self._direct_level is not None:
                parts = _codecs.deferrable_chunk(frames, self._direct_level)
                self.put_chunk(f"{CAMERAS}/{camera}", (start // self.chunk_frames, 0, 0, 0), parts)
            else:
                self.arrays[f"{CAMERAS}/{camera}"][start:stop] = frames
        for name, values in scalars.items():
            self._row_chunks.write(name, start, values)
        for key, values in info.items():
            self._row_chunks.write(f"{INFO}/{key}", start, values)

    def put_chunk(
        self, path: str, coords: tuple[int, ...], parts: list[bytes | memoryview]
    ) -> None:
        """Store one encoded chunk of the array ``path`` whole: a file replaced atomically
        (local stores) or one object PUT (object stores: atomic per object)."""
        array = self.arrays[path]
        if isinstance(array.store_path.store, zarr.storage.LocalStore):
            replace_file(_chunk_file(array, coords), parts)
        else:
            data = default_buffer_prototype().buffer.from_bytes(b"".join(parts))
            sync((array.store_path / array.metadata.encode_chunk_key(coords)).set(data))

    def chunk_file(self, camera: str, start: int) -> Path:
        """The file of the chunk of ``camera`` that begins at row ``start`` (local stores)."""
        coords = (start // self.chunk_frames, 0, 0, 0)
        return _chunk_file(self.arrays[f"{CAMERAS}/{camera}"], coords)

    def finish(self, rows: int, status: str) -> None:
        """Trim every array to the committed ``rows`` and record the final ``status``.

        The shapes ran ahead of the writes (:meth:`grow`), and zarr's resize would try to
        delete every chunk between, though none was written there: one resize without
        deletes. Only when a write past the committed rows was never committed (a failed
        commit) are the arrays cut to what was written first, then to ``rows`` deleting its
        chunks.
        """
        last_buffer_end = -(-rows // self.rows_per_write) * self.rows_per_write
        written_past = self.written > last_buffer_end
        for array in self.arrays.values():
            if written_past:
                _resize_rows(array, self.written, delete_outside=False)
            _resize_rows(array, rows, delete_outside=written_past)
        commit_rows(self.group, rows, status=status)


class _RowChunks:
    """The row arrays' (scalars, info) chunks that a group's writer is filling, kept in memory
    and written as whole files, byte for byte what zarr writes (zarr would read each chunk
    back, merge and re-encode it on every write: most of the writer process's zarr CPU).

    The writer is the only one writing the group and starts from empty arrays, so the copy
    here is the chunk's content."""

    def __init__(self, group: GroupWriter) -> None:
        self.group = group
        self.chunks: dict[str, tuple[int, np.ndarray]] = {}  # path -> (chunk index, rows)

    def write(self, path: str, start: int, values: np.ndarray) -> None:
        """Write ``values`` into rows ``start:`` of the row array ``path``."""
        stop = start + len(values)
        for index in range(start // SCALAR_CHUNK_ROWS, -(-stop // SCALAR_CHUNK_ROWS)):
            lo = max(start, index * SCALAR_CHUNK_ROWS)
            hi = min(stop, (index + 1) * SCALAR_CHUNK_ROWS)
            chunk = self._chunk(path, index)
            chunk[lo - index * SCALAR_CHUNK_ROWS : hi - index * SCALAR_CHUNK_ROWS] = values[
                lo - start : hi - start
            ]
            self._store(path, index, chunk)

    def _chunk(self, path: str, index: int) -> np.ndarray:
        current = self.chunks.get(path)
        if current is None or current[0] != index:
            array = self.group.arrays[path]
            rows = np.full(SCALAR_CHUNK_ROWS, row_fill(array.dtype), array.dtype)
            current = self.chunks[path] = (index, rows)
        return current[1]

    def _store(self, path: str, index: int, chunk: np.ndarray) -> None:
        raw = np.ascontiguousarray(chunk, chunk.dtype.newbyteorder("<"))
        self.group.put_chunk(path, (index,), [Zstd(_ROW_ZSTD_LEVEL).encode(raw)])


def _chunk_file(array: zarr.Array, coords: tuple[int, ...]) -> Path:
    """The file of one chunk of an array of a local store."""
    key = array.metadata.encode_chunk_key(coords)
    return Path(str(array.store_path.store.root)) / array.store_path.path / key


def stored_bytes(groups: list[zarr.Group]) -> int:
    """Bytes of every file (object) under these groups, on disk or in the object store
    (there from one listing per group, not a request per object)."""

    async def size(group: zarr.Group) -> int:
        store = group.store_path.store
        if isinstance(store, zarr.storage.FsspecStore):
            return await store.fs._du(f"{store.path}/{group.store_path.path}", total=True)
        return await store.getsize_prefix(group.store_path.path)

    return sum(sync(size(group)) for group in groups)


def replace_file(path: Path, parts: list[bytes | memoryview]) -> None:
    """Write ``parts`` one after the other as the file ``path``, atomically (a temp file
    ``*.partial`` renamed over it, as zarr's LocalStore does): a reader or a crash sees the
    old file or the new one, never part of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(f".{uuid.uuid4().hex}.partial")  # readers ignore *.partial
    try:
        with partial.open("wb") as f:
            for part in parts:
                f.write(part)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def _resize_rows(array: zarr.Array, rows: int, *, delete_outside: bool = True) -> None:
    """Set the array's length to ``rows``; ``delete_outside``: remove the chunks past it."""
    if array.shape[0] != rows:
        shape = (rows, *array.shape[1:])
        sync(array.async_array.resize(shape, delete_outside_chunks=delete_outside))


# ----------------------------------------------------------------------------- reading side


def _check_root_format(root: zarr.Group, path: str) -> dict:
    meta = root.attrs.get("evalframes")
    if not isinstance(meta, dict) or meta.get("format") != FORMAT_NAME:
        raise StoreFormatError(f"{str(path)!r} is a zarr group but not an evalframes frame store")
    version = meta.get("version")
    if version != FORMAT_VERSION:
        raise StoreFormatError(
            f"{str(path)!r} has evalframes store format version {version!r}; "
            f"this evalframes reads version {FORMAT_VERSION} (upgrade evalframes)"
        )
    return meta


def open_store(
    store: str | os.PathLike | StoreLocation, storage_options: Mapping[str, Any] | None = None
) -> FrameStore:
    """Open a frame store (a path or a URL) for reading; :class:`StoreFormatError` if it is
    not one, ``FileNotFoundError`` if there is none, :class:`StoreAccessError` if the
    location cannot be reached."""
    location = StoreLocation.of(store, storage_options)
    if location.is_local and not location.path.exists():
        raise FileNotFoundError(f"frame store {location.url!r} does not exist")
    with location.translated_errors("opening the store"):
        zarr_store = location.zarr_store(read_only=True)
        location.check_access(zarr_store)
        try:
            root = zarr.open_group(zarr_store, mode="r")
        except (zarr.errors.GroupNotFoundError, FileNotFoundError) as e:
            if not location.is_local and not _list_dir(zarr_store, ""):
                raise FileNotFoundError(f"frame store {location.url!r} does not exist") from e
            raise StoreFormatError(
                f"{location.url!r} is not a readable zarr group: no group metadata (zarr.json) "
                "at its root"
            ) from e
        except (ValueError, KeyError) as e:
            raise StoreFormatError(f"{location.url!r} is not a readable zarr group: {e}") from e
    _check_root_format(root, location.url)
    return FrameStore(location, root, zarr_store)


@dataclass
class FrameStore:
    """A frame store opened for reading (``root`` is ``None`` when its root metadata is
    unreadable: the groups can still be listed and opened)."""

    location: StoreLocation
    root: zarr.Group | None = field(repr=False)
    zarr_store: Any = field(repr=False)  # the store at ``location``, opened read-only

    @property
    def attrs(self) -> dict[str, Any]:
        return dict(self.root.attrs) if self.root is not None else {}

    @property
    def fps(self) -> float:
        return float(self.attrs.get("fps", 30.0))

    @property
    def video_prefix(self) -> str:
        return str(self.attrs.get("video_prefix", DEFAULT_VIDEO_PREFIX))

    def group_names(self, pattern: str = "*") -> list[str]:
        """Names of the env groups matching a glob, sorted by (rank, gpu, env).

        Looks at the store's listing, not at the groups' metadata, so a group whose metadata
        is damaged is still listed (and reported when opened).
        """
        if self.location.is_local and not self.location.path.is_dir():
            raise FileNotFoundError(f"frame store {self.location.url!r} does not exist")
        with self.location.translated_errors("listing groups"):
            entries = _list_dir(self.zarr_store, "")
        names = [n for n in entries if _GROUP_RE.match(n) and fnmatch.fnmatchcase(n, pattern)]
        return sorted(names, key=parse_group_name)

    def group(self, name: str) -> GroupReader:
        """Open one group; :class:`StoreFormatError` naming the group if it is damaged."""
        try:
            with self.location.translated_errors(f"opening group {name!r}"):
                group = zarr.open_group(self.zarr_store, path=name, mode="r")
                return GroupReader(name, group, self.location)
        except (StoreFormatError, StoreAccessError):
            raise
        except zarr.errors.GroupNotFoundError:
            raise StoreFormatError(f"group {name!r}: metadata missing (no zarr.json)") from None
        except Exception as e:
            raise StoreFormatError(f"group {name!r}: metadata unreadable ({e})") from e

    def groups(self, pattern: str = "*") -> list[GroupReader]:
        """All readable groups matching ``pattern`` (damaged ones raise; see ``group``)."""
        return [self.group(n) for n in self.group_names(pattern)]


class GroupReader:
    """Read access to one env's group, clipped to its committed rows."""

    def __init__(self, name: str, group: zarr.Group, location: StoreLocation | None = None) -> None:
        self.name = name
        self._group = group
        # where the group lives: a storage failure while reading (credentials, endpoint) is
        # a StoreAccessError, never mistaken for damage
        self._access = location.translated_errors if location else contextlib.nullcontext
        # Opened arrays: their shapes cover at least ``rows`` (the writer grows shapes before it
        # commits), so handles stay valid for this reader's committed rows.
        self._arrays: dict[str, zarr.Array] = {}
        attrs = dict(group.attrs)
        self.attrs = attrs
        try:
            self.rank, self.gpu, self.env = (int(attrs[k]) for k in ("rank", "gpu", "env"))
            self.rows = int(attrs[COMMITTED])
            self.cameras: dict[str, tuple[int, int]] = {
                cam: (int(h), int(w)) for cam, (h, w) in attrs.get("cameras", {}).items()
            }
        except (KeyError, TypeError, ValueError) as e:
            raise StoreFormatError(f"group {name!r}: attributes incomplete ({e!r})") from e

    def __repr__(self) -> str:
        return f"GroupReader({self.name!r}, rows={self.rows}, cameras={list(self.cameras)})"

    @property
    def status(self) -> str:
        return str(self.attrs.get("status", "unknown"))

    @property
    def fps(self) -> float:
        return float(self.attrs.get("fps", 30.0))

    @property
    def global_env(self) -> int:
        return int(self.attrs.get("global_env", self.env))

    @property
    def info_keys(self) -> list[str]:
        with self._access():
            if INFO not in self._group:
                return []
            with warnings.catch_warnings():  # a folder without zarr.json: see below
                warnings.simplefilter("ignore")
                return sorted(self._group[INFO].array_keys())

    def info_without_metadata(self) -> list[str]:
        """Entries under ``info/`` that are not readable arrays (their zarr.json is gone).

        zarr skips such a folder when listing, so the key would silently vanish.
        """
        prefix = "/".join(p for p in (self._group.store_path.path, INFO) if p)
        with self._access():
            entries = _list_dir(self._group.store_path.store, prefix)
        return sorted(set(entries) - set(self.info_keys) - {"zarr.json"})

    def array_paths(self, *, info: bool = True) -> list[str]:
        """Every array the committed rows span: the scalars, each camera, each info key."""
        cameras = [f"{CAMERAS}/{camera}" for camera in self.cameras]
        infos = [f"{INFO}/{key}" for key in self.info_keys] if info else []
        return [*SCALARS, *cameras, *infos]

    def _array(self, path: str) -> zarr.Array:
        if path in self._arrays:
            return self._arrays[path]
        try:
            with self._access():
                array = self._arrays[path] = self._group[path]
            return array
        except StoreAccessError:
            raise
        except KeyError:
            raise ArrayMissingError(
                f"group {self.name!r}: array {path!r} is missing (no zarr.json)"
            ) from None
        except Exception as e:
            raise StoreFormatError(
                f"group {self.name!r}: array {path!r} metadata unreadable ({e})"
            ) from e

    def chunk_spans(self, path: str) -> list[tuple[int, int]]:
        """Row spans ``(start, stop)`` of the stored chunk files (or shards) of ``path``.

        Clipped to the committed rows; :class:`StoreFormatError` if the array's metadata is
        unreadable or it holds fewer rows than are committed.
        """
        array = self._array(path)
        self._check_length(path, array, self.rows)
        rows = _rows_per_file(array)
        return [(a, min(a + rows, self.rows)) for a in range(0, self.rows, rows)]

    def missing_chunks(self, path: str, start: int = 0, stop: int | None = None) -> list[int]:
        """Indices of the chunk files of rows ``start:stop`` that should exist and do not.

        zarr reads an absent chunk as fill values (black frames) without a word, so readers
        check: the writer writes every chunk of every camera for every committed row. Only
        camera arrays are checked: earlier writers left out scalar and info chunks holding
        nothing but the fill value (zarr's default ``write_empty_chunks=False``), so there
        a missing one is not damage.
        """
        stop = self.rows if stop is None else min(stop, self.rows)
        return self._missing_camera_chunks(path, self._array(path), start, stop)

    def _missing_camera_chunks(
        self, path: str, array: zarr.Array, start: int, stop: int
    ) -> list[int]:
        if not path.startswith(f"{CAMERAS}/"):
            return []
        with self._access():
            return _missing_chunks(array, start, stop)

    def _check_length(self, path: str, array: zarr.Array, stop: int) -> None:
        if array.shape[0] < stop:
            raise StoreFormatError(
                f"group {self.name!r}: array {path!r} has {array.shape[0]} rows, "
                f"fewer than the {self.rows} committed"
            )

    def read_array(self, path: str, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Rows ``start:stop`` (committed only) of any array of the group, by its path.

        :class:`StoreFormatError` naming the group, array and rows when the array is missing,
        shorter than the committed rows, lacks chunk files there, or a chunk does not decode.
        """
        stop = self.rows if stop is None else min(stop, self.rows)
        array = self._array(path)
        self._check_length(path, array, stop)
        missing = self._missing_camera_chunks(path, array, start, stop)
        if missing:
            rows = _rows_per_file(array)
            spans = ", ".join(f"{i * rows}:{min((i + 1) * rows, self.rows)}" for i in missing)
            raise StoreFormatError(
                f"group {self.name!r}: array {path!r} chunk files missing for rows {spans}"
            )
        try:
            with self._access():
                return array[start:stop]
        except StoreAccessError:
            raise
        except Exception as e:
            raise StoreFormatError(
                f"group {self.name!r}: array {path!r} rows {start}:{stop} unreadable ({e})"
            ) from e

    def frames(self, camera: str, start: int = 0, stop: int | None = None) -> np.ndarray:
        """``uint8 (T, H, W, 3)`` frames of one camera, rows ``start:stop`` (committed only)."""
        if camera not in self.cameras:
            raise KeyError(
                f"group {self.name!r} has no camera {camera!r}; it has {sorted(self.cameras)}"
            )
        return self.read_array(f"{CAMERAS}/{camera}", start, stop)

    def scalar(self, key: str, start: int = 0, stop: int | None = None) -> np.ndarray:
        """A per-row scalar: one of :data:`SCALARS`, or ``info/<key>`` for an info key."""
        path = key if key in SCALARS else f"{INFO}/{key}"
        return self.read_array(path, start, stop)

    def scalars(self, start: int = 0, stop: int | None = None) -> dict[str, np.ndarray]:
        """Every per-row scalar (standard ones, then info keys) for rows ``start:stop``."""
        keys = [*SCALARS, *self.info_keys]
        return {k: self.scalar(k, start, stop) for k in keys}

    def chunk_frames(self, camera: str) -> int:
        """Rows per stored chunk of a camera (the efficient read block)."""
        return int(self._array(f"{CAMERAS}/{camera}").chunks[0])

    def read_metadata(self) -> RowMetadata:
        """Every per-row metadata array (the scalars, each info key) over the committed rows,
        and what is wrong with each one that cannot be read, instead of raising.

        Frames do not depend on these arrays, so a reader that can do without one (render)
        gets what is left and says what was lost. An array with any unreadable chunk is
        counted as damaged as a whole (scalar chunks are 4096 rows: most groups have one).
        """
        values: dict[str, np.ndarray] = {}
        damage: dict[str, tuple[str, str]] = {}
        try:
            infos = [f"{INFO}/{key}" for key in self.info_keys]
            lost = [f"{INFO}/{key}" for key in self.info_without_metadata()]
        except StoreAccessError:
            raise
        except Exception as e:  # noqa: BLE001 - an unlistable info/ folder is one more loss
            infos, lost = [], []
            problem = f"group {self.name!r}: info arrays cannot be listed ({e})"
            damage[INFO] = ("unreadable", problem)
        for path in [*SCALARS, *infos]:
            try:
                values[path] = self.read_array(path)
            except StoreFormatError as e:
                damage[path] = (self._damage_kind(path, e), str(e))
        for path in lost:
            key = path.removeprefix(f"{INFO}/")
            damage[path] = (
                "missing",
                f"group {self.name!r}: info array {key!r} has no metadata (zarr.json missing)",
            )
        return RowMetadata(self.name, self.rows, values, damage)

    def _damage_kind(self, path: str, error: StoreFormatError) -> str:
        """One word for what :meth:`read_array` found wrong with ``path``."""
        if isinstance(error, ArrayMissingError):
            return "missing"
        array = self._arrays.get(path)
        if array is None:
            return "metadata unreadable"
        return "too short" if array.shape[0] < self.rows else "unreadable"

    def episodes(self) -> list[tuple[int, int, int]]:
        """``(episode, start_row, stop_row)`` for each episode present in the committed rows."""
        episode = self.scalar("episode")
        if len(episode) == 0:
            return []
        cuts = np.flatnonzero(np.diff(episode)) + 1
        starts = [0, *cuts.tolist()]
        stops = [*cuts.tolist(), len(episode)]
        return [(int(episode[a]), a, b) for a, b in zip(starts, stops, strict=True)]


@dataclass(frozen=True)
class RowMetadata:
    """The per-row metadata of a group as far as it is readable (:meth:`GroupReader.read_metadata`).

    ``values``: array path (``reward``, ``info/success``) -> its committed rows, for every
    readable array; ``damage``: array path -> ``(kind, message)`` for every one that is not,
    ``kind`` one of ``missing``, ``metadata unreadable``, ``too short``, ``unreadable`` and
    ``message`` naming the group, the array and what is wrong.
    """

    group: str
    rows: int
    values: Mapping[str, np.ndarray]
    damage: Mapping[str, tuple[str, str]]

    @property
    def complete(self) -> bool:
        return not self.damage


def _list_dir(store: Any, prefix: str) -> list[str]:
    """The names right under ``prefix`` of a zarr store (files and folders, or keys)."""

    async def names() -> list[str]:
        return [name async for name in store.list_dir(prefix)]

    return sync(names())


def _rows_per_file(array: zarr.Array) -> int:
    """Rows per stored file of an array: its shard length when sharded, else its chunk length."""
    return int((array.shards or array.chunks)[0])


def _missing_chunks(array: zarr.Array, start: int, stop: int) -> list[int]:
    """Indices of the chunk files (shards) along rows ``start:stop`` that do not exist."""
    rows = _rows_per_file(array)
    coords = (0,) * (array.ndim - 1)
    return [
        i
        for i in range(start // rows, -(-stop // rows))
        if not sync((array.store_path / array.metadata.encode_chunk_key((i, *coords))).exists())
    ]
