"""Frame codecs: how camera chunks are compressed in the store.

A tiny registry in the style of numcodecs: every codec is a :class:`FrameCodec` with a ``name``
and a ``zarr_codecs()`` method that returns the zarr v3 codec chain for a camera array. Readers
need nothing from here for the lossless codecs (they are standard zarr codecs); the lossy ones
are zarr ``ArrayBytesCodec`` subclasses registered with zarr under ``evalframes.<name>`` when
this module is imported, which :mod:`collect.store` does, so any reader of the store can decode
them.

Lossless default, chosen by measurement (``benchmarks/bench_codecs.py``, see
``docs/store-format.md``): ``zstd`` level 1 with a window spanning the whole chunk, no
shuffle, 16-frame chunks.

>>> get_codec("zstd").get_config()
{'id': 'zstd', 'level': 1}
>>> get_codec({"id": "jpeg", "quality": 80}) == JpegCodec(quality=80)
True
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import struct
import threading
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any, ClassVar

import numpy as np
import zstandard
from numcodecs import Zstd
from zarr.abc.codec import ArrayBytesCodec, BytesBytesCodec
from zarr.codecs import BloscCodec, ZstdCodec
from zarr.registry import register_codec as _register_zarr_codec

from .registry import Registry, UnknownNameError

__all__ = [
    "AvifCodec",
    "FrameCodec",
    "JpegCodec",
    "Lz4Codec",
    "RawCodec",
    "UnknownCodecError",
    "WebpCodec",
    "ZstdCodec_",
    "available_codecs",
    "deferrable_chunk",
    "get_codec",
    "register_codec",
]


class UnknownCodecError(UnknownNameError):
    """Raised for a codec name that is not registered."""


@dataclass(frozen=True)
class FrameCodec:
    """A named way to compress camera chunks; constructor kwargs are its config."""

    name: ClassVar[str]

    def zarr_codecs(self) -> dict[str, Any]:
        """Keyword arguments for ``zarr.create_array`` (``serializer``/``compressors``)."""
        raise NotImplementedError

    def get_config(self) -> dict[str, Any]:
        return {"id": self.name, **asdict(self)}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> FrameCodec:
        return cls(**{k: v for k, v in config.items() if k != "id"})


_CODECS: Registry[type[FrameCodec]] = Registry("frame codec", UnknownCodecError)


def register_codec(cls: type[FrameCodec]) -> type[FrameCodec]:
    """Add a codec class to the registry under its ``name`` (usable as a decorator)."""
    return _CODECS.register(cls.name)(cls)


def available_codecs() -> list[str]:
    return _CODECS.names()


def get_codec(spec: str | dict[str, Any] | FrameCodec) -> FrameCodec:
    """A codec from its name, its config dict (``{"id": name, ...}``) or itself."""
    if isinstance(spec, FrameCodec):
        return spec
    config = {"id": spec} if isinstance(spec, str) else dict(spec)
    return _CODECS[config.get("id")].from_config(config)


@register_codec
@dataclass(frozen=True)
class ZstdCodec_(FrameCodec):
    """Zstandard, no shuffle: measured faster and smaller than Blosc-zstd on frames.

    The window spans the whole chunk (up to 16 MiB), so each frame compresses against the
    previous ones at any level; level 1 then costs less CPU than level 3 for the same size
    (see :func:`zstd_chunk`).
    """

    name: ClassVar[str] = "zstd"
    level: int = 1

    def zarr_codecs(self) -> dict[str, Any]:
        return {"compressors": [DeferrableZstd(level=self.level)]}


_deferring = False


@contextlib.contextmanager
def deferred_compression() -> Iterator[None]:
    """While active, :class:`DeferrableZstd` stores chunks raw, to be recompressed later.

    The writer process uses it when the ring fills faster than zstd drains it. zarr encodes
    on its own event-loop thread, so this is a process-wide switch, not a context variable;
    the writer process is the only one that sets it.
    """
    global _deferring
    _deferring = True
    try:
        yield
    finally:
        _deferring = False


_RAW, _ZSTD = b"\x00", b"\x01"


@dataclass(frozen=True)
class DeferrableZstd(BytesBytesCodec):
    """Zstandard, or the raw bytes for now (:func:`deferred_compression`); a one-byte tag says
    which, so every reader decodes either and only the writer cares."""

    is_fixed_size = False
    level: int = 1

    def __post_init__(self) -> None:
        ZstdCodec(level=self.level)  # zarr's own range check: one message for a bad level

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DeferrableZstd:
        return cls(**data.get("configuration", {}))

    def to_dict(self) -> dict[str, Any]:
        return {"name": "evalframes.zstd", "configuration": {"level": self.level}}

    def _encode(self, chunk_bytes: Any, chunk_spec: Any) -> Any:
        parts = deferrable_chunk(chunk_bytes.as_numpy_array(), self.level)
        encoded = np.frombuffer(b"".join(parts), np.uint8)
        return chunk_spec.prototype.buffer.from_array_like(encoded)

    def _decode(self, chunk_bytes: Any, chunk_spec: Any) -> Any:
        data = chunk_bytes.as_numpy_array()
        tag, payload = bytes(data[:1]), data[1:]
        if tag == _ZSTD:
            payload = np.frombuffer(Zstd(self.level).decode(payload), np.uint8)
        elif tag != _RAW:
            raise ValueError(f"evalframes.zstd chunk has unknown tag {tag!r}")
        return chunk_spec.prototype.buffer.from_array_like(payload)

    async def _encode_single(self, chunk_bytes: Any, chunk_spec: Any) -> Any:
        return await asyncio.to_thread(self._encode, chunk_bytes, chunk_spec)

    async def _decode_single(self, chunk_bytes: Any, chunk_spec: Any) -> Any:
        return await asyncio.to_thread(self._decode, chunk_bytes, chunk_spec)

    def compute_encoded_size(self, _input_byte_length: int, _chunk_spec: Any) -> int:
        raise NotImplementedError("zstd has a variable encoded size")


def deferrable_chunk(data: np.ndarray, level: int) -> list[bytes | memoryview]:
    """A :class:`DeferrableZstd` chunk of ``data``'s bytes (C order), in the parts to write one
    after the other: the tag, then the raw bytes under :func:`deferred_compression`, else
    zstd's (what zarr stores for the chunk, and the writer process writes directly)."""
    raw = memoryview(np.ascontiguousarray(data)).cast("B")
    return [_RAW, raw] if _deferring else zstd_chunk(raw, level)


