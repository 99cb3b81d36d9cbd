"""SIGKILL in the middle of a render: no incomplete video under a final name; a rerun finishes."""

from __future__ import annotations

import subprocess
import sys
import time

import imageio_ffmpeg
import numpy as np
import psutil

from collect import FrameWriter
from render import render_store
from render.plan import sidecar_path

ROWS, ENVS = 60, 4


def noisy_store(path):
    """4 groups of 320x240 noise: about a second of x264 each, so a kill lands mid-way."""
    rng = np.random.default_rng(0)
    with FrameWriter(path, num_envs=ENVS, fps=30, codec="lz4") as writer:
        for _ in range(ROWS):
            writer.append({"zed": rng.integers(0, 256, (ENVS, 240, 320, 3), dtype=np.uint8)})
    return path


def decoded_frames(path) -> int:
    """Frames ffmpeg decodes from a file (independent of render's own check)."""
    return imageio_ffmpeg.count_frames_and_secs(str(path))[0]


def wait_for_orphaned_ffmpeg(out_dir, timeout=30.0):
    """ffmpeg children of the killed render get EOF and exit; wait for them (kill stragglers)."""
    deadline = time.monotonic() + timeout
    while True:
        left = [
            p
            for p in psutil.process_iter(["name", "cmdline"])
            if "ffmpeg" in (p.info["name"] or "")
            and str(out_dir) in " ".join(p.info["cmdline"] or [])
        ]
        if not left:
            return
        if time.monotonic() > deadline:
            for proc in left:
                proc.kill()
            return
        time.sleep(0.1)


def test_sigkill_mid_render_leaves_only_complete_videos_and_rerun_finishes(tmp_path):
    store = noisy_store(tmp_path / "frames.zarr")
    out = tmp_path / "videos"
    cmd = [sys.executable, "-m", "render", str(store), str(out), "--encoder-threads", "1"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not list(out.glob(".render/*.mp4.json")):  # the first output is complete
            assert proc.poll() is None and time.monotonic() < deadline, "render ended too early"
            time.sleep(0.01)
    finally:
        proc.kill()
        proc.wait()
    wait_for_orphaned_ffmpeg(out)

    finished = sorted(p for p in out.glob("*.mp4") if not p.name.endswith(".partial.mp4"))
    assert finished, "the first output was complete before the kill"
    assert all(decoded_frames(p) == ROWS for p in finished)  # nothing truncated under a final name
    assert {p.name for p in finished} < {f"behavior_video_rank0_gpu0_env{e}.mp4" for e in range(4)}
    recorded = {p: p.stat().st_mtime_ns for p in finished if sidecar_path(p).exists()}

    report = render_store(store, out, encoder_threads=1)
    assert report.ok, report.summary()
    statuses = {r.path: r.status for r in report.results}
    assert all(statuses[p] == "up to date" for p in recorded)
    assert {p: p.stat().st_mtime_ns for p in recorded} == recorded  # not rewritten
    assert list(statuses.values()).count("rendered") == ENVS - len(recorded)
    assert all(decoded_frames(p) == ROWS for p in report.outputs)
