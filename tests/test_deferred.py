"""Deferred compression: chunks stored raw while zstd falls behind, recompressed later.

Real zarr arrays on disk: a raw-stored chunk reads back like a compressed one, compaction
turns it into zstd in place, and a FrameWriter fed faster than zstd drains its ring defers
chunks and still leaves every frame exact and every chunk compressed once closed.
"""

from __future__ import annotations

import time

import numpy as np
import zarr

from collect import FrameWriter, open_store
from collect.codecs import deferred_compression, get_codec, is_deferred
from collect.compact import compact_file


def chunk_files(path) -> list:
    return sorted(p for p in path.rglob("c/*/0/0/0") if p.is_file())


def test_a_raw_stored_chunk_reads_back_and_compacts_in_place(tmp_path):
    frames = np.tile(np.arange(64, dtype=np.uint8), (4, 16, 1, 3)).reshape(4, 16, 64, 3)
    array = zarr.create_array(
        str(tmp_path / "a"), shape=frames.shape, chunks=(2, 16, 64, 3), dtype="uint8",
        **get_codec("zstd").zarr_codecs(),
    )  # fmt: skip
    with deferred_compression():
        array[:2] = frames[:2]
    array[2:] = frames[2:]
    raw, compressed = chunk_files(tmp_path / "a")
    assert is_deferred(raw.read_bytes()) and not is_deferred(compressed.read_bytes())
    np.testing.assert_array_equal(array[:], frames)
    saved = compact_file(raw, level=3)
    assert saved > 0 and not is_deferred(raw.read_bytes())
    assert compact_file(raw, level=3) == 0  # already compressed: untouched
    np.testing.assert_array_equal(zarr.open_array(str(tmp_path / "a"))[:], frames)


def test_a_writer_fed_faster_than_zstd_defers_and_leaves_everything_compressed(tmp_path):
    rng = np.random.default_rng(0)
    batches = [rng.integers(0, 256, (2, 256, 256, 4), dtype=np.uint8) for _ in range(3)]
    path = tmp_path / "s.zarr"
    # noise compresses slowly; a small ring fills at once when nothing paces the appends
    with FrameWriter(path, num_envs=2, chunk_frames=4, max_buffer_mb=8) as writer:
        for step in range(96):
            writer.append({"zed": batches[step % 3]})
    assert writer.stats.chunks_deferred > 0, writer.stats
    assert writer.stats.deferred_bytes_peak > 0
    files = chunk_files(path / "rank0_gpu0_env0" / "cameras")
    assert len(files) == 96 // 4 and not any(is_deferred(f.read_bytes()) for f in files)
    for group in open_store(path).groups():
        stored = group.frames("zed")
        assert len(stored) == 96
        for step in range(96):
            np.testing.assert_array_equal(stored[step], batches[step % 3][group.env, ..., :3])


def test_a_last_chunk_a_timed_flush_wrote_is_stored_compressed(tmp_path):
    """The rows after the last full chunk, written by a timed flush, with nothing appended
    after it, are stored compressed (timed flushes once wrote them raw, and a close with no
    row after the flush left them so, 30x bigger)."""
    y, x = np.mgrid[0:64, 0:64]
    frame = np.stack([x * 4, y * 4, x + y], -1).astype(np.uint8)[None]
    path = tmp_path / "s.zarr"
    with FrameWriter(path, num_envs=1, chunk_frames=4, flush_interval=0.2) as writer:
        for _ in range(6):
            writer.append({"zed": frame})
        deadline = time.monotonic() + 30
        while writer.committed_rows < 6:  # the timed flush has written rows 4-5
            assert time.monotonic() < deadline
            time.sleep(0.05)
    files = chunk_files(path / "rank0_gpu0_env0" / "cameras")
    assert len(files) == 2 and not any(is_deferred(f.read_bytes()) for f in files)
    np.testing.assert_array_equal(open_store(path).groups()[0].frames("zed"), frame.repeat(6, 0))


def test_defer_mb_zero_never_defers(tmp_path):
    rng = np.random.default_rng(1)
    batch = rng.integers(0, 256, (2, 256, 256, 3), dtype=np.uint8)
    with FrameWriter(tmp_path / "s.zarr", num_envs=2, chunk_frames=4, max_buffer_mb=8,
                     defer_mb=0) as writer:  # fmt: skip
        for _ in range(48):
            writer.append({"zed": batch})
    assert writer.stats.chunks_deferred == 0
    assert [g.rows for g in open_store(tmp_path / "s.zarr").groups()] == [48, 48]