def zstd_chunk(data: Any, level: int) -> list[bytes | memoryview]:
    """A compressed :class:`DeferrableZstd` chunk of the bytes ``data``, in parts.

    A standard zstd frame, with a window of at least the whole chunk (up to 16 MiB): zstd's
    own window for the levels under 3 (512 KiB-1 MiB for chunks this large) and even level
    3's (2 MiB) is shorter than one 960x960 frame, so frames would not be matched against the
    one before. Measured on tabletop frames (``docs/store-format.md``), level 1 with the wide
    window against numcodecs' level 3: 480x480 1.05 vs 1.21 ms per frame, ratio 29 vs 28;
    960x960 3.75 vs 7.20 ms, ratio 33 vs 18. The window costs the encoder no memory (the
    chunk is in memory whole), nor a decoder of the whole chunk.
    """
    nbytes = memoryview(data).nbytes
    return [_ZSTD, _compressor(level, _window_log(nbytes)).compress(data)]


_WINDOW_LOG = (10, 24)  # zstd's smallest window, and 16 MiB: two 1080p RGB frames


def _window_log(nbytes: int) -> int:
    """log2 of the smallest window spanning ``nbytes``, within :data:`_WINDOW_LOG`."""
    low, high = _WINDOW_LOG
    return min(high, max(low, math.ceil(math.log2(max(nbytes, 1)))))


_compressors = threading.local()  # a ZstdCompressor is not thread-safe: one per thread


def _compressor(level: int, window_log: int) -> zstandard.ZstdCompressor:
    """This thread's compressor at ``level`` with a window of at least ``2**window_log``."""
    cache = _compressors.__dict__.setdefault("by_params", {})
    compressor = cache.get((level, window_log))
    if compressor is None:
        widest = max(window_log, zstandard.ZstdCompressionParameters.from_level(level).window_log)
        params = zstandard.ZstdCompressionParameters.from_level(level, window_log=widest)
        compressor = zstandard.ZstdCompressor(compression_params=params)
        cache[(level, window_log)] = compressor
    return compressor


def is_deferred(encoded: bytes) -> bool:
    """Whether a stored chunk of a :class:`DeferrableZstd` array waits for compression."""
    return encoded[:1] == _RAW


_register_zarr_codec("evalframes.zstd", DeferrableZstd)


@register_codec
@dataclass(frozen=True)
class Lz4Codec(FrameCodec):
    """Blosc-lz4 without shuffle: the fastest lossless option, larger files than zstd."""

    name: ClassVar[str] = "lz4"
    level: int = 5

    def zarr_codecs(self) -> dict[str, Any]:
        return {
            "compressors": [
                BloscCodec(cname="lz4", clevel=self.level, shuffle="noshuffle", typesize=1)
            ]
        }


