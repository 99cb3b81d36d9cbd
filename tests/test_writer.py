"""FrameWriter on real zarr stores on disk: round trips, inputs, metadata, errors."""

from __future__ import annotations

import json
import os
import platform
import shutil
import sysconfig
import time

import numpy as np
import pytest
import torch
from framegen import SIZES, assert_group_matches, pattern_batch

from collect import FrameInputError, FrameWriter, WriterError, open_store
from collect import ring as ring_module
from collect.ring import (
    FRAME_ALIGN,
    HEADER_BYTES,
    STREAMING_STORES,
    FrameRing,
    RingLayout,
    copy_channels,
    create_memfd,
)
from collect.store import StoreFormatError

try:
    from collect import _streamcopy
except ImportError:
    _streamcopy = None


def write_steps(path, steps, *, rank=0, num_envs=4, **kwargs):
    with FrameWriter(path, rank=rank, gpu=rank, num_envs=num_envs, **kwargs) as writer:
        for step in range(steps):
            writer.append(pattern_batch(rank, num_envs, step))
    return writer


def omnigibson_obs(batch: dict[str, np.ndarray], as_tensor: bool) -> list[dict]:
    """The same frames as OmniGibson raw observations (RGBA, nested per robot/sensor)."""
    sensors = {"zed": "zed_link", "left_realsense": "left_realsense_link"}
    sensors["right_realsense"] = "right_realsense_link"
    num_envs = next(iter(batch.values())).shape[0]
    obs = []
    for e in range(num_envs):
        robot = {}
        for cam, link in sensors.items():
            rgb = batch[cam][e]
            rgba = np.concatenate([rgb, np.full((*rgb.shape[:2], 1), 255, np.uint8)], -1)
            robot[f"robot_r1:{link}:Camera:0"] = {
                "rgb": torch.from_numpy(rgba) if as_tensor else rgba,
                "depth": np.zeros(rgb.shape[:2], np.float32),
            }
        obs.append({"robot_r1": robot, "task": {"low_dim": np.zeros(3)}})
    return obs


@pytest.mark.parametrize("kind", ["numpy", "torch", "omnigibson-numpy", "omnigibson-torch"])
def test_lossless_round_trip_is_bit_exact(tmp_path, kind):
    path = tmp_path / "frames.zarr"
    num_envs, steps = 4, 37  # several chunks plus a partial last chunk
    with FrameWriter(path, rank=2, gpu=5, num_envs=num_envs, fps=12) as writer:
        for step in range(steps):
            batch = pattern_batch(2, num_envs, step)
            if kind == "torch":
                obs = {cam: torch.from_numpy(b) for cam, b in batch.items()}
            elif kind.startswith("omnigibson"):
                obs = omnigibson_obs(batch, as_tensor=kind.endswith("torch"))
            else:
                obs = batch
            writer.append(obs)
    store = open_store(path)
    assert store.group_names() == [f"rank2_gpu5_env{e}" for e in range(num_envs)]
    for group in store.groups():
        assert group.rows == steps
        assert group.cameras == SIZES
        assert group.status == "complete"
        assert_group_matches(group, rank=2, env=group.env)


def test_float_and_rgba_inputs_are_converted(tmp_path):
    rgb = pattern_batch(0, 2, 0)["zed"]
    as_float = rgb.astype(np.float32) / 255.0
    rgba = np.concatenate([rgb, np.zeros((*rgb.shape[:3], 1), np.uint8)], -1)
    with FrameWriter(tmp_path / "s.zarr", num_envs=2) as writer:
        writer.append({"zed": as_float})
        writer.append({"zed": rgba})
        writer.append({"zed": torch.from_numpy(as_float)})
        writer.append({"zed": rgb[..., 0]})  # grayscale (N, H, W)
    group = open_store(tmp_path / "s.zarr").group("rank0_gpu0_env1")
    frames = group.frames("zed")
    np.testing.assert_array_equal(frames[0], rgb[1])
    np.testing.assert_array_equal(frames[1], rgb[1])
    np.testing.assert_array_equal(frames[2], rgb[1])
    np.testing.assert_array_equal(frames[3], np.repeat(rgb[1][..., :1], 3, -1))


