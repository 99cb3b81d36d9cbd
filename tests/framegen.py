"""Deterministic test frames whose pixels say which rank, env, camera and step they are.

Smooth content (gradients that move with the step) so codecs and video encoders see something
like a real scene; the first pixels carry the ids, so a read-back can be checked exactly. Also
the wait a reader of a killed rollout's store needs (:func:`wait_until_finished`).
"""

from __future__ import annotations

import time

import numpy as np

from collect import open_store

SIZES = {"zed": (48, 64), "left_realsense": (32, 32), "right_realsense": (24, 40)}


def pattern_frame(rank: int, env: int, step: int, camera: int, h: int, w: int) -> np.ndarray:
    """``uint8 (h, w, 3)`` frame unique to (rank, env, step, camera)."""
    y, x = np.mgrid[0:h, 0:w]
    frame = np.empty((h, w, 3), np.uint8)
    frame[..., 0] = (x * 4 + step * 3) % 256
    frame[..., 1] = (y * 4 + env * 40 + rank * 17) % 256
    frame[..., 2] = ((x + y) * 2 + camera * 60) % 256
    frame[0, 0] = (rank, env, camera)
    frame[0, 1] = (step % 256, (step // 256) % 256, 7)
    return frame


def pattern_batch(
    rank: int, num_envs: int, step: int, sizes: dict[str, tuple[int, int]] = SIZES
) -> dict[str, np.ndarray]:
    """``{camera: (num_envs, h, w, 3)}`` for one step of one worker."""
    return {
        cam: np.stack([pattern_frame(rank, e, step, c, h, w) for e in range(num_envs)])
        for c, (cam, (h, w)) in enumerate(sizes.items())
    }


def assert_group_matches(group, rank: int, env: int, rows: int | None = None) -> None:
    """Every committed frame of a group equals the pattern frame it should hold."""
    rows = group.rows if rows is None else rows
    for c, cam in enumerate(SIZES):
        stored = group.frames(cam, 0, rows)
        assert stored.shape[0] == rows, (group.name, cam, stored.shape, rows)
        h, w = SIZES[cam]
        for step in range(rows):
            expected = pattern_frame(rank, env, step, c, h, w)
            if not np.array_equal(stored[step], expected):
                raise AssertionError(f"{group.name} camera {cam} row {step} differs")


def wait_until_finished(store, names: list[str], timeout: float = 60.0) -> None:
    """Wait until the writer process of a killed rollout has committed its rows and marked
    the groups (it outlives the rollout to do so)."""
    deadline = time.monotonic() + timeout
    while any(open_store(store).group(n).status == "recording" for n in names):
        assert time.monotonic() < deadline, f"groups {names} still 'recording'"
        time.sleep(0.05)
