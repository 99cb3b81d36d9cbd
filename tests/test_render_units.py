"""render's parts on their own: options, layouts, the ffmpeg encoder, read-ahead, the API."""

from __future__ import annotations

import dataclasses
import gc
import json
import logging
import threading
from pathlib import Path

import imageio_ffmpeg
import numpy as np
import pytest
from test_render_helpers import decode, ffmpeg_children, psnr, scene

import render.mp4
from collect import FrameWriter
from render import (
    EncodeError,
    RenderOptions,
    UnknownCodecError,
    UnknownLayoutError,
    get_layout,
    render_store,
)
from render.compose import BehaviorLayout, Canvas, GridLayout, Tile
from render.encode import EncoderSettings, VideoEncoder, check_codec, ffmpeg_command
from render.mp4 import Mp4Error, count_frames
from render.options import OptionError
from render.reader import prefetch


def frames(count: int, h: int = 48, w: int = 64) -> np.ndarray:
    return np.stack([scene(h, w, t, seed=1) for t in range(count)])


# ----------------------------------------------------------------------------- options


def test_options_json_round_trip():
    options = RenderOptions(
        size=(320, 240), fps=12.5, crf=18, cameras=["zed", "left_realsense"],
        layout={"id": "grid", "columns": 2}, groups="rank1_*", workers=2, overlay=True,
        overlay_keys=["success", "episode.success_once"], split_episodes=True, mosaic=True,
        gallery=True, segment_frames=300,
    )  # fmt: skip
    config = json.loads(json.dumps(options.get_config()))
    assert RenderOptions.from_config(config) == options
    assert RenderOptions.from_config(RenderOptions().get_config()) == RenderOptions()


def test_only_output_options_are_in_the_fingerprint_config():
    base = RenderOptions()
    same = dataclasses.replace(base, workers=4, progress=False, groups="rank0_*")
    assert base.output_config() == same.output_config()
    assert base.output_config() != dataclasses.replace(base, crf=30).output_config()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"size": (0, 5)}, r"size must be two positive integers WxH\. Got 0x5 instead\."),
        ({"size": (8, 8)}, r"size must be from 16x16 to 8192x8192 pixels\. Got 8x8 instead\."),
        ({"size": (100000, 100000)}, r"size must be from 16x16 to 8192x8192 pixels"),
        ({"fit": "wide"}, r"fit must be one of pad, crop, stretch\. Got 'wide' instead\."),
        ({"overlay_keys": ["success"]}, r"overlay_keys needs overlay"),
        ({"fps": -1}, r"fps must be a positive number\. Got -1 instead\."),
        ({"scale": 0.0}, r"scale must be a positive number\. Got 0\.0 instead\."),
        ({"size": (64, 48), "scale": 2.0}, r"pass size or scale, not both"),
        ({"crf": 99}, r"crf must be an integer from 0 to 63\. Got 99 instead\."),
        ({"workers": 0}, r"workers must be a positive integer\. Got 0 instead\."),
        ({"encoder_threads": -2}, r"encoder_threads must be a positive integer"),
        ({"cameras": []}, r"cameras must name at least one camera"),
        ({"layout": "grd"}, r"unknown layout 'grd'; choose from behavior, grid, hstack, separate"),
        ({"segment_frames": -1}, r"segment_frames must be a positive integer, 0 \(never cut\)"),
        ({"segment_frames": True}, r"segment_frames must be .* Got True instead\."),
    ],
)
def test_invalid_options_say_what_and_how(kwargs, message):
    with pytest.raises(ValueError, match=message) as info:
        RenderOptions(**kwargs)
    assert len(info.value.args) == 1


def test_option_errors_name_options_as_the_caller_knows_them():
    with pytest.raises(OptionError) as info:
        RenderOptions(size=(64, 48), scale=2.0)
    assert str(info.value) == "pass size or scale, not both"
    assert info.value.render(lambda f: f"--{f}") == "pass --size or --scale, not both"


def test_render_store_applies_changes_to_the_options(tmp_path):
    store = tmp_path / "s.zarr"
    with FrameWriter(store, num_envs=1, fps=10) as writer:
        for t in range(3):
            writer.append({"zed": np.full((1, 32, 32, 3), 40 * t, np.uint8)})
    saved = RenderOptions(size=(64, 64), crf=30)
    report = render_store(store, tmp_path / "v", saved, fit="crop", dry_run=True)
    assert [r.size for r in report.results] == [(64, 64)]
    with pytest.raises(TypeError, match=r"unknown options \['crff'\]; the options are"):
        render_store(store, tmp_path / "v", crff=30)


