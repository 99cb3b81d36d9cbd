"""Part 1: an env worker stepping the built-in MuJoCo env dies mid-rollout; its writer dies.

SIGKILL of the rollout process at a random moment (``RELIABILITY_TRIALS`` trials, 20 by default,
each its own worker rank in one shared store): the writer process outlives it, commits every row
whose ``append`` had returned and marks the groups ``interrupted``; every group reads back bit
for bit what the worker appended (0 rows lost), and ``python -m render`` makes a playable MP4 of
every group. SIGKILL of the writer process: the next ``append`` and ``close`` raise one clear
``WriterError`` and every committed row stays readable. SIGTERM loses nothing; an exception
raised inside the env surfaces and keeps what was recorded.
"""

from __future__ import annotations

import os
import random
import signal
import sys
import time
from dataclasses import dataclass

import pytest
from chaos import ENV_WORKER, Child, Step, one_line, python_m
from conftest import KILL_TRIALS
from env_worker import NUM_ENVS, frame_digest
from framegen import assert_group_matches, pattern_batch, wait_until_finished
from test_render_kill import decoded_frames

from collect import FrameWriter, WriterError, open_store
from collect.check import check_store
from collect.store import GroupReader, group_name

FLUSH_INTERVAL = 0.1  # shorter than a 64-row chunk takes: kills land in partial-chunk rewrites
MAX_KILL_DELAY = 2.0  # kills land 0-2 s after the first commit (many flush intervals)


@dataclass
class KilledWorker:
    """What a worker had done when it was killed: its progress lines, the kill time."""

    rank: int
    delay: float
    killed_at: float
    steps: list[Step]
    exit_status: int

    @property
    def appended(self) -> int:
        return self.steps[-1].rows


def run_worker(store, rank: int, *args) -> Child:
    return Child([sys.executable, ENV_WORKER, store, rank, "--seed", rank, *args])


def first_commit(child: Child) -> bool:
    return any(s.committed > 0 for s in child.steps)


def kill_worker(store, rank: int) -> KilledWorker:
    """Start a worker, let it commit once, wait a random 0-2 s, SIGKILL it."""
    child = run_worker(store, rank, "--flush-interval", FLUSH_INTERVAL)
    child.wait_until(first_commit)
    delay = random.Random(rank).uniform(0.0, MAX_KILL_DELAY)
    time.sleep(delay)
    killed_at = time.monotonic()
    status = child.stop(signal.SIGKILL)
    wait_for_writer(store, rank)
    return KilledWorker(rank, delay, killed_at, child.steps, status)


def wait_for_writer(store, rank: int) -> None:
    """Wait until the writer process of a killed worker has committed and marked its groups."""
    wait_until_finished(store, [group_name(rank, rank, e) for e in range(NUM_ENVS)])


def digest_mismatches(group: GroupReader, steps: list[Step]) -> int:
    """Stored rows whose frames differ from what the worker appended (by digest)."""
    frames = {camera: group.frames(camera) for camera in group.cameras}
    known = min(group.rows, len(steps))  # a row appended but not yet printed has no digest
    return sum(
        frame_digest({c: f[row] for c, f in frames.items()}) != steps[row].digests[group.env]
        for row in range(known)
    )


@pytest.fixture(scope="module")
def killed(tmp_path_factory):
    """``KILL_TRIALS`` workers killed one after another, all writing into one store."""
    store = tmp_path_factory.mktemp("kills") / "frames.zarr"
    return store, [kill_worker(store, rank) for rank in range(KILL_TRIALS)]


@pytest.fixture(scope="module")
def rendered(killed, tmp_path_factory):
    """``python -m render`` over the store the killed workers left: (result, frames per MP4)."""
    store, _ = killed
    out = tmp_path_factory.mktemp("videos")
    done = python_m("render", store, out)
    frames = {p.stem.split("video_", 1)[1]: decoded_frames(p) for p in out.glob("*.mp4")}
    return done, frames


@pytest.mark.parametrize("rank", range(KILL_TRIALS))
def test_sigkill_of_the_rollout_at_a_random_moment_loses_no_appended_row(
    killed, rendered, rank, observe
):
    store, workers = killed
    worker = workers[rank]
    _, mp4_frames = rendered
    groups = [open_store(store).group(group_name(rank, rank, e)) for e in range(NUM_ENVS)]
    stored = min(g.rows for g in groups)
    committed = worker.steps[-1].committed
    wrong = sum(digest_mismatches(g, worker.steps) for g in groups)
    lost = max(0, worker.appended - stored)
    videos = [mp4_frames.get(g.name) for g in groups]
    observe(
        1, f"SIGKILL trial {rank}",
        f"killed {worker.delay:.2f} s after the first commit: {worker.appended} rows appended, "
        f"{stored} stored and bit-exact, status {groups[0].status}, MP4 frames {videos}",
        kill_trial=True, killed_after_s=worker.delay, appended=worker.appended,
        committed_reported=committed, stored=stored, lost_rows=lost, envs=NUM_ENVS,
        bound_rows=0, mp4_frames=videos, flush_interval_s=FLUSH_INTERVAL,
        silent_losses=lost * NUM_ENVS + wrong,
    )  # fmt: skip
    assert worker.exit_status == -signal.SIGKILL
    assert all(g.status == "interrupted" for g in groups)  # the writer process finished
    assert len({g.rows for g in groups}) == 1  # one commit covers every env
    assert worker.appended <= stored <= worker.appended + 1  # +1: appended, not yet printed
    assert wrong == 0
    assert videos == [g.rows for g in groups]  # a playable MP4 with every committed row


