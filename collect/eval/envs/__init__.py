"""Simulated vector envs for the eval runner, emitting OmniGibson-structured observations.

``make_env(env_type, num_envs, seed=..., **options)`` builds one of:

* ``mujoco_tabletop`` (default built-in): a MuJoCo arm pushing a cube on a table, three
  cameras (``zed`` head, ``left_realsense`` / ``right_realsense`` on the wrist);
* ``synthetic``: numpy-only frames with exactly known content (:func:`synthetic_frame`);
* ``behavior``: OmniGibson's ``VectorEnvironment`` (needs Isaac Sim and an RTX GPU).

``make_policy(name, env)`` gives a ``random`` or the env's ``scripted`` policy. Every env
follows :class:`VectorEnv`'s step and auto-reset contract.

>>> import numpy as np
>>> from collect.adapters import to_camera_batches
>>> env = make_env("synthetic", 2, image_size=16)
>>> policy = make_policy("random", env)
>>> obs, reward, terminated, truncated, info = env.step(policy(env.reset()))
>>> {camera: tuple(batch.shape) for camera, batch in to_camera_batches(obs, 2).items()}
{'zed': (2, 16, 16, 4), 'left_realsense': (2, 16, 16, 4), 'right_realsense': (2, 16, 16, 4)}
"""

from .base import CAMERA_NAMES, ROBOT_NAME, VectorEnv, sensor_key
from .behavior import BehaviorEnv
from .policies import POLICIES, Policy, RandomPolicy, make_policy
from .registry import ENV_TYPES, UnknownNameError, make_env, register_env
from .synthetic import SyntheticEnv, synthetic_frame
from .tabletop import TabletopEnv, TabletopPushPolicy

__all__ = [
    "CAMERA_NAMES",
    "ENV_TYPES",
    "POLICIES",
    "ROBOT_NAME",
    "BehaviorEnv",
    "Policy",
    "RandomPolicy",
    "SyntheticEnv",
    "TabletopEnv",
    "TabletopPushPolicy",
    "UnknownNameError",
    "VectorEnv",
    "make_env",
    "make_policy",
    "register_env",
    "sensor_key",
    "synthetic_frame",
]