@pytest.mark.parametrize("frame_shape", [(6, 5), (1, 1), (1, 2), (480, 480)])
def test_rgba_frames_copied_into_a_chunk_row_keep_rgb_and_nothing_else(frame_shape):
    """The writer process's RGBA -> RGB copy into row ``i`` of a chunk (a strided view, one
    contiguous frame per env): every colour byte, random alpha dropped, neighbours intact."""
    rng = np.random.default_rng(3)
    rgba = rng.integers(0, 256, (3, *frame_shape, 4), dtype=np.uint8)
    chunk = rng.integers(0, 256, (3, 4, *frame_shape, 3), dtype=np.uint8)
    before = chunk.copy()
    copy_channels(chunk[:, 2], rgba)
    np.testing.assert_array_equal(chunk[:, 2], rgba[..., :3])
    others = [0, 1, 3]
    np.testing.assert_array_equal(chunk[:, others], before[:, others])


def frames_at_offsets(rng, shape, offsets):
    """Random uint8 frames of ``shape``, each starting ``offset`` bytes past a 64-byte
    boundary (as frames from the heap do, at any multiple of 16)."""
    size = int(np.prod(shape))
    frames = []
    for offset in offsets:
        buffer = np.empty(size + 2 * FRAME_ALIGN, np.uint8)
        start = -buffer.ctypes.data % FRAME_ALIGN + offset
        frame = buffer[start : start + size].reshape(shape)
        frame[...] = rng.integers(0, 256, shape, dtype=np.uint8)
        frames.append(frame)
    return frames


needs_helper = pytest.mark.skipif(
    _streamcopy is None, reason="collect._streamcopy not built (no C compiler at install)"
)


@pytest.mark.skipif(
    not sysconfig.get_config_var("CC")
    or not shutil.which(sysconfig.get_config_var("CC").split()[0]),
    reason="no C compiler: the streaming-copy helper is optional",
)
def test_streaming_copy_helper_is_built_where_a_compiler_is():
    """Without it the ring is filled through the cache, a third slower (README's tables)."""
    assert _streamcopy is not None
    x86_64 = platform.machine() in ("x86_64", "AMD64")
    assert x86_64 == STREAMING_STORES


@needs_helper
@pytest.mark.parametrize("size", [0, 1, 63, 4095, 4096, 4097, 4096 + 64 + 15, 100_003])
def test_streaming_copy_is_exact_at_every_alignment(size):
    """Every byte copied, none beside it touched, for destinations and sources at each
    offset below 16 (the streaming stores' alignment) and lengths around its threshold."""
    rng = np.random.default_rng(size)
    src_buf = rng.integers(0, 256, size + 64, dtype=np.uint8)
    for dst_offset in range(17):
        for src_offset in (0, 5, 16):
            dst_buf = np.full(size + 64, 0xA5, np.uint8)
            src = src_buf[src_offset : src_offset + size]
            _streamcopy.copy(dst_buf[dst_offset : dst_offset + size], src)
            np.testing.assert_array_equal(dst_buf[dst_offset : dst_offset + size], src)
            assert (dst_buf[:dst_offset] == 0xA5).all()
            assert (dst_buf[dst_offset + size :] == 0xA5).all()


@needs_helper
def test_streaming_place_copies_at_the_source_alignment_and_checks_the_fit():
    area = np.full(4096 + 192, 0xA5, np.uint8)
    src_buf = np.arange(5000, dtype=np.uint8)
    for start, shift in [(0, 0), (64, 5), (128, 63)]:
        src = src_buf[shift : shift + 4096]
        offset = _streamcopy.place(area, start, 64, src, 4096)
        assert offset == src.ctypes.data % 64
        np.testing.assert_array_equal(area[start + offset : start + offset + 4096], src)
    with pytest.raises(ValueError, match="source has 4096 bytes, expected 4095"):
        _streamcopy.place(area, 0, 64, src, 4095)
    with pytest.raises(ValueError, match="do not fit"):
        _streamcopy.place(area, 193, 64, src_buf[64 : 64 + 4096], 4096)
    with pytest.raises(ValueError, match="not C-contiguous"):
        _streamcopy.place(area, 0, 64, np.zeros((64, 128), np.uint8)[:, :64], 4096)


@needs_helper
def test_streaming_copy_refuses_what_it_cannot_copy():
    dst = np.zeros(4096, np.uint8)
    with pytest.raises(ValueError, match="destination has 4096 bytes, source 4095"):
        _streamcopy.copy(dst, np.zeros(4095, np.uint8))
    with pytest.raises(ValueError, match="not C-contiguous"):
        _streamcopy.copy(dst, np.zeros(8192, np.uint8)[::2])
    dst.flags.writeable = False
    with pytest.raises(TypeError, match="must be read-write"):
        _streamcopy.copy(dst, np.zeros(4096, np.uint8))


