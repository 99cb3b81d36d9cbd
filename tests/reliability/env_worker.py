"""An env worker for the crash tests: steps the built-in MuJoCo env and records it.

``python env_worker.py STORE RANK [--seed S] [--flush-interval F] [--fail-at K]`` steps
``mujoco_tabletop`` (2 envs, 32x32 cameras) with its scripted policy into a
:class:`~collect.FrameWriter`, forever or until step ``K`` raises inside the env. After every
append it prints one line, flushed, so the parent knows exactly what the writer was handed
before a kill::

    <rows appended> <time.monotonic()> <writer.committed_rows> <queue high water> <digests>

with one digest per env.
The digests (:func:`frame_digest`) let the parent check every stored row bit for bit.
"""

from __future__ import annotations

import argparse
import time
import zlib
from collections.abc import Mapping

import numpy as np

NUM_ENVS = 2
IMAGE_SIZE = 32


def frame_digest(frames: Mapping[str, np.ndarray]) -> int:
    """CRC32 of one env's RGB frames of one step, cameras in name order."""
    crc = 0
    for camera in sorted(frames):
        crc = zlib.crc32(np.ascontiguousarray(frames[camera][..., :3]).tobytes(), crc)
    return crc


def _env_frames(obs: list[dict], env: int) -> dict[str, np.ndarray]:
    """``{camera: (H, W, 4)}`` of one env of an OmniGibson-structured observation."""
    from collect.adapters import normalize_camera_name

    sensors = obs[env]["robot_r1"]
    return {
        normalize_camera_name(key): value["rgb"]
        for key, value in sensors.items()
        if isinstance(value, Mapping)
    }


def _fail_at(env, step: int) -> None:
    """Make the env raise from inside ``step()`` when it reaches step ``step``."""
    advance, calls = env._advance, [0]

    def failing_advance(*args):
        calls[0] += 1
        if calls[0] == step:
            raise RuntimeError(f"injected env failure at step {step}")
        return advance(*args)

    env._advance = failing_advance


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("store")
    parser.add_argument("rank", type=int)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--flush-interval", type=float, default=0.5)
    parser.add_argument("--fail-at", type=int, default=None)
    parser.add_argument("--max-seconds", type=float, default=120.0, help="stop if not killed")
    args = parser.parse_args()

    from collect import FrameWriter
    from collect.eval.envs import make_env, make_policy

    env = make_env("mujoco_tabletop", NUM_ENVS, seed=args.seed, image_size=IMAGE_SIZE, tensor=False)
    if args.fail_at is not None:
        _fail_at(env, args.fail_at)
    policy = make_policy("scripted", env, seed=args.seed)
    obs = env.reset(seed=args.seed)
    writer = FrameWriter(
        args.store, rank=args.rank, gpu=args.rank, num_envs=NUM_ENVS, fps=20,
        flush_interval=args.flush_interval,
    )  # fmt: skip
    with writer:
        rows, deadline = 0, time.monotonic() + args.max_seconds
        while time.monotonic() < deadline:
            obs, reward, terminated, truncated, info = env.step(policy(obs))
            writer.append(obs, reward, terminated, truncated, info)
            rows += 1
            digests = " ".join(str(frame_digest(_env_frames(obs, e))) for e in range(NUM_ENVS))
            print(
                rows,
                time.monotonic(),
                writer.committed_rows,
                writer.stats.queue_high_water,
                digests,
                flush=True,
            )


if __name__ == "__main__":
    main()
