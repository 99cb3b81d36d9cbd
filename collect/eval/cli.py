"""``python -m collect CONFIG.yaml [key=value ...]``: run an evaluation and record every env.

Exit status: 0 when every worker finished and (if asked) every video rendered; 1 when a
worker or the render failed; 2 for a bad config or command line; 130 on Ctrl-C (every row
recorded so far is kept, its groups marked ``interrupted``).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from collect.cmdline import OneLineErrorParser
from collect.dask_cluster import quiet_dask_logs
from collect.location import quiet_storage_logs

from .config import ConfigError, load_config
from .placement import PlacementError

__all__ = ["main"]

PROG = "python -m collect"

EPILOG = """examples:
  python -m collect configs/demo.yaml
  python -m collect configs/testing_1x2.yaml env.eval.max_episode_steps=20 env.image_size=64
  python -m collect my.yaml env.eval.video_cfg.save_video=false --scheduler tcp://host:8786
"""


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineErrorParser(
        prog=PROG,
        description="Run an RLinf-style evaluation on Dask env workers and record one frame "
        "group per env (save_frames), then render one MP4 per env (save_video).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("config", nargs="?", help="YAML config (defaults: the built-in env)")
    parser.add_argument("overrides", nargs="*", help="key=value overrides (OmegaConf dotlist)")
    parser.add_argument("--scheduler", help="address of a running Dask scheduler")
    parser.add_argument("--print-config", action="store_true", help="print the resolved config")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )
    quiet_dask_logs(logging.DEBUG if args.verbose else logging.WARNING)
    quiet_storage_logs(logging.INFO if args.verbose else logging.WARNING)
    config, overrides = args.config, list(args.overrides)
    if config is not None and "=" in config and not os.path.exists(config):
        config, overrides = None, [config, *overrides]
    try:
        cfg = load_config(config, overrides)
        if args.print_config:
            from omegaconf import OmegaConf

            print(OmegaConf.to_yaml(cfg))
            return 0
        from .runner import run_eval

        summary = run_eval(cfg, scheduler=args.scheduler)
    except (ConfigError, PlacementError) as e:  # before any worker started: one line
        print(f"{PROG}: error: {' '.join(str(e).split())}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # a worker or the render failed: one line, traceback with -v
        logging.getLogger(__name__).debug("eval failed", exc_info=True)
        print(f"{PROG}: error: evaluation failed: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    print(summary.table())
    if summary.frames_path:
        print(f"frames: {summary.frames_path}")
    if summary.videos:
        print(f"videos: {len(summary.videos)} in {summary.video_dir}")
    return 0 if summary.render_ok else 1
