"""RecordFrames on a real Gymnasium MuJoCo vector env, and the RLinf-style recorder."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from collect import open_store
from collect.wrappers import RecordFrames


def make_envs(**kwargs):
    return gym.make_vec(
        "InvertedPendulum-v5",
        num_envs=3,
        vectorization_mode="sync",
        render_mode="rgb_array",
        width=40,
        height=32,
        **kwargs,
    )


def test_record_frames_keeps_episode_boundaries_and_exact_frames(tmp_path):
    path = tmp_path / "frames.zarr"
    envs = RecordFrames(make_envs(), path, fps=20, chunk_frames=8)
    envs.reset(seed=1)
    rendered = [np.stack(envs.render())]
    dones = []
    rng = np.random.default_rng(0)
    for _ in range(40):
        _, _, terminated, truncated, _ = envs.step(rng.uniform(-3, 3, size=(3, 1)))
        rendered.append(np.stack(envs.render()))
        dones.append(terminated | truncated)
    envs.close()
    dones = np.array(dones)
    assert dones.sum() >= 3, "random pendulum actions should end several episodes"
    store = open_store(path)
    assert store.group_names() == [f"rank0_gpu0_env{e}" for e in range(3)]
    for group in store.groups():
        e = group.env
        assert group.rows == 41
        np.testing.assert_array_equal(group.frames("rgb"), np.stack([r[e] for r in rendered]))
        # Row 0 is the reset frame; the row after a terminating step starts the next episode.
        expected_episode = np.concatenate([[0], np.cumsum(dones[:, e])[:-1]])
        np.testing.assert_array_equal(group.scalar("episode")[1:], expected_episode)
        np.testing.assert_array_equal(group.scalar("terminated")[1:], dones[:, e])
        assert len(group.episodes()) == dones[:, e].sum() + (not dones[-1, e])
        assert "reward_survive" in group.info_keys


def test_record_frames_refuses_a_non_rgb_render_mode(tmp_path):
    envs = gym.make_vec("InvertedPendulum-v5", num_envs=2, vectorization_mode="sync")
    with pytest.raises(ValueError, match="Render mode is None, which is incompatible") as info:
        RecordFrames(envs, tmp_path / "s.zarr")
    assert len(info.value.args) == 1
    envs.close()


def test_reset_mid_episode_starts_a_new_episode(tmp_path):
    path = tmp_path / "frames.zarr"
    envs = RecordFrames(make_envs(), path)
    envs.reset(seed=0)
    envs.step(np.zeros((3, 1)))
    envs.reset(seed=1)
    envs.step(np.zeros((3, 1)))
    envs.close()
    group = open_store(path).group("rank0_gpu0_env0")
    assert group.scalar("episode").tolist() == [0, 0, 1, 1]
