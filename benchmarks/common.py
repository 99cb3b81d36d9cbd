"""Helpers shared by the benchmark scripts: CPU and memory accounting, machine facts, tables.

The scripts are run as ``python benchmarks/<script>.py``, so ``benchmarks/`` is on
``sys.path`` and they import this module as ``common``.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

# Versions reported by machine_facts().
PACKAGES = (
    "numpy", "zarr", "numcodecs", "mujoco", "imageio-ffmpeg", "imagecodecs", "gymnasium",
    "moviepy", "dask",
)  # fmt: skip

__all__ = [
    "PeakTreeRss",
    "answer_as_child",
    "children_cpu",
    "cpu_seconds",
    "dir_bytes",
    "load_average",
    "machine_facts",
    "markdown_table",
    "run_child_job",
]


def children_cpu() -> float:
    """CPU seconds (user + system) of this process's waited-for children (e.g. ffmpeg)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def cpu_seconds() -> float:
    """CPU seconds of this process (all threads) plus its waited-for children."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime + children_cpu()


def run_child_job(script: str, job: dict[str, Any], name: str) -> dict[str, Any]:
    """Run ``python script --child JOB`` with llvmpipe on ``job["lp_threads"]`` threads
    (``None``: Mesa's default), remove ``job["out"]`` after it, and return the JSON object
    it printed last; a failure raises naming ``name`` with the end of its stderr."""
    env = dict(os.environ)
    if job["lp_threads"] is not None:  # Mesa's llvmpipe: threads rendering the cameras
        env["LP_NUM_THREADS"] = str(job["lp_threads"])
    cmd = [sys.executable, script, "--child", json.dumps(job)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env)
    shutil.rmtree(job["out"], ignore_errors=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{name} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def answer_as_child(job: str | None, run: Callable[[dict[str, Any]], dict[str, Any]]) -> bool:
    """The child side of :func:`run_child_job`: when this process was given a ``job`` (the
    ``--child`` JSON), run it and print its result as JSON; whether it was a child."""
    os.environ.setdefault("MUJOCO_GL", "egl")
    if job is None:
        return False
    print(json.dumps(run(json.loads(job))))
    return True


def dir_bytes(path: Path) -> int:
    """Bytes of every file under ``path`` (0 if it does not exist)."""
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file())


class PeakTreeRss:
    """Peak memory of this process, its live children and tracked processes.

    ``ru_maxrss`` covers this process exactly but not the sum of its children (for children it
    is the largest one's peak), and encoders such as ffmpeg run as children; evalframes' writer
    process is not a child at all (it is detached), so it is tracked by pid (:meth:`track`).
    :meth:`sample` adds up the proportional set size (PSS: shared pages, such as the frame ring
    that the rollout and its writer both map, counted once) of all of them; with an
    ``interval`` a thread samples every ``interval`` seconds, without one only the caller does.
    ``peak_bytes`` is the largest sum seen, and never less than this process's own exact peak.

    A sample is not free: smaps walks every mapped page (the ring's too), ~8 ms per process on
    the benchmark VM, on a thread of the measured process.
    """

    def __init__(self, interval: float | None = 0.2) -> None:
        import psutil

        self._process = psutil.Process()
        self._tracked: list[psutil.Process] = []
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample_every, name="peak-rss", daemon=True)
        self.peak_bytes = 0

    def __enter__(self) -> PeakTreeRss:
        if self._interval is not None:
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        self.peak_bytes = max(self.peak_bytes, self_peak_rss_bytes())

    def track(self, pid: int) -> None:
        """Count process ``pid`` too (e.g. ``FrameWriter.writer_pid``) while it lives."""
        import psutil

        with contextlib.suppress(psutil.Error):
            self._tracked.append(psutil.Process(pid))

    def sample(self) -> None:
        """Add up the PSS of every process counted now, and keep it if it is the peak."""
        import psutil

        total = 0
        tree = [self._process, *self._process.children(recursive=True), *self._tracked]
        for proc in tree:
            with contextlib.suppress(psutil.Error):  # a process that just exited
                total += proc.memory_full_info().pss
        self.peak_bytes = max(self.peak_bytes, total)

    def _sample_every(self) -> None:
        assert self._interval is not None
        while not self._stop.wait(self._interval):
            self.sample()


def self_peak_rss_bytes() -> int:
    """This process's exact peak resident memory (``ru_maxrss`` is in KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def load_average() -> str:
    """The 1, 5 and 15 minute load averages, e.g. ``"0.52, 0.80, 1.10"``."""
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory_gib() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / 2**20:.1f} GiB"
    except OSError:
        pass
    return "unknown"


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def _ffmpeg_version() -> str:
    import imageio_ffmpeg

    exe = imageio_ffmpeg.get_ffmpeg_exe()
    out = subprocess.run([exe, "-version"], capture_output=True, text=True, check=False).stdout
    first = out.splitlines()[0] if out else "unknown"
    return f"{first.split(' Copyright')[0]} ({'bundled' if 'imageio' in exe else exe})"


def machine_facts() -> dict[str, str]:
    """What a reader needs to compare numbers: cores, CPU, memory, OS, library versions."""
    facts = {
        "cores": str(os.cpu_count()),
        "CPU": _cpu_model(),
        "memory": _memory_gib(),
        "OS": platform.platform(),
        "python": sys.version.split()[0],
        "ffmpeg": _ffmpeg_version(),
        "MUJOCO_GL": os.environ.get("MUJOCO_GL", "<unset>"),
        "GPU": "none" if shutil.which("nvidia-smi") is None else "nvidia-smi present",
    }
    for package in PACKAGES:
        facts[package] = _version(package)
    return facts


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A GitHub-flavoured Markdown table."""
    lines = ["| " + " | ".join(map(str, headers)) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(map(str, row)) + " |" for row in rows]
    return "\n".join(lines)
