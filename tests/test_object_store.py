"""One frame store on S3-compatible object storage: a loopback S3 server (moto, credentials
checked), several writer processes at once, a real Dask cluster rendering straight from the
bucket, SIGKILLs, and every kind of unusable location."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import numpy as np
import pytest
import zarr
from framegen import SIZES, assert_group_matches, pattern_batch, wait_until_finished
from s3server import s3_server
from test_render_helpers import decode
from test_writer_processes import start_writer, write_with_four_processes

from collect import FrameWriter, open_store
from collect.check import check_store
from collect.location import StoreAccessError, StoreLocation
from collect.store import remove_store
from render import render_store

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    with s3_server(tmp_path_factory.mktemp("s3") / "moto.log") as server:
        yield server


@pytest.fixture
def url(s3, monkeypatch):
    """A fresh store URL in the test bucket; the AWS variables point this process at it."""
    for name, value in s3.env.items():
        monkeypatch.setenv(name, value)
    return s3.url(f"run-{uuid.uuid4().hex[:8]}.zarr")


@pytest.fixture
def s3_child_env(s3, child_env):
    return {**child_env, **s3.env}


@pytest.fixture
def s3_scheduler(url, scheduler):
    """The loopback Dask cluster, started after ``url`` set the AWS variables it inherits
    (fixtures are set up in the order they are asked for)."""
    return scheduler


def test_four_writer_processes_one_bucket_rendered_by_a_dask_cluster(
    url, s3, s3_child_env, s3_scheduler, tmp_path
):
    rows = 40
    write_with_four_processes(url, s3_child_env, rows, timeout=120)
    # sharded by default on object stores: one object per camera per shard, not per chunk
    array = zarr.open_array(f"{url}/rank0_gpu0_env0/cameras/zed", mode="r")
    assert array.shards[0] > array.chunks[0] == 8  # the child's chunk_frames
    zed = [k for k in s3.keys(url.removeprefix(f"s3://{s3.bucket}/")) if "/cameras/zed/c/" in k]
    assert len(zed) == 8 * -(-rows // array.shards[0]), zed

    check = subprocess.run(
        [sys.executable, "-m", "collect.check", url], env=s3_child_env, capture_output=True,
        text=True, timeout=120,
    )  # fmt: skip
    assert check.returncode == 0, check.stdout + check.stderr
    assert "8 groups: 8 ok, 0 damaged" in check.stdout

    out = tmp_path / "videos"
    render = subprocess.run(
        [sys.executable, "-m", "render", url, str(out), "--scheduler", s3_scheduler,
         "--cameras", "zed"],
        env=s3_child_env, capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert render.returncode == 0, render.stdout + render.stderr
    videos = sorted(out.glob("*.mp4"))
    assert [v.name for v in videos] == [
        f"behavior_video_rank{r}_gpu{r}_env{e}.mp4" for r in range(4) for e in range(2)
    ]
    for video in videos:
        frames = decode(video)
        assert frames.shape == (rows, *SIZES["zed"], 3), (video.name, frames.shape)


@pytest.mark.parametrize("victim", ["rollout", "writer process"])
def test_sigkill_mid_run_on_the_object_store(url, s3_child_env, tmp_path, victim):
    proc = start_writer(
        url, 2, s3_child_env, "--rows", 400, "--sleep", 0.01, "--flush-interval", 0.25
    )
    ready = proc.stdout.readline().split()
    assert ready[0] == "ready", ready
    writer_pid = int(ready[2])
    progress = []
    for line in proc.stdout:  # (rows appended, rows committed) after each append
        appended, _, committed = (int(float(x)) for x in line.split())
        progress.append((appended, committed))
        if committed >= 20 and appended >= 30:
            break
    if victim == "rollout":
        proc.send_signal(signal.SIGKILL)
    else:
        os.kill(writer_pid, signal.SIGKILL)
    proc.communicate(timeout=60)
    appended, committed = progress[-1]
    names = ["rank2_gpu2_env0", "rank2_gpu2_env1"]
    if victim == "rollout":  # the writer process commits every appended row for it
        wait_until_finished(url, names)
    groups = open_store(url).groups()
    assert [g.name for g in groups] == names
    for group in groups:
        if victim == "rollout":  # +1: appended, not yet printed when the kill landed
            assert appended <= group.rows <= appended + 1, (group.rows, appended)
            assert group.status == "interrupted"
        else:  # what was committed stays; what was not yet is the documented loss
            assert committed <= group.rows <= appended + 1, (group.rows, committed, appended)
            assert group.status == "recording"
        assert_group_matches(group, rank=2, env=group.env)
    report = render_store(url, tmp_path / "out", cameras=["zed"])
    assert report.ok, report.summary()
    for group, video in zip(groups, report.outputs, strict=True):
        assert len(decode(video)) == group.rows


def test_writer_and_reader_take_storage_options(s3, tmp_path):
    """Credentials and endpoint in ``storage_options`` instead of the environment."""
    url = s3.url("options.zarr")
    options = {"key": s3.key, "secret": s3.secret, "endpoint_url": s3.endpoint}
    with FrameWriter(url, num_envs=2, storage_options=options) as writer:
        for step in range(5):
            writer.append(pattern_batch(0, 2, step))
    store = open_store(url, storage_options=options)
    assert [(g.name, g.rows) for g in store.groups()] == [
        ("rank0_gpu0_env0", 5),
        ("rank0_gpu0_env1", 5),
    ]
    assert check_store(url, storage_options=options).exit_status == 0


def _bad_locations(s3) -> dict[str, tuple[str, dict, str]]:
    """name -> (url, environment, what the one line must say)."""
    good = s3.env
    wrong_secret = {**good, "AWS_SECRET_ACCESS_KEY": "wrong"}
    nowhere = {**good, "AWS_ENDPOINT_URL": "http://127.0.0.1:9"}
    return {
        "bad url": ("s4://bucket/run.zarr", good, "unknown storage protocol 's4'"),
        "missing bucket": ("s3://no-such-bucket/run.zarr", good, "bucket 'no-such-bucket'"),
        "wrong credentials": (s3.url("run.zarr"), wrong_secret, "access denied"),
        "unreachable endpoint": (s3.url("run.zarr"), nowhere, "cannot reach the storage"),
    }


@pytest.mark.parametrize("case", ["bad url", "missing bucket", "wrong credentials",
                                  "unreachable endpoint"])  # fmt: skip
def test_unusable_locations_are_one_line_and_exit_2(s3, child_env, tmp_path, case):
    url, env, says = _bad_locations(s3)[case]
    env = {**child_env, **env}
    out = tmp_path / "out"
    for command in (["collect.check", url], ["render", url, str(out)]):
        run = subprocess.run(
            [sys.executable, "-m", *command], env=env, capture_output=True, text=True, timeout=120
        )
        assert run.returncode == 2, (command, run.stdout, run.stderr)
        lines = run.stderr.strip().splitlines()
        assert len(lines) == 1 and says in lines[0] and url in lines[0], run.stderr
    assert not out.exists() or not any(out.iterdir())  # nothing written, nothing half-written


@pytest.mark.parametrize("case", ["bad url", "missing bucket", "wrong credentials",
                                  "unreachable endpoint"])  # fmt: skip
def test_a_writer_for_an_unusable_location_raises_one_clear_error(s3, monkeypatch, case):
    url, env, says = _bad_locations(s3)[case]
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(StoreAccessError, match=says):
        FrameWriter(url, num_envs=1, storage_options={"skip_instance_cache": True})


def test_a_bucket_named_bucket_is_just_a_bucket(s3, monkeypatch):
    """Errors are told apart by their type, never by words of a message holding the URL."""
    for name, value in s3.env.items():
        monkeypatch.setenv(name, value)
    s3.client().create_bucket(Bucket="my-bucket")
    with pytest.raises(FileNotFoundError, match=r"'s3://my-bucket/absent\.zarr' does not exist"):
        open_store("s3://my-bucket/absent.zarr")
    with FrameWriter("s3://my-bucket/run.zarr", num_envs=1) as writer:
        writer.append(pattern_batch(0, 1, 0))
    assert [g.rows for g in open_store("s3://my-bucket/run.zarr").groups()] == [1]


def _write_two_groups(url: str, rows: int = 5) -> None:
    with FrameWriter(url, num_envs=2) as writer:
        for step in range(rows):
            writer.append(pattern_batch(0, 2, step))


def test_removing_a_store_removes_every_group_and_the_root(url, s3):
    _write_two_groups(url)
    prefix = url.removeprefix(f"s3://{s3.bucket}/")
    assert any("rank0_gpu0_env1/" in key for key in s3.keys(prefix))
    remove_store(StoreLocation.of(url))
    assert s3.keys(prefix) == []


def test_damage_on_the_object_store_is_reported_not_raised(url, s3):
    _write_two_groups(url)
    prefix = url.removeprefix(f"s3://{s3.bucket}/")
    s3.client().delete_object(Bucket=s3.bucket, Key=f"{prefix}/rank0_gpu0_env1/zarr.json")
    health = check_store(url)
    assert [(g.name, g.state) for g in health.groups] == [
        ("rank0_gpu0_env0", "ok"),
        ("rank0_gpu0_env1", "damaged"),
    ]
    assert health.exit_status == 1
    s3.client().delete_object(Bucket=s3.bucket, Key=f"{prefix}/zarr.json")  # the root too
    health = check_store(url)
    assert health.exit_status == 2 and "not a readable zarr group" in health.error
    assert [g.name for g in health.groups] == ["rank0_gpu0_env0", "rank0_gpu0_env1"]


def test_frames_read_back_exact_through_the_object_store(url):
    frames = np.random.default_rng(0).integers(0, 256, (3, 50, 24, 32, 4), np.uint8)
    with FrameWriter(url, num_envs=3, fps=12) as writer:
        for step in range(50):
            writer.append({"zed": frames[:, step]}, reward=step)
    store = open_store(url)
    assert store.fps == 12
    for env, group in enumerate(store.groups()):
        np.testing.assert_array_equal(group.frames("zed"), frames[env, ..., :3])
        np.testing.assert_array_equal(group.scalar("reward"), np.arange(50, dtype=np.float32))


def _collect(config_overrides: list[str], env: dict, tmp_path) -> subprocess.CompletedProcess:
    testing = Path(__file__).resolve().parents[1] / "configs" / "testing_1x2.yaml"
    overrides = [f"runner.output_dir={tmp_path}", "env.image_size=32",
                 "env.eval.max_episode_steps=6", "env.eval.video_cfg.render.preset=ultrafast",
                 *config_overrides]  # fmt: skip
    return subprocess.run(
        [sys.executable, "-m", "collect", str(testing), *overrides],
        env=env, capture_output=True, text=True, timeout=240,
    )  # fmt: skip


def test_the_eval_runner_records_into_a_bucket_and_renders_from_it(url, s3_child_env, tmp_path):
    run = _collect([f"env.eval.video_cfg.frames_path={url}"], s3_child_env, tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    store = open_store(url)
    assert [(g.name, g.rows, g.status) for g in store.groups()] == [
        ("rank0_gpu0_env0", 6, "complete"),
        ("rank0_gpu0_env1", 6, "complete"),
    ]
    videos = sorted((tmp_path / "video" / "eval").glob("*.mp4"))
    assert [v.name for v in videos] == [
        "behavior_video_rank0_gpu0_env0.mp4",
        "behavior_video_rank0_gpu0_env1.mp4",
    ]
    assert [len(decode(v)) for v in videos] == [6, 6]


def test_the_eval_runner_stops_before_any_worker_on_refused_credentials(s3, child_env, tmp_path):
    env = {**child_env, **s3.env, "AWS_SECRET_ACCESS_KEY": "wrong"}
    url = s3.url("refused.zarr")
    run = _collect([f"env.eval.video_cfg.frames_path={url}"], env, tmp_path)
    assert run.returncode == 2, run.stdout + run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and "env.eval.video_cfg.frames_path" in lines[0], run.stderr
    assert "access denied" in lines[0]