def test_unknown_codec_is_named():
    check_codec(EncoderSettings())
    with pytest.raises(UnknownCodecError, match=r"unknown video codec 'x265'.*try libx264") as e:
        check_codec(EncoderSettings(codec="x265"))
    assert len(e.value.args) == 1


# ----------------------------------------------------------------------------- layouts


def test_unknown_layout_lists_the_known_ones():
    with pytest.raises(UnknownLayoutError, match="unknown layout 'grd'; choose from behavior") as e:
        get_layout("grd")
    assert isinstance(e.value, ValueError) and len(e.value.args) == 1


@pytest.mark.parametrize(
    "layout", [BehaviorLayout(), BehaviorLayout(wrists=("a", "b")), GridLayout(columns=3)]
)
def test_layout_config_round_trip(layout):
    config = json.loads(json.dumps(layout.get_config()))
    assert get_layout(config) == layout


def test_behavior_stacks_wrists_left_of_head_at_a_common_height():
    cams = {"zed": (96, 128), "left_realsense": (64, 64), "right_realsense": (64, 64)}
    (canvas,) = get_layout("behavior").canvases(cams)
    assert canvas.tiles == (
        Tile("left_realsense", 0, 0, 48, 48),
        Tile("right_realsense", 48, 0, 48, 48),
        Tile("zed", 0, 48, 96, 128),
    )
    assert (canvas.height, canvas.width) == (96, 176)


def test_behavior_without_wrists_is_the_head_alone():
    (canvas,) = get_layout("behavior").canvases({"rgb": (48, 64)})
    assert canvas.tiles == (Tile("rgb", 0, 0, 48, 64),)


def test_hstack_and_grid_geometry():
    cams = {"a": (40, 40), "b": (20, 40), "c": (40, 20)}
    (row,) = get_layout("hstack").canvases(cams)
    assert [(t.left, t.width, t.height) for t in row.tiles] == [
        (0, 40, 40),
        (40, 80, 40),
        (120, 20, 40),
    ]
    (grid,) = get_layout("grid").canvases(cams)
    assert (grid.height, grid.width) == (80, 80)
    assert [(t.top, t.left, t.height, t.width) for t in grid.tiles] == [
        (0, 0, 40, 40),
        (10, 40, 20, 40),
        (40, 10, 40, 20),
    ]


def test_compose_places_and_scales_each_camera():
    canvas = Canvas("", 4, 6, (Tile("a", 0, 0, 2, 2), Tile("b", 0, 2, 4, 4)))
    a = np.full((3, 4, 4, 3), 200, np.uint8)  # scaled 4x4 -> 2x2
    b = np.arange(3 * 4 * 4 * 3, dtype=np.uint8).reshape(3, 4, 4, 3)  # placed as is
    out = canvas.compose({"a": a, "b": b})
    assert out.shape == (3, 4, 6, 3)
    assert (out[:, :2, :2] == 200).all() and (out[:, 2:, :2] == 0).all()
    np.testing.assert_array_equal(out[:, :, 2:], b)


def test_single_camera_canvas_passes_frames_through():
    block = frames(2)
    (canvas,) = get_layout("separate").canvases({"zed": (48, 64)})
    assert canvas.compose({"zed": block}) is block


# ----------------------------------------------------------------------------- encoder


def test_ffmpeg_command_reads_in_order():
    settings = EncoderSettings(crf=20, preset="fast", threads=1)
    cmd = ffmpeg_command("o.mp4", 63, 48, fps=15, encoder=settings, size=None)
    text = " ".join(cmd[1:])
    assert text.index("-f rawvideo -pix_fmt rgb24 -s 63x48 -r 15.0 -i -") < text.index(
        "-vf pad=64:48"
    )
    assert text.endswith("-c:v libx264 -pix_fmt yuv420p -crf 20 -preset fast -threads 1 "
                         "-movflags +faststart -f mp4 o.mp4")  # fmt: skip

    def filters(**fit: str) -> str:
        command = ffmpeg_command("o.mp4", 64, 48, fps=15, size=(33, 21), **fit)
        return command[command.index("-vf") + 1]

    assert filters(fit="stretch") == "scale=34:22"
    assert filters() == filters(fit="pad")  # keep the aspect ratio: pad to the size
    assert filters(fit="pad").endswith("force_divisible_by=2,pad=34:22:-1:-1")
    assert filters(fit="crop").endswith("force_original_aspect_ratio=increase,crop=34:22")


