"""Rendering real stores written by FrameWriter, with real ffmpeg, through the API and the CLI."""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import sys

import pytest
from test_render_helpers import CAMERAS, composed, decode, psnr, video_seconds, write_store

from collect import open_store
from render import RenderOptions, render_store
from render.cli import main
from render.pipeline import render_output
from render.plan import plan_outputs


def mp4_names(directory) -> list[str]:
    return sorted(p.name for p in directory.glob("*.mp4"))


@pytest.mark.parametrize(
    ("workers", "envs", "names"),
    [
        (1, 1, ["behavior_video_rank0_gpu1_env0.mp4"]),
        (2, 2, [f"behavior_video_rank{r}_gpu{r + 1}_env{e}.mp4" for r in (0, 1) for e in (0, 1)]),
        (2, 4, [f"behavior_video_rank{r}_gpu{r + 1}_env{e}.mp4" for r in (0, 1) for e in range(4)]),
    ],
    ids=["1-group", "4-groups", "8-groups"],
)
def test_one_video_per_group_with_every_row_at_high_quality(tmp_path, workers, envs, names):
    store = write_store(tmp_path / "frames.zarr", workers=workers, envs=envs, rows=21)
    report = render_store(store, tmp_path / "videos")
    assert report.ok, report.summary()
    assert mp4_names(tmp_path / "videos") == names
    for result in report.results:
        video = decode(result.path)
        (expected,) = composed(store, result.group)
        assert video.shape == expected.shape == (21, 48, 24 + 64, 3)  # wrists 24x24
        assert psnr(video, expected) >= 35, result.path.name
    assert not list((tmp_path / "videos").glob("*partial*"))


def test_video_prefix_comes_from_the_store(tmp_path):
    store = write_store(tmp_path / "s.zarr", envs=2, rows=5, video_prefix="eval")
    render_store(store, tmp_path / "out")
    assert mp4_names(tmp_path / "out") == ["eval_rank0_gpu1_env0.mp4", "eval_rank0_gpu1_env1.mp4"]


@pytest.fixture(scope="module")
def small_store(tmp_path_factory):
    """Two groups, 3 cameras, 24 rows at 10 fps (shared: tests only read it)."""
    return write_store(tmp_path_factory.mktemp("store") / "s.zarr", envs=2, rows=24)


@pytest.mark.parametrize(
    ("option", "size"),
    [({"size": (160, 90)}, (160, 90)), ({"scale": 0.5}, (44, 24)), ({"size": (33, 21)}, (34, 22))],
)
def test_size_and_scale_rerender_at_another_resolution(small_store, tmp_path, option, size):
    render_store(small_store, tmp_path, groups="*env0")
    report = render_store(small_store, tmp_path, groups="*env0", **option)
    assert [r.status for r in report.results] == ["rendered"]  # the options changed
    video = decode(report.results[0].path)
    assert video.shape == (24, size[1], size[0], 3)


def test_fps_changes_the_duration(small_store, tmp_path):
    default = render_store(small_store, tmp_path / "a", groups="*env0").results[0].path
    slower = render_store(small_store, tmp_path / "b", groups="*env0", fps=4).results[0].path
    assert video_seconds(default) == pytest.approx(24 / 10, abs=0.05)
    assert video_seconds(slower) == pytest.approx(24 / 4, abs=0.05)
    assert len(decode(slower)) == 24


def test_separate_layout_writes_one_video_per_camera(small_store, tmp_path):
    report = render_store(small_store, tmp_path, layout="separate", groups="*env1")
    assert report.ok
    assert mp4_names(tmp_path) == [
        f"behavior_video_rank0_gpu1_env1_{cam}.mp4" for cam in sorted(CAMERAS)
    ]
    for result, expected in zip(
        report.results, composed(small_store, "rank0_gpu1_env1", "separate"), strict=True
    ):
        assert psnr(decode(result.path), expected) >= 35


def test_cameras_and_other_layouts(small_store, tmp_path):
    report = render_store(small_store, tmp_path, cameras=["zed"], groups="*env0")
    assert decode(report.results[0].path).shape == (24, 48, 64, 3)
    report = render_store(small_store, tmp_path / "h", layout="hstack", groups="*env0")
    assert decode(report.results[0].path).shape == (24, 48, 64 + 48 + 48, 3)
    report = render_store(small_store, tmp_path / "g", layout="grid", groups="*env0")
    assert decode(report.results[0].path).shape == (24, 96, 128, 3)


def test_groups_glob_selects(tmp_path):
    store = write_store(tmp_path / "s.zarr", workers=2, envs=2, rows=4)
    report = render_store(store, tmp_path / "out", groups="rank1_*")
    assert [r.group for r in report.results] == ["rank1_gpu2_env0", "rank1_gpu2_env1"]
    assert mp4_names(tmp_path / "out") == [
        "behavior_video_rank1_gpu2_env0.mp4",
        "behavior_video_rank1_gpu2_env1.mp4",
    ]


