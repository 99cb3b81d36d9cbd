"""An env that follows RLinf's env contract, built on the built-in MuJoCo tabletop env.

Like RLinf's BEHAVIOR env (``rlinf/envs/behavior/behavior_env.py``): ``reset() -> (obs, info)``
and ``chunk_step(actions [N, T, A]) -> (obs_list, rewards, terminations, truncations,
infos_list)``, with observations ``{"main_images": [N, H, W, 3], "wrist_images": [N, 2, H, W,
3], "states": [N, D], "task_descriptions": [...]}`` as torch tensors, ``None`` in ``obs_list``
for skipped intermediate steps, ``[N, T]`` rewards, flags only in the chunk's last column, and
at the chunk's end an auto-reset of the envs that ended with the terminal observation under
``final_key`` (``final_obs`` or ``final_observation``) and ``final_info`` in the last info.

Each env is a one-env :class:`collect.eval.envs.TabletopEnv`, so an env that ended mid-chunk is
simply not stepped again until its reset at the chunk's end. ``emitted`` lists, in order, each
observation the env returned with what a recording of it must show (:class:`Emitted`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch

from collect.eval.envs import make_env, sensor_key

CAMERAS = ("zed", "left_realsense", "right_realsense")


@dataclass
class Emitted:
    """One returned observation: frames per camera, and the steps since the previous one."""

    frames: dict[str, np.ndarray]  # camera -> (N, H, W, 3)
    reward: np.ndarray | None  # sum of the rewards since the previous emitted obs; None: none
    terminated: np.ndarray
    truncated: np.ndarray
    success_once: np.ndarray


class RLinfTabletopEnv:
    metadata: ClassVar[dict] = {"render_fps": 12}

    def __init__(
        self,
        num_envs: int,
        *,
        episode_lengths: tuple[int, ...] = (6, 9),
        chunk_steps: int = 3,
        image_size: int = 24,
        skip_intermediate_obs: bool = True,
        final_key: str = "final_obs",
        seed_offset: int = 0,
        total_num_processes: int = 1,
        worker_info: object = None,
    ) -> None:
        self.num_envs, self.chunk_steps = num_envs, chunk_steps
        self.seed_offset, self.total_num_processes = seed_offset, total_num_processes
        self.worker_info, self.seed = worker_info, seed_offset
        self.skip_intermediate_obs, self.final_key = skip_intermediate_obs, final_key
        self.lengths = [episode_lengths[i % len(episode_lengths)] for i in range(num_envs)]
        self.envs = [
            make_env(
                "mujoco_tabletop",
                1,
                seed=100 * seed_offset + i,
                image_size=image_size,
                max_episode_steps=None,
                tensor=True,
            )
            for i in range(num_envs)
        ]
        self.is_start = True
        self.emitted: list[Emitted] = []
        self.closed = False

    def reset(self):
        for i in range(self.num_envs):
            self._reset_env(i)
        self._pending = np.zeros(self.num_envs)
        obs = self._obs()
        self._emit(obs, None, np.zeros(self.num_envs, bool), np.zeros(self.num_envs, bool))
        return obs, self._info()

    def chunk_step(self, actions):
        n, steps = self.num_envs, actions.shape[1]
        rewards = np.zeros((n, steps), np.float32)
        done_term, done_trunc = np.zeros(n, bool), np.zeros(n, bool)
        obs_list, infos_list = [], []
        for t in range(steps):
            for i in np.flatnonzero(~(done_term | done_trunc)):
                obs, reward, terminated, _, info = self.envs[i].step(actions[i : i + 1, t])
                self._frames[i] = _camera_copies(obs[0])
                self._steps[i] += 1
                rewards[i, t] = reward[0]
                self._return[i] += reward[0]
                self._success_once[i] |= bool(info[0]["success"])
                done_term[i] = bool(terminated[0])
                done_trunc[i] = not done_term[i] and self._steps[i] >= self.lengths[i]
            self._pending += rewards[:, t]
            observed = not self.skip_intermediate_obs or t == steps - 1
            obs_list.append(self._obs() if observed else None)
            infos_list.append(self._info())
            if observed and t < steps - 1:
                self._emit(obs_list[-1], self._pending, np.zeros(n, bool), np.zeros(n, bool))
        terminations = torch.zeros((n, steps), dtype=torch.bool)
        truncations = torch.zeros((n, steps), dtype=torch.bool)
        terminations[:, -1] = torch.from_numpy(done_term)
        truncations[:, -1] = torch.from_numpy(done_trunc)
        self._emit(obs_list[-1], self._pending, done_term, done_trunc)
        done = done_term | done_trunc
        if done.any():
            obs_list[-1], infos_list[-1] = self._auto_reset(done, obs_list[-1], infos_list[-1])
        return obs_list, torch.from_numpy(rewards), terminations, truncations, infos_list

    def close(self):
        for env in self.envs:
            env.close()
        self.closed = True

    # -- helpers ---------------------------------------------------------------------------

    def _auto_reset(self, done, final_obs, final_info):
        for i in np.flatnonzero(done):
            self._reset_env(i)
        obs = self._obs()
        self._emit(obs, None, np.zeros(self.num_envs, bool), np.zeros(self.num_envs, bool))
        info = self._info()
        info.update({self.final_key: final_obs, "final_info": final_info})
        info["_final_info"] = torch.from_numpy(done)
        return obs, info

    def _reset_env(self, i):
        if not hasattr(self, "_frames"):
            self._frames = [None] * self.num_envs
            self._steps = np.zeros(self.num_envs, int)
            self._return = np.zeros(self.num_envs)
            self._success_once = np.zeros(self.num_envs, bool)
        self._frames[i] = _camera_copies(self.envs[i].reset()[0])
        self._steps[i], self._return[i], self._success_once[i] = 0, 0.0, False

    def _obs(self):
        frames = {c: torch.stack([f[c] for f in self._frames]) for c in CAMERAS}
        return {
            "main_images": frames["zed"],
            "wrist_images": torch.stack([frames["left_realsense"], frames["right_realsense"]], 1),
            "states": torch.zeros((self.num_envs, 8)),
            "task_descriptions": ["push the cube onto the goal"] * self.num_envs,
        }

    def _info(self):
        return {
            "episode": {
                "success_once": torch.from_numpy(self._success_once.copy()),
                "return": torch.from_numpy(self._return.astype(np.float32)),
                "episode_len": torch.from_numpy(self._steps.copy()),
            },
            "task_name": "push",  # not a number: never recorded
        }

    def _emit(self, obs, reward, terminated, truncated):
        frames = {
            "zed": obs["main_images"].numpy().copy(),
            "left_realsense": obs["wrist_images"][:, 0].numpy().copy(),
            "right_realsense": obs["wrist_images"][:, 1].numpy().copy(),
        }
        reward = None if reward is None else reward.copy()
        self.emitted.append(
            Emitted(frames, reward, terminated.copy(), truncated.copy(), self._success_once.copy())
        )
        self._pending = np.zeros(self.num_envs)


def _camera_copies(env_obs):
    """``{camera: (H, W, 3) uint8 tensor}`` copies of one tabletop env's RGBA frames."""
    robot = env_obs["robot_r1"]
    return {c: robot[sensor_key(c)]["rgb"][..., :3].clone() for c in CAMERAS}
