"""Choosing the store's lossless default: codecs x chunk lengths on real tabletop frames.

Writes the same MuJoCo frames (one camera stream per size) through zarr with each codec and
chunk length, whole chunks at a time as FrameWriter does, and reports CPU ms per frame to
write (compression + zarr + I/O, all threads), ms per frame to read back, and the compression
ratio. Medians over ``--repeats`` runs.

    python benchmarks/bench_codecs.py
    python benchmarks/bench_codecs.py --sizes 480 --frames 64
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import zarr
from zarr.codecs import BloscCodec, ZstdCodec

from collect.adapters import batches_to_numpy, to_camera_batches
from collect.codecs import DeferrableZstd

CANDIDATES = {
    "zstd-1": lambda: {"compressors": [ZstdCodec(level=1)]},
    "zstd-3": lambda: {"compressors": [ZstdCodec(level=3)]},
    # evalframes' own (the default codec): the window spans the chunk
    "zstd-1 wide window": lambda: {"compressors": [DeferrableZstd(level=1)]},
    "zstd-3 wide window": lambda: {"compressors": [DeferrableZstd(level=3)]},
    "blosc-zstd-1 shuffle": lambda: {
        "compressors": [BloscCodec(cname="zstd", clevel=1, shuffle="shuffle", typesize=1)]
    },
    "blosc-lz4-5": lambda: {
        "compressors": [BloscCodec(cname="lz4", clevel=5, shuffle="noshuffle", typesize=1)]
    },
    "blosc-lz4-5 bitshuffle": lambda: {
        "compressors": [BloscCodec(cname="lz4", clevel=5, shuffle="bitshuffle", typesize=1)]
    },
    "blosc-lz4-1": lambda: {
        "compressors": [BloscCodec(cname="lz4", clevel=1, shuffle="noshuffle", typesize=1)]
    },
}


def tabletop_frames(size: int, count: int) -> np.ndarray:
    """``(count, size, size, 3)`` head-camera frames of env 0 under the scripted policy."""
    from collect.eval.envs import make_env, make_policy

    env = make_env("mujoco_tabletop", 1, seed=0, image_size=size, tensor=False)
    policy = make_policy("scripted", env)
    obs = env.reset(seed=0)
    frames = []
    for _ in range(count):
        obs, *_ = env.step(policy(obs))
        frames.append(batches_to_numpy(to_camera_batches(obs, 1))["zed"][0])
    env.close()
    return np.stack(frames)


def measure(frames: np.ndarray, codec: dict, chunk: int, workdir: Path) -> tuple[float, ...]:
    path = workdir / "a.zarr"
    shutil.rmtree(path, ignore_errors=True)
    array = zarr.create_array(
        str(path),
        shape=frames.shape,
        chunks=(chunk, *frames.shape[1:]),
        dtype="uint8",
        config={"write_empty_chunks": True},
        **codec,
    )
    usable = len(frames) - len(frames) % chunk
    cpu0 = time.process_time()
    for start in range(0, usable, chunk):
        array[start : start + chunk] = frames[start : start + chunk]
    write_ms = 1000 * (time.process_time() - cpu0) / usable
    t0 = time.perf_counter()
    back = array[:usable]
    read_ms = 1000 * (time.perf_counter() - t0) / usable
    assert np.array_equal(back, frames[:usable])
    ratio = frames[:usable].nbytes / array.nbytes_stored()
    return write_ms, read_ms, ratio


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 480, 960])
    parser.add_argument("--frames", type=int, default=48)
    parser.add_argument("--chunks", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    os.environ.setdefault("MUJOCO_GL", "egl")
    workdir = Path(tempfile.mkdtemp(prefix="bench_codecs_"))
    print("| size | codec | chunk frames | write CPU ms/frame | read ms/frame | ratio |")
    print("|---|---|---|---|---|---|")
    try:
        for size in args.sizes:
            frames = tabletop_frames(size, args.frames)
            for name, make in CANDIDATES.items():
                for chunk in args.chunks:
                    runs = [measure(frames, make(), chunk, workdir) for _ in range(args.repeats)]
                    write, read, ratio = (statistics.median(r[i] for r in runs) for i in range(3))
                    print(f"| {size} | {name} | {chunk} | {write:.2f} | {read:.2f} | {ratio:.1f} |")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
