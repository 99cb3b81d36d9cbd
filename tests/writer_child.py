"""A writer process for crash and concurrency tests: ``python writer_child.py STORE RANK ...``.

Appends pattern frames as fast as asked and prints ``<rows appended> <monotonic time>
<rows committed>`` after every append, so the parent knows exactly what was handed to the
writer before it kills us; the first line is ``ready <time> <writer process pid>``.
``--end`` says how the run ends once every row is appended (see ``ENDINGS``).
"""

from __future__ import annotations

import argparse
import ctypes
import os
import signal
import sys
import time

from framegen import pattern_batch

from collect import FrameWriter

ENDINGS = {
    "close": "close() the writer",
    "no-close": "exit without close(): the writer is closed at exit",
    "wait": "print 'waiting' and sleep until a signal ends us, without close()",
    "raise": "an uncaught RuntimeError, without close()",
    "interrupt": "an uncaught KeyboardInterrupt, without close()",
    "sigterm-in-ctypes": "SIGTERM lands in a ctypes argument conversion, inside the writer's "
    "with block (as in MuJoCo's EGL calls)",
}


class _SigtermOnConversion:
    """A ctypes argument whose conversion sends us SIGTERM and waits for it to land."""

    @classmethod
    def from_param(cls, value: int) -> int:
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)  # the handler runs here
        return value


def call_c_while_sigterm_lands() -> None:
    c_abs = ctypes.CDLL(None).abs
    c_abs.argtypes = [_SigtermOnConversion]
    c_abs(-1)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("store")
    parser.add_argument("rank", type=int)
    parser.add_argument("--num-envs", type=int, default=2)
    parser.add_argument("--rows", type=int, default=100)
    parser.add_argument("--sleep", type=float, default=0.0)
    parser.add_argument("--flush-interval", type=float, default=0.25)
    parser.add_argument("--max-buffer-mb", type=float, default=4.0)
    parser.add_argument("--end", choices=ENDINGS, default="close")
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
    sys.stdout.flush()
    if args.end == "close":
        writer.close()
    elif args.end == "wait":
        print("waiting", time.monotonic(), flush=True)
        time.sleep(3600)
    elif args.end == "raise":
        raise RuntimeError("the run went wrong after the last append")
    elif args.end == "interrupt":
        raise KeyboardInterrupt
    elif args.end == "sigterm-in-ctypes":
        with writer:
            call_c_while_sigterm_lands()


if __name__ == "__main__":
    main()
