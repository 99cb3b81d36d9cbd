"""Shared fixtures: a subprocess environment that finds the tests' helper modules, and a real
Dask cluster (a scheduler and two worker processes on loopback)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from distributed import Client

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
sys.path.insert(0, str(TESTS))
os.environ.setdefault("MUJOCO_GL", "egl")


@pytest.fixture
def child_env() -> dict[str, str]:
    """Environment for test subprocesses: can import the tests' helper modules."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(TESTS), env.get("PYTHONPATH")) if p)
    return env


def _start_dask(args: list[str], log: Path) -> subprocess.Popen:
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p),
    )
    with log.open("w") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "dask", *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,  # its own process group: the nanny's worker goes with it
        )


def _stop_all(procs: list[subprocess.Popen]) -> None:
    for proc in reversed(procs):
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
    for proc in reversed(procs):
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@pytest.fixture
def scheduler(tmp_path):
    """Address of a loopback scheduler with two single-thread workers (killed afterwards)."""
    scheduler_file = tmp_path / "scheduler.json"
    common = ["--scheduler-file", str(scheduler_file), "--no-dashboard"]
    procs = []
    try:
        listen = ["--host", "127.0.0.1", "--port", "0"]
        procs.append(_start_dask(["scheduler", *listen, *common], tmp_path / "s.log"))
        deadline = time.monotonic() + 60
        while not scheduler_file.exists():
            assert time.monotonic() < deadline, (tmp_path / "s.log").read_text()
            time.sleep(0.1)
        for i in range(2):
            worker = ["worker", "--nthreads", "1", "--host", "127.0.0.1", "--name", f"w{i}"]
            worker += ["--local-directory", str(tmp_path / f"w{i}")]
            procs.append(_start_dask([*worker, *common], tmp_path / f"w{i}.log"))
        address = json.loads(scheduler_file.read_text())["address"]
        with Client(address, timeout="30s") as client:
            client.wait_for_workers(2, timeout=60)
        yield address
    finally:
        _stop_all(procs)