def ring_input(rng, form, shape, offsets):
    """A camera's frames of 4 envs as ``form``: per-env frames at ``offsets``, a contiguous
    batch at ``offsets[0]``, or a batch whose frames are strided (one column cut off)."""
    if form == "frames":
        return frames_at_offsets(rng, shape, offsets)
    if form == "batch":
        return frames_at_offsets(rng, (4, *shape), offsets[:1])[0]
    h, w, c = shape
    return frames_at_offsets(rng, (4, h, w + 1, c), offsets[:1])[0][:, :, :w]


@pytest.mark.parametrize("streaming", [True, False])
def test_ring_slot_places_each_frame_at_its_source_address_modulo_64(streaming, monkeypatch):
    """The copy into the ring runs at memcpy speed only when source and destination share
    their address modulo 32 (glibc's rep movsb on AMD): every frame lands at its source's
    offset, whatever it is (per-env frames, a contiguous batch as one block, a strided
    batch), the writer process's read-only mapping gives it back byte for byte (a strided
    batch: its colour channels, as the writer keeps no more), and no byte
    outside the offsets table and the frames is touched, slots reused included. With the
    streaming copy helper and without it (numpy's copy)."""
    if streaming and _streamcopy is None:
        pytest.skip("collect._streamcopy not built")
    if not streaming:
        monkeypatch.setattr(ring_module, "_stream_place", None)
    rng = np.random.default_rng(5)
    cameras = {"zed": (7, 5, 4), "wrist": (3, 3, 3), "head": (40, 37, 4)}  # head: streamed
    layout = RingLayout(num_envs=4, cameras=cameras, slots=2)
    fd = create_memfd(HEADER_BYTES)
    ring = FrameRing.create(layout, fd)
    reader = FrameRing(fd, layout, writable=False)
    try:
        ring._bytes[:] = 0xA5
        puts = {"zed": [0, 16, 33, 63], "wrist": [48, 1, 0, 32], "head": [5, 0, 16, 47]}
        written = np.zeros(layout.ring_bytes, bool)
        table = 4 * layout.num_envs * len(layout.cameras)  # a uint32 per frame
        forms = ["frames", "batch", "strided batch", "batch", "frames"]
        for row, form in enumerate(forms):
            start = row % layout.slots * layout.slot_bytes
            written[start : start + table] = True
            for camera, offsets in puts.items():
                offsets = offsets[row % 4 :] + offsets[: row % 4]
                frames = ring_input(rng, form, layout.cameras[camera], offsets)
                ring.slot(row).put(camera, frames)
                for frame, copy in zip(frames, reader.slot(row).frames(camera), strict=True):
                    assert copy.ctypes.data % FRAME_ALIGN == frame.ctypes.data % FRAME_ALIGN
                    colours = slice(None if form != "strided batch" else 3)  # alpha: dropped
                    np.testing.assert_array_equal(copy[..., colours], frame[..., colours])
                    start = copy.ctypes.data - reader._bytes.ctypes.data
                    written[start : start + copy.nbytes] = True
        assert (ring._bytes[~written] == 0xA5).all()
    finally:
        reader.close()
        ring.close()
        os.close(fd)


@pytest.mark.parametrize("batched", [False, True])
def test_frames_at_any_alignment_round_trip(tmp_path, batched):
    """RGBA frames at other offsets every step reach the store exactly: per-env frames, and
    batches whose frames (396 bytes apart) each start at a different offset."""
    rng = np.random.default_rng(6)
    path, sent = tmp_path / "s.zarr", []
    with FrameWriter(path, num_envs=3) as writer:
        for step in range(20):
            if batched:
                batch = frames_at_offsets(rng, (3, 9, 11, 4), [(16 * step) % 64 + step % 3])[0]
                writer.append({"cam": batch})
                frames = list(batch)
            else:
                offsets = [(16 * (step + e)) % 64 + step % 3 for e in range(3)]
                frames = frames_at_offsets(rng, (9, 11, 4), offsets)
                writer.append([{"cam": {"rgb": f}} for f in frames])
            sent.append([f[..., :3].copy() for f in frames])
    for env, group in enumerate(open_store(path).groups()):
        stored = group.frames(next(iter(group.cameras)))
        np.testing.assert_array_equal(stored, np.stack([step[env] for step in sent]))


