"""The rollout thread's one pass: one step's frames, straight from the observation into a slot.

:class:`RowCopier` turns each camera's frames (per-env frames or a batch, numpy or torch) into
host ``uint8`` arrays *with the channels they came with* (gray, RGB or RGBA), checks them
against the sizes of the first step, and copies them into a ring slot: one memcpy per frame
for uint8 input (batches too, frame by frame: each frame's place in the slot matches its
address, see :mod:`collect.ring`). Dropping alpha, contiguity and compression are the writer
process's work. Float frames are scaled to uint8 here and CUDA tensors come back in one
batched asynchronous copy (:class:`collect.adapters.DeviceToHost`): a conversion the
caller's side keeps.

>>> import numpy as np
>>> from collect.ring import FrameRing, RingLayout
>>> copier = RowCopier(rank=0, num_envs=2)
>>> frames = copier.host_frames({"zed": np.zeros((2, 6, 8, 4), np.uint8)})
>>> copier.learn_shapes(frames)
{'zed': (6, 8, 4)}
>>> ring = FrameRing.create(RingLayout(num_envs=2, cameras=copier.shapes, slots=1))
>>> copier.copy(frames, ring.slot(0))
>>> ring.close()
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from . import adapters
from .adapters import FrameInputError
from .ring import RowSlot

__all__ = ["RowCopier"]

_CHANNELS = (1, 3, 4)


class RowCopier:
    """Host frames of one step, checked against the first step's sizes, copied into a slot."""

    def __init__(self, rank: int, num_envs: int, cameras: list[str] | None = None) -> None:
        self.rank = rank
        self.num_envs = num_envs
        self.keep_cameras = cameras
        self.shapes: dict[str, tuple[int, int, int]] | None = None  # camera -> (H, W, C)
        self._d2h = adapters.DeviceToHost()  # pinned buffers, allocated on first CUDA input

    def host_frames(self, obs: Any) -> dict[str, Any]:
        """``{camera: (N, H, W, C) array or list of N (H, W, C) arrays}``, uint8 on the host."""
        frames = self._selected(adapters.camera_frames(obs, self.num_envs))
        converted = {c: f for c, f in frames.items() if _needs_conversion(f)}
        if not converted:
            return {c: _uint8_view(f, c) for c, f in frames.items()}
        batches = {
            c: adapters.stack_env_frames(f, c) if isinstance(f, list) else f
            for c, f in converted.items()
        }
        host = adapters.batches_to_numpy(batches, self._d2h)
        return {c: host[c] if c in host else _uint8_view(f, c) for c, f in frames.items()}

    def _selected(self, frames: dict[str, Any]) -> dict[str, Any]:
        if self.keep_cameras is None:
            return frames
        missing = [c for c in self.keep_cameras if c not in frames]
        if missing:
            raise FrameInputError(
                f"rank {self.rank}: cameras {missing} requested but the observation has "
                f"{sorted(frames)}"
            )
        return {c: frames[c] for c in self.keep_cameras}

    def learn_shapes(self, frames: Mapping[str, Any]) -> dict[str, tuple[int, int, int]]:
        """Record the first step's ``(H, W, C)`` per camera: every later step must match."""
        if not frames:
            raise FrameInputError(f"rank {self.rank}: observation has no cameras")
        shapes = {}
        for camera, value in frames.items():
            shape = tuple(int(x) for x in value[0].shape[-3:])
            if shape[0] <= 0 or shape[1] <= 0:
                raise FrameInputError(f"camera {camera!r}: empty frames {shape[0]}x{shape[1]}")
            shapes[camera] = shape
        self.shapes = shapes
        return shapes

    def copy(self, frames: Mapping[str, Any], slot: RowSlot) -> None:
        """Copy every camera's frames into ``slot``."""
        assert self.shapes is not None
        if frames.keys() != self.shapes.keys():
            raise FrameInputError(
                f"rank {self.rank}: cameras changed mid-run: now {sorted(frames)}, "
                f"first step had {sorted(self.shapes)}"
            )
        for camera, value in frames.items():
            if isinstance(value, list):
                for env, frame in enumerate(value):
                    self._check_shape(camera, frame.shape, env)
            else:
                self._check_shape(camera, value.shape[1:])
            slot.put(camera, value)

    def _check_shape(self, camera: str, shape: tuple[int, ...], env: int | None = None) -> None:
        """Same (H, W) as the first step; a gray camera stays gray (other channels mix)."""
        assert self.shapes is not None
        expected = self.shapes[camera]
        gray_change = expected[2] == 1 and shape[2] != 1
        if tuple(shape[:2]) != expected[:2] or gray_change:
            where = f"camera {camera!r}" if env is None else f"camera {camera!r}, env {env}"
            raise FrameInputError(
                f"rank {self.rank}, {where}: frame size changed from "
                f"{expected} to {tuple(shape)} (H, W, C) mid-run"
            )


def _needs_conversion(frames: Any) -> bool:
    """Float frames and CUDA tensors are converted on the caller's side; uint8 is not."""
    sample = frames[0]
    if adapters.is_tensor(sample):
        return sample.is_cuda or sample.is_floating_point()
    return sample.dtype.kind == "f"


def _uint8_view(frames: Any, camera: str) -> Any:
    """uint8 frames as numpy views with a channel axis; anything else a clear error."""
    if isinstance(frames, list):
        return [_uint8_frame(f, camera, env) for env, f in enumerate(frames)]
    return _uint8_frame(frames, camera, None, batch=True)


def _uint8_frame(frame: Any, camera: str, env: int | None, *, batch: bool = False) -> np.ndarray:
    if adapters.is_tensor(frame):
        frame = frame.detach().numpy()
    if frame.dtype != np.uint8:
        where = f"camera {camera!r}" if env is None else f"camera {camera!r}, env {env}"
        raise FrameInputError(
            f"{where}: unsupported frame dtype {frame.dtype}; expected uint8 or float"
        )
    if frame.ndim == (3 if batch else 2):
        frame = frame[..., None]
    if frame.ndim != (4 if batch else 3) or frame.shape[-1] not in _CHANNELS:
        raise FrameInputError(
            f"camera {camera!r}: frames have {frame.shape[-1]} channels; expected 1 (gray), "
            "3 (RGB) or 4 (RGBA) in the last axis"
        )
    return frame
