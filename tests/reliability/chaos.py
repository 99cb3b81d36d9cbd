"""Tools of the reliability suite: child processes to kill, CLI runs, error-shape checks.

Small on purpose; the frame patterns, writer child and render helpers of the main test suite
(``framegen``, ``writer_child.py``, ``test_render_kill``) are reused, not copied.
"""

from __future__ import annotations

import collections
import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
TESTS = HERE.parent
REPO = TESTS.parent
ENV_WORKER = HERE / "env_worker.py"
WRITER_CHILD = TESTS / "writer_child.py"
PACKAGES = (REPO / "collect", REPO / "render")


def child_env() -> dict[str, str]:
    """Environment for children: finds the repo, the tests' helpers and this folder."""
    env = dict(os.environ, MUJOCO_GL=os.environ.get("MUJOCO_GL", "egl"))
    env["PYTHONPATH"] = os.pathsep.join(
        [str(REPO), str(TESTS), str(HERE), env.get("PYTHONPATH", "")]
    )
    return env


@dataclass(frozen=True)
class Step:
    """One progress line of ``env_worker.py``."""

    rows: int
    time: float
    committed: int
    queue_high_water: int
    digests: tuple[int, ...]

    @classmethod
    def parse(cls, line: str) -> Step | None:
        fields = line.split()
        if len(fields) < 4 or not fields[0].isdigit():
            return None
        rows, stamp, committed, high = fields[:4]
        return cls(int(rows), float(stamp), int(committed), int(high), tuple(map(int, fields[4:])))


class Child:
    """A child process whose stdout lines (and stderr tail) are collected by threads.

    The parent can wait for a condition on the lines so far, then signal the child at a
    moment of its choosing, and still read every line the child printed before it died.
    """

    def __init__(self, cmd: Sequence[str], **popen: Any) -> None:
        self.cmd = [str(c) for c in cmd]
        self.proc = subprocess.Popen(
            self.cmd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=child_env(),
            **popen,
        )
        self.lines: list[str] = []
        self._stderr: collections.deque[str] = collections.deque(maxlen=40)
        self._threads = [
            threading.Thread(target=self._drain, args=(self.proc.stdout, self.lines.append)),
            threading.Thread(target=self._drain, args=(self.proc.stderr, self._stderr.append)),
        ]
        for thread in self._threads:
            thread.start()

    @staticmethod
    def _drain(pipe: Any, keep: Callable[[str], None]) -> None:
        with pipe:
            for line in pipe:
                keep(line.rstrip("\n"))

    @property
    def steps(self) -> list[Step]:
        return [s for s in map(Step.parse, list(self.lines)) if s is not None]

    @property
    def stderr(self) -> str:
        return "\n".join(self._stderr)

    def wait_until(self, condition: Callable[[Child], bool], timeout: float = 60.0) -> None:
        """Poll until ``condition(self)``; AssertionError if the child exits or time runs out."""
        deadline = time.monotonic() + timeout
        while not condition(self):
            if self.proc.poll() is not None:
                raise AssertionError(f"child exited ({self.proc.returncode}): {self.stderr}")
            if time.monotonic() > deadline:
                self.stop(signal.SIGKILL)
                raise AssertionError(f"child did not get there in {timeout:g} s: {self.stderr}")
            time.sleep(0.005)

    def stop(self, sig: int, timeout: float = 60.0) -> int:
        """Send ``sig``, wait for the exit and for the pipes to drain; the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.finish(timeout)

    def finish(self, timeout: float = 60.0) -> int:
        """Wait for the child to exit by itself (killed after ``timeout``); the exit status."""
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for thread in self._threads:
            thread.join(timeout=10)
        return self.proc.returncode


def python_m(module: str, *args: Any, timeout: float = 300) -> subprocess.CompletedProcess:
    """``python -m module args...`` to completion, output captured as text."""
    return subprocess.run(
        [sys.executable, "-m", module, *map(str, args)],
        capture_output=True,
        text=True,
        env=child_env(),
        timeout=timeout,
    )


def one_line(text: str) -> str:
    """The text if it is one line without a traceback, else AssertionError showing it."""
    text = text.strip()
    assert text.count("\n") == 0 and "Traceback" not in text, f"not one line:\n{text}"
    return text


def raised_in_our_code(error: BaseException) -> str:
    """``file:line`` where ``error`` was raised, asserted to be in ``collect``/``render``.

    A clear error is raised by evalframes with a message for people, not by numpy, zarr or
    ffmpeg from deep inside with theirs.
    """
    frame = traceback.extract_tb(error.__traceback__)[-1]
    where = Path(frame.filename).resolve()
    assert any(where.is_relative_to(p) for p in PACKAGES), f"raised in {where}: {error!r}"
    return f"{where.relative_to(REPO)}:{frame.lineno}"


@contextlib.contextmanager
def tmpfs(path: Path, size: str = "1m", *, read_only: bool = False) -> Iterator[Path]:
    """A tmpfs of ``size`` mounted at ``path`` for the block; skips the test where it cannot
    be mounted (not root, no ``mount``)."""
    path.mkdir()
    options = f"size={size}" + (",ro" if read_only else "")
    mount = ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)]
    try:
        done = subprocess.run(mount, capture_output=True, text=True)
    except OSError as e:
        done = subprocess.CompletedProcess(mount, 1, "", str(e))
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip()})")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


@contextlib.contextmanager
def unwritable_dir(path: Path) -> Iterator[Path]:
    """A folder nobody may write into: mode 0500, or a read-only mount for root (whom
    permissions do not stop)."""
    if os.geteuid() == 0:
        with tmpfs(path, read_only=True):
            yield path
        return
    path.mkdir()
    path.chmod(0o500)
    try:
        yield path
    finally:
        path.chmod(0o700)
