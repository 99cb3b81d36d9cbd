"""``env_type: mujoco_tabletop``: the built-in MuJoCo scene (arm, objects, three cameras).

The task: push the red cube onto the green goal disc. A 4-joint arm with a two-finger gripper
stands at the back of a table with the cube, the goal and two distractor objects, laid out at
random for every episode. Cameras are named like the R1Pro's: ``zed`` (head, behind and above
the arm) and ``left_realsense`` / ``right_realsense`` (on the wrist, so they move with it).

One ``MjModel`` is shared by ``num_envs`` ``MjData`` copies, stepped one after the other; one
``mujoco.Renderer`` per distinct image size renders every env's cameras offscreen
(``MUJOCO_GL=egl`` unless already set).
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass
from importlib import resources
from typing import Any

import numpy as np

from .base import CAMERA_NAMES, DEFAULT_IMAGE_SIZE, ImageSize, VectorEnv
from .registry import register_env

__all__ = ["TabletopEnv", "TabletopPushPolicy", "TaskState", "arm_ik"]

logger = logging.getLogger(__name__)

# Geometry of collect/eval/assets/tabletop.xml (metres).
TABLE_Z = 0.75
SHOULDER = np.array([-0.4, 0.0, 0.89])
UPPER_ARM, FOREARM, HAND = 0.40, 0.35, 0.11
CUBE_HALF = 0.025
ARM_JOINTS = ("yaw", "shoulder", "elbow", "wrist")
FINGER_JOINTS = ("finger_left", "finger_right")
FINGER_OPEN = 0.03
OBJECTS = ("cube", "cylinder", "block")
OBJECT_Z = {"cube": TABLE_Z + 0.025, "cylinder": TABLE_Z + 0.035, "block": TABLE_Z + 0.02}

# Actions: (dx, dy, dz, grip) in [-1, 1]; xyz moves the gripper tip's target by up to
# MOVE_PER_STEP metres per step inside the workspace box; grip -1 closes, +1 opens.
MOVE_PER_STEP = 0.015
WORKSPACE_LOW = np.array([-0.3, -0.3, TABLE_Z + 0.02])
WORKSPACE_HIGH = np.array([0.25, 0.3, TABLE_Z + 0.35])
HOME = np.array([-0.1, 0.0, TABLE_Z + 0.22])
SUCCESS_DISTANCE = 0.04


def _import_mujoco() -> Any:
    os.environ.setdefault("MUJOCO_GL", "egl")
    try:
        import mujoco
    except ImportError as e:
        raise ImportError(
            'mujoco is not installed; pip install "evalframes[sim]" for env_type mujoco_tabletop'
        ) from e
    return mujoco


def arm_ik(tip: np.ndarray) -> np.ndarray:
    """Joint angles (yaw, shoulder, elbow, wrist) that put the gripper tip at ``tip``,
    pointing straight down, elbow up (closed form; out-of-reach targets are approached).

    >>> q = arm_ik(np.array([0.0, 0.0, 0.8]))
    >>> round(float(q[0]), 3), round(float(q[1] + q[2] + q[3]), 3)  # no yaw; pointing down
    (0.0, 3.142)
    """
    rel = tip - SHOULDER
    yaw = math.atan2(rel[1], rel[0])
    reach, height = math.hypot(rel[0], rel[1]), rel[2] + HAND
    cos_elbow = (reach**2 + height**2 - UPPER_ARM**2 - FOREARM**2) / (2 * UPPER_ARM * FOREARM)
    bend = -math.acos(min(1.0, max(-1.0, cos_elbow)))
    lift = math.atan2(height, reach) - math.atan2(
        FOREARM * math.sin(bend), UPPER_ARM + FOREARM * math.cos(bend)
    )
    shoulder, elbow = math.pi / 2 - lift, -bend
    return np.array([yaw, shoulder, elbow, math.pi - shoulder - elbow])


@dataclass(frozen=True)
class TaskState:
    """What a scripted controller needs to know about one env (world coordinates)."""

    tip: np.ndarray  # gripper tip position (3,)
    target: np.ndarray  # commanded tip target (3,)
    cube: np.ndarray  # cube centre (3,)
    goal: np.ndarray  # goal centre on the table (3,)


@dataclass(frozen=True)
class _Layout:
    """Initial positions (x, y) and yaw angles of one episode."""

    objects: dict[str, tuple[np.ndarray, float]]
    goal: np.ndarray
    tip: np.ndarray


def _segment_distance(point: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    ab = b - a
    t = float(np.clip(np.dot(point - a, ab) / np.dot(ab, ab), 0.0, 1.0))
    return float(np.linalg.norm(point - (a + t * ab)))


def _sample_layout(rng: np.random.Generator) -> _Layout:
    """A random episode layout: cube, a goal 12-20 cm away (mostly away from the robot),
    and two distractors clear of the push path."""
    while True:
        cube = rng.uniform([-0.12, -0.18], [0.06, 0.18])
        angle, distance = rng.uniform(-1.1, 1.1), rng.uniform(0.12, 0.2)
        goal = cube + distance * np.array([math.cos(angle), math.sin(angle)])
        if (np.abs(goal) <= [0.2, 0.25]).all():
            break
    behind = cube - 0.1 * (goal - cube) / np.linalg.norm(goal - cube)
    placed = [cube, goal]
    objects = {"cube": (cube, rng.uniform(-0.4, 0.4))}
    for name in OBJECTS[1:]:
        while True:
            xy = rng.uniform([-0.2, -0.3], [0.25, 0.3])
            clear_path = _segment_distance(xy, behind, goal) > 0.1
            if clear_path and min(np.linalg.norm(xy - p) for p in placed) > 0.1:
                break
        placed.append(xy)
        objects[name] = (xy, rng.uniform(-math.pi, math.pi))
    tip = HOME + rng.uniform(-0.03, 0.03, 3)
    return _Layout(objects=objects, goal=goal, tip=tip)


class _Renderers:
    """One ``mujoco.Renderer`` per distinct (height, width); renders RGBA frames."""

    def __init__(
        self, mujoco: Any, model: Any, sizes: dict[str, tuple[int, int]], shadows: bool
    ) -> None:
        self._mujoco = mujoco
        self.sizes = sizes
        model.vis.global_.offheight = max(
            model.vis.global_.offheight, *(h for h, _ in sizes.values())
        )
        model.vis.global_.offwidth = max(
            model.vis.global_.offwidth, *(w for _, w in sizes.values())
        )
        self._by_size: dict[tuple[int, int], Any] = {}
        for size in sorted(set(sizes.values())):
            self._by_size[size] = self._create(model, size)
            self._by_size[size].scene.flags[mujoco.mjtRndFlag.mjRND_SHADOW] = shadows
        logger.debug(
            "MuJoCo renderers for sizes %s (MUJOCO_GL=%s, shadows=%s)",
            sorted(self._by_size),
            os.environ.get("MUJOCO_GL"),
            shadows,
        )

    def _create(self, model: Any, size: tuple[int, int]) -> Any:
        try:
            return self._mujoco.Renderer(model, height=size[0], width=size[1])
        except Exception as e:
            backend = os.environ.get("MUJOCO_GL", "<unset>")
            raise RuntimeError(
                f"could not create a MuJoCo offscreen renderer with MUJOCO_GL={backend} ({e}); "
                "set MUJOCO_GL=egl (needs libEGL, e.g. Mesa) or MUJOCO_GL=osmesa before mujoco "
                "is first imported"
            ) from e

    def render(self, data: Any) -> dict[str, np.ndarray]:
        """``{camera: uint8 (H, W, 4)}`` of one env's state, alpha 255 like OmniGibson's."""
        frames = {}
        for camera, size in self.sizes.items():
            renderer = self._by_size[size]
            renderer.update_scene(data, camera=camera)
            frame = np.empty((*size, 4), dtype=np.uint8)
            frame[..., :3] = renderer.render()
            frame[..., 3] = 255
            frames[camera] = frame
        return frames

    def close(self) -> None:
        for renderer in self._by_size.values():
            renderer.close()
        self._by_size.clear()


@register_env("mujoco_tabletop")
class TabletopEnv(VectorEnv):
    """The built-in MuJoCo tabletop push task, with OmniGibson-structured observations.

    Actions are ``(dx, dy, dz, grip)`` in ``[-1, 1]``: the gripper tip's target moves by up to
    1.5 cm per step (kept inside a box over the table; the arm follows through closed-form
    IK and position servos) and ``grip`` sets the finger opening (-1 closed, +1 open). The
    reward is minus the cube's distance to the goal (metres); the episode is terminated with
    ``success`` when the cube's centre is within 4 cm of the goal's, truncated after
    ``max_episode_steps``. ``info`` adds ``distance``. Observations carry the three cameras
    and ``proprio`` (the 6 joint positions).

    Args:
        num_envs: number of envs (``MjData`` copies of one model).
        seed: env ``i``'s episode layouts are drawn from ``(seed, i)``.
        image_size: ``int``, ``(h, w)`` or ``{camera: size}`` (default 128).
        frame_skip: physics steps (2 ms each) per env step (default 10: 20 ms, 50 Hz).
        max_episode_steps: truncation limit (default 150).
        shadows: render shadows (about 4 ms more per camera image with software GL).
        tensor: frames as torch tensors (``None``: if torch is importable) or numpy.

    Examples - the scripted policy pushes the cube onto the goal:

    >>> from collect.eval.envs import make_env, make_policy
    >>> env = make_env("mujoco_tabletop", 2, image_size=32, tensor=False)
    >>> policy = make_policy("scripted", env)
    >>> obs = env.reset(seed=0)
    >>> obs[0]["robot_r1"]["robot_r1:zed_link:Camera:0"]["rgb"].shape
    (32, 32, 4)
    >>> for _ in range(60):
    ...     obs, reward, terminated, truncated, info = env.step(policy(obs))
    ...     if terminated[0]:
    ...         break
    >>> info[0]["success"], info[0]["distance"] < 0.04
    (True, True)
    >>> env.close()
    """

    def __init__(
        self,
        num_envs: int,
        *,
        seed: int = 0,
        image_size: ImageSize = DEFAULT_IMAGE_SIZE,
        frame_skip: int = 10,
        max_episode_steps: int | None = 150,
        shadows: bool = False,
        tensor: bool | None = None,
    ) -> None:
        if frame_skip < 1:
            raise ValueError(f"frame_skip must be >= 1. Got {frame_skip!r} instead.")
        super().__init__(
            num_envs,
            seed=seed,
            action_dim=4,
            camera_names=CAMERA_NAMES,
            image_size=image_size,
            max_episode_steps=max_episode_steps,
            tensor=tensor,
        )
        self._mujoco = mujoco = _import_mujoco()
        xml = resources.files("collect.eval").joinpath("assets", "tabletop.xml").read_text()
        self.model = mujoco.MjModel.from_xml_string(xml)
        self.data = [mujoco.MjData(self.model) for _ in range(self.num_envs)]
        self.frame_skip = frame_skip
        self._renderers = _Renderers(mujoco, self.model, self.image_sizes, shadows)
        self._index = self._model_indices()
        self._target = np.tile(HOME, (self.num_envs, 1))

    def _model_indices(self) -> dict[str, Any]:
        """qpos/ctrl addresses and ids looked up by name once."""
        m, mujoco = self.model, self._mujoco
        joints = [m.joint(name) for name in ARM_JOINTS + FINGER_JOINTS]
        return {
            "robot_qpos": np.array([int(j.qposadr[0]) for j in joints]),
            "arm_ctrl": np.array([m.actuator(name).id for name in ARM_JOINTS]),
            "finger_ctrl": np.array([m.actuator(name).id for name in FINGER_JOINTS]),
            "object_qpos": {name: int(m.joint(name).qposadr[0]) for name in OBJECTS},
            "cube_body": m.body("cube").id,
            "goal_mocap": int(m.body("goal").mocapid[0]),
            "tip_site": mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_SITE, "tip"),
        }

    # -- public helpers --------------------------------------------------------------------

    def task_state(self, index: int) -> TaskState:
        """Positions a scripted controller needs for env ``index``."""
        data, ix = self.data[index], self._index
        return TaskState(
            tip=data.site_xpos[ix["tip_site"]].copy(),
            target=self._target[index].copy(),
            cube=data.xpos[ix["cube_body"]].copy(),
            goal=data.mocap_pos[ix["goal_mocap"]].copy(),
        )

    def scripted_policy(self, *, seed: int = 0) -> TabletopPushPolicy:
        return TabletopPushPolicy(self, seed=seed)

    def close(self) -> None:
        self._renderers.close()

    # -- VectorEnv hooks -------------------------------------------------------------------

    def _reset_envs(self, indices: np.ndarray) -> None:
        for i in indices:
            self._reset_one(int(i), _sample_layout(self._rngs[i]))

    def _reset_one(self, index: int, layout: _Layout) -> None:
        """Objects and goal from ``layout``; the arm at rest with its tip at ``layout.tip``."""
        mujoco, data, ix = self._mujoco, self.data[index], self._index
        mujoco.mj_resetData(self.model, data)
        for name, (xy, yaw) in layout.objects.items():
            adr = ix["object_qpos"][name]
            data.qpos[adr : adr + 3] = (*xy, OBJECT_Z[name])
            data.qpos[adr + 3 : adr + 7] = (math.cos(yaw / 2), 0.0, 0.0, math.sin(yaw / 2))
        data.mocap_pos[ix["goal_mocap"], :2] = layout.goal
        self._target[index] = layout.tip
        joints = np.concatenate([arm_ik(layout.tip), [FINGER_OPEN, FINGER_OPEN]])
        data.qpos[ix["robot_qpos"]] = joints
        data.ctrl[np.concatenate([ix["arm_ctrl"], ix["finger_ctrl"]])] = joints
        mujoco.mj_forward(self.model, data)

    def _advance(
        self, actions: np.ndarray, active: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        for i in np.flatnonzero(active):
            self._apply_action(int(i), np.clip(actions[i], -1.0, 1.0))
            self._mujoco.mj_step(self.model, self.data[i], nstep=self.frame_skip)
        distance = np.array([self._cube_goal_distance(i) for i in range(self.num_envs)])
        success = distance < SUCCESS_DISTANCE
        return -distance, success, success

    def _apply_action(self, index: int, action: np.ndarray) -> None:
        target = self._target[index] + MOVE_PER_STEP * action[:3]
        self._target[index] = np.clip(target, WORKSPACE_LOW, WORKSPACE_HIGH)
        data, ix = self.data[index], self._index
        data.ctrl[ix["arm_ctrl"]] = arm_ik(self._target[index])
        data.ctrl[ix["finger_ctrl"]] = FINGER_OPEN * (action[3] + 1.0) / 2.0

    def _cube_goal_distance(self, index: int) -> float:
        data, ix = self.data[index], self._index
        cube = data.xpos[ix["cube_body"], :2]
        return float(np.linalg.norm(cube - data.mocap_pos[ix["goal_mocap"], :2]))

    def _extra_info(self, index: int) -> dict[str, Any]:
        return {"distance": self._cube_goal_distance(index)}

    def _observe(self) -> list[dict]:
        robot_qpos = self._index["robot_qpos"]
        return [
            self._env_obs(
                self._renderers.render(data), proprio=data.qpos[robot_qpos].astype(np.float32)
            )
            for data in self.data
        ]


class TabletopPushPolicy:
    """Scripted pusher: hover behind the cube (opposite the goal), descend, push it along
    the cube-goal line, and lift to re-approach when the cube slips sideways.

    It reads :meth:`TabletopEnv.task_state`; layouts differ per env, and a little seeded
    action noise varies the motion further.

    >>> from collect.eval.envs import make_env
    >>> env = make_env("mujoco_tabletop", 3, image_size=8)
    >>> actions = TabletopPushPolicy(env)(env.reset())
    >>> actions.shape, bool((abs(actions) <= 1).all())
    ((3, 4), True)
    >>> env.close()
    """

    hover_z = TABLE_Z + 0.12
    push_z = TABLE_Z + 0.022
    noise = 0.05

    def __init__(self, env: TabletopEnv, *, seed: int = 0) -> None:
        self.env = env
        self._rng = np.random.default_rng(seed)

    def __call__(self, obs: Any) -> np.ndarray:
        actions = np.array([self._act(self.env.task_state(i)) for i in range(self.env.num_envs)])
        actions[:, :3] += self._rng.normal(0.0, self.noise, (self.env.num_envs, 3))
        return np.clip(actions, -1.0, 1.0).astype(np.float32)

    def _act(self, s: TaskState) -> np.ndarray:
        """``(dx, dy, dz, grip)`` for one env."""
        to_goal = s.goal[:2] - s.cube[:2]
        u = to_goal / max(float(np.linalg.norm(to_goal)), 1e-6)
        rel = s.tip[:2] - s.cube[:2]
        along, across = float(rel @ u), float(rel @ np.array([-u[1], u[0]]))
        low = s.tip[2] < self.push_z + 0.02
        if low and along < -(CUBE_HALF + 0.005) and abs(across) < 0.02:
            # Behind the cube on the push line: aim 3 cm past the contact point.
            desired = np.array([*(s.cube[:2] - u * (CUBE_HALF + 0.014 - 0.03)), self.push_z])
            grip = -1.0
        elif low and np.linalg.norm(rel) < 0.09:
            desired, grip = np.array([*s.tip[:2], self.hover_z]), 1.0
        else:
            start = s.cube[:2] - 0.08 * u
            above = np.linalg.norm(s.tip[:2] - start) < 0.02
            desired = np.array([*start, self.push_z if above else self.hover_z])
            grip = -1.0 if above else 1.0
        return np.array([*np.clip((desired - s.target) / MOVE_PER_STEP, -1.0, 1.0), grip])
