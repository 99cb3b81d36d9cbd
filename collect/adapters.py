"""Observation adapters: whatever a simulator returns -> ``{camera: (N, H, W, C) batch}``.

Accepted observation shapes (numpy arrays or torch tensors, CPU or CUDA):

* OmniGibson raw observations: a list with one dict per env, nested
  ``robot -> sensor -> {"rgb": (H, W, 4)}`` or flattened with ``::`` separators
  (``robot_r1::robot_r1:zed_link:Camera:0::rgb``);
* a dict ``camera -> (N, H, W, C)`` batch;
* one ``(N, H, W, C)`` array (recorded as camera ``rgb``).

Camera names are normalised so they are stable across robot instance names:

>>> normalize_camera_name("robot_r1::robot_r1:zed_link:Camera:0::rgb")
'zed'
>>> normalize_camera_name("robot_r7:left_realsense_link:Camera:0")
'left_realsense'
>>> normalize_camera_name("external::external_sensor0")
'external_sensor0'

Frames are converted to contiguous ``uint8 (H, W, 3)``: alpha is dropped and float frames in
``[0, 1]`` are scaled. On CUDA the conversion runs on the device and all cameras come back in
one batched asynchronous device-to-host copy into pinned memory.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

__all__ = [
    "DEFAULT_CAMERA",
    "DeviceToHost",
    "FrameInputError",
    "camera_frames",
    "info_columns",
    "is_tensor",
    "normalize_camera_name",
    "stack_env_frames",
    "to_camera_batches",
    "to_numpy_uint8_rgb",
]

DEFAULT_CAMERA = "rgb"
# Known OmniGibson/R1Pro sensor names, matched as substrings (first match wins).
KNOWN_CAMERAS = ("left_realsense", "right_realsense", "zed", "eyes", "head", "wrist")
_MODALITIES = ("rgb",)
_IGNORED_PARTS = re.compile(r"^(camera|rgb|\d+)$", re.IGNORECASE)


class FrameInputError(ValueError):
    """An observation that cannot be recorded; the message names the env and camera."""


@functools.lru_cache(maxsize=1024)
def normalize_camera_name(key: str) -> str:
    """A short, robot-independent camera name from an OmniGibson sensor key or path."""
    lowered = key.lower()
    for known in KNOWN_CAMERAS:
        if known in lowered:
            return known
    parts = [p for p in re.split(r"::|:|/", key) if p and not _IGNORED_PARTS.match(p)]
    robot = parts[0] if len(parts) > 1 else None
    candidates = [p for p in parts if p != robot] or parts or [key]
    name = candidates[-1] if len(candidates) == 1 else candidates[0]
    return re.sub(r"_link$", "", name)


def is_tensor(x: Any) -> bool:
    return type(x).__module__.startswith("torch")


def _is_frame(x: Any) -> bool:
    return (isinstance(x, np.ndarray) or is_tensor(x)) and len(x.shape) in (2, 3)


def _rgb_leaves(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{path: frame}`` for every RGB image leaf of a nested or ``::``-flattened obs dict."""
    leaves: dict[str, Any] = {}
    for key, value in tree.items():
        path = f"{prefix}::{key}" if prefix else str(key)
        if isinstance(value, Mapping):
            leaves.update(_rgb_leaves(value, path))
        elif path.rsplit("::", 1)[-1] in _MODALITIES and _is_frame(value):
            leaves[path.rsplit("::", 1)[0]] = value
    return leaves


def _per_env_cameras(env_obs: Any, env: int) -> dict[str, Any]:
    if not isinstance(env_obs, Mapping):
        raise FrameInputError(
            f"env {env}: expected a dict of sensors (OmniGibson observation), "
            f"got {type(env_obs).__name__}"
        )
    leaves = _rgb_leaves(env_obs)
    if not leaves:
        raise FrameInputError(f"env {env}: observation has no 'rgb' camera entries")
    cameras: dict[str, Any] = {}
    for path, frame in leaves.items():
        name = normalize_camera_name(path)
        if name in cameras:
            raise FrameInputError(
                f"env {env}: two sensors map to camera name {name!r} ({path!r}); "
                "pass explicit camera names"
            )
        cameras[name] = frame
    return cameras


