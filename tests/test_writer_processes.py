"""The writer across processes: SIGKILL, SIGTERM, interpreter exit, concurrent workers.

A SIGKILL of the rollout process loses nothing: its writer process commits every row whose
``append`` had returned and marks the groups ``interrupted``."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from framegen import assert_group_matches, wait_until_finished

from collect import open_store

CHILD = str(Path(__file__).with_name("writer_child.py"))
FLUSH_INTERVAL = 0.25


def start_writer(store, rank, child_env, *args) -> subprocess.Popen:
    cmd = [sys.executable, CHILD, str(store), str(rank), *map(str, args)]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=child_env)


def read_progress(proc: subprocess.Popen, until_rows: int | None = None) -> list[tuple[int, float]]:
    """``(rows appended, time)`` lines from the child, until ``until_rows`` or its exit."""
    progress = []
    for line in proc.stdout:
        head, stamp = line.split()[:2]
        if head.isdigit():
            progress.append((int(head), float(stamp)))
            if until_rows is not None and int(head) >= until_rows:
                break
        elif head == "waiting":
            break
    return progress


@pytest.mark.parametrize("seed", range(4))
def test_sigkill_of_the_rollout_at_a_random_moment_loses_nothing(tmp_path, child_env, seed):
    rng = random.Random(seed)
    store = tmp_path / "s.zarr"
    kill_after = rng.randint(5, 140)
    proc = start_writer(
        store, 3, child_env, "--rows", 400, "--sleep", 0.01, "--flush-interval", FLUSH_INTERVAL
    )
    progress = read_progress(proc, until_rows=kill_after)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    appended, _ = progress[-1]
    names = ["rank3_gpu3_env0", "rank3_gpu3_env1"]
    wait_until_finished(store, names)
    groups = open_store(store).groups()
    assert [g.name for g in groups] == names
    for group in groups:  # +1: appended, not yet printed when the kill landed
        assert appended <= group.rows <= appended + 1, (group.rows, appended)
        assert group.status == "interrupted"
        assert_group_matches(group, rank=3, env=group.env)


def test_sigterm_flushes_everything_and_marks_the_run_interrupted(tmp_path, child_env):
    store = tmp_path / "s.zarr"
    proc = start_writer(store, 0, child_env, "--rows", 21, "--end", "wait", "--flush-interval", 60)
    progress = read_progress(proc)
    assert progress[-1][0] == 21
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 128 + signal.SIGTERM
    for group in open_store(store).groups():
        assert group.rows == 21 and group.status == "interrupted"
        assert_group_matches(group, rank=0, env=group.env)


def test_sigterm_inside_a_ctypes_call_still_ends_as_sigterm(tmp_path, child_env):
    """ctypes turns the SystemExit raised in an argument conversion into ArgumentError:
    the writer's with block still records "interrupted" and the exit status is SIGTERM's."""
    store = tmp_path / "s.zarr"
    proc = start_writer(store, 0, child_env, "--rows", 9, "--end", "sigterm-in-ctypes")
    read_progress(proc)
    assert proc.wait(timeout=30) == 128 + signal.SIGTERM
    for group in open_store(store).groups():
        assert group.rows == 9 and group.status == "interrupted"
        assert_group_matches(group, rank=0, env=group.env)


@pytest.mark.parametrize(
    ("end", "exit_status", "status"),
    [
        ("no-close", 0, "complete"),
        ("raise", 1, "failed"),
        ("interrupt", -signal.SIGINT, "interrupted"),
    ],
)
def test_a_writer_left_open_at_exit_keeps_every_row_and_records_how_the_run_ended(
    tmp_path, child_env, end, exit_status, status
):
    store = tmp_path / "s.zarr"
    proc = start_writer(store, 1, child_env, "--rows", 13, "--end", end, "--flush-interval", 60)
    read_progress(proc)
    assert proc.wait(timeout=30) == exit_status
    for group in open_store(store).groups():
        assert group.rows == 13 and group.status == status
        assert_group_matches(group, rank=1, env=group.env)


def test_a_collect_module_in_the_working_directory_does_not_replace_the_writers(
    tmp_path, child_env
):
    """The writer process imports the package the rollout side imported, whatever the
    working directory holds (``python -c`` would put it first on sys.path)."""
    shadow = tmp_path / "cwd" / "collect"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('the wrong collect package')\n")
    store = tmp_path / "s.zarr"
    cmd = [sys.executable, CHILD, str(store), "0", "--rows", "9"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=child_env,
                            cwd=shadow.parent)  # fmt: skip
    read_progress(proc)
    assert proc.wait(timeout=60) == 0
    assert [g.rows for g in open_store(store).groups()] == [9, 9]


def write_with_four_processes(store, child_env, rows: int, timeout: float = 60) -> list:
    """Four writer processes of 2 envs each write ``rows`` rows into ``store`` (a path or a
    URL) at once; the 8 groups, every frame checked against what was written."""
    procs = [start_writer(store, rank, child_env, "--rows", rows) for rank in range(4)]
    for proc in procs:
        read_progress(proc)
        assert proc.wait(timeout=timeout) == 0
    groups = open_store(store).groups()
    assert len(groups) == 8
    for group in groups:
        assert (group.rows, group.status) == (rows, "complete")
        assert_group_matches(group, rank=group.rank, env=group.env)
    return groups


def test_four_processes_write_one_store_at_once(tmp_path, child_env):
    write_with_four_processes(tmp_path / "s.zarr", child_env, rows=40)
