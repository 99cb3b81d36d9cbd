"""What a store on S3-compatible object storage costs, against the same store on local disk.

For each frame size, the same frames (smooth synthetic scenes, 4 envs x 1 camera) are written
by a ``FrameWriter`` to a local ``.zarr`` folder and to ``s3://`` on a loopback S3 server
(moto, started here on 127.0.0.1), alternating, ``--repeats`` times; then each store is
rendered (local threads, the Dask workers reading straight from the object store).

* write: frames per second from the writer's construction to ``close()`` returning (the
  rollout-side view: everything committed), and the writer process's CPU per frame;
* objects: files on disk / objects in the bucket (sharding is on by default on object
  stores), and bytes stored;
* render: frames per second of ``render_store`` with the default options.

The loopback server is a Python process on the same cores (it takes CPU that a real object
store would not), and no network is crossed: real endpoints add latency and bandwidth limits,
so read these as the cost of the object-store path itself, not of a network.

    python benchmarks/bench_objectstore.py                      # 128 and 480, 3 repeats
    python benchmarks/bench_objectstore.py --sizes 256 --steps 60 --repeats 1
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

from bench_render import render_once, synthetic_steps
from common import dir_bytes, markdown_table

from collect import FrameWriter

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from s3server import s3_server  # the tests' loopback S3 server

ENVS = 4


def write_once(store: str, steps: list, fps: float) -> tuple[float, float]:
    """Seconds from opening a writer to its close returning, and the writer's CPU seconds."""
    started = time.perf_counter()
    with FrameWriter(store, num_envs=ENVS, fps=fps) as writer:
        for frames in steps:
            writer.append({"zed": frames})
    return time.perf_counter() - started, writer.stats.writer_cpu_seconds


def one_size(args: argparse.Namespace, server, work: Path, size: int) -> list[list[str]]:
    steps = list(synthetic_steps(size, ENVS, args.steps))
    frames = ENVS * args.steps
    runs: dict[str, list[tuple[float, float]]] = {"local disk": [], "object store": []}
    stores = {}
    for repeat in range(args.repeats):
        local = work / f"w{size}_{repeat}.zarr"
        remote = server.url(f"bench-{size}-{uuid.uuid4().hex[:6]}.zarr")
        runs["local disk"].append(write_once(str(local), steps, args.fps))
        runs["object store"].append(write_once(remote, steps, args.fps))
        stores = {"local disk": str(local), "object store": remote}
    rows = []
    for where, store in stores.items():
        seconds = statistics.median(t for t, _ in runs[where])
        cpu = statistics.median(c for _, c in runs[where])
        if where == "local disk":
            files = sum(1 for p in Path(store).rglob("*") if p.is_file())
            stored = dir_bytes(Path(store))
        else:
            keys = server.keys(store.removeprefix(f"s3://{server.bucket}/"))
            client = server.client()
            files = len(keys)
            stored = sum(client.head_object(Bucket=server.bucket, Key=k)["ContentLength"]
                         for k in keys)  # fmt: skip
        outs = [work / f"out{size}{where[0]}{i}" for i in range(args.repeats)]
        renders = [render_once(store, out) for out in outs]
        rows.append([
            f"{size}x{size}", where, f"{frames / seconds:.0f}", f"{cpu / frames * 1e3:.2f}",
            str(files), f"{stored / 2**20:.1f}", f"{frames / statistics.median(renders):.0f}",
        ])  # fmt: skip
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[128, 480])
    parser.add_argument("--steps", type=int, default=120, help="appends per run (4 envs each)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--fps", type=float, default=30)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-objectstore-"))
    try:
        with s3_server(work / "moto.log") as server:
            os.environ.update(server.env)  # the standard AWS_* variables, for every process
            rows = [row for size in args.sizes for row in one_size(args, server, work, size)]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"## Object store vs local disk ({ENVS} envs x 1 camera, {args.steps} steps, "
          f"medians of {args.repeats})\n")  # fmt: skip
    print(markdown_table(
        ["size", "store", "write frames/s", "writer CPU ms/frame", "files/objects", "MiB stored",
         "render frames/s"],
        rows,
    ))  # fmt: skip


if __name__ == "__main__":
    main()
