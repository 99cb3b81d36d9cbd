"""``python -m render STORE OUT [options]``: one MP4 per env group of a frame store.

Exit status: 0 when every selected output is complete (rendered now or already up to date);
1 when some output failed or skipped damaged rows; 2 for a bad command line, option value,
store or output path; 130 when interrupted. Progress goes to stderr (only on a terminal);
``--list``, ``--dry-run`` and the summary table go to stdout. Every message this command
prints itself starts with ``python -m render:`` and names options by their flags.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys

from collect.cmdline import OneLineErrorParser
from collect.dask_cluster import quiet_dask_logs
from collect.location import quiet_storage_logs
from collect.store import open_store

from .api import render_store
from .compose import available_layouts
from .encode import FITS
from .options import OptionError, RenderOptions, parse_size
from .report import list_groups

__all__ = ["main"]

PROG = "python -m render"
DEFAULTS = RenderOptions()
EPILOG = """examples:
  python -m render frames.zarr videos/
  python -m render frames.zarr videos/ --size 320x240 --fps 15 --layout hstack
  python -m render frames.zarr videos/ --overlay --split-episodes --mosaic --gallery
  python -m render frames.zarr videos/ --groups 'rank0_*' --scheduler tcp://10.0.0.5:8786
  python -m render frames.zarr --list
