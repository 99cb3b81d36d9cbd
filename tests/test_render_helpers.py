"""Helpers for the render tests: real stores with smooth frames, decoding, PSNR, ffmpeg PIDs.

Frames are smooth like a rendered scene (gradients and a soft blob that move with the step),
so that video codecs behave as on real content; noise would make any PSNR goal meaningless.
"""

from __future__ import annotations

from pathlib import Path

import imageio_ffmpeg
import numpy as np
import psutil

from collect import FrameWriter, open_store
from render import get_layout

# R1Pro-like camera set, tiny: head 64x48 and two 32x32 wrists
CAMERAS = {"zed": (48, 64), "left_realsense": (32, 32), "right_realsense": (32, 32)}


def scene(h: int, w: int, step: int, seed: int) -> np.ndarray:
    """``uint8 (h, w, 3)``: a smooth, moving picture unique to ``seed``."""
    y, x = np.mgrid[0:h, 0:w] / max(h, w)
    t = step * 0.05 + seed * 0.7
    cx, cy = 0.5 + 0.3 * np.sin(t), 0.5 + 0.3 * np.cos(1.3 * t)
    blob = np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / 0.03)
    rgb = np.stack(
        [
            0.45 + 0.25 * np.sin(2 * np.pi * (x + t * 0.1)) + 0.3 * blob,
            0.45 + 0.25 * np.cos(2 * np.pi * (0.8 * y - t * 0.07)),
            0.35 + 0.3 * x * y + 0.25 * blob,
        ],
        axis=-1,
    )
    return (np.clip(rgb, 0, 1) * 255).astype(np.uint8)


def write_store(
    path: Path,
    *,
    workers: int = 1,
    envs: int = 1,
    rows: int = 20,
    cameras: dict[str, tuple[int, int]] = CAMERAS,
    fps: float = 10,
    **writer_kwargs,
) -> Path:
    """A store of ``workers * envs`` groups (rank r on gpu r + 1), ``rows`` rows each."""
    for rank in range(workers):
        with FrameWriter(
            path, rank=rank, gpu=rank + 1, num_envs=envs, fps=fps, **writer_kwargs
        ) as writer:
            for step in range(rows):
                writer.append(
                    {
                        cam: np.stack(
                            [scene(h, w, step, seed=rank * 10 + e * 3 + c) for e in range(envs)]
                        )
                        for c, (cam, (h, w)) in enumerate(cameras.items())
                    }
                )
    return path


def decode(path: Path) -> np.ndarray:
    """Every frame of a video, ``uint8 (T, H, W, 3)``."""
    reader = imageio_ffmpeg.read_frames(str(path))
    width, height = next(reader)["size"]
    frames = [np.frombuffer(f, np.uint8).reshape(height, width, 3) for f in reader]
    return np.stack(frames) if frames else np.zeros((0, height, width, 3), np.uint8)


def video_seconds(path: Path) -> float:
    """The duration ffmpeg reports for a video."""
    reader = imageio_ffmpeg.read_frames(str(path))
    try:
        return next(reader)["duration"]
    finally:
        reader.close()


def composed(store: Path, group: str, layout: str = "behavior") -> list[np.ndarray]:
    """The stored frames of a group composed by a layout: one array per output."""
    reader = open_store(store).group(group)
    canvases = get_layout(layout).canvases(reader.cameras)
    frames = {c: reader.frames(c) for c in reader.cameras}
    return [canvas.compose(frames) for canvas in canvases]


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """Mean over frames of the per-frame PSNR in dB."""
    diff = a.astype(np.float64) - b.astype(np.float64)
    mse = np.maximum((diff**2).reshape(len(a), -1).mean(axis=1), 1e-10)
    return float(np.mean(10 * np.log10(255.0**2 / mse)))


def ffmpeg_children() -> list[psutil.Process]:
    """Live ffmpeg processes started by this test process."""
    alive = []
    for proc in psutil.Process().children(recursive=True):
        try:
            if "ffmpeg" in proc.name() and proc.status() != psutil.STATUS_ZOMBIE:
                alive.append(proc)
        except psutil.NoSuchProcess:
            continue
    return alive


Episodes = list[tuple[int, str | None]]  # (length, "terminated" / "truncated" / None: cut off)


def write_episode_store(
    path: Path,
    episodes: list[Episodes],
    *,
    rank: int = 0,
    cameras: dict[str, tuple[int, int]] = CAMERAS,
    fps: float = 10,
    success: bool = True,
) -> Path:
    """One writer (``rank``), one env per list in ``episodes``, each played out as given.

    Every row has reward 0.5; with ``success``, ``info/success`` is true on the last row of
    each terminated episode (so success agrees with termination). Every env must have the
    same number of rows (they share the writer's steps).
    """
    rows = {sum(length for length, _ in env) for env in episodes}
    assert len(rows) == 1, "every env of one writer has the same number of rows"
    flags = [_episode_flags(env) for env in episodes]
    with FrameWriter(path, rank=rank, gpu=rank, num_envs=len(episodes), fps=fps) as writer:
        for step in range(rows.pop()):
            frames = {
                cam: np.stack(
                    [scene(h, w, step, seed=rank * 10 + e * 3 + c) for e in range(len(episodes))]
                )
                for c, (cam, (h, w)) in enumerate(cameras.items())
            }
            terminated = [f[step] == "terminated" for f in flags]
            truncated = [f[step] == "truncated" for f in flags]
            info = {"success": terminated} if success else None
            writer.append(frames, reward=0.5, terminated=terminated, truncated=truncated, info=info)
    return path


def _episode_flags(episodes: Episodes) -> list[str | None]:
    """Per row: how the episode ends on that row, or None."""
    flags: list[str | None] = []
    for length, end in episodes:
        flags += [None] * (length - 1) + [end]
    return flags
