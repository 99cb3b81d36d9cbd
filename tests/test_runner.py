"""The eval runner end to end: real MuJoCo envs on Dask workers, the store, then the MP4s."""

from __future__ import annotations

import subprocess
from pathlib import Path

import imageio_ffmpeg
import numpy as np
import pytest

from collect import open_store
from collect.eval.config import load_config
from collect.eval.runner import run_eval

CONFIGS = Path(__file__).resolve().parent.parent / "configs"
SEED_CONFIGS = {
    "seed_2workers_4envs": 4,
    "seed_4workers_4envs": 4,
    "seed_1worker_4envs": 4,
    "max_throughput_8x8": 8,
    "memory_constrained_2x8": 8,
    "testing_1x2": 2,
}


@pytest.fixture(scope="module")
def client():
    from distributed import Client, LocalCluster

    cluster = LocalCluster(
        n_workers=8, threads_per_worker=1, processes=True, dashboard_address=None
    )
    with Client(cluster) as client:
        yield client
    cluster.close()


def seed_check(video_dir: Path) -> int:
    """The seed's own check: ls VIDEO_DIR | grep behavior_video | wc -l."""
    out = subprocess.run(
        f"ls {video_dir} | grep behavior_video | wc -l", shell=True, capture_output=True, text=True
    )
    return int(out.stdout.strip())


@pytest.mark.parametrize("name", list(SEED_CONFIGS))
def test_seed_configs_give_one_group_and_one_video_per_env(tmp_path, client, name):
    total = SEED_CONFIGS[name]
    cfg = load_config(
        CONFIGS / f"{name}.yaml",
        [
            f"runner.output_dir={tmp_path}",
            "env.image_size=32",
            "env.eval.max_episode_steps=12",
            "env.eval.video_cfg.render.preset=ultrafast",
        ],
    )
    summary = run_eval(cfg, client=client)
    store = open_store(cfg.env.eval.video_cfg.frames_path)
    workers = total // len({w.worker.rank for w in summary.workers})
    ranks = len(summary.workers)
    expected = [f"rank{r}_gpu{r}_env{e}" for r in range(ranks) for e in range(workers)]
    assert store.group_names() == expected
    assert all(g.rows == 12 for g in store.groups())
    video_dir = Path(cfg.env.eval.video_cfg.video_base_dir)
    assert seed_check(video_dir) == total
    assert sorted(p.name for p in video_dir.glob("*.mp4")) == sorted(
        f"behavior_video_{g}.mp4" for g in expected
    )
    assert summary.render_ok and len(summary.envs) == total


def test_builtin_env_frames_change_and_episodes_end(tmp_path, client):
    cfg = load_config(
        CONFIGS / "testing_1x2.yaml",
        [
            f"runner.output_dir={tmp_path}",
            "env.image_size=48",
            "env.eval.max_episode_steps=60",
            "env.eval.rollout_epoch=2",
            "env.eval.video_cfg.save_video=false",
        ],
    )
    summary = run_eval(cfg, client=client)
    store = open_store(cfg.env.eval.video_cfg.frames_path)
    for group in store.groups():
        assert group.rows == 120
        assert set(group.cameras) == {"zed", "left_realsense", "right_realsense"}
        for camera in group.cameras:
            frames = group.frames(camera).astype(np.int16)
            moving = np.abs(np.diff(frames, axis=0)).mean(axis=(1, 2, 3)) > 0.5
            assert moving.mean() > 0.5, f"{group.name}/{camera}: frames barely change"
            assert frames.std() > 10, f"{group.name}/{camera}: nearly constant image"
        ends = group.scalar("terminated") | group.scalar("truncated")
        assert ends[59] and ends[119], "each rollout epoch ends its episodes"
        episode = group.scalar("episode")
        assert episode[-1] == ends[:-1].sum()
    assert any(group.scalar("terminated").any() for group in store.groups())
    assert summary.video_dir is None and summary.videos == []


def test_inline_baseline_writes_one_video_per_env(tmp_path, client):
    cfg = load_config(
        CONFIGS / "seed_2workers_4envs.yaml",
        [
            f"runner.output_dir={tmp_path}",
            "env.image_size=32",
            "env.eval.max_episode_steps=10",
            "env.eval.video_cfg.save_frames=false",
        ],
    )
    summary = run_eval(cfg, client=client)
    assert not Path(cfg.env.eval.video_cfg.frames_path).exists()
    assert len(summary.videos) == 4
    for video in summary.videos:
        frames, _ = imageio_ffmpeg.count_frames_and_secs(str(video))
        assert frames == 10