def test_up_to_date_outputs_are_skipped_until_something_changes(small_store, tmp_path):
    first = render_store(small_store, tmp_path)
    mtimes = {p: p.stat().st_mtime_ns for p in first.outputs}
    again = render_store(small_store, tmp_path, workers=1, progress=False)  # not output options
    assert [r.status for r in again.results] == ["up to date"] * 2
    assert {p: p.stat().st_mtime_ns for p in again.outputs} == mtimes
    forced = render_store(small_store, tmp_path, overwrite=True)
    assert [r.status for r in forced.results] == ["rendered"] * 2
    changed = render_store(small_store, tmp_path, crf=30)
    assert [r.status for r in changed.results] == ["rendered"] * 2
    first.outputs[0].write_bytes(b"not a video")  # replaced by someone else
    assert [r.status for r in render_store(small_store, tmp_path, crf=30).results] == [
        "rendered",
        "up to date",
    ]


def test_new_rows_make_a_group_stale(tmp_path):
    store = write_store(tmp_path / "s.zarr", rows=5)
    render_store(store, tmp_path / "out")
    shutil.rmtree(store)
    write_store(store, rows=7)
    (result,) = render_store(store, tmp_path / "out").results
    assert (result.status, len(decode(result.path))) == ("rendered", 7)


# ----------------------------------------------------------------------------- damaged stores


def chunk_files(store, group, camera):
    return sorted(p for p in (store / group / "cameras" / camera).rglob("c/**/*") if p.is_file())


def test_damaged_groups_are_reported_and_the_others_render(tmp_path, capsys):
    store = write_store(tmp_path / "s.zarr", envs=4, rows=40, chunk_frames=16)
    # env0: second chunk of one camera truncated; env1: an array gone; env2: garbage metadata
    second = chunk_files(store, "rank0_gpu1_env0", "left_realsense")[1]
    second.write_bytes(second.read_bytes()[:50])
    shutil.rmtree(store / "rank0_gpu1_env1" / "cameras" / "zed")
    (store / "rank0_gpu1_env2" / "zarr.json").write_text("{garbage")

    report = render_store(store, tmp_path / "out")
    by_group = {r.group: r for r in report.results}
    partial = by_group["rank0_gpu1_env0"]
    assert (partial.status, partial.frames, partial.skipped_rows) == ("partial", 24, [(16, 32)])
    assert len(decode(partial.path)) == 24
    assert by_group["rank0_gpu1_env1"].status == "failed"
    assert "cameras/zed" in by_group["rank0_gpu1_env1"].error
    assert by_group["rank0_gpu1_env2"].status == "failed"
    assert "rank0_gpu1_env2" in by_group["rank0_gpu1_env2"].error
    assert by_group["rank0_gpu1_env3"].status == "rendered"
    assert not report.ok
    assert mp4_names(tmp_path / "out") == [
        "behavior_video_rank0_gpu1_env0.mp4",
        "behavior_video_rank0_gpu1_env3.mp4",
    ]
    # the partial video is not "up to date": the next run tries again
    assert main([str(store), str(tmp_path / "out")]) == 1
    out = capsys.readouterr().out
    assert "skipped unreadable rows 16:32" in out and "1 up to date" in out
    assert main([str(store), "--list"]) == 0
    assert "damaged: group 'rank0_gpu1_env2': metadata unreadable" in capsys.readouterr().out


# ----------------------------------------------------------------------------- command line


