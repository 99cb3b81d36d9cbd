"""How fast the renderer turns a frame store into videos, next to bare ffmpeg, in one run.

Four measurements, each a median over ``--repeats`` runs taken alternately (so machine load
hits both sides alike), after a warm-up run of each but in part 4:

1. **one group** at each ``--sizes`` (square frames, one camera): frames per second of
   ``render_store`` (what ``python -m render`` runs, minus interpreter start-up) against bare
   ffmpeg encoding the same frames from memory with the same command (same codec, crf,
   preset, yuv420p, faststart). Goal: >= 90% of bare ffmpeg.
2. **four groups** at ``--group-size``: aggregate fps of the render (default threaded Dask
   scheduler) against the machine's encoding limit: four bare ffmpeg processes encoding the
   same frames from memory in parallel. Goal: >= 85%.
3. **1 -> 2 Dask workers** (local cluster), one x264 thread per worker (``encoder_threads=1``),
   on the same four groups; next to it, the same for bare ffmpeg (one vs two ``-threads 1``
   encodes at a time), which is what the machine allows. Goal: >= 1.7x.
4. **one long group** (``--long-frames`` frames at ``--long-size``): encoded whole vs cut into
   segments encoded in parallel and joined (``segment_frames``), on 2 Dask workers with one
   x264 thread each (goal: >= 1.6x, identical frame count), and with ffmpeg's default threads
   on the threaded scheduler, automatic cut (goal: not slower than whole, >= 1.0x). Next to
   them, what the machine allows at that moment: bare x264 on ffmpeg's test pattern, one
   process for all the frames vs two at once for half each. Frames are generated and written
   step by step (a 2000-frame 480x480 group is 1.4 GB raw); no warm-up run: a 32-frame
   render pays the process's one-time costs first.

Frames are real MuJoCo tabletop frames when ``collect.eval.envs`` and MuJoCo are available, else
smooth synthetic scenes with sensor noise (``--content``).

    python benchmarks/bench_render.py                                   # 256 480 960, 3 repeats
    python benchmarks/bench_render.py --sizes 256 --frames 60 --repeats 1 --group-size 256
    python benchmarks/bench_render.py --parts long --repeats 1            # part 4 alone
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import os
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import imageio_ffmpeg
import numpy as np

from collect import FrameWriter
from render import RenderOptions, render_store
from render.encode import ffmpeg_command, start_ffmpeg
from render.mp4 import count_frames
from render.report import format_table

DEFAULTS = RenderOptions()


# ----------------------------------------------------------------------------- frames


def synthetic_steps(size: int, envs: int, count: int) -> Iterator[np.ndarray]:
    """``count`` steps of ``(envs, size, size, 3)`` smooth moving scenes with sensor noise."""
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:size, 0:size] / size
    for t in range(count):
        out = np.empty((envs, size, size, 3), np.uint8)
        for e in range(envs):
            phase = t * 0.04 + e * 1.3
            blobs = sum(
                np.exp(
                    -(
                        (x - 0.5 - 0.3 * np.sin(phase + k)) ** 2
                        + (y - 0.5 - 0.3 * np.cos(1.7 * phase + k)) ** 2
                    )
                    / 0.01
                )
                for k in range(3)
            )
            base = np.stack(
                [0.5 + 0.3 * np.sin(6 * x + phase), 0.4 + 0.3 * y, 0.3 + 0.2 * x * y], -1
            )
            frame = base + 0.4 * blobs[..., None] * np.array([0.9, 0.3, 0.2])
            frame = frame * 255 + rng.normal(0, 2, frame.shape)
            out[e] = np.clip(frame, 0, 255).astype(np.uint8)
        yield out


def mujoco_steps(size: int, envs: int, count: int) -> Iterator[np.ndarray]:
    """``count`` steps of ``(envs, size, size, 3)`` head-camera frames of the MuJoCo tabletop."""
    from collect.adapters import batches_to_numpy, to_camera_batches
    from collect.eval.envs import make_env, make_policy

    env = make_env("mujoco_tabletop", envs, seed=0, image_size=size, tensor=False)
    try:
        policy = make_policy("scripted", env)
        obs = env.reset(seed=0)
        for _ in range(count):
            obs, *_ = env.step(policy(obs))
            yield batches_to_numpy(to_camera_batches(obs, envs))["zed"]
    finally:
        env.close()


def make_steps(content: str, size: int, envs: int, count: int) -> tuple[Iterator[np.ndarray], str]:
    """Steps of ``(envs, size, size, 3)`` frames of the requested content, and its kind."""
    if content in ("auto", "mujoco"):
        os.environ.setdefault("MUJOCO_GL", "egl")
        try:
            steps = mujoco_steps(size, envs, count)
            first = next(steps)  # starts the env: ImportError here without MuJoCo
            return itertools.chain([first], steps), "mujoco"
        except ImportError:
            if content == "mujoco":
                raise
    return synthetic_steps(size, envs, count), "synthetic"


def make_frames(content: str, size: int, envs: int, count: int) -> tuple[np.ndarray, str]:
    """``(envs, count, size, size, 3)`` frames in memory (for the bare ffmpeg encodes)."""
    steps, kind = make_steps(content, size, envs, count)
    return np.ascontiguousarray(np.stack(list(steps), axis=1)), kind


def write_store(path: Path, steps: Iterable[np.ndarray], fps: float) -> Path:
    """One group per env, camera ``zed``: the stored frames are exactly the steps' frames."""
    steps = iter(steps)
    first = next(steps)
    with FrameWriter(path, num_envs=first.shape[0], fps=fps) as writer:
        for frames in itertools.chain([first], steps):
            writer.append({"zed": frames})
    return path


