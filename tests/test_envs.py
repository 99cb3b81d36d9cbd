"""The simulated envs: registry errors, the step/auto-reset contract, OmniGibson-structured
observations mapped by collect.adapters, exact synthetic frames, and the real MuJoCo scene."""

from __future__ import annotations

import itertools
import sys

import numpy as np
import pytest

from collect.adapters import to_camera_batches
from collect.eval.envs import (
    CAMERA_NAMES,
    UnknownNameError,
    make_env,
    make_policy,
    register_env,
    synthetic_frame,
)
from collect.eval.envs.tabletop import ARM_JOINTS, HOME, arm_ik


def _frame(obs: list[dict], env: int, camera: str) -> np.ndarray:
    """One camera frame as numpy, from numpy or torch observations."""
    rgb = obs[env]["robot_r1"][f"robot_r1:{camera}_link:Camera:0"]["rgb"]
    return rgb if isinstance(rgb, np.ndarray) else rgb.numpy()


@pytest.fixture(scope="module")
def mujoco():
    return pytest.importorskip("mujoco")


# -- registry and errors ---------------------------------------------------------------------


def test_unknown_env_type_lists_choices() -> None:
    with pytest.raises(UnknownNameError) as exc_info:
        make_env("x", 1)
    assert isinstance(exc_info.value, ValueError)
    assert exc_info.value.args == (
        "unknown env_type 'x'; choose from behavior, mujoco_tabletop, synthetic",
    )


def test_unknown_policy_lists_choices() -> None:
    env = make_env("synthetic", 1)
    with pytest.raises(
        UnknownNameError, match="unknown policy 'smart'; choose from random, scripted"
    ):
        make_policy("smart", env)


def test_unknown_option_names_the_env_options() -> None:
    with pytest.raises(TypeError, match="env_type 'synthetic' has no option 'fps'; its options"):
        make_env("synthetic", 1, fps=30)


def test_register_env_refuses_a_taken_name() -> None:
    with pytest.raises(ValueError, match="already registered"):

        @register_env("synthetic")
        class Other:  # pragma: no cover - never instantiated
            pass