def test_encoder_writes_atomically_and_checks_the_frame_count(tmp_path):
    path = tmp_path / "v.mp4"
    with VideoEncoder(path, 64, 48, fps=10) as encoder:
        encoder.write(frames(6))
        assert not path.exists()  # only the hidden partial file while encoding
        assert [p.name for p in tmp_path.iterdir()] == [".render"]
        assert all(p.name.endswith(".partial.mp4") for p in tmp_path.glob(".render/partial/*"))
    assert sorted(tmp_path.glob("*.mp4")) == [path]
    assert list(tmp_path.glob(".render/partial/*")) == []
    assert count_frames(path) == 6
    assert psnr(decode(path), frames(6)) > 35
    assert ffmpeg_children() == []


def test_mp4_index_frame_count_matches_ffmpeg_and_rejects_cut_files(tmp_path):
    path = tmp_path / "v.mp4"
    with VideoEncoder(path, 64, 48, fps=10, size=(128, 96)) as encoder:
        for _ in range(5):
            encoder.write(frames(7))
    assert count_frames(path) == imageio_ffmpeg.count_frames_and_secs(str(path))[0] == 35
    data = path.read_bytes()
    for cut in (len(data) - 1, len(data) // 2, 100, 4):  # in mdat (after moov), moov, ftyp
        (tmp_path / "cut.mp4").write_bytes(data[:cut])
        with pytest.raises(Mp4Error, match=r"cut\.mp4: the file is cut short or has no moov box"):
            count_frames(tmp_path / "cut.mp4")


def files_under(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()]


def test_failure_leaves_nothing_and_says_why(tmp_path):
    failed = pytest.raises(EncodeError, match=r"(?s)ffmpeg .*preset.*command: .*-preset nope")
    bad = EncoderSettings(preset="nope")
    with failed as e, VideoEncoder(tmp_path / "v.mp4", 64, 48, fps=10, encoder=bad) as encoder:
        for _ in range(20):
            encoder.write(frames(2))
    assert len(e.value.args) == 1
    assert files_under(tmp_path) == []  # (an empty hidden work folder may stay)
    assert ffmpeg_children() == []


def test_wrong_frame_count_is_an_error(tmp_path, monkeypatch):
    monkeypatch.setattr(render.mp4, "count_frames", lambda path: 3)
    failed = pytest.raises(EncodeError, match=r"v\.mp4: the encoded file has 3 frames, expected 4")
    with failed, VideoEncoder(tmp_path / "v.mp4", 64, 48, fps=10) as encoder:
        encoder.write(frames(4))
    assert files_under(tmp_path) == []  # (an empty hidden work folder may stay)


def test_wrong_frame_shape_is_refused(tmp_path):
    with VideoEncoder(tmp_path / "v.mp4", 64, 48, fps=10) as encoder:
        with pytest.raises(ValueError, match=r"frames must be uint8 \(T, 48, 64, 3\)\. Got"):
            encoder.write(frames(1, 48, 32))
        encoder.write(frames(1))
    with pytest.raises(RuntimeError, match="VideoEncoder is closed"):
        encoder.write(frames(1))


def test_no_ffmpeg_left_after_close_exception_or_del(tmp_path, caplog):
    assert ffmpeg_children() == []
    encoder = VideoEncoder(tmp_path / "a.mp4", 64, 48, fps=10)
    encoder.write(frames(3))
    assert len(ffmpeg_children()) == 1
    encoder.close()
    assert ffmpeg_children() == []

    with pytest.raises(KeyError), VideoEncoder(tmp_path / "b.mp4", 64, 48, fps=10) as encoder:
        encoder.write(frames(3))
        raise KeyError("mid-write")
    assert ffmpeg_children() == []

    encoder = VideoEncoder(tmp_path / "c.mp4", 64, 48, fps=10)
    encoder.write(frames(3))
    with caplog.at_level(logging.WARNING, logger="render.encode"):
        del encoder
        gc.collect()
    assert ffmpeg_children() == []
    assert "was not closed" in caplog.text
    assert [p.relative_to(tmp_path) for p in files_under(tmp_path)] == [Path("a.mp4")]


# ----------------------------------------------------------------------------- read-ahead


def test_prefetch_raises_the_producers_error():
    def items():
        yield 1
        raise OSError("chunk gone")

    got = []
    with pytest.raises(OSError, match="chunk gone"), prefetch(items()) as stream:
        for item in stream:
            got.append(item)
    assert got == [1]


def test_prefetch_stops_its_thread_when_the_consumer_stops():
    before = threading.active_count()
    with prefetch(iter(range(1000)), depth=2) as stream:
        assert next(stream) == 0
        assert threading.active_count() == before + 1
    assert threading.active_count() == before