# ----------------------------------------------------------------------------- timed runs


def bare_encode(videos: list[np.ndarray], out: Path, fps: float, threads: int | None) -> float:
    """Seconds for ffmpeg to encode each array of frames, all in parallel, from memory."""

    def encode(i: int, frames: np.ndarray) -> None:
        _, height, width, _ = frames.shape
        encoder = dataclasses.replace(DEFAULTS.encoder, threads=threads)
        cmd = ffmpeg_command(out / f"bare{i}.mp4", width, height, fps=fps, encoder=encoder)
        proc = start_ffmpeg(cmd)  # as the renderer starts it (same pipe); stderr: a few lines
        proc.stdin.write(memoryview(frames).cast("B"))
        proc.stdin.close()
        if proc.wait() != 0:
            raise RuntimeError(f"bare ffmpeg failed: {proc.stderr.read().decode()}")

    started = time.perf_counter()
    threads_ = [threading.Thread(target=encode, args=(i, v)) for i, v in enumerate(videos)]
    for t in threads_:
        t.start()
    for t in threads_:
        t.join()
    return time.perf_counter() - started


def render_once(store: Path, out: Path, **options) -> float:
    started = time.perf_counter()
    report = render_store(store, out, overwrite=True, progress=False, **options)
    seconds = time.perf_counter() - started
    if not report.ok:
        raise RuntimeError(report.summary())
    return seconds


def medians(repeats: int, *runs: Callable[[], float], warm_up: bool = True) -> list[float]:
    """Median seconds of each run, alternating them ``repeats`` times after one warm-up each.

    The warm-up pays what a process pays once, not per render (imports, ffmpeg's encoder
    probe, the page cache of the store), as for a long-lived caller like the eval runner.
    """
    for run in runs if warm_up else ():
        run()
    times: list[list[float]] = [[] for _ in runs]
    for _ in range(repeats):
        for i, run in enumerate(runs):
            times[i].append(run())
    return [statistics.median(t) for t in times]


# ----------------------------------------------------------------------------- the three parts


def row(
    case: str, size: int | str, content: str, frames: int, bare: float, rendered: float, goal: str
) -> list[str]:
    """A table row from the seconds bare ffmpeg and the render took for ``frames`` frames."""
    fps = f"{frames / bare:.1f}", f"{frames / rendered:.1f}"
    return [case, str(size), content, *fps, f"{bare / rendered:.0%}", goal]


def one_group(args: argparse.Namespace, work: Path, size: int) -> list[str]:
    frames, content = make_frames(args.content, size, 1, args.frames)
    store = write_store(work / f"one{size}.zarr", frames.swapaxes(0, 1), args.fps)
    bare, rendered = medians(
        args.repeats,
        lambda: bare_encode([frames[0]], work, args.fps, None),
        lambda: render_once(store, work / "out"),
    )
    return row("one group", size, content, args.frames, bare, rendered, ">= 90%")


def many_groups(args: argparse.Namespace, work: Path) -> list[list[str]]:
    """``--groups`` groups: render vs as many bare encodes in parallel; then 1 -> 2 workers."""
    size = args.group_size
    frames, content = make_frames(args.content, size, args.groups, args.frames)
    store = write_store(work / "groups.zarr", frames.swapaxes(0, 1), args.fps)
    total = frames.shape[0] * frames.shape[1]
    bare, rendered = medians(
        args.repeats,
        lambda: bare_encode(list(frames), work, args.fps, None),
        lambda: render_once(store, work / "out"),
    )
    one, two, bare_one, bare_two = medians(
        args.repeats,
        lambda: render_once(store, work / "out", workers=1, encoder_threads=1),
        lambda: render_once(store, work / "out", workers=2, encoder_threads=1),
        lambda: sum(bare_encode([f], work, args.fps, 1) for f in frames),
        lambda: sum(
            bare_encode(list(frames[i : i + 2]), work, args.fps, 1)
            for i in range(0, len(frames), 2)
        ),
    )
    speedups = ["", "", f"{bare_one / bare_two:.2f}x", f"{one / two:.2f}x", "", ">= 1.7x"]
    return [
        row(f"{args.groups} groups", size, content, total, bare, rendered, ">= 85%"),
        row("1 worker, x264 1 thread", size, content, total, bare_one, one, ""),
        row("2 workers, x264 1 thread", size, content, total, bare_two, two, ""),
        ["speed-up 1 -> 2 workers", *speedups],
    ]


