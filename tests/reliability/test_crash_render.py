"""Part 2: ``python -m render`` killed with SIGKILL at random moments while it encodes.

Extends ``tests/test_render_kill.py`` (one kill, right after the first output completed) to
random moments after the first encoder started, and to what the output folder holds after
the rerun: no incomplete MP4 ever sits under a final name, the rerun renders exactly the
missing outputs, and the killed run's temporary files (hidden in OUT/.render/partial) are
removed, so `ls OUT` shows only videos.
"""

from __future__ import annotations

import random
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from chaos import child_env
from test_render_kill import ENVS, ROWS, decoded_frames, noisy_store, wait_for_orphaned_ffmpeg

from render import render_store
from render.report import RenderReport

TRIALS = 3
MAX_DELAY = 1.5  # s after the first encoder started; the 4 encodes take about 3 s here


@dataclass
class KilledRender:
    """The output folder right after the kill and after the rerun."""

    delay: float
    finals: dict[str, int]  # final-named videos after the kill -> decoded frames
    partials: list[str]  # temporary videos after the kill
    rerun: RenderReport
    after: list[str]  # every name in OUT after the rerun


def final_videos(out: Path) -> list[Path]:
    return sorted(p for p in out.glob("*.mp4") if not p.name.endswith(".partial.mp4"))


def kill_render_mid_way(store: Path, out: Path, seed: int) -> KilledRender:
    """Start a render, SIGKILL it a random moment after its first encoder started, rerun."""
    cmd = [sys.executable, "-m", "render", store, out, "--encoder-threads", "1"]
    proc = subprocess.Popen(
        list(map(str, cmd)), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=child_env()
    )
    try:
        deadline = time.monotonic() + 120
        while not list(out.glob(".render/partial/*.partial.mp4")):
            assert proc.poll() is None and time.monotonic() < deadline, "render ended early"
            time.sleep(0.01)
        delay = random.Random(seed).uniform(0.0, MAX_DELAY)
        time.sleep(delay)
    finally:
        proc.kill()
        proc.wait()
    wait_for_orphaned_ffmpeg(out)
    finals = {p.name: decoded_frames(p) for p in final_videos(out)}
    partials = sorted(p.name for p in out.glob(".render/partial/*.partial.mp4"))
    rerun = render_store(store, out, encoder_threads=1)
    return KilledRender(delay, finals, partials, rerun, sorted(p.name for p in out.iterdir()))


@pytest.fixture(scope="module")
def kills(tmp_path_factory) -> list[KilledRender]:
    store = noisy_store(tmp_path_factory.mktemp("noisy") / "frames.zarr")
    return [
        kill_render_mid_way(store, tmp_path_factory.mktemp(f"out{seed}"), seed)
        for seed in range(TRIALS)
    ]


@pytest.mark.parametrize("trial", range(TRIALS))
def test_killed_render_leaves_no_incomplete_video_and_rerun_finishes_the_rest(kills, trial,
                                                                              observe):  # fmt: skip
    kill = kills[trial]
    statuses = {r.path.name: r.status for r in kill.rerun.results}
    after = {r.path.name: decoded_frames(r.path) for r in kill.rerun.results}
    observe(
        2, f"SIGKILL of python -m render, trial {trial}",
        f"killed {kill.delay:.2f} s after the first encoder started: {len(kill.finals)} of "
        f"{ENVS} videos under final names ({sorted(set(kill.finals.values()))} frames), "
        f"{len(kill.partials)} temporary files; rerun: "
        f"{list(statuses.values()).count('up to date')} up to date, "
        f"{list(statuses.values()).count('rendered')} rendered, "
        f"frames {sorted(set(after.values()))}",
        silent_losses=sum(ROWS - n for n in [*kill.finals.values(), *after.values()]),
    )  # fmt: skip
    assert all(n == ROWS for n in kill.finals.values())  # nothing truncated under a final name
    assert kill.rerun.ok, kill.rerun.summary()
    assert all(statuses[name] == "up to date" for name in kill.finals)
    assert list(statuses.values()).count("rendered") == ENVS - len(kill.finals)
    assert list(after.values()) == [ROWS] * ENVS


def test_rerun_after_a_kill_leaves_only_the_final_videos(kills, observe):
    landed = [k for k in kills if k.partials]
    if not landed:
        pytest.skip("no kill landed while an encoder was writing")
    counted = [sum("behavior_video" in name for name in k.after) for k in landed]
    observe(
        2, "OUT after a killed render and its rerun",
        f"`ls OUT | grep behavior_video | wc -l` gives {counted} for {ENVS} envs: "
        f"{sum(len(k.partials) for k in landed)} temporary files of the killed runs are left",
    )  # fmt: skip
    assert counted == [ENVS] * len(landed)