def stack_env_frames(frames: list[Any], camera: str) -> Any:
    """One ``(N, H, W, C)`` batch from a camera's per-env frames (a copy); all the same size."""
    shapes = {tuple(f.shape) for f in frames}
    if len(shapes) > 1:
        raise FrameInputError(f"camera {camera!r}: envs have different shapes {shapes}")
    if is_tensor(frames[0]):
        import torch

        return torch.stack(frames)
    return np.stack(frames)


def camera_frames(obs: Any, num_envs: int) -> dict[str, Any]:
    """Each camera's frames of one step, without copying them.

    A camera maps to its ``(N, H, W, C)`` batch (array or tensor, any device) when the
    observation is batched, or to the list of its ``N`` per-env frames when it is a list of
    per-env dicts (OmniGibson): stacking those would be one more copy on the rollout thread.
    Raises :class:`FrameInputError` naming the env/camera when the structure or env count is
    wrong; frame sizes are checked by whoever copies the frames.
    """
    if isinstance(obs, (list, tuple)):
        return _per_env_camera_lists(obs, num_envs)
    if isinstance(obs, Mapping):
        batches = {}
        for key, value in obs.items():
            if isinstance(value, Mapping):
                raise FrameInputError(
                    f"camera {key!r}: nested dict; OmniGibson observations come as a list "
                    "with one dict per env"
                )
            batches[normalize_camera_name(str(key)) if "::" in str(key) else str(key)] = value
    elif isinstance(obs, np.ndarray) or is_tensor(obs):
        batches = {DEFAULT_CAMERA: obs}
    else:
        raise FrameInputError(
            f"unsupported observation type {type(obs).__name__}; pass a list of per-env dicts, "
            "a dict camera -> (N, H, W, C), or an (N, H, W, C) array"
        )
    for name, batch in batches.items():
        if not (isinstance(batch, np.ndarray) or is_tensor(batch)):
            raise FrameInputError(
                f"camera {name!r}: expected an array or tensor, got {type(batch).__name__}"
            )
        if len(batch.shape) not in (3, 4) or batch.shape[0] != num_envs:
            raise FrameInputError(
                f"camera {name!r}: batch shape {tuple(batch.shape)} does not have "
                f"{num_envs} envs first (expected (N={num_envs}, H, W, C))"
            )
    return batches


def _per_env_camera_lists(obs: Sequence[Any], num_envs: int) -> dict[str, list[Any]]:
    if len(obs) != num_envs:
        raise FrameInputError(
            f"observation list has {len(obs)} envs, expected {num_envs} (num_envs)"
        )
    per_env = [_per_env_cameras(o, i) for i, o in enumerate(obs)]
    names = per_env[0].keys()
    for i, cams in enumerate(per_env[1:], start=1):
        if cams.keys() != names:
            raise FrameInputError(f"env {i} has cameras {sorted(cams)}, env 0 has {sorted(names)}")
    return {name: [cams[name] for cams in per_env] for name in names}


def to_camera_batches(obs: Any, num_envs: int) -> dict[str, Any]:
    """Normalise an observation to ``{camera: (N, H, W, C)}`` (arrays or tensors, any device).

    Per-env frames are stacked (a copy); :func:`camera_frames` gives them without one.
    """
    batches = {}
    for name, frames in camera_frames(obs, num_envs).items():
        batches[name] = stack_env_frames(frames, name) if isinstance(frames, list) else frames
    return batches