def test_metadata_rows_episodes_and_info(tmp_path):
    path = tmp_path / "s.zarr"
    with FrameWriter(path, num_envs=2, rank=1, gpu=0) as writer:
        for step in range(10):
            writer.append(
                pattern_batch(1, 2, step),
                reward=torch.tensor([step, -step], dtype=torch.float32),
                terminated=[step == 3, False],
                truncated=[False, step == 6],
                info=[
                    {"success": step == 3, "episode": {"success_once": step >= 3}},
                    {"success": False, "episode": {"success_once": False}, "dist": 0.5},
                ],
            )
    env0, env1 = open_store(path).groups()
    assert env0.global_env == 2 and env1.global_env == 3
    np.testing.assert_array_equal(env0.scalar("episode"), [0, 0, 0, 0, 1, 1, 1, 1, 1, 1])
    np.testing.assert_array_equal(env0.scalar("step"), [0, 1, 2, 3, 0, 1, 2, 3, 4, 5])
    np.testing.assert_array_equal(env1.scalar("episode"), [0] * 7 + [1] * 3)
    np.testing.assert_array_equal(env1.scalar("reward"), -np.arange(10, dtype=np.float32))
    assert env0.episodes() == [(0, 0, 4), (1, 4, 10)]
    assert env0.info_keys == ["dist", "episode.success_once", "success"]
    assert env0.scalar("success").tolist() == [s == 3 for s in range(10)]
    assert env0.scalar("episode.success_once").tolist() == [s >= 3 for s in range(10)]
    assert np.isnan(env0.scalar("dist")).all()  # absent for env 0: fill value
    np.testing.assert_array_equal(env1.scalar("dist"), np.full(10, 0.5))


def test_timed_flush_commits_without_more_appends(tmp_path):
    path = tmp_path / "s.zarr"
    writer = FrameWriter(path, num_envs=2, flush_interval=0.2, chunk_frames=16)
    for step in range(5):  # less than a chunk
        writer.append(pattern_batch(0, 2, step))
    deadline = time.monotonic() + 5
    while writer.committed_rows < 5 and time.monotonic() < deadline:
        time.sleep(0.05)
    group = open_store(path).group("rank0_gpu0_env1")
    assert group.rows == 5
    assert_group_matches(group, rank=0, env=1)
    for step in range(5, 20):
        writer.append(pattern_batch(0, 2, step))
    writer.close()
    assert_group_matches(open_store(path).group("rank0_gpu0_env1"), rank=0, env=1)
    assert writer.stats.partial_flushes >= 1


def test_lossy_codec_round_trip_quality(tmp_path):
    pytest.importorskip("imagecodecs")
    path = tmp_path / "s.zarr"
    writer = write_steps(path, 20, num_envs=2, codec={"id": "jpeg", "quality": 95})
    group = open_store(path).group("rank0_gpu0_env0")
    stored = group.frames("zed").astype(float)
    expected = np.stack([pattern_batch(0, 2, s)["zed"][0] for s in range(20)]).astype(float)
    psnr = 10 * np.log10(255**2 / np.mean((stored - expected) ** 2))
    assert psnr > 30, psnr
    assert writer.stats.bytes_stored > 0


def count_files(path) -> int:
    return sum(len(files) for _, _, files in os.walk(path))


def test_shard_frames_saves_files_and_round_trips(tmp_path):
    plain = write_steps(tmp_path / "plain.zarr", 64, num_envs=1, chunk_frames=4)
    sharded = write_steps(tmp_path / "shard.zarr", 64, num_envs=1, chunk_frames=4, shard_frames=32)
    assert count_files(tmp_path / "shard.zarr") < count_files(tmp_path / "plain.zarr") - 20
    assert_group_matches(open_store(tmp_path / "shard.zarr").group("rank0_gpu0_env0"), 0, 0)
    assert plain.stats.rows == sharded.stats.rows == 64


def test_memory_cap_blocks_instead_of_dropping(tmp_path):
    # The writer's 8-row chunk and a few ring rows fit in the cap: appends faster than the
    # writer process drains the ring must wait, never drop.
    cap_mb = 2.2 * 2 * 8 * 3 * sum(h * w for h, w in SIZES.values()) / 2**20
    writer = write_steps(tmp_path / "s.zarr", 200, num_envs=2, chunk_frames=8, max_buffer_mb=cap_mb)
    assert 2 <= writer.stats.ring_slots < 200
    assert writer.stats.queue_high_water <= writer.stats.ring_slots
    assert writer.stats.blocked_seconds > 0
    for group in open_store(tmp_path / "s.zarr").groups():
        assert_group_matches(group, rank=0, env=group.env)


