"""Shared fixtures: paths to helper scripts and a subprocess environment that finds them."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
sys.path.insert(0, str(TESTS))
os.environ.setdefault("MUJOCO_GL", "egl")


@pytest.fixture
def child_env() -> dict[str, str]:
    """Environment for test subprocesses: can import the tests' helper modules."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(TESTS), env.get("PYTHONPATH", "")])
    return env