def _check_float_range(batch: Any, camera: str) -> None:
    """Raise naming the env if a float batch holds NaN/inf or values outside [0, 1]."""
    flat = batch.reshape(batch.shape[0], -1)
    finite = np.isfinite(flat).all(axis=1)
    if not finite.all():
        env = int(np.flatnonzero(~finite)[0])
        raise FrameInputError(f"camera {camera!r}, env {env}: frame contains NaN or inf")
    low, high = flat.min(axis=1), flat.max(axis=1)
    bad = (low < -1e-3) | (high > 1.0 + 1e-3)
    if bad.any():
        env = int(np.flatnonzero(bad)[0])
        raise FrameInputError(
            f"camera {camera!r}, env {env}: float frame values span "
            f"[{low[env]:.3g}, {high[env]:.3g}]; expected [0, 1] (or pass uint8)"
        )


def _channels_last_rgb(batch: Any, camera: str) -> Any:
    if len(batch.shape) == 3:
        batch = batch[..., None]
    channels = batch.shape[-1]
    if channels == 1:
        return batch.expand(*batch.shape[:-1], 3) if is_tensor(batch) else np.repeat(batch, 3, -1)
    if channels in (3, 4):
        return batch[..., :3]
    raise FrameInputError(
        f"camera {camera!r}: frames have {channels} channels; expected 1 (gray), 3 (RGB) "
        "or 4 (RGBA) in the last axis"
    )