def test_behavior_without_omnigibson_says_how_to_install(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "omnigibson", None)  # makes `import omnigibson` fail
    with pytest.raises(ImportError) as exc_info:
        make_env("behavior", 2, config={})
    message = str(exc_info.value)
    assert "omnigibson is not installed" in message
    assert "pip install omnigibson" in message and "Isaac Sim" in message
    assert "env_type: mujoco_tabletop" in message


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"image_size": 0}, "image_size for camera 'zed' must be a positive int"),
        ({"image_size": {"wrist": 64}}, "unknown camera 'wrist'"),
        ({"max_episode_steps": 0}, "max_episode_steps must be a positive integer"),
    ],
)
def test_bad_options_are_named(options: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        make_env("synthetic", 2, **options)


def test_bad_actions_and_step_before_reset() -> None:
    env = make_env("synthetic", 2, action_dim=3)
    with pytest.raises(RuntimeError, match="call reset"):
        env.step(np.zeros((2, 3)))
    env.reset()
    with pytest.raises(ValueError, match=r"\(num_envs, action_dim\) = \(2, 3\). Got \(3, 3\)"):
        env.step(np.zeros((3, 3)))
    with pytest.raises(ValueError, match="actions of env 1 contain NaN"):
        env.step(np.array([[0.0, 0, 0], [0, np.nan, 0]]))


# -- synthetic env: exact frames and the auto-reset contract ----------------------------------


def test_synthetic_frames_and_auto_reset_contract() -> None:
    lengths = [2, 3, 4]
    sizes = {"zed": (6, 10), "left_realsense": (4, 4), "right_realsense": 8}
    env = make_env("synthetic", 3, seed=5, image_size=sizes, episode_length=lengths, tensor=False)
    obs, info = env.reset(), env.infos()
    ends = 0
    for _ in range(12):
        for i in range(3):
            episode, step = info[i]["episode"]["index"], info[i]["episode"]["step"]
            for c, camera in enumerate(CAMERA_NAMES):
                h, w = env.image_sizes[camera]
                expected = synthetic_frame(i, step, h, w, c, episode=episode, seed=5)
                np.testing.assert_array_equal(_frame(obs, i, camera), expected)
        previous = info
        obs, reward, terminated, truncated, info = env.step(np.zeros((3, env.action_dim)))
        assert reward.dtype == np.float32 and terminated.dtype == truncated.dtype == bool
        for i, length in enumerate(lengths):
            was_end = previous[i]["episode"]["step"] == length
            if was_end:  # the step after an end is the next episode's first frame
                assert info[i]["episode"] == {
                    "index": previous[i]["episode"]["index"] + 1,
                    "step": 0,
                    "return": 0.0,
                    "success_once": False,
                }
                assert (reward[i], terminated[i], truncated[i]) == (0.0, False, False)
            at_end = info[i]["episode"]["step"] == length
            assert terminated[i] == (at_end and i % 2 == 0) == info[i]["success"]
            assert truncated[i] == (at_end and i % 2 == 1)
            ends += at_end
    assert ends >= 6


def test_synthetic_tensor_option_and_adapter_mapping() -> None:
    torch = pytest.importorskip("torch")
    env = make_env("synthetic", 2, image_size={"zed": (12, 16)}, tensor=True)
    obs = env.reset()
    batches = to_camera_batches(obs, 2)
    assert list(batches) == ["zed", "left_realsense", "right_realsense"]
    assert isinstance(batches["zed"], torch.Tensor) and batches["zed"].dtype == torch.uint8
    assert tuple(batches["zed"].shape) == (2, 12, 16, 4)
    assert tuple(batches["left_realsense"].shape) == (2, 128, 128, 4)
    assert isinstance(_frame(make_env("synthetic", 1, tensor=False).reset(), 0, "zed"), np.ndarray)


# -- the MuJoCo tabletop ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def scripted_run(mujoco) -> dict:
    """Two tabletop envs under the scripted policy for 50 steps (30-step episodes at most)."""
    env = make_env("mujoco_tabletop", 2, seed=0, image_size=48, max_episode_steps=30, tensor=False)
    policy = make_policy("scripted", env)
    wrist = env.model.camera("left_realsense").id
    obs = env.reset()
    run = {"obs": [obs], "info": [env.infos()], "terminated": [], "truncated": [], "reward": []}
    run["wrist_pos"] = [env.data[0].cam_xpos[wrist].copy()]
    run["qvel_zero"] = [[True, True]]
    for _ in range(50):
        obs, reward, terminated, truncated, info = env.step(policy(obs))
        for key, value in [("obs", obs), ("info", info), ("reward", reward)]:
            run[key].append(value)
        run["terminated"].append(terminated)
        run["truncated"].append(truncated)
        run["wrist_pos"].append(env.data[0].cam_xpos[wrist].copy())
        run["qvel_zero"].append([not d.qvel.any() for d in env.data])
    env.close()
    return run


def test_tabletop_observations_have_omnigibson_structure(scripted_run: dict) -> None:
    obs = scripted_run["obs"][1]
    assert sorted(obs[0]) == ["robot_r1"]
    assert sorted(obs[0]["robot_r1"]) == [
        "proprio",
        "robot_r1:left_realsense_link:Camera:0",
        "robot_r1:right_realsense_link:Camera:0",
        "robot_r1:zed_link:Camera:0",
    ]
    batches = to_camera_batches(obs, 2)
    assert sorted(batches) == ["left_realsense", "right_realsense", "zed"]
    for batch in batches.values():
        assert batch.dtype == np.uint8 and batch.shape == (2, 48, 48, 4)
        assert (batch[..., 3] == 255).all()


def test_tabletop_frames_change_in_every_camera(scripted_run: dict) -> None:
    for camera in CAMERA_NAMES:
        for env in range(2):
            frames = np.stack([_frame(o, env, camera)[..., :3] for o in scripted_run["obs"]])
            assert frames.reshape(len(frames), -1).std(axis=1).min() > 5, "a flat image"
            changed = [not np.array_equal(a, b) for a, b in itertools.pairwise(frames)]
            assert sum(changed) >= 0.8 * len(changed), f"{camera} env {env} barely changes"
    moved = np.linalg.norm(np.diff(np.array(scripted_run["wrist_pos"]), axis=0), axis=1)
    assert (moved > 1e-3).sum() >= 20, "the wrist camera does not move with the arm"


def test_tabletop_episode_ends_and_auto_reset(scripted_run: dict) -> None:
    terminated = np.array(scripted_run["terminated"])
    truncated = np.array(scripted_run["truncated"])
    assert terminated.any(), "the scripted policy never succeeded"
    ends = np.argwhere(terminated[:-1] | truncated[:-1])
    assert len(ends) >= 2
    for t, env in ends:  # row t + 1 of obs/info is step t + 1
        before, after = scripted_run["info"][t + 1][env], scripted_run["info"][t + 2][env]
        assert before["success"] == bool(terminated[t, env])
        assert after["episode"]["index"] == before["episode"]["index"] + 1
        assert after["episode"]["step"] == 0 and scripted_run["reward"][t + 1][env] == 0.0
        assert scripted_run["qvel_zero"][t + 2][env], "obs after an end is not a reset state"
        last = _frame(scripted_run["obs"][t + 1], env, "zed")
        assert not np.array_equal(last, _frame(scripted_run["obs"][t + 2], env, "zed"))


def test_tabletop_torch_frames(mujoco) -> None:
    torch = pytest.importorskip("torch")
    with make_env("mujoco_tabletop", 1, image_size=8) as env:
        rgb = env.reset()[0]["robot_r1"]["robot_r1:left_realsense_link:Camera:0"]["rgb"]
    assert isinstance(rgb, torch.Tensor) and rgb.dtype == torch.uint8 and rgb.shape == (8, 8, 4)


def test_tabletop_random_policy_and_per_env_seeding(mujoco) -> None:
    with make_env("mujoco_tabletop", 2, seed=3, image_size=(24, 32), tensor=False) as env:
        policy = make_policy("random", env, seed=0)
        first = env.reset()
        obs, *_ = env.step(policy(first))
        assert not np.array_equal(
            _frame(first, 1, "right_realsense"), _frame(obs, 1, "right_realsense")
        )
    with make_env("mujoco_tabletop", 3, seed=3, image_size=(24, 32), tensor=False) as env:
        again = env.reset()  # env i's layouts depend on (seed, i) only
        for i in range(2):
            np.testing.assert_array_equal(_frame(first, i, "zed"), _frame(again, i, "zed"))


def test_arm_ik_matches_the_model(mujoco) -> None:
    env = make_env("mujoco_tabletop", 1, image_size=8)
    model, data = env.model, env.data[0]
    rng = np.random.default_rng(0)
    for _ in range(10):
        tip = HOME + rng.uniform([-0.15, -0.25, -0.2], [0.3, 0.25, 0.1])
        for joint, angle in zip(ARM_JOINTS, arm_ik(tip), strict=True):
            data.joint(joint).qpos = angle
        mujoco.mj_kinematics(model, data)
        np.testing.assert_allclose(data.site("tip").xpos, tip, atol=1e-6)
        np.testing.assert_allclose(data.site("tip").xmat.reshape(3, 3)[:, 2], [0, 0, -1], atol=1e-6)
    env.close()


def test_renderer_failure_names_mujoco_gl(mujoco, monkeypatch) -> None:
    def broken_renderer(*args, **kwargs):
        raise RuntimeError("no display")

    monkeypatch.setattr(mujoco, "Renderer", broken_renderer)
    with pytest.raises(RuntimeError, match=r"MUJOCO_GL=\w+ \(no display\); set MUJOCO_GL=egl"):
        make_env("mujoco_tabletop", 1, image_size=8)