"""


def _size(text: str) -> tuple[int, int]:
    try:
        return parse_size(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _names(text: str) -> tuple[str, ...]:
    return tuple(name.strip() for name in text.split(",") if name.strip())


def _parser() -> argparse.ArgumentParser:
    # SUPPRESS: options left out do not appear in the namespace, so RenderOptions' defaults
    # apply; every option's dest is the RenderOptions field it sets.
    p = OneLineErrorParser(
        prog=PROG,
        description="Render one MP4 per env group of an evalframes frame store.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        argument_default=argparse.SUPPRESS,
    )
    p.add_argument(
        "store",
        help="frame store written by collect: a .zarr directory or a URL (s3://bucket/run.zarr; "
        "credentials and endpoint from the AWS_* environment variables, read by every worker)",
    )
    p.add_argument("out", nargs="?", default=None, help="output directory (created if missing)")
    video = p.add_argument_group("video")
    video.add_argument(
        "--size", type=_size, metavar="WxH",
        help="output size, e.g. 640x480 (16 to 8192 px a side; odd sides are rounded up to "
        "even); a picture of another aspect ratio is fit to it as --fit says",
    )  # fmt: skip
    video.add_argument(
        "--fit", choices=FITS,
        help=f"how --size is filled when the aspect ratio differs: pad with black (default), "
        f"crop the overflow, or stretch the picture (default: {DEFAULTS.fit})",
    )  # fmt: skip
    video.add_argument("--scale", type=float, metavar="F", help="scale the composed size by F")
    video.add_argument("--fps", type=float, help="frame rate (default: the store's)")
    video.add_argument("--codec", help=f"ffmpeg video encoder (default: {DEFAULTS.codec})")
    video.add_argument(
        "--crf", type=int, help=f"quality, lower is better (default: {DEFAULTS.crf})"
    )
    video.add_argument("--preset", help=f"encoder preset (default: {DEFAULTS.preset})")
    video.add_argument(
        "--encoder-threads", type=int, metavar="N", help="threads per encoder (default: ffmpeg's)"
    )
    video.add_argument("--cameras", type=_names, metavar="A,B", help="cameras, in this order")
    video.add_argument(
        "--layout",
        help=f"{', '.join(available_layouts())} (default: {DEFAULTS.layout}); "
        "separate writes one video per camera",
    )
    extras = p.add_argument_group("views: overlay, episodes, mosaic, gallery, segments")
    extras.add_argument(
        "--overlay",
        action="store_true",
        help="draw step, episode, reward, return, termination and success on every frame",
    )
    extras.add_argument(
        "--overlay-keys",
        type=_names,
        metavar="A,B",
        help="info keys the overlay shows (default: the success key, if stored)",
    )
    extras.add_argument(
        "--success-key",
        metavar="KEY",
        help="info key that says an episode succeeded (true on any of its rows; default: "
        "success, is_success or episode.success_once if stored, else the env's rule, "
        "else the outcome is unknown)",
    )
    extras.add_argument(
        "--split-episodes", action="store_true", help="one video per episode of each env"
    )
    extras.add_argument(
        "--mosaic", action="store_true", help="also write one video tiling every env in a grid"
    )
    extras.add_argument(
        "--gallery", action="store_true", help="also write index.html and a poster per video"
    )
    extras.add_argument(
        "--segment-frames",
        type=int,
        metavar="N",
        help="encode videos in segments of N frames in parallel and join them "
        "(default: automatic for long videos when workers would idle; 0: never)",
    )
    select = p.add_argument_group("selection and scheduling")
    select.add_argument("--groups", metavar="GLOB", help="groups to render, e.g. 'rank0_*'")
    select.add_argument(
        "--overwrite", action="store_true", help="re-render outputs that are up to date"
    )
    select.add_argument("--scheduler", metavar="ADDRESS", help="a running Dask scheduler")
    select.add_argument(
        "--workers", type=int, metavar="N", help="local Dask cluster of N single-thread workers"
    )
    select.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        help="progress bar on stderr (default: only on a terminal)",
    )
    modes = p.add_argument_group("modes")
    modes.add_argument("--list", action="store_true", default=False, help="list groups and exit")
    modes.add_argument("--dry-run", action="store_true", help="show what would be rendered")
    modes.add_argument(
        "-v", "--verbose", action="store_true", default=False,
        help="log what happens, Dask's own logs included (default: warnings only)",
    )  # fmt: skip
    return p


def _flags(parser: argparse.ArgumentParser) -> dict[str, str]:
    """``{RenderOptions field: its --flag}``: how errors name an option here."""
    return {
        action.dest: max(action.option_strings, key=len)
        for action in parser._actions
        if action.option_strings
    }


def _join_negative_sizes(argv: list[str]) -> list[str]:
    """``--size -5x10`` -> ``--size=-5x10``: argparse takes ``-5x10`` for an option and would
    say "expected one argument" instead of what is wrong with the size."""
    joined: list[str] = []
    for arg in argv:
        if joined and joined[-1] == "--size" and arg.startswith("-") and arg[1:2].isdigit():
            joined[-1] = f"--size={arg}"
        else:
            joined.append(arg)
    return joined


class _Prefixed(logging.Formatter):
    """``python -m render: warning: ...``: the prefix of every message of this command."""

    def format(self, record: logging.LogRecord) -> str:
        return f"{PROG}: {record.levelname.lower()}: {super().format(record)}"


def _configure_logging(verbose: bool) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(_Prefixed("%(message)s"))
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, handlers=[handler])
    quiet_dask_logs(logging.INFO if verbose else logging.WARNING)
    quiet_storage_logs(logging.INFO if verbose else logging.WARNING)


def main(argv: list[str] | None = None) -> int:
    """Run the renderer's command line; returns the exit status."""
    parser = _parser()
    argv = _join_negative_sizes(sys.argv[1:] if argv is None else list(argv))
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # --help (0) or a usage error (2), already printed
        return int(e.code or 0)
    _configure_logging(args.verbose)
    fields = {f.name for f in dataclasses.fields(RenderOptions)}
    options = {k: v for k, v in vars(args).items() if k in fields}
    try:
        if args.list:
            print(list_groups(open_store(args.store), options.get("groups", DEFAULTS.groups)))
            return 0
        if args.out is None:
            parser.error("the output directory OUT is required (except with --list)")
        report = render_store(args.store, args.out, **options)
    except SystemExit as e:
        return int(e.code or 0)
    except OptionError as e:  # named by its flag, as the user wrote it
        flags = _flags(parser)
        print(f"{PROG}: error: {e.render(lambda f: flags.get(f, f))}", file=sys.stderr)
        return 2
    except (ValueError, OSError) as e:  # bad option value, store or output path
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    print(report.summary())
    return 0 if report.ok else 1