def to_numpy_uint8_rgb(batch: Any, camera: str) -> np.ndarray:
    """One camera batch -> ``uint8 (N, H, W, 3)`` numpy (may be a strided view)."""
    if is_tensor(batch):
        batch = _tensor_to_uint8_rgb(batch, camera)
        return batch.numpy() if batch.device.type == "cpu" else batch.cpu().numpy()
    batch = _channels_last_rgb(batch, camera)
    if batch.dtype == np.uint8:
        return batch
    if batch.dtype.kind == "f":
        _check_float_range(batch, camera)
        return (np.clip(batch, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    raise FrameInputError(
        f"camera {camera!r}: unsupported frame dtype {batch.dtype}; expected uint8 or float"
    )


def _tensor_to_uint8_rgb(batch: Any, camera: str) -> Any:
    """Dtype/channel conversion of a tensor, done on its own device."""
    import torch

    batch = _channels_last_rgb(batch, camera)
    if batch.dtype == torch.uint8:
        return batch
    if batch.is_floating_point():
        _check_float_range(_tensor_minmax(batch), camera)
        return (batch.clamp(0.0, 1.0) * 255.0 + 0.5).to(torch.uint8)
    raise FrameInputError(
        f"camera {camera!r}: unsupported frame dtype {batch.dtype}; expected uint8 or float"
    )


def _tensor_minmax(batch: Any) -> np.ndarray:
    """Per-env (min, max) of a float tensor as a small host array (NaN propagates)."""
    import torch

    stats = batch.detach().reshape(batch.shape[0], -1)
    mins = stats.amin(dim=1)
    maxs = stats.amax(dim=1)
    return torch.stack([mins, maxs], dim=1).cpu().numpy()


class DeviceToHost:
    """Batched, asynchronous device-to-host copies of CUDA camera batches into pinned memory.

    All cameras' copies are issued on one stream and waited for once per step, instead of one
    blocking ``.cpu()`` per camera.
    """

    def __init__(self) -> None:
        self._pinned: dict[str, Any] = {}

    def __call__(self, batches: Mapping[str, Any]) -> dict[str, np.ndarray]:
        import torch

        converted = {c: _tensor_to_uint8_rgb(b, c) for c, b in batches.items()}
        host = {}
        for camera, tensor in converted.items():
            pinned = self._pinned.get(camera)
            if pinned is None or pinned.shape != tensor.shape:
                pinned = torch.empty(tensor.shape, dtype=torch.uint8, pin_memory=True)
                self._pinned[camera] = pinned
            pinned.copy_(tensor, non_blocking=True)
            host[camera] = pinned
        torch.cuda.current_stream().synchronize()
        return {camera: pinned.numpy() for camera, pinned in host.items()}


def batches_to_numpy(batches: Mapping[str, Any], d2h: DeviceToHost | None = None) -> dict:
    """All camera batches as ``uint8 (N, H, W, 3)`` numpy; CUDA ones in one batched copy."""
    cuda = {c: b for c, b in batches.items() if is_tensor(b) and b.is_cuda}
    out = {c: to_numpy_uint8_rgb(b, c) for c, b in batches.items() if c not in cuda}
    if cuda:
        out.update((d2h or DeviceToHost())(cuda))
    return {c: out[c] for c in batches}


def as_env_vector(value: Any, num_envs: int, name: str, dtype: Any) -> np.ndarray:
    """A per-env vector from a scalar, sequence, numpy array or tensor (for reward etc.)."""
    if is_tensor(value):
        value = value.detach().cpu().numpy()
    try:
        if np.asarray(value).dtype.kind in "USV":  # "yes" would be True, "0.5" a number
            raise TypeError("text")
        arr = np.asarray(value, dtype=dtype).reshape(-1)
    except (TypeError, ValueError):
        raise FrameInputError(
            f"{name} must be numbers, one per env or one for all. Got {value!r:.80} instead."
        ) from None
    if arr.size == 1 and num_envs != 1:
        arr = np.repeat(arr, num_envs)
    if arr.size != num_envs:
        raise FrameInputError(f"{name} has {arr.size} values, expected {num_envs} (num_envs)")
    return arr


def _flatten_info(info: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in info.items():
        if not isinstance(key, str):
            raise FrameInputError(f"info key {key!r} is not a string")
        if key.startswith("_"):
            continue  # gymnasium's per-key masks
        path = f"{prefix}.{key}" if prefix else key
        if isinstance(value, Mapping):
            flat.update(_flatten_info(value, path))
        else:
            flat[path] = value
    return flat


def info_columns(info: Any, num_envs: int) -> dict[str, np.ndarray]:
    """``{dotted_key: (N,) array}`` from a dict of per-env values or a list of per-env dicts."""
    if info is None:
        return {}
    if isinstance(info, Sequence) and not isinstance(info, (str, bytes)):
        if len(info) != num_envs:
            raise FrameInputError(f"info list has {len(info)} envs, expected {num_envs}")
        rows = [_flatten_info(i) if isinstance(i, Mapping) else None for i in info]
        if any(r is None for r in rows):
            raise FrameInputError("info list must hold one dict per env")
        keys = sorted({k for r in rows for k in r})
        columns = {}
        for key in keys:
            values = [r.get(key) for r in rows]
            columns[key] = _info_column(key, values, num_envs)
        return columns
    if not isinstance(info, Mapping):
        raise FrameInputError(f"info must be a dict or a list of per-env dicts, got {type(info)}")
    return {k: _info_column(k, v, num_envs) for k, v in _flatten_info(info).items()}


def _info_column(key: str, value: Any, num_envs: int) -> np.ndarray:
    if isinstance(value, list) and any(v is None for v in value):
        present = [v for v in value if v is not None]
        kind = np.asarray(present).dtype if present else np.dtype("float64")
        fill = np.nan if kind.kind == "f" else 0
        value = [fill if v is None else v for v in value]
    if is_tensor(value):
        value = value.detach().cpu().numpy()
    arr = np.asarray(value)
    if arr.dtype.kind not in "biuf":
        raise FrameInputError(
            f"info key {key!r}: values must be numbers or booleans, got dtype {arr.dtype}"
        )
    arr = arr.reshape(-1) if arr.ndim <= 1 else arr
    if arr.ndim != 1 or arr.size not in (1, num_envs):
        raise FrameInputError(
            f"info key {key!r}: expected one scalar per env ({num_envs}), got shape {arr.shape}"
        )
    return np.repeat(arr, num_envs) if arr.size == 1 and num_envs > 1 else arr