def test_cap_too_small_for_two_chunks_is_a_clear_error(tmp_path):
    writer = FrameWriter(tmp_path / "s.zarr", num_envs=2, max_buffer_mb=0.01)
    with pytest.raises(ValueError, match=r"max_buffer_mb") as info:
        writer.append(pattern_batch(0, 2, 0))
    assert len(info.value.args) == 1
    writer.close()


def test_reopening_a_store_keeps_other_workers_and_refuses_to_clobber(tmp_path):
    path = tmp_path / "s.zarr"
    write_steps(path, 3, rank=0, num_envs=1)
    write_steps(path, 5, rank=1, num_envs=1)
    store = open_store(path)
    assert [(g.name, g.rows) for g in store.groups()] == [
        ("rank0_gpu0_env0", 3),
        ("rank1_gpu1_env0", 5),
    ]
    with pytest.raises(FileExistsError, match="rank0_gpu0_env0"):
        FrameWriter(path, rank=0, gpu=0, num_envs=1)
    write_steps(path, 2, rank=0, num_envs=1, overwrite=True)
    assert open_store(path).group("rank0_gpu0_env0").rows == 2


BAD_INPUTS = {
    "wrong env count": ({"zed": np.zeros((3, 8, 8, 3), np.uint8)}, r"camera 'zed'.*4 envs"),
    "changed shape": ({"zed": np.zeros((4, 9, 8, 3), np.uint8)}, r"camera 'zed'.*changed"),
    "nan": ({"zed": np.full((4, 8, 8, 3), np.nan, np.float32)}, r"camera 'zed', env 0.*NaN"),
    "out of range float": ({"zed": np.full((4, 8, 8, 3), 3.0)}, r"camera 'zed', env 0.*\[0, 1\]"),
    "dtype": ({"zed": np.zeros((4, 8, 8, 3), np.int16)}, r"camera 'zed'.*dtype int16"),
    "channels": ({"zed": np.zeros((4, 8, 8, 5), np.uint8)}, r"camera 'zed'.*5 channels"),
    "new camera": (
        {"zed": np.zeros((4, 8, 8, 3), np.uint8), "x": np.zeros((4, 8, 8, 3), np.uint8)},
        r"cameras changed mid-run",
    ),
    "env list": ([{"robot": {}}] * 3, r"3 envs, expected 4"),
    "not an obs": ("frames", r"unsupported observation type str"),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_is_a_clear_error_and_keeps_stored_rows(tmp_path, case):
    obs, pattern = BAD_INPUTS[case]
    path = tmp_path / "s.zarr"
    writer = FrameWriter(path, num_envs=4)
    good = {"zed": np.full((4, 8, 8, 3), 9, np.uint8)}
    for _ in range(3):
        writer.append(good)
    with pytest.raises(FrameInputError, match=pattern) as info:
        writer.append(obs)
    assert len(info.value.args) == 1
    writer.append(good)
    writer.close()
    group = open_store(path).group("rank0_gpu0_env3")
    assert group.rows == 4
    assert (group.frames("zed") == 9).all()


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"reward": [1.0, 2.0]}, r"reward has 2 values, expected 4"),
        ({"info": {"success": [[1, 2]] * 4}}, r"info key 'success'.*one scalar per env"),
        ({"info": {"note": ["a", "b", "c", "d"]}}, r"info key 'note'.*numbers or booleans"),
        ({"info": {3: [1, 2, 3, 4]}}, r"info key 3 is not a string"),
    ],
)
def test_bad_metadata_is_a_clear_error(tmp_path, kwargs, pattern):
    with (
        FrameWriter(tmp_path / "s.zarr", num_envs=4) as writer,
        pytest.raises(FrameInputError, match=pattern),
    ):
        writer.append({"zed": np.zeros((4, 8, 8, 3), np.uint8)}, **kwargs)


def test_unwritable_store_path_is_a_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(OSError, match=r"cannot create frame store at .*file/s.zarr"):
        FrameWriter(blocker / "s.zarr")
    readonly = tmp_path / "ro"
    readonly.mkdir()
    os.chmod(readonly, 0o500)
    try:
        if os.access(readonly, os.W_OK):
            pytest.skip("running as a user that ignores permissions (root)")
        with pytest.raises(PermissionError, match="not writable"):
            FrameWriter(readonly / "s.zarr")
    finally:
        os.chmod(readonly, 0o700)


