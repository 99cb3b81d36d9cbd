"""The CUDA input path: one batched asynchronous device-to-host copy per step.

Runs only where a CUDA device is visible (the GPU machine the `device` tool lends); on CPU-only
machines it is skipped, and the CPU torch path is covered by tests/test_writer.py.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from framegen import SIZES, assert_group_matches, pattern_batch

from collect import FrameWriter, open_store
from collect.adapters import DeviceToHost

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def test_cuda_rgba_and_float_frames_round_trip(tmp_path):
    path = tmp_path / "s.zarr"
    with FrameWriter(path, rank=0, num_envs=4) as writer:
        for step in range(20):
            batch = pattern_batch(0, 4, step)
            obs = {}
            for i, (cam, frames) in enumerate(batch.items()):
                tensor = torch.from_numpy(frames).cuda()
                if i == 0:  # RGBA on the device
                    alpha = torch.full((*tensor.shape[:3], 1), 255, dtype=torch.uint8).cuda()
                    tensor = torch.cat([tensor, alpha], -1)
                obs[cam] = tensor
            writer.append(obs)
    for group in open_store(path).groups():
        assert group.cameras == SIZES
        assert_group_matches(group, rank=0, env=group.env)


def test_device_to_host_reuses_pinned_buffers():
    d2h = DeviceToHost()
    frames = {"zed": torch.rand(2, 8, 8, 3, device="cuda")}
    first = d2h(frames)["zed"]
    second = d2h(frames)["zed"]
    assert first.ctypes.data == second.ctypes.data  # same pinned buffer
    np.testing.assert_array_equal(
        second, (frames["zed"].cpu().numpy() * 255 + 0.5).astype(np.uint8)
    )
