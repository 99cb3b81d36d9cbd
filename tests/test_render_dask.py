"""The same render graph on a real `dask scheduler` + 2 `dask worker` processes, and locally."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from distributed import Client, get_task_stream
from test_render_helpers import composed, decode, psnr, write_store

import collect.dask_cluster
from render import render_store
from render.cli import main

REPO = Path(__file__).resolve().parents[1]


def _start(args: list[str], log: Path) -> subprocess.Popen:
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])
    )
    with log.open("w") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "dask", *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,  # its own process group: the nanny's worker goes with it
        )


def _stop(procs: list[subprocess.Popen]) -> None:
    for proc in reversed(procs):
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
    for proc in reversed(procs):
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@pytest.fixture
def scheduler(tmp_path):
    """Address of a loopback scheduler with two single-thread workers (killed afterwards)."""
    scheduler_file = tmp_path / "scheduler.json"
    common = ["--scheduler-file", str(scheduler_file), "--no-dashboard"]
    procs = []
    try:
        procs.append(
            _start(["scheduler", "--host", "127.0.0.1", "--port", "0", *common], tmp_path / "s.log")
        )
        deadline = time.monotonic() + 60
        while not scheduler_file.exists():
            assert time.monotonic() < deadline, (tmp_path / "s.log").read_text()
            time.sleep(0.1)
        for i in range(2):
            worker = ["worker", "--nthreads", "1", "--host", "127.0.0.1", "--name", f"w{i}"]
            worker += ["--local-directory", str(tmp_path / f"w{i}")]
            procs.append(_start([*worker, *common], tmp_path / f"w{i}.log"))
        address = json.loads(scheduler_file.read_text())["address"]
        with Client(address, timeout="30s") as client:
            client.wait_for_workers(2, timeout=60)
        yield address
    finally:
        _stop(procs)


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
