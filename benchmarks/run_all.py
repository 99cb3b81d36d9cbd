"""Run every benchmark in benchmarks/ and write benchmarks/RESULTS.md.

Each script runs in its own process with the options of the chosen mode; its stdout (the
tables) goes into RESULTS.md under the exact command, its stderr (progress) to the console.
RESULTS.md also records the machine (cores, CPU, memory, library and ffmpeg versions) and the
load average before and after each script, since other jobs may share the cores.

Modes: the default runs ``bench_interleaved.py`` (~20 min on 2 cores) and ``bench_rollout.py``
(~20 min) at the sizes the goals name, 480 and 960, both llvmpipe settings, and the other
scripts with shorter options (all sizes where cheap); ``--full`` runs every script with
its own defaults; ``--quick`` is a smoke test of everything (~3 min).

The "Reading" section of RESULTS.md is written by hand after looking at the tables; it is
kept (between its two HTML comment markers) when the file is regenerated, with a note that it
was written for an earlier run.

    python benchmarks/run_all.py                    # writes benchmarks/RESULTS.md
    python benchmarks/run_all.py --quick --out /tmp/RESULTS.md
    python benchmarks/run_all.py --wait-load 1.0    # first wait (up to 30 min) for a quiet machine
"""

from __future__ import annotations

import argparse
import datetime
import os
import subprocess
import sys
import time
from pathlib import Path

from common import load_average, machine_facts, markdown_table

HERE = Path(__file__).resolve().parent
READING_START, READING_END = "<!-- reading:start -->", "<!-- reading:end -->"
STALE_NOTE = "*(Written for an earlier run: check it against the tables below.)*"
NO_READING = "(to be written after looking at the tables)"

# script -> options, per mode; the order is the order of RESULTS.md.
MODES: dict[str, dict[str, list[str]]] = {
    "default": {
        "bench_interleaved.py": ["--sizes", "480", "960"],
        "bench_rollout.py": ["--sizes", "480", "960"],
        "bench_hotpath.py": ["--steps", "60"],
        "bench_codecs.py": ["--sizes", "480", "--frames", "48", "--repeats", "1"],
        "bench_render.py": ["--sizes", "480", "--frames", "120", "--repeats", "1"],
        "bench_objectstore.py": [],
    },
    "full": {
        "bench_interleaved.py": [],
        "bench_rollout.py": [],
        "bench_hotpath.py": [],
        "bench_codecs.py": [],
        "bench_render.py": [],
        "bench_objectstore.py": [],
    },
    "quick": {
        "bench_interleaved.py": [
            "--sizes", "128", "--lp-threads", "1", "--pairs", "2", "--chunks", "1",
            "--run-steps", "64",
        ],
        "bench_rollout.py": ["--quick"],
        "bench_hotpath.py": ["--sizes", "128", "--steps", "40"],
        "bench_codecs.py": ["--sizes", "256", "--frames", "16", "--repeats", "1"],
        "bench_render.py": [
            "--sizes", "128", "--frames", "30", "--repeats", "1", "--group-size", "128",
        ],
        "bench_objectstore.py": ["--sizes", "64", "--steps", "20", "--repeats", "1"],
    },
}  # fmt: skip


def command(script: str, options: list[str]) -> list[str]:
    return [sys.executable, str(HERE / script), *options]


def shown(script: str, options: list[str]) -> str:
    """The command as a reader types it from the repository root."""
    return " ".join(["python", f"benchmarks/{script}", *options])


def wait_for_load(limit: float, timeout: float = 1800.0) -> None:
    """Wait until the 1-minute load average is under ``limit`` (or ``timeout`` seconds pass)."""
    deadline = time.monotonic() + timeout
    while os.getloadavg()[0] >= limit and time.monotonic() < deadline:
        print(f"load average {load_average()}: waiting for < {limit}", file=sys.stderr)
        time.sleep(30)


