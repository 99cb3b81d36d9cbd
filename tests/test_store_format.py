"""Store format v1: the frozen fixture keeps reading; bad stores give clear errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import zarr
from framegen import pattern_frame

from collect import FrameWriter, StoreFormatError, open_store
from collect import store as fmt
from collect.codecs import DeferrableZstd, get_codec
from collect.store import group_name, parse_group_name

FIXTURE = Path(__file__).with_name("fixtures") / "store_v1.zarr"
SIZES = {"zed": (12, 16), "left_realsense": (8, 8)}


def test_frozen_v1_fixture_reads_back():
    store = open_store(FIXTURE)
    assert store.fps == 10.0 and store.video_prefix == "behavior_video"
    assert store.attrs["config"] == {"env": {"env_type": "fixture"}}
    assert store.group_names() == [
        "rank0_gpu2_env0",
        "rank0_gpu2_env1",
        "rank1_gpu3_env0",
        "rank1_gpu3_env1",
    ]
    for group in store.groups():
        assert group.rows == 6 and group.status == "complete"
        assert group.cameras == SIZES
        assert group.scalar("reward").tolist() == list(range(6))
        assert group.scalar("success").tolist() == [s == 2 and group.env == 0 for s in range(6)]
        expected_episode = [0, 0, 0, 1, 1, 1] if group.env == 0 else [0] * 6
        assert group.scalar("episode").tolist() == expected_episode
        for c, (cam, (h, w)) in enumerate(SIZES.items()):
            stored = group.frames(cam).astype(float)
            expected = np.stack(
                [pattern_frame(group.rank, group.env, s, c, h, w) for s in range(6)]
            )
            if group.rank == 0:  # zstd: lossless
                np.testing.assert_array_equal(stored, expected)
            else:  # jpeg q95
                assert np.abs(stored - expected).mean() < 12


def test_group_names_round_trip():
    assert parse_group_name(group_name(3, 7, 11)) == (3, 7, 11)
    with pytest.raises(ValueError, match="not an env group name"):
        parse_group_name("rank1_gpu2")


def copy_fixture(tmp_path) -> Path:
    path = tmp_path / "copy.zarr"
    shutil.copytree(FIXTURE, path)
    return path


def edit_root_attrs(path: Path, edit) -> None:
    meta_path = path / "zarr.json"
    meta = json.loads(meta_path.read_text())
    edit(meta["attributes"])
    meta_path.write_text(json.dumps(meta))


def test_unknown_format_version_is_refused(tmp_path):
    path = copy_fixture(tmp_path)
    edit_root_attrs(path, lambda a: a["evalframes"].update(version=99))
    with pytest.raises(StoreFormatError, match="version 99; this evalframes reads version 1"):
        open_store(path)


def test_not_a_store(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        open_store(tmp_path / "missing.zarr")
    (tmp_path / "empty").mkdir()
    with pytest.raises(StoreFormatError, match="not a readable zarr group"):
        open_store(tmp_path / "empty")


def test_damaged_group_metadata_names_the_group(tmp_path):
    path = copy_fixture(tmp_path)
    (path / "rank1_gpu3_env0" / "zarr.json").write_text("{ garbage")
    store = open_store(path)
    assert len(store.group_names()) == 4  # still listed
    with pytest.raises(StoreFormatError, match="group 'rank1_gpu3_env0': metadata unreadable"):
        store.group("rank1_gpu3_env0")
    assert store.group("rank0_gpu2_env0").rows == 6


def test_stray_partial_files_are_ignored(tmp_path):
    path = copy_fixture(tmp_path)
    chunk_dir = path / "rank0_gpu2_env0" / "cameras" / "zed" / "c" / "0" / "0" / "0"
    (chunk_dir / "0.3f2a.partial").write_bytes(b"half a chunk")
    group = open_store(path).group("rank0_gpu2_env0")
    assert group.frames("zed").shape == (6, 12, 16, 3)


def test_chunk_files_written_directly_are_what_zarr_writes(tmp_path):
    """The writer process writes the default codec's chunk files itself, not through zarr:
    byte for byte the file zarr would write for the same frames (so zarr reads it back)."""
    rng = np.random.default_rng(0)
    frames = (rng.integers(0, 4, (16, 8, 10, 3)) * 60).astype(np.uint8)
    with FrameWriter(tmp_path / "s.zarr", num_envs=1, chunk_frames=16) as writer:
        for frame in frames:
            writer.append({"zed": frame[None]})
    direct = tmp_path / "s.zarr" / "rank0_gpu0_env0" / "cameras" / "zed" / "c" / "0/0/0/0"
    codecs = zarr.open_array(tmp_path / "s.zarr" / "rank0_gpu0_env0" / "cameras" / "zed").metadata
    assert isinstance(codecs.codecs[1], DeferrableZstd)
    reference = zarr.create_array(
        tmp_path / "ref.zarr", shape=frames.shape, chunks=frames.shape, dtype="uint8",
        fill_value=0, compressors=codecs.codecs[1:],
    )  # fmt: skip
    reference[:] = frames
    assert direct.read_bytes() == (tmp_path / "ref.zarr" / "c" / "0/0/0/0").read_bytes()
    np.testing.assert_array_equal(open_store(tmp_path / "s.zarr").groups()[0].frames("zed"), frames)


@pytest.mark.parametrize("size", [480, 960])
def test_each_frame_of_a_chunk_is_compressed_against_the_one_before(tmp_path, size):
    """zstd's window spans the chunk: a frame of noise (incompressible) stored twice costs
    one frame, at 960x960 too (2.7 MB: longer than even level 3's own 2 MiB window, with
    which numcodecs' zstd stores it twice)."""
    frame = np.random.default_rng(2).integers(0, 256, (1, size, size, 3), dtype=np.uint8)
    with FrameWriter(tmp_path / "s.zarr", num_envs=1, chunk_frames=2) as writer:
        writer.append({"zed": frame})
        writer.append({"zed": frame})
    chunk = tmp_path / "s.zarr" / "rank0_gpu0_env0" / "cameras" / "zed" / "c" / "0/0/0/0"
    assert chunk.stat().st_size < 1.01 * frame.nbytes
    np.testing.assert_array_equal(
        open_store(tmp_path / "s.zarr").groups()[0].frames("zed")[:], np.concatenate([frame] * 2)
    )


def test_row_chunk_files_written_directly_are_what_zarr_writes(tmp_path):
    """Scalar and info chunks too: the writer keeps each 4096-row chunk in memory and writes
    it whole, the file zarr would write for the same rows (incl. the fill past them), also
    for writes that straddle two chunks (chunk_frames 100 does not divide 4096)."""
    rows = 4200
    rng = np.random.default_rng(1)
    reward = rng.random(rows).astype(np.float32)
    with FrameWriter(tmp_path / "s.zarr", num_envs=1, chunk_frames=100) as writer:
        for t in range(rows):
            writer.append(
                {"zed": np.zeros((1, 4, 4, 3), np.uint8)},
                reward=[reward[t]],
                info={"score": [t * 0.5]},
            )
    group = tmp_path / "s.zarr" / "rank0_gpu0_env0"
    expected = [("reward", reward), ("step", np.arange(rows)), ("info/score", np.arange(rows) / 2)]
    for path, values in expected:
        reference = zarr.open_array(group / path).metadata
        ref = zarr.create_array(
            tmp_path / f"ref_{path.replace('/', '_')}.zarr", shape=(rows,), chunks=(4096,),
            dtype=reference.dtype.to_native_dtype(), fill_value=reference.fill_value,
            compressors=reference.codecs[1:], config={"write_empty_chunks": True},
        )  # fmt: skip
        ref[:] = values
        for index in ("0", "1"):
            direct = (group / path / "c" / index).read_bytes()
            assert direct == (Path(ref.store_path.store.root) / "c" / index).read_bytes(), path
    scalars = open_store(tmp_path / "s.zarr").groups()[0].scalars()
    np.testing.assert_array_equal(scalars["reward"], reward)
    np.testing.assert_array_equal(scalars["step"], np.arange(rows))


@pytest.mark.parametrize("committed", [8, 10, 12])
def test_finish_trims_to_the_committed_rows(tmp_path, committed):
    """The shapes run ahead of the writes; finish cuts every array to the committed rows.
    A chunk written past them (its rows never committed: the commit failed) is removed, the
    committed ones read back."""
    root = fmt.open_or_create_root(tmp_path / "s.zarr", fps=30.0)
    group = fmt.create_env_group(
        root, rank=0, gpu=0, env=0, global_env=0, num_envs_in_worker=1, fps=30.0
    )
    writer = fmt.GroupWriter(group, codec=get_codec("zstd"), chunk_frames=4)
    writer.add_camera("zed", 8, 8)
    writer.grow(64)
    frames = np.stack([pattern_frame(0, 0, t, 0, 8, 8) for t in range(12)])
    for start in (0, 4, 8):
        scalars = {name: np.arange(start, start + 4).astype(dtype) for name, dtype in
                   fmt.SCALARS.items()}  # fmt: skip
        writer.write(start, {"zed": frames[start : start + 4]}, scalars, {})
    writer.finish(committed, "failed")

    chunks = tmp_path / "s.zarr" / "rank0_gpu0_env0" / "cameras" / "zed" / "c"
    files = sorted(int(p.relative_to(chunks).parts[0]) for p in chunks.rglob("*") if p.is_file())
    assert files == list(range(-(-committed // 4)))  # the chunks holding committed rows
    read = open_store(tmp_path / "s.zarr").groups()[0]
    assert (read.rows, read.status) == (committed, "failed")
    np.testing.assert_array_equal(read.frames("zed")[:], frames[:committed])
    np.testing.assert_array_equal(read.scalars()["step"], np.arange(committed))
