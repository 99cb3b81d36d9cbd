"""Degrade, don't drop (issue 12 part 3): a lost metadata array loses no frame.

A small real store (2 envs, 40 rows, 4 episodes each) is damaged in one metadata array of
one env (deleted, or garbage bytes in its chunk), then rendered with real ffmpeg and
``--overlay`` (which used to fail the whole env); the MP4s are decoded and their frames
counted, and the summary table, ``episodes.csv``, ``summary.json``, the result objects and
``python -m collect.check`` must each name the lost array.
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from framegen import pattern_batch
from test_render_kill import decoded_frames

from collect import FrameWriter, open_store
from collect.check import check_store
from collect.check import main as check_main
from render import render_store
from render.cli import main as render_main
from render.episodes import read_episodes
from render.metadata import read_metadata

ROWS, ENVS, CHUNK, EPISODE = 40, 2, 8, 10
SIZES = {"zed": (32, 48)}
VICTIM, OTHER = "rank0_gpu0_env1", "rank0_gpu0_env0"


@pytest.fixture(scope="module")
def healthy(tmp_path_factory) -> Path:
    """2 envs x 40 rows: episodes of 10 rows (the last one truncated), reward 1 per row,
    success on row 5 of each episode of env 0 only; never modified."""
    path = tmp_path_factory.mktemp("healthy") / "frames.zarr"
    with FrameWriter(path, num_envs=ENVS, fps=10, chunk_frames=CHUNK) as writer:
        for t in range(ROWS):
            end = t % EPISODE == EPISODE - 1
            writer.append(
                pattern_batch(0, ENVS, t, SIZES),
                reward=[1.0, 0.5],
                terminated=[end and t < ROWS - 1] * ENVS,
                truncated=[end and t == ROWS - 1] * ENVS,
                info={"success": [t % EPISODE == 5, False]},
            )
    return path


def damaged(healthy: Path, tmp_path: Path, harm: str) -> Path:
    """A copy of the healthy store with one metadata array of the victim harmed."""
    store = tmp_path / "frames.zarr"
    shutil.copytree(healthy, store)
    group = store / VICTIM
    if harm == "reward deleted":
        shutil.rmtree(group / "reward")
    elif harm == "reward chunk garbage":
        chunk = group / "reward" / "c" / "0"
        chunk.write_bytes(np.random.default_rng(0).bytes(len(chunk.read_bytes())))
    elif harm == "info array deleted":  # its zarr.json: a folder gone whole reads as never stored
        (group / "info" / "success" / "zarr.json").unlink()
    elif harm == "episode deleted":
        shutil.rmtree(group / "episode")
    elif harm == "end flags deleted":
        shutil.rmtree(group / "terminated")
        shutil.rmtree(group / "truncated")
    return store


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


LOST = {
    "reward deleted": {"reward": "missing"},
    "reward chunk garbage": {"reward": "unreadable"},
    "info array deleted": {"info/success": "missing"},
    "episode deleted": {"episode": "missing"},
    "end flags deleted": {"terminated": "missing", "truncated": "missing"},
}


@pytest.mark.parametrize("harm", list(LOST))
def test_lost_metadata_renders_every_frame_and_says_what_is_lost(healthy, tmp_path, harm, capsys):
    store, out = damaged(healthy, tmp_path, harm), tmp_path / "out"
    lost = LOST[harm]
    text = ", ".join(f"{path} {kind}" for path, kind in lost.items())

    assert render_main([str(store), str(out), "--overlay", "--preset", "ultrafast"]) == 1
    summary_table = capsys.readouterr().out
    for name in (OTHER, VICTIM):  # every stored row is a frame, decoded by ffmpeg
        assert decoded_frames(out / f"behavior_video_{name}.mp4") == ROWS
    row = next(x for x in summary_table.splitlines() if x.startswith(f"behavior_video_{VICTIM}"))
    assert row.split()[1] == "rendered" and f"partial metadata: {text}" in row
    assert "(1 with partial metadata)" in summary_table

    episodes = read_csv(out / "episodes.csv")
    assert {r["partial_metadata"] for r in episodes if r["group"] == VICTIM} == {text}
    assert {r["partial_metadata"] for r in episodes if r["group"] == OTHER} == {""}
    assert [int(r["steps"]) for r in episodes if r["group"] == VICTIM] == [EPISODE] * 4
    report = json.loads((out / "summary.json").read_text())
    assert report["envs"][VICTIM]["partial_metadata"] == lost
    assert all(VICTIM in p for p in report["envs"][VICTIM]["metadata_problems"])
    assert report["envs"][OTHER]["partial_metadata"] == {}
    assert report["overall"]["partial_metadata_envs"] == 1

    assert check_main([str(store)]) == 1
    checked = capsys.readouterr().out
    assert f"{VICTIM}  rows {ROWS}" in checked and "PARTIAL METADATA (" in checked
    for path in lost:
        assert f"array '{path.removeprefix('info/')}'" in checked
    assert checked.strip().splitlines()[-1] == (
        "2 groups: 1 ok, 0 damaged, 1 partial metadata (frames intact)"
    )


def test_what_is_left_is_what_the_report_says(healthy, tmp_path):
    """Per harm: returns unknown without reward, outcomes unknown without the success key,
    episodes derived from step without episode, ends unknown without the end flags."""
    by_harm = {}
    for harm in LOST:
        store = damaged(healthy, tmp_path / harm.replace(" ", "_"), harm)
        by_harm[harm] = read_episodes(open_store(store).group(VICTIM))
    healthy_episodes = read_episodes(open_store(healthy).group(VICTIM))
    assert [e.reward for e in healthy_episodes] == [5.0] * 4
    assert [e.reward for e in by_harm["reward deleted"]] == [None] * 4
    assert [e.reward for e in by_harm["reward chunk garbage"]] == [None] * 4
    assert [e.outcome for e in healthy_episodes] == ["failure"] * 4  # success never true
    assert [e.outcome for e in by_harm["info array deleted"]] == ["unknown"] * 4
    derived = by_harm["episode deleted"]
    assert [(e.episode, e.start, e.stop, e.end) for e in derived] == [
        (e.episode, e.start, e.stop, e.end) for e in healthy_episodes
    ]
    assert [e.end for e in by_harm["end flags deleted"]] == ["unknown"] * 4
    store = damaged(healthy, tmp_path / "derived", "episode deleted")
    meta = read_metadata(open_store(store).group(VICTIM))
    assert meta.derived == {"episode": "from step"}


def test_result_objects_carry_the_partial_metadata(healthy, tmp_path):
    """What the gallery reads: ``OutputResult.partial_metadata`` and ``metadata_note()``."""
    store = damaged(healthy, tmp_path, "reward deleted")
    report = render_store(store, tmp_path / "out", split_episodes=True)
    victim = [r for r in report.results if r.group == VICTIM]
    assert len(victim) == 4 and sum(r.frames for r in victim) == ROWS
    assert sum(decoded_frames(r.path) for r in victim) == ROWS
    assert all(r.status == "rendered" and r.ok and not r.complete for r in victim)
    assert {r.metadata_note() for r in victim} == {"partial metadata: reward missing"}
    assert all(not r.partial_metadata for r in report.results if r.group == OTHER)
    assert not report.ok and len(report.partial_metadata) == 4
    again = render_store(store, tmp_path / "out", split_episodes=True)
    assert {r.status for r in again.results} == {"up to date"}  # still marked when not redone
    assert len(again.partial_metadata) == 4


def test_check_keeps_frame_damage_apart_from_metadata(healthy, tmp_path):
    store = damaged(healthy, tmp_path, "reward deleted")
    chunk = store / OTHER / "cameras" / "zed" / "c" / "1" / "0" / "0" / "0"
    chunk.unlink()
    health = check_store(store)
    states = {g.name: g.state for g in health.groups}
    assert states == {OTHER: "damaged", VICTIM: "partial metadata"}
    victim = next(g for g in health.groups if g.name == VICTIM)
    assert victim.partial_metadata == ["reward"] and not victim.frames_damaged
    assert health.exit_status == 1
    assert health.report().splitlines()[-1] == (
        "2 groups: 0 ok, 1 damaged, 1 partial metadata (frames intact)"
    )