def test_foreign_zarr_group_is_refused(tmp_path):
    import zarr

    zarr.open_group(str(tmp_path / "other.zarr"), mode="w").attrs["x"] = 1
    with pytest.raises(StoreFormatError, match="not an evalframes frame store"):
        FrameWriter(tmp_path / "other.zarr")


def test_append_after_close_and_store_removed_mid_run(tmp_path):
    import shutil

    path = tmp_path / "s.zarr"
    writer = write_steps(path, 2, num_envs=1)
    with pytest.raises(RuntimeError, match="FrameWriter is closed"):
        writer.append(pattern_batch(0, 1, 0))
    writer = FrameWriter(tmp_path / "gone.zarr", num_envs=1, chunk_frames=2)
    writer.append(pattern_batch(0, 1, 0))
    writer.flush()
    shutil.rmtree(tmp_path / "gone.zarr")
    (tmp_path / "gone.zarr").write_text("now a file")  # the store dir can't be recreated
    with pytest.raises(WriterError, match=r"writing frames to .*gone.zarr.* failed"):
        for step in range(1, 50):
            writer.append(pattern_batch(0, 1, step))
            time.sleep(0.01)
    with pytest.raises(WriterError, match=r"rows up to 1 are committed"):
        writer.close()


def test_root_attributes_record_the_run(tmp_path):
    path = tmp_path / "s.zarr"
    write_steps(path, 1, num_envs=1, fps=7, video_prefix="my_video", config={"env": {"a": 1}})
    attrs = json.loads((path / "zarr.json").read_text())["attributes"]
    assert attrs["evalframes"] == {"format": "evalframes.frames", "version": 1}
    assert attrs["fps"] == 7.0 and attrs["video_prefix"] == "my_video"
    assert attrs["config"] == {"env": {"a": 1}}
    store = open_store(path)
    assert store.video_prefix == "my_video" and store.fps == 7.0


@pytest.mark.parametrize(
    ("error", "status"), [(KeyError, "failed"), (KeyboardInterrupt, "interrupted")]
)
def test_leaving_the_with_block_by_an_exception_keeps_rows_and_says_why(tmp_path, error, status):
    path = tmp_path / "s.zarr"
    with pytest.raises(error), FrameWriter(path, num_envs=2) as writer:
        for step in range(5):
            writer.append(pattern_batch(0, 2, step))
        raise error("the env crashed")
    for group in open_store(path).groups():
        assert group.rows == 5 and group.status == status
        assert_group_matches(group, rank=0, env=group.env)


@pytest.mark.parametrize(
    "priority, policy",
    [("idle", os.SCHED_IDLE), ("batch", os.SCHED_BATCH), ("normal", os.SCHED_OTHER)],
)
def test_writer_process_runs_at_the_priority_asked(tmp_path, priority, policy):
    with FrameWriter(tmp_path / "s.zarr", num_envs=1, priority=priority) as writer:
        writer.flush()  # the writer process has started and opened its groups
        assert os.sched_getscheduler(writer.writer_pid) == policy
        writer.append(pattern_batch(0, 1, 0))
    assert [g.rows for g in open_store(tmp_path / "s.zarr").groups()] == [1]


def test_writer_process_and_every_thread_of_it_run_on_the_cpus_asked(tmp_path):
    cpu = max(os.sched_getaffinity(0))
    with FrameWriter(tmp_path / "s.zarr", num_envs=2, cpus=[cpu], threads=2) as writer:
        for step in range(3):
            writer.append(pattern_batch(0, 2, step))
        writer.flush()  # its compressing threads have started
        threads = os.listdir(f"/proc/{writer.writer_pid}/task")
        assert len(threads) > 1
        assert all(os.sched_getaffinity(int(tid)) == {cpu} for tid in threads)
    assert [g.rows for g in open_store(tmp_path / "s.zarr").groups()] == [3, 3]


@pytest.mark.parametrize(
    ("cpus", "message"),
    [([], "non-empty list of CPU ids"), ("1", "non-empty list of CPU ids"),
     ([0, 1.0], "non-empty list of CPU ids"), ([0, 4096], r"no CPU \[4096\]")],
)  # fmt: skip
def test_cpus_that_are_not_this_machines_are_refused_before_anything_is_written(
    tmp_path, cpus, message
):
    with pytest.raises(ValueError, match=f"cpus.*{message}"):
        FrameWriter(tmp_path / "s.zarr", num_envs=1, cpus=cpus)
    assert not (tmp_path / "s.zarr").exists()