def test_render_and_check_after_the_kills(killed, rendered, observe):
    store, workers = killed
    done, mp4_frames = rendered
    health = check_store(store)
    observe(
        1, f"python -m render and collect.check after {len(workers)} SIGKILLs",
        f"render exit {done.returncode}, {len(mp4_frames)} MP4s for "
        f"{len(health.groups)} groups; check exit {health.exit_status}, "
        f"{len(health.damaged)} damaged",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert len(mp4_frames) == len(health.groups) == NUM_ENVS * len(workers)
    # every row intact, but the run did not finish: check says so (exit 1, not damaged)
    assert health.exit_status == 1 and not health.damaged, health.report()
    assert {g.state for g in health.groups} == {"unfinished"}, health.report()


def test_sigkill_before_the_first_commit_still_keeps_every_appended_row(tmp_path, observe):
    store = tmp_path / "frames.zarr"
    child = run_worker(store, 0, "--flush-interval", 60)
    child.wait_until(lambda c: len(c.steps) >= 3)  # appended, nothing written yet
    child.stop(signal.SIGKILL)
    appended = child.steps[-1].rows
    wait_for_writer(store, 0)
    groups = open_store(store).groups()
    wrong = sum(digest_mismatches(g, child.steps) for g in groups)
    done = python_m("render", store, tmp_path / "out")
    observe(
        1, "SIGKILL of the rollout before the first commit",
        f"{appended} rows appended; groups read with {[g.rows for g in groups]} rows, status "
        f"{groups[0].status}, {wrong} frames differ; render exit {done.returncode}",
        silent_losses=wrong + sum(max(0, appended - g.rows) for g in groups),
    )  # fmt: skip
    assert all(appended <= g.rows <= appended + 1 for g in groups) and wrong == 0
    assert {g.status for g in groups} == {"interrupted"}
    health = check_store(store)
    assert health.exit_status == 1 and {g.state for g in health.groups} == {"unfinished"}
    assert done.returncode == 0, done.stdout + done.stderr


def test_sigkill_of_the_writer_process_is_one_clear_error_and_keeps_committed_rows(
    tmp_path, observe
):
    store = tmp_path / "frames.zarr"
    writer = FrameWriter(store, num_envs=2, chunk_frames=8, flush_interval=60)
    for step in range(20):
        writer.append(pattern_batch(0, 2, step))
    writer.flush()
    committed = writer.committed_rows
    os.kill(writer.writer_pid, signal.SIGKILL)
    with pytest.raises(WriterError) as on_append:
        for step in range(20, 200):  # the death is noticed at the next append
            writer.append(pattern_batch(0, 2, step))
            time.sleep(0.01)
    with pytest.raises(WriterError) as on_close:
        writer.close()
    groups = open_store(store).groups()
    message = str(on_append.value)
    observe(
        1, "SIGKILL of the writer process",
        f"append raised {one_line(message)!r}; close raised WriterError too; groups read with "
        f"{[g.rows for g in groups]} rows ({committed} committed before the kill)",
        silent_losses=sum(max(0, committed - g.rows) for g in groups),
    )  # fmt: skip
    assert f"writer process (pid {writer.writer_pid}) died without a word (killed)" in message
    assert f"rows up to {committed} are committed" in message
    assert len(on_append.value.args) == 1 and "\n" not in message
    assert "died without a word" in str(on_close.value)
    for group in groups:
        assert group.rows == committed == 20
        assert_group_matches(group, rank=0, env=group.env)


@pytest.mark.parametrize("trial", range(3))
def test_sigterm_at_a_random_moment_loses_nothing(tmp_path, trial, observe):
    store = tmp_path / "frames.zarr"
    child = run_worker(store, trial, "--flush-interval", 60)  # only SIGTERM's flush writes
    child.wait_until(lambda c: len(c.steps) >= 5)
    time.sleep(random.Random(trial).uniform(0.0, 1.0))
    status = child.stop(signal.SIGTERM)
    steps = child.steps
    groups = open_store(store).groups()
    wrong = sum(digest_mismatches(g, steps) for g in groups)
    observe(
        1, f"SIGTERM trial {trial}",
        f"exit {status}; {steps[-1].rows} rows appended, {[g.rows for g in groups]} stored, "
        f"status {groups[0].status}, {wrong} frames differ",
        silent_losses=wrong + sum(max(0, steps[-1].rows - g.rows) for g in groups),
    )  # fmt: skip
    assert status == 128 + signal.SIGTERM, child.stderr
    for group in groups:
        assert steps[-1].rows <= group.rows <= steps[-1].rows + 1
        assert group.status == "interrupted"  # SIGTERM left the with block early
    assert wrong == 0


def test_exception_inside_the_env_surfaces_and_keeps_the_recorded_rows(tmp_path, observe):
    store = tmp_path / "frames.zarr"
    child = run_worker(store, 0, "--fail-at", 137, "--flush-interval", 60)
    status = child.finish()
    last = child.stderr.strip().splitlines()[-1]
    groups = open_store(store).groups()
    wrong = sum(digest_mismatches(g, child.steps) for g in groups)
    observe(
        1, "exception raised inside env.step at step 137",
        f"exit {status}, last stderr line {last!r}; rows stored {[g.rows for g in groups]} "
        f"(136 appended), status {groups[0].status}",
        silent_losses=wrong + sum(max(0, 136 - g.rows) for g in groups),
    )  # fmt: skip
    assert status == 1
    assert last == "RuntimeError: injected env failure at step 137"
    assert [g.rows for g in groups] == [136] * NUM_ENVS and wrong == 0
