"""collect.rlinf.RecordFrames in place of RLinf's RecordVideo, on an RLinf-contract env."""

from __future__ import annotations

from types import SimpleNamespace

import imageio_ffmpeg
import numpy as np
import pytest
import torch
from rlinf_env import CAMERAS, RLinfTabletopEnv

from collect import open_store
from collect.rlinf import RecordFrames, rlinf_cameras
from render import render_store

CHUNKS_PER_EPOCH = 5
EPOCHS = 2
INFO_KEY = "episode.success_once"


def worker_info(rank: int, gpu: int, world_size: int = 2) -> SimpleNamespace:
    """What RLinf's WorkerInfo offers the wrapper: rank, accelerator_rank, group_world_size."""
    return SimpleNamespace(rank=rank, accelerator_rank=gpu, group_world_size=world_size)


def video_cfg(tmp_path) -> dict:
    return {
        "save_video": True,
        "info_on_video": True,
        "extra_info_on_video": [INFO_KEY, "task_name"],
        "video_base_dir": str(tmp_path / "video"),
        "fps": None,  # RLinf's default: the env's metadata decides
        "chunk_frames": 4,
    }


def run_worker(env, cfg, info, *, reset_each_epoch=False):
    """An RLinf eval worker's loop: reset, chunk steps, flush_video at each epoch's end."""
    wrapped = RecordFrames(env, cfg, worker_info=info)
    rng = np.random.default_rng(info.rank)
    for epoch in range(EPOCHS):
        if epoch == 0 or reset_each_epoch:
            wrapped.is_start = True
            wrapped.reset()
        for _ in range(CHUNKS_PER_EPOCH):
            actions = rng.uniform(-1, 1, (env.num_envs, env.chunk_steps, 4))
            obs_list, *_ = wrapped.chunk_step(torch.from_numpy(actions))
            assert obs_list[0] is None and obs_list[-1] is not None
        wrapped.flush_video()
        env.emitted.append("flush")
    wrapped.close()
    return wrapped


def expected_rows(emitted, env):
    """Per-env rows a recording must hold: episode ids from the flags and the flushes."""
    rows, episode = [], np.zeros(env.num_envs, int)
    step = np.zeros(env.num_envs, int)
    for item in emitted:
        if item == "flush":
            episode[step > 0] += 1
            step[:] = 0
            continue
        rows.append((item, episode.copy()))
        step += 1
        done = item.terminated | item.truncated
        episode[done] += 1
        step[done] = 0
    return rows


def test_two_epochs_of_two_workers_are_recorded_frame_for_frame_and_rendered(tmp_path):
    cfg = video_cfg(tmp_path)
    envs = [
        RLinfTabletopEnv(2, seed_offset=0, total_num_processes=2, final_key="final_obs"),
        RLinfTabletopEnv(2, seed_offset=1, total_num_processes=2, final_key="final_observation"),
    ]
    for rank, env in enumerate(envs):
        wrapped = run_worker(env, cfg, worker_info(rank, gpu=rank + 4))
        assert wrapped.fps == 12 and env.closed

    store = open_store(tmp_path / "video" / "frames.zarr")
    assert store.group_names() == [f"rank{r}_gpu{r + 4}_env{e}" for r in (0, 1) for e in (0, 1)]
    assert store.fps == 12
    for group in store.groups():
        env = envs[group.rank]
        rows = expected_rows(env.emitted, env)
        e = group.env
        assert group.global_env == 2 * group.rank + e
        assert group.status == "complete" and group.rows == len(rows)
        for camera in CAMERAS:
            np.testing.assert_array_equal(
                group.frames(camera), np.stack([item.frames[camera][e] for item, _ in rows])
            )
        reward = [np.nan if item.reward is None else item.reward[e] for item, _ in rows]
        np.testing.assert_allclose(group.scalar("reward"), reward, rtol=1e-6)
        for flag in ("terminated", "truncated"):
            expected = [getattr(item, flag)[e] for item, _ in rows]
            np.testing.assert_array_equal(group.scalar(flag), expected)
        np.testing.assert_array_equal(group.scalar("episode"), [ep[e] for _, ep in rows])
        np.testing.assert_array_equal(
            group.scalar(INFO_KEY), [item.success_once[e] for item, _ in rows]
        )
        assert group.info_keys == [INFO_KEY]  # task_name is text: skipped with a warning

    # Episodes ended on truncation (lengths 6 and 9 over 3-step chunks), with a terminal frame
    # row before each reset frame row, and the flush split an episode under way.
    ends = {g.name: int(g.scalar("truncated").sum()) for g in store.groups()}
    # 30 steps per env: episodes of 6 steps (env 0) end 5 times, of 9 steps (env 1) 3 times.
    assert ends == {f"rank{r}_gpu{r + 4}_env{e}": (5, 3)[e] for r in (0, 1) for e in (0, 1)}
    assert all(len(g.episodes()) > ends[g.name] + 1 for g in store.groups())

    report = render_store(tmp_path / "video" / "frames.zarr", tmp_path / "videos")
    assert report.ok
    videos = sorted(p.name for p in (tmp_path / "videos").glob("*.mp4"))
    assert videos == [
        f"behavior_video_rank{r}_gpu{r + 4}_env{e}.mp4" for r in (0, 1) for e in (0, 1)
    ]
    for group in store.groups():
        path = tmp_path / "videos" / f"behavior_video_{group.name}.mp4"
        assert imageio_ffmpeg.count_frames_and_secs(str(path))[0] == group.rows


