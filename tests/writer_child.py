"""A writer process for crash and concurrency tests: ``python writer_child.py STORE RANK ...``.

Appends pattern frames as fast as asked and prints ``<rows appended> <monotonic time>
<rows committed>`` after every append, so the parent knows exactly what was handed to the
writer before it kills us; the first line is ``ready <time> <writer process pid>``.
"""

from __future__ import annotations

import argparse
import sys
import time

from framegen import pattern_batch

from collect import FrameWriter


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("store")
    parser.add_argument("rank", type=int)
    parser.add_argument("--num-envs", type=int, default=2)
    parser.add_argument("--rows", type=int, default=100)
    parser.add_argument("--sleep", type=float, default=0.0)
    parser.add_argument("--flush-interval", type=float, default=0.25)
    parser.add_argument("--max-buffer-mb", type=float, default=4.0)
    parser.add_argument("--no-close", action="store_true", help="exit without close()")
    parser.add_argument("--wait-at-end", action="store_true", help="sleep forever at the end")
    args = parser.parse_args()
    writer = FrameWriter(
        args.store,
        rank=args.rank,
        gpu=args.rank,
        num_envs=args.num_envs,
        fps=10,
        flush_interval=args.flush_interval,
        max_buffer_mb=args.max_buffer_mb,
        chunk_frames=8,
    )
    print("ready", time.monotonic(), writer.writer_pid, flush=True)
    for step in range(args.rows):
        done = [step % 7 == 6] * args.num_envs
        writer.append(pattern_batch(args.rank, args.num_envs, step), reward=step, terminated=done)
        print(step + 1, time.monotonic(), writer.committed_rows, flush=True)
        if args.sleep:
            time.sleep(args.sleep)
    if args.wait_at_end:
        print("waiting", time.monotonic(), flush=True)
        time.sleep(3600)
    if not args.no_close:
        writer.close()
    sys.stdout.flush()


if __name__ == "__main__":
    main()