def bare_split(size: int, count: int, fps: float, threads: int | None, parts: int) -> float:
    """Seconds for ``parts`` x264 processes at once to encode ``count`` frames between them.

    The input is ffmpeg's own test pattern (no pipe, no store): what the machine allows for
    one encode cut in ``parts``, next to the renderer's whole vs segmented (part 4).
    """
    cmd = [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-nostdin"]
    cmd += ["-f", "lavfi", "-i", f"testsrc2=size={size}x{size}:rate={fps}"]
    cmd += ["-frames:v", str(-(-count // parts)), "-c:v", DEFAULTS.codec, "-pix_fmt", "yuv420p"]
    cmd += ["-crf", str(DEFAULTS.crf), "-preset", str(DEFAULTS.preset)]
    cmd += ["-threads", str(threads)] if threads else []
    started = time.perf_counter()
    procs = [subprocess.Popen([*cmd, "-f", "null", "-"]) for _ in range(parts)]
    if any(proc.wait() != 0 for proc in procs):
        raise RuntimeError(f"bare ffmpeg failed: {' '.join(cmd)}")
    return time.perf_counter() - started


def long_group(args: argparse.Namespace, work: Path) -> list[list[str]]:
    """One long group, whole vs segmented: 2 workers x 1 x264 thread, then default threads."""
    size, count = args.long_size, args.long_frames
    steps, content = make_steps(args.content, size, 1, count)
    store = write_store(work / "long.zarr", steps, args.fps)
    render_once(store, work / "warm", groups="*", size=(32, 32))  # imports, encoder probe
    half = -(-count // 2)  # two segments: one per worker
    outputs = {name: work / name for name in ("whole1", "cut1", "whole", "cut")}
    whole1, cut1, whole, cut, bare1, bare_cut1, bare, bare_cut = medians(
        args.repeats,
        lambda: render_once(store, outputs["whole1"], workers=2, encoder_threads=1,
                            segment_frames=0),
        lambda: render_once(store, outputs["cut1"], workers=2, encoder_threads=1,
                            segment_frames=half),
        lambda: render_once(store, outputs["whole"], segment_frames=0),
        lambda: render_once(store, outputs["cut"]),  # automatic: cut for the 2 cores
        lambda: bare_split(size, count, args.fps, 1, 1),
        lambda: bare_split(size, count, args.fps, 1, 2),
        lambda: bare_split(size, count, args.fps, None, 1),
        lambda: bare_split(size, count, args.fps, None, 2),
        warm_up=False,
    )  # fmt: skip
    counts = {name: count_frames(next(path.glob("*.mp4"))) for name, path in outputs.items()}
    same = "yes" if set(counts.values()) == {count} else f"no: {counts}"

    def row(case: str, times: tuple[float, float, float, float], goal: str) -> list[str]:
        whole_s, cut_s, bare_whole, bare_cut = times
        fps = f"{count / whole_s:.1f}", f"{count / cut_s:.1f}"
        speedups = f"{whole_s / cut_s:.2f}x", f"{bare_whole / bare_cut:.2f}x"
        return [case, str(size), content, str(count), *fps, *speedups, same, goal]

    return [
        row("2 workers, x264 1 thread", (whole1, cut1, bare1, bare_cut1), ">= 1.6x"),
        row("threads, x264 default threads", (whole, cut, bare, bare_cut), ">= 1.0x"),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 480, 960])
    parser.add_argument("--frames", type=int, default=300, help="frames per group")
    parser.add_argument("--groups", type=int, default=4)
    parser.add_argument("--group-size", type=int, default=480)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--fps", type=float, default=30.0)
    parser.add_argument("--content", choices=["auto", "mujoco", "synthetic"], default="auto")
    parser.add_argument("--long-frames", type=int, default=2000, help="frames of the long group")
    parser.add_argument("--long-size", type=int, default=480)
    parser.add_argument(
        "--parts", nargs="+", choices=["one", "many", "long"], default=["one", "many", "long"]
    )
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench_render_"))
    try:
        rows = [one_group(args, work, size) for size in args.sizes if "one" in args.parts]
        rows += many_groups(args, work) if "many" in args.parts else []
        long_rows = long_group(args, work) if "long" in args.parts else []
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if rows:
        headers = ["case", "size", "content", "bare ffmpeg fps", "render fps", "render/bare"]
        print(format_table([*headers, "goal"], rows))
    if long_rows:
        headers = ["segments: one long group", "size", "content", "frames", "whole fps"]
        headers += ["segmented fps", "speed-up", "bare x264 1 -> 2", "same frame count", "goal"]
        print(("\n" if rows else "") + format_table(headers, long_rows))
    frames = f"{args.frames} frames per group" if rows else f"{args.long_frames} frames"
    print(
        f"\n{frames}, {args.repeats} repeats (medians), "
        f"{DEFAULTS.codec} crf {DEFAULTS.crf} preset {DEFAULTS.preset}, {os.cpu_count()} CPUs; "
        f"load average at the end: {', '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )


if __name__ == "__main__":
    main()