def test_every_observed_step_is_a_row_without_skipping(tmp_path):
    env = RLinfTabletopEnv(1, episode_lengths=(4,), skip_intermediate_obs=False)
    wrapped = RecordFrames(env, {"frames_path": str(tmp_path / "f.zarr"), "fps": 5})
    wrapped.reset()
    for _ in range(3):
        wrapped.chunk_step(torch.zeros((1, env.chunk_steps, 4)))
    wrapped.close()
    group = open_store(tmp_path / "f.zarr").group("rank0_gpu0_env0")
    # 1 reset frame + 3 chunks x 3 steps + 1 reset frame: the 4-step episode ends in chunk 2
    # (step 4; the env waits for the chunk's end, where its terminal frame is row 6)
    assert group.rows == len(env.emitted) == 1 + 9 + 1
    np.testing.assert_array_equal(
        group.frames("zed"), np.stack([item.frames["zed"][0] for item in env.emitted])
    )
    assert group.fps == 5 and group.episodes()[1][1] == 7  # the reset frame starts episode 1


def test_cameras_are_named_like_the_r1pro_and_other_images_by_key():
    obs = {
        "main_images": torch.zeros((2, 4, 6, 3), dtype=torch.uint8),
        "wrist_images": torch.zeros((2, 2, 4, 4, 3), dtype=torch.uint8),
        "extra_view_images": np.zeros((2, 5, 5, 3), np.uint8),
        "states": torch.zeros((2, 32)),
    }
    cameras = rlinf_cameras(obs)
    assert list(cameras) == ["zed", "left_realsense", "right_realsense", "extra_view_images"]
    assert tuple(cameras["right_realsense"].shape) == (2, 4, 4, 3)


def test_attributes_pass_through_and_is_start_sets_the_env(tmp_path):
    env = RLinfTabletopEnv(1)
    wrapped = RecordFrames(env, {"frames_path": str(tmp_path / "f.zarr")})
    wrapped.is_start = False
    assert env.is_start is False and wrapped.lengths == env.lengths
    assert wrapped.fps == 12  # video_cfg has no fps: the env's metadata
    wrapped.reset()
    wrapped.close()


def test_pipeline_stages_of_a_worker_number_their_envs_on(tmp_path):
    """Rank 1's two stages of one env each (RLinf: seed_offset = rank * stage_num + stage)
    write env0 and env1 of rank 1, global envs 2 and 3, into one store."""
    path = str(tmp_path / "f.zarr")
    for stage in (0, 1):
        env = RLinfTabletopEnv(1, seed_offset=2 + stage, total_num_processes=4)
        wrapped = RecordFrames(env, {"frames_path": path}, worker_info(1, 1))
        wrapped.reset()
        wrapped.close()
    groups = open_store(path).groups()
    assert [(g.name, g.global_env, g.attrs["num_envs_in_worker"]) for g in groups] == [
        ("rank1_gpu1_env0", 2, 2),
        ("rank1_gpu1_env1", 3, 2),
    ]
    assert all(g.rows == 1 for g in groups)


def test_a_bad_worker_info_names_what_is_missing(tmp_path):
    env = RLinfTabletopEnv(1)
    with pytest.raises(TypeError, match="rank and accelerator_rank"):
        RecordFrames(env, {"frames_path": str(tmp_path / "f.zarr")}, SimpleNamespace(rank=0))
    env.close()