def test_cli_renders_lists_and_dry_runs(small_store, tmp_path, capsys):
    assert main([str(small_store), "--list"]) == 0
    listing = capsys.readouterr().out
    assert "rank0_gpu1_env1  24    1" in listing and "zed 64x48" in listing
    assert listing.splitlines()[0].split()[:5] == ["group", "rows", "episodes", "video", "s"]
    assert "complete" in listing

    assert main([str(small_store), str(tmp_path), "--dry-run", "--layout", "separate"]) == 0
    planned = capsys.readouterr().out
    assert "would render" in planned and "frames rendered in" not in planned
    assert planned.endswith("dry run: 144 frames would be rendered, nothing written\n")
    assert list(tmp_path.iterdir()) == []

    assert main([str(small_store), str(tmp_path), "--size", "96x48", "--cameras", "zed"]) == 0
    summary = capsys.readouterr().out
    assert "2 rendered" in summary and "96x48" in summary
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        ".render",
        "behavior_video_rank0_gpu1_env0.mp4",
        "behavior_video_rank0_gpu1_env1.mp4",
        "episodes.csv",
        "summary.json",
    ]  # the seed's check, `ls OUT | grep behavior_video | wc -l`, counts only videos
    sidecar_file = tmp_path / ".render" / "behavior_video_rank0_gpu1_env0.mp4.json"
    sidecar = json.loads(sidecar_file.read_text())
    assert sidecar["options"]["cameras"] == ["zed"] and sidecar["complete"] is True


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--size", "0x5"], "size must be two positive integers WxH. Got 0x5 instead."),
        (["--size", "big"], "argument --size: size must look like WIDTHxHEIGHT"),
        (["--fps", "-1"], "fps must be a positive number. Got -1.0 instead."),
        (["--codec", "h265"], "unknown video codec 'h265'"),
        (["--preset", "fastest"], "libx264 rejects crf=23 preset=fastest"),
        (["--layout", "grd"], "unknown layout 'grd'; choose from behavior, grid, hstack, separate"),
        (["--workers", "2", "--scheduler", "tcp://x:1"], "pass --scheduler or --workers, not both"),
        (["--overlay-keys", "success"], "python -m render: error: --overlay-keys needs --overlay"),
        (["--bogus"], "unrecognized arguments: --bogus"),
        (
            ["--groups", "rank9_*"],
            "matches 'rank9_*'; its groups are rank0_gpu1_env0, rank0_gpu1_env1",
        ),
    ],
)
def test_cli_usage_errors_are_one_line_and_exit_2(small_store, tmp_path, capsys, args, message):
    assert main([str(small_store), str(tmp_path / "out"), *args]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_odd_sizes_are_rounded_with_a_note_and_dask_stays_quiet(small_store, tmp_path, caplog):
    with caplog.at_level(logging.INFO):
        status = main([str(small_store), str(tmp_path), "--size", "99x61", "--workers", "2",
                       "--groups", "*env0"])  # fmt: skip
    assert status == 0
    notes = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert notes == ["size 99x61 is rounded up to 100x62: the videos' yuv420p needs even sides"]
    assert not [r for r in caplog.records if r.name.startswith("distributed")]
    assert decode(tmp_path / "behavior_video_rank0_gpu1_env0.mp4").shape[1:3] == (62, 100)


@pytest.mark.parametrize(("fit", "kept"), [("pad", "black bars"), ("crop", "no bars"),
                                           ("stretch", "no bars")])  # fmt: skip
def test_size_keeps_the_aspect_ratio_unless_told_to_stretch(small_store, tmp_path, fit, kept):
    report = render_store(small_store, tmp_path, groups="*env0", size=(200, 40), fit=fit)
    video = decode(report.results[0].path).astype(int)
    left, middle = video[:, :, :8].mean(), video[:, :, 96:104].mean()
    if kept == "black bars":  # the picture (wider than tall) is centred, black either side
        assert left < 3 and middle > 10
    else:
        assert left > 10


def test_cli_path_errors_exit_2(small_store, tmp_path, capsys):
    assert main([str(tmp_path / "missing.zarr"), str(tmp_path / "out")]) == 2
    assert "missing.zarr' does not exist" in capsys.readouterr().err
    (tmp_path / "file").write_text("x")
    assert main([str(small_store), str(tmp_path / "file")]) == 2
    assert "is a file; pass a directory" in capsys.readouterr().err
    assert main([str(tmp_path)]) == 2  # not a store, and OUT missing
    assert "OUT is required" in capsys.readouterr().err
    assert main([str(tmp_path / "file"), "--list"]) == 2


def test_python_m_render_help_and_progress_on_stderr(small_store, tmp_path):
    run = [sys.executable, "-m", "render"]
    help_text = subprocess.run([*run, "--help"], capture_output=True, text=True, check=True)
    assert "--scheduler ADDRESS" in help_text.stdout and "--list" in help_text.stdout
    done = subprocess.run(
        [*run, str(small_store), str(tmp_path), "--progress"], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert "48/48" in done.stderr and "frame" in done.stderr  # the bar, on stderr
    assert "2 rendered" in done.stdout and "frame/s" not in done.stdout  # no bar on stdout
    quiet = subprocess.run(
        [*run, str(small_store), str(tmp_path), "--overwrite"], capture_output=True, text=True
    )
    assert quiet.returncode == 0 and quiet.stderr == ""  # not a terminal: no bar


def test_store_rows_match_videos(small_store, tmp_path):
    """Frame counts equal the groups' committed rows, read through the store API."""
    report = render_store(small_store, tmp_path)
    groups = {g.name: g.rows for g in open_store(small_store).groups()}
    assert {r.group: len(decode(r.path)) for r in report.results} == groups


def test_a_store_the_worker_cannot_reach_is_a_clear_failure(tmp_path):
    store = write_store(tmp_path / "s.zarr", rows=3)
    (plan,), _ = plan_outputs(open_store(store), tmp_path / "out", RenderOptions())
    store.rename(tmp_path / "elsewhere.zarr")  # as seen from a worker without the path
    result = render_output(plan)
    assert result.status == "failed"
    assert "s.zarr' is not readable on host" in result.error
    assert "the store must be reachable by every Dask worker" in result.error