def run_script(script: str, options: list[str]) -> dict[str, str]:
    """Run one benchmark script; its stdout is kept, its stderr passes through."""
    print(f"== {shown(script, options)}", file=sys.stderr)
    before, started = load_average(), time.perf_counter()
    proc = subprocess.run(
        command(script, options), stdout=subprocess.PIPE, text=True, check=False, cwd=HERE.parent
    )
    seconds = time.perf_counter() - started
    print(proc.stdout, file=sys.stderr)
    if proc.returncode != 0:
        raise SystemExit(f"{script} failed with exit status {proc.returncode}")
    return {
        "script": script,
        "command": shown(script, options),
        "output": proc.stdout,
        "seconds": f"{seconds:.0f}",
        "load": f"{before} before, {load_average()} after",
    }


def as_markdown(output: str) -> str:
    """A script's stdout for Markdown: tables and one-line notes as they are, the rest fenced.

    A leading ``# `` title line becomes plain text (no headings inside a section).
    """
    blocks = []
    for block in output.strip().split("\n\n"):
        lines = block.splitlines()
        if len(lines) > 1 and lines[0].startswith("# "):
            blocks.append(lines.pop(0)[2:])
        elif lines and lines[0].startswith("# "):
            lines[0] = lines[0][2:]
        if all(line.startswith("|") for line in lines) or len(lines) == 1:
            blocks.append("\n".join(lines))
        else:
            blocks.append("```\n" + "\n".join(lines) + "\n```")
    return "\n\n".join(blocks)


def kept_reading(path: Path) -> str:
    """The hand-written reading of an existing RESULTS.md, marked as written for another run."""
    text = path.read_text() if path.exists() else ""
    if READING_START not in text or READING_END not in text:
        return NO_READING
    reading = text.split(READING_START, 1)[1].split(READING_END, 1)[0]
    reading = reading.replace(STALE_NOTE, "").strip()
    return reading if reading == NO_READING else f"{STALE_NOTE}\n\n{reading}"


def results_markdown(mode: str, runs: list[dict[str, str]], reading: str, total: float) -> str:
    """The whole RESULTS.md."""
    facts = markdown_table(["machine", ""], list(machine_facts().items()))
    commands = "\n".join(f"    {run['command']}" for run in runs)
    sections = [
        f"## {run['script']}\n\n`{run['command']}` ({run['seconds']} s; load average "
        f"{run['load']})\n\n{as_markdown(run['output'])}"
        for run in runs
    ]
    today = datetime.date.today().isoformat()
    return "\n\n".join([
        "# Benchmark results",
        f"Written by `python benchmarks/run_all.py{'' if mode == 'default' else ' --' + mode}` "
        f"on {today} in {total / 60:.0f} min. Every number below comes from that run. "
        "The commands, from the repository root (venv active, `MUJOCO_GL=egl`):",
        commands,
        facts,
        f"## Reading\n\n{READING_START}\n{reading}\n{READING_END}",
        *sections,
    ]) + "\n"  # fmt: skip


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--quick", action="store_true", help="smoke test of every script")
    group.add_argument("--full", action="store_true", help="every script with its defaults")
    parser.add_argument("--out", type=Path, default=HERE / "RESULTS.md")
    parser.add_argument("--only", nargs="+", help="run only these scripts (e.g. bench_rollout)")
    parser.add_argument(
        "--wait-load", type=float, help="first wait for the 1-minute load average to drop"
    )
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    os.environ.setdefault("MUJOCO_GL", "egl")
    mode = "quick" if args.quick else "full" if args.full else "default"
    scripts = MODES[mode]
    if args.only:
        wanted = {name.removesuffix(".py") + ".py" for name in args.only}
        scripts = {s: o for s, o in scripts.items() if s in wanted}
    if args.wait_load is not None:
        wait_for_load(args.wait_load)
    started = time.perf_counter()
    runs = [run_script(script, options) for script, options in scripts.items()]
    text = results_markdown(mode, runs, kept_reading(args.out), time.perf_counter() - started)
    args.out.write_text(text)
    print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
