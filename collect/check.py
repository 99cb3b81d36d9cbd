"""``python -m collect.check STORE``: the health of every group of a frame store, no rendering.

For each env group it reports the committed rows, the cameras, the writer's status and every
problem found: unreadable group or array metadata, arrays that are missing or hold fewer rows
than are committed, camera chunk files missing inside the committed rows (zarr would read them
as black frames without a word), and chunks that do not decode (every committed chunk is read
unless ``--no-decode``). Rows past the committed length are never looked at: a writer that was
killed leaves them behind by design.

A group whose frames are all intact but some per-row metadata array (``step``, ``episode``,
``reward``, ``terminated``, ``truncated``, ``info/<key>``) is missing or damaged is reported
``PARTIAL METADATA`` (not ``ok``, not ``DAMAGED``), naming each such array: ``render``
still renders every frame of it and marks its video ``partial metadata``. A group with any
frame problem (camera arrays, group metadata) is ``DAMAGED``.

A group whose data is intact but whose run did not finish is ``UNFINISHED`` (its writer's
status is ``recording``, ``interrupted`` or ``failed``) or ``EMPTY`` (no row was ever
committed, e.g. a run that failed before its first step): it renders, but it is not the whole
run.

Exit status: 0 when every group is healthy and finished, 1 when some group is damaged (frames
or metadata), unfinished or empty (the report says which), 2 when the path is
not a readable frame store (missing, not zarr, another kind of zarr group, unreadable root
metadata, unknown format version) or the command line is wrong (a ``--groups`` glob that
matches none of the store's groups included). When only the root's metadata is unreadable the
groups are still checked and listed, so you can see what is intact.

>>> import tempfile, numpy as np
>>> from collect import FrameWriter
>>> path = tempfile.mkdtemp() + "/frames.zarr"
>>> with FrameWriter(path, num_envs=2, fps=10) as writer:
...     writer.append({"zed": np.zeros((2, 8, 8, 3), np.uint8)})
>>> health = check_store(path)
>>> health.exit_status, [(g.name, g.rows, g.healthy) for g in health.groups]
(0, [('rank0_gpu0_env0', 1, True), ('rank0_gpu0_env1', 1, True)])
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from zarr.core.buffer import default_buffer_prototype
from zarr.core.sync import sync

from .cmdline import OneLineErrorParser
from .location import StoreAccessError, StoreLocation
from .store import FrameStore, GroupReader, StoreFormatError, is_metadata_path, open_store

__all__ = ["GroupHealth", "StoreHealth", "check_group", "check_store", "main"]

PROG = "python -m collect.check"


@dataclass
class GroupHealth:
    """What the check found in one group; ``rows`` is None when its metadata is unreadable.

    ``problems``: every problem found; ``partial_metadata``: the metadata arrays among them
    (``reward``, ``info/success``), whose loss costs no frame; ``frames_damaged``: whether
    some problem is not one of those (frames, or the group itself).
    """

    name: str
    rows: int | None = None
    cameras: dict[str, tuple[int, int]] = field(default_factory=dict)
    status: str = "unknown"
    problems: list[str] = field(default_factory=list)
    partial_metadata: list[str] = field(default_factory=list)
    frames_damaged: bool = False

    @property
    def healthy(self) -> bool:
        """Nothing stored is damaged (the run may still be unfinished)."""
        return not self.problems

    @property
    def finished(self) -> bool:
        """The writer closed the group normally, with at least one row."""
        return self.status == "complete" and bool(self.rows)

    @property
    def state(self) -> str:
        """``ok``, ``empty`` or ``unfinished`` (intact, but not a whole run), ``partial
        metadata`` (every frame intact) or ``damaged``."""
        if not self.healthy:
            return "damaged" if self.frames_damaged else "partial metadata"
        if self.finished:
            return "ok"
        return "empty" if self.rows == 0 else "unfinished"

    def add(self, path: str | None, problems: list[str]) -> None:
        """Record ``problems`` of the array at ``path`` (None: of the group itself)."""
        if not problems:
            return
        self.problems += problems
        if path is not None and is_metadata_path(path):
            self.partial_metadata.append(path)
        else:
            self.frames_damaged = True

    def line(self) -> str:
        """One summary line: name, rows, cameras (WxH), writer status, then ok, DAMAGED or
        PARTIAL METADATA (naming the arrays)."""
        rows = "?" if self.rows is None else str(self.rows)
        cameras = ", ".join(f"{c} {w}x{h}" for c, (h, w) in self.cameras.items()) or "-"
        n = len(self.problems)
        count = f"{n} problem{'s' if n > 1 else ''}"
        health = {
            "ok": "ok",
            "empty": f"EMPTY (no row committed; writer status {self.status})",
            "unfinished": f"UNFINISHED (writer status {self.status}; every row stored intact)",
            "damaged": f"DAMAGED ({count})",
            "partial metadata": f"PARTIAL METADATA ({', '.join(self.partial_metadata)}; "
            "every frame intact)",
        }[self.state]
        return f"{self.name}  rows {rows}  cameras {cameras}  status {self.status}  {health}"


@dataclass
class StoreHealth:
    """The check of a whole store (``store``: its URL or path); ``error`` says why it is not
    a readable store."""

    store: str
    groups: list[GroupHealth] = field(default_factory=list)
    error: str | None = None

    @property
    def damaged(self) -> list[GroupHealth]:
        return [g for g in self.groups if not g.healthy]

    @property
    def exit_status(self) -> int:
        """0 all groups healthy and finished, 1 some not, 2 not a readable store."""
        if self.error is not None:
            return 2
        return 0 if all(g.state == "ok" for g in self.groups) else 1

    def report(self) -> str:
        """A line per group with its problems indented below it, then a tally (not ``error``)."""
        lines = []
        for group in self.groups:
            lines.append(group.line())
            lines += [f"    {problem}" for problem in group.problems]
        states = [g.state for g in self.groups]
        tally = f"{len(self.groups)} groups: {states.count('ok')} ok, "
        tally += f"{states.count('damaged')} damaged"
        for state, note in (("partial metadata", " (frames intact)"), ("unfinished", ""),
                            ("empty", "")):  # fmt: skip
            if state in states:
                tally += f", {states.count(state)} {state}{note}"
        lines.append(tally)
        return "\n".join(lines)


def check_store(
    store: str | os.PathLike | StoreLocation,
    pattern: str = "*",
    *,
    decode: bool = True,
    storage_options: Mapping[str, Any] | None = None,
) -> StoreHealth:
    """Check every group of the store (a path or a URL) whose name matches ``pattern``.

    ``decode=False`` skips reading the chunks (metadata, lengths and chunk files only).
    """
    try:
        location = StoreLocation.of(store, storage_options)
    except (TypeError, ValueError) as e:
        return StoreHealth(str(store), error=str(e))
    try:
        return _check_location(location, pattern, decode)
    except StoreAccessError as e:  # the store went out of reach while being checked
        return StoreHealth(location.url, error=str(e))


def _check_location(location: StoreLocation, pattern: str, decode: bool) -> StoreHealth:
    try:
        frame_store = open_store(location)
    except (FileNotFoundError, StoreFormatError, StoreAccessError) as e:
        health = StoreHealth(location.url, error=str(e))
        if isinstance(e, StoreFormatError) and (not location.is_local or location.path.is_dir()):
            zarr_store = location.zarr_store(read_only=True)
            if not _root_metadata_readable(location, zarr_store):
                # the groups do not need the root to be opened: show what is intact
                unrooted = FrameStore(location, None, zarr_store)
                health.groups = _check_groups(unrooted, pattern, decode)
        return health
    if not frame_store.group_names(pattern) and frame_store.group_names():  # a typo
        return StoreHealth(location.url, error=f"no group matches {pattern!r}")
    return StoreHealth(location.url, _check_groups(frame_store, pattern, decode))


def _root_metadata_readable(location: StoreLocation, zarr_store: Any) -> bool:
    try:
        with location.translated_errors("reading the root metadata"):
            raw = sync(zarr_store.get("zarr.json", default_buffer_prototype()))
        json.loads(raw.to_bytes() if raw is not None else b"")
    except (OSError, ValueError):
        return False
    return True


def _check_groups(store: FrameStore, pattern: str, decode: bool) -> list[GroupHealth]:
    return [check_group(store, name, decode=decode) for name in store.group_names(pattern)]


def check_group(store: FrameStore, name: str, *, decode: bool = True) -> GroupHealth:
    """Check one group: its metadata, then every array over the committed rows."""
    health = GroupHealth(name)
    try:
        group = store.group(name)
    except StoreFormatError as e:
        health.add(None, [str(e)])
        return health
    health.rows, health.cameras, health.status = group.rows, group.cameras, group.status
    try:
        paths = group.array_paths()
    except Exception as e:  # noqa: BLE001 - an unlistable info/ folder is one more problem
        health.add("info", [f"group {name!r}: info arrays cannot be listed ({e})"])
        paths = group.array_paths(info=False)
    else:
        for key in group.info_without_metadata():
            problem = f"group {name!r}: info array {key!r} has no metadata (zarr.json missing)"
            health.add(f"info/{key}", [problem])
    for path in paths:
        health.add(path, _array_problems(group, path, decode))
    return health


def _array_problems(group: GroupReader, path: str, decode: bool) -> list[str]:
    """Problems of one array over the committed rows, one per bad chunk."""
    try:
        spans = group.chunk_spans(path)
    except StoreFormatError as e:  # missing, unreadable metadata, or too short
        return [str(e)]
    if not decode:
        missing = group.missing_chunks(path)
        return [
            f"group {group.name!r}: array {path!r} chunk file missing for rows {a}:{b}"
            for i, (a, b) in enumerate(spans)
            if i in missing
        ]
    problems = []
    for start, stop in spans:
        try:
            group.read_array(path, start, stop)
        except StoreFormatError as e:
            problems.append(str(e))
    return problems


def _parser() -> argparse.ArgumentParser:
    parser = OneLineErrorParser(
        prog=PROG,
        description="Check every env group of an evalframes frame store without rendering: "
        "rows, cameras, status and every problem found (PARTIAL METADATA: a metadata array "
        "such as reward is lost, every frame intact). Exit status 0: all groups healthy, "
        "1: some damaged or with partial metadata, 2: not a readable store.",
    )
    parser.add_argument(
        "store",
        help="frame store written by collect: a .zarr directory or a URL (s3://bucket/run.zarr; "
        "credentials and endpoint from the AWS_* environment variables)",
    )
    parser.add_argument("--groups", default="*", metavar="GLOB", help="groups to check")
    parser.add_argument(
        "--no-decode",
        dest="decode",
        action="store_false",
        help="skip decoding the chunks (metadata, lengths and chunk files only; faster)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the check's command line; returns the exit status."""
    try:
        args = _parser().parse_args(argv)
    except SystemExit as e:  # --help (0) or a usage error (2), already printed
        return int(e.code or 0)
    health = check_store(args.store, args.groups, decode=args.decode)
    if health.error is not None:
        print(f"{PROG}: error: {health.error}", file=sys.stderr)
    if health.groups or health.error is None:
        print(health.report())
    return health.exit_status


if __name__ == "__main__":
    raise SystemExit(main())