@register_codec
@dataclass(frozen=True)
class RawCodec(FrameCodec):
    """No compression (for debugging and as a speed floor)."""

    name: ClassVar[str] = "none"

    def zarr_codecs(self) -> dict[str, Any]:
        return {"compressors": None}


def _imagecodecs() -> Any:
    try:
        import imagecodecs
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError(
            'lossy frame codecs need imagecodecs; pip install "evalframes[lossy]"'
        ) from e
    return imagecodecs


@dataclass(frozen=True)
class _ImageChunkCodec(ArrayBytesCodec):
    """Zarr v3 serializer storing a (T, H, W, 3) uint8 chunk as T independent images.

    Layout of an encoded chunk: ``u32 T``, then ``T`` x ``u32`` byte lengths, then the images.
    """

    image_format: ClassVar[str]
    encode_options: ClassVar[dict[str, Any]] = {}
    is_fixed_size = False
    quality: int = 90

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> _ImageChunkCodec:
        return cls(**data.get("configuration", {}))

    def to_dict(self) -> dict[str, Any]:
        return {"name": f"evalframes.{self.image_format}", "configuration": asdict(self)}

    def _encode_image(self, frame: np.ndarray) -> bytes:
        encode = getattr(_imagecodecs(), f"{self.image_format}_encode")
        return encode(frame, level=self.quality, **self.encode_options)

    def _decode_image(self, data: bytes) -> np.ndarray:
        return getattr(_imagecodecs(), f"{self.image_format}_decode")(data)

    async def _encode_single(self, chunk_array: Any, chunk_spec: Any) -> Any:
        frames = np.ascontiguousarray(chunk_array.as_numpy_array())
        images = [self._encode_image(f) for f in frames]
        header = struct.pack(f"<I{len(images)}I", len(images), *(len(b) for b in images))
        payload = np.frombuffer(header + b"".join(images), dtype=np.uint8)
        return chunk_spec.prototype.buffer.from_array_like(payload)

    async def _decode_single(self, chunk_bytes: Any, chunk_spec: Any) -> Any:
        raw = chunk_bytes.to_bytes()
        (count,) = struct.unpack_from("<I", raw)
        lengths = struct.unpack_from(f"<{count}I", raw, 4)
        offset = 4 + 4 * count
        frames = np.zeros(chunk_spec.shape, dtype=np.uint8)
        for i, length in enumerate(lengths):
            frames[i] = self._decode_image(raw[offset : offset + length])[..., :3]
            offset += length
        return chunk_spec.prototype.nd_buffer.from_numpy_array(frames)

    def compute_encoded_size(self, input_byte_length: int, _chunk_spec: Any) -> int:
        raise NotImplementedError("image codecs have a variable encoded size")


@dataclass(frozen=True)
class _JpegChunks(_ImageChunkCodec):
    image_format: ClassVar[str] = "jpeg"


@dataclass(frozen=True)
class _WebpChunks(_ImageChunkCodec):
    image_format: ClassVar[str] = "webp"
    encode_options: ClassVar[dict[str, Any]] = {"lossless": False}


@dataclass(frozen=True)
class _AvifChunks(_ImageChunkCodec):
    image_format: ClassVar[str] = "avif"
    encode_options: ClassVar[dict[str, Any]] = {"speed": 8}


for _chunk_codec in (_JpegChunks, _WebpChunks, _AvifChunks):
    _register_zarr_codec(f"evalframes.{_chunk_codec.image_format}", _chunk_codec)


@dataclass(frozen=True)
class _LossyCodec(FrameCodec):
    """Per-frame lossy image compression (imagecodecs); ``quality`` 0-100."""

    chunk_codec: ClassVar[type[_ImageChunkCodec]]
    quality: int = 90

    def __post_init__(self) -> None:
        if not 0 <= self.quality <= 100:
            raise ValueError(f"{self.name} quality must be in 0..100. Got {self.quality} instead.")
        _imagecodecs()

    def zarr_codecs(self) -> dict[str, Any]:
        return {"serializer": self.chunk_codec(quality=self.quality), "compressors": None}


@register_codec
@dataclass(frozen=True)
class JpegCodec(_LossyCodec):
    name: ClassVar[str] = "jpeg"
    chunk_codec: ClassVar[type[_ImageChunkCodec]] = _JpegChunks


@register_codec
@dataclass(frozen=True)
class WebpCodec(_LossyCodec):
    name: ClassVar[str] = "webp"
    chunk_codec: ClassVar[type[_ImageChunkCodec]] = _WebpChunks


@register_codec
@dataclass(frozen=True)
class AvifCodec(_LossyCodec):
    name: ClassVar[str] = "avif"
    chunk_codec: ClassVar[type[_ImageChunkCodec]] = _AvifChunks
    quality: int = 70
