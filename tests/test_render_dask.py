"""The same render graph on a real `dask scheduler` + 2 `dask worker` processes, and locally."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from distributed import Client, get_task_stream
from test_render_helpers import composed, decode, psnr, write_store

import collect.dask_cluster
from render import render_store
from render.cli import main


def same_videos(a: Path, b: Path) -> None:
    names = sorted(p.name for p in a.glob("*.mp4"))
    assert names == sorted(p.name for p in b.glob("*.mp4"))
    for name in names:
        np.testing.assert_array_equal(decode(a / name), decode(b / name))


def test_scheduler_renders_on_the_workers_like_a_local_run(tmp_path, scheduler, capsys):
    store = write_store(tmp_path / "frames.zarr", workers=2, envs=2, rows=12)
    options = ["--encoder-threads", "1"]
    assert main([str(store), str(tmp_path / "local"), *options]) == 0
    with Client(scheduler) as client, get_task_stream(client) as stream:
        code = main(
            [str(store), str(tmp_path / "remote"), "--scheduler", scheduler, "--progress", *options]
        )
    assert code == 0
    captured = capsys.readouterr()
    assert "4 rendered" in captured.out and "48/48" in captured.err
    renders = [t for t in stream.data if t["key"].startswith("render-")]
    assert len(renders) == 4
    assert len({t["worker"] for t in renders}) == 2  # both workers rendered
    same_videos(tmp_path / "local", tmp_path / "remote")


def test_local_cluster_workers_give_the_same_videos(tmp_path):
    store = write_store(tmp_path / "frames.zarr", envs=3, rows=10)
    threads = render_store(store, tmp_path / "threads", encoder_threads=1)
    cluster = render_store(store, tmp_path / "cluster", workers=2, encoder_threads=1)
    assert threads.ok and cluster.ok
    same_videos(tmp_path / "threads", tmp_path / "cluster")


def test_unreachable_scheduler_is_a_usage_error(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(collect.dask_cluster, "CONNECT_TIMEOUT", "1s")
    store = write_store(tmp_path / "frames.zarr", rows=2)
    assert main([str(store), str(tmp_path / "out"), "--scheduler", "tcp://127.0.0.1:9"]) == 2
    err = capsys.readouterr().err
    assert "cannot connect to the Dask scheduler at 'tcp://127.0.0.1:9'" in err


def test_segments_of_one_long_group_run_on_both_workers(tmp_path, scheduler):
    """One group, two single-thread workers: the automatic cut gives each worker a segment."""
    store = write_store(tmp_path / "frames.zarr", rows=1000, cameras={"zed": (32, 32)})
    with Client(scheduler) as client, get_task_stream(client) as stream:
        report = render_store(store, tmp_path / "out", scheduler=scheduler, encoder_threads=1)
    assert report.ok, report.summary()
    segments = [t for t in stream.data if t["key"].startswith("segment-")]
    assert len(segments) == 2 and len({t["worker"] for t in segments}) == 2
    assert [t["key"].split("-")[0] for t in stream.data].count("join") == 1
    video = decode(report.outputs[0])
    (stored,) = composed(store, "rank0_gpu1_env0")
    assert len(video) == 1000
    assert psnr(video[495:505], stored[495:505]) >= 32  # around the join (crf 23, 32x32)
