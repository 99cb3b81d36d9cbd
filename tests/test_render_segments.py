"""Segment-parallel encoding: a long video cut into segments, encoded apart, joined by copy."""

from __future__ import annotations

import numpy as np
import pytest
from test_render_helpers import decode, psnr, scene, write_episode_store, write_store

import render.job
from collect import open_store
from render import EncodeError, RenderOptions, render_store
from render.encode import VideoEncoder
from render.mosaic import plan_mosaic
from render.mp4 import count_frames, frame_durations
from render.plan import plan_outputs
from render.segments import join_videos, segment_count, split

ONE_CAMERA = {"zed": (48, 64)}


@pytest.fixture(scope="module")
def long_store(tmp_path_factory):
    """One group, 90 rows of one 64x48 camera, two episodes (so the overlay has work)."""
    path = tmp_path_factory.mktemp("long") / "s.zarr"
    return write_episode_store(path, [[(40, "terminated"), (50, "truncated")]], cameras=ONE_CAMERA)


def test_segmented_video_equals_the_whole_one_at_the_joins(long_store, tmp_path):
    whole = render_store(long_store, tmp_path / "whole", segment_frames=0, crf=18, overlay=True)
    cut = render_store(long_store, tmp_path / "cut", segment_frames=30, crf=18, overlay=True)
    assert cut.ok and whole.ok, cut.summary()
    (a,), (b,) = whole.outputs, cut.outputs
    assert count_frames(b) == count_frames(a) == 90
    assert len(frame_durations(b)) == 1  # one duration for every frame: no stutter at a join
    video, reference = decode(b), decode(a)
    assert len(video) == len(reference) == 90
    (plan,), _ = plan_outputs(open_store(long_store), tmp_path, RenderOptions(overlay=True))
    source = np.concatenate([picture for _, picture in plan.pictures()])  # what ffmpeg got
    for join in (29, 30, 59, 60):  # last frame of a segment, first of the next
        cut_quality = psnr(video[join : join + 1], source[join : join + 1])
        whole_quality = psnr(reference[join : join + 1], source[join : join + 1])
        assert cut_quality >= whole_quality - 2.5, join  # about as good as the whole video
    assert psnr(video, source) >= max(35, psnr(reference, source) - 0.5)
    assert not list((tmp_path / "cut" / ".render" / "segments").iterdir())  # cleaned up
    assert [p.name for p in (tmp_path / "cut").glob("*.mp4")] == [b.name]
    again = render_store(long_store, tmp_path / "cut", segment_frames=45, overlay=True, crf=18)
    assert [r.status for r in again.results] == ["up to date"]  # cutting is not in the picture


def test_segments_of_a_damaged_group_join_into_a_partial_video(tmp_path):
    store = write_store(tmp_path / "s.zarr", rows=64, cameras=ONE_CAMERA, chunk_frames=16)
    camera = store / "rank0_gpu1_env0" / "cameras" / "zed"
    chunk = sorted(p for p in camera.rglob("c/**/*") if p.is_file())[2]
    chunk.write_bytes(chunk.read_bytes()[:40])  # rows 32:48, in the second of two segments
    (result,) = render_store(store, tmp_path / "out", segment_frames=32).results
    assert (result.status, result.frames, result.skipped_rows) == ("partial", 48, [(32, 48)])
    assert count_frames(result.path) == len(decode(result.path)) == 48


def test_a_failed_segment_fails_the_video_and_leaves_nothing(tmp_path, monkeypatch):
    store = write_store(tmp_path / "s.zarr", rows=40, cameras=ONE_CAMERA)
    write = VideoEncoder.write

    def second_segment_fails(encoder, frames):
        if ".001." in encoder.path.name:  # segment files: <video>.<token>.<index>.mp4
            raise OSError("disk full")
        write(encoder, frames)

    monkeypatch.setattr(VideoEncoder, "write", second_segment_fails)
    (result,) = render_store(store, tmp_path / "out", segment_frames=20).results
    assert result.status == "failed"
    assert result.error.startswith("segment 2 of 2: disk full")
    out = tmp_path / "out"
    assert not list(out.glob("*.mp4")) and not list(out.glob(".render/segments/*"))


def test_join_keeps_every_frame_duration_and_checks_the_count(tmp_path):
    """At 30 fps, 50 frames last 1.666... s: the MP4 header's whole milliseconds would start
    the next part 0.3 ms early (a frame of 502 ticks instead of 512) without exact durations."""
    parts = []
    for i, count in enumerate((50, 70, 40)):
        with VideoEncoder(tmp_path / f"p{i}.mp4", 64, 48, fps=30) as encoder:
            encoder.write(np.stack([scene(48, 64, t, seed=i) for t in range(count)]))
        parts.append(encoder.path)
    join_videos(parts, tmp_path / "joined.mp4", 160, 30)
    assert frame_durations(tmp_path / "joined.mp4") == [(160, 512)]  # 15360 ticks a second
    assert len(decode(tmp_path / "joined.mp4")) == 160
    with pytest.raises(
        EncodeError, match=r"bad\.mp4: the encoded file has 160 frames, expected 161"
    ):
        join_videos(parts, tmp_path / "bad.mp4", 161, 30)
    assert sorted(p.name for p in tmp_path.glob("*.mp4")) == [
        "joined.mp4",
        *(p.name for p in parts),
    ]


def test_automatic_segments_only_when_workers_would_idle(tmp_path):
    store = write_store(tmp_path / "s.zarr", envs=2, rows=1000, cameras={"zed": (16, 16)})
    plans, _ = plan_outputs(open_store(store), tmp_path / "out", RenderOptions())

    def keys(plans, slots):
        return [t.key.split("-")[0] for t in render.job._graph(plans, RenderOptions(), slots, None)]

    assert keys(plans, slots=2) == ["render", "render"]  # one video per worker already
    assert keys(plans[:1], slots=2) == ["join"]  # one long video, two workers: cut in two
    mosaic = plan_mosaic(open_store(store), plans, tmp_path / "out", RenderOptions())
    assert keys([*plans, mosaic], slots=2) == ["render", "render", "join"]  # reads both groups
    assert segment_count(1000, None, outputs=1, slots=2) == 2
    assert segment_count(400, None, outputs=1, slots=8) == 1  # too short to pay off
    assert [p.rows for p in split(plans[0], 3)] == [(0, 333), (333, 667), (667, 1000)]


def test_segments_run_on_a_local_cluster(long_store, tmp_path):
    report = render_store(long_store, tmp_path, workers=2, encoder_threads=1, segment_frames=45)
    assert report.ok, report.summary()
    assert count_frames(report.outputs[0]) == len(decode(report.outputs[0])) == 90
