"""Results of a render, and the tables people read: the summary and ``--list``.

:class:`OutputResult` is what rendering one output produced (it travels back from Dask
workers, so it is plain data); :class:`RenderReport` collects them for a whole store.

>>> r = OutputResult("rank0_gpu0_env0", Path("v.mp4"), "rendered", frames=8, rows=8)
>>> report = RenderReport([r])
>>> report.ok, report.outputs
(True, [PosixPath('v.mp4')])
>>> print(format_table(["a", "bb"], [[1, "x"], [22, "yy"]]))
a   bb
--  --
1   x
22  yy
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from collect.store import FrameStore, StoreFormatError

from .episodes import Episode, describe
from .metadata import as_metadata, partial_text

__all__ = ["OutputResult", "RenderReport", "Status", "format_table", "list_groups"]

Status = Literal["rendered", "partial", "up to date", "would render", "failed"]
_OK: tuple[Status, ...] = ("rendered", "up to date", "would render")
_HAS_FILE: tuple[Status, ...] = ("rendered", "partial", "up to date")


@dataclass
class OutputResult:
    """What happened to one output video.

    ``status``: ``rendered``; ``partial`` (damaged rows skipped, listed in ``skipped_rows``);
    ``up to date`` (left as it was); ``would render`` (dry run); ``failed`` (see ``error``).
    ``frames`` counts frames written (or to write, in a dry run) out of the ``rows`` selected.
    ``episodes`` are the episodes the video shows (the last one may be partial).
    ``partial_metadata``: ``{array path: kind}`` of the group's metadata arrays that are
    missing or damaged (``{"reward": "missing"}``; kinds as in
    :class:`collect.store.RowMetadata`): the video still has every readable frame, but what
    it and the report say about rewards, ends or outcomes is incomplete (see
    :mod:`render.metadata`). Empty when the metadata is complete.
    """

    group: str
    path: Path
    status: Status
    frames: int = 0
    rows: int = 0
    size: tuple[int, int] | None = None
    seconds: float = 0.0
    skipped_rows: list[tuple[int, int]] = field(default_factory=list)
    error: str | None = None
    episodes: tuple[Episode, ...] = ()
    partial_metadata: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """The output is there as planned (rendered, up to date, or would be); see also
        :attr:`complete`."""
        return self.status in _OK

    @property
    def complete(self) -> bool:
        """:attr:`ok`, and with every metadata array of its group readable."""
        return self.ok and not self.partial_metadata

    def metadata_note(self) -> str:
        """``"partial metadata: reward missing"`` (the gallery's badge text); ``""`` if none."""
        if not self.partial_metadata:
            return ""
        return f"partial metadata: {partial_text(self.partial_metadata)}"

    def note(self) -> str:
        """One line for the summary: the error, or the rows that were skipped, and the
        partial metadata."""
        if self.error:
            return self.error.splitlines()[0]
        notes = [self.metadata_note()] if self.partial_metadata else []
        if self.skipped_rows:
            spans = ", ".join(f"{a}:{b}" for a, b in self.skipped_rows)
            notes.insert(0, f"skipped unreadable rows {spans}")
        return "; ".join(notes)


@dataclass
class RenderReport:
    """Every output of a render, in plan order, and the wall time it took."""

    results: list[OutputResult]
    seconds: float = 0.0
    dry_run: bool = False  # planned only: nothing was rendered or written

    @property
    def ok(self) -> bool:
        """True when every selected output is complete (rendered or up to date, every
        metadata array of its group readable): the CLI's exit status 0."""
        return all(r.complete for r in self.results)

    @property
    def partial_metadata(self) -> list[OutputResult]:
        """The outputs whose group lost some metadata array (their frames are all there)."""
        return [r for r in self.results if r.partial_metadata]

    @property
    def outputs(self) -> list[Path]:
        """Paths of the videos that exist after the render (complete or partial)."""
        return [r.path for r in self.results if r.status in _HAS_FILE]

    @property
    def failed(self) -> list[OutputResult]:
        return [r for r in self.results if not r.ok]

    @property
    def frames_rendered(self) -> int:
        return sum(r.frames for r in self.results if r.status in ("rendered", "partial"))

    def summary(self) -> str:
        """The summary table, one row per output and a total row, then a tally line."""
        rows = []
        for r in self.results:
            shown = describe(r.episodes)
            rows.append(
                [r.path.name, r.status, f"{r.frames}/{r.rows}", _size(r.size), _secs(r),
                 shown["episodes"], shown["return"], shown["success"], r.note()]
            )  # fmt: skip
        headers = ["output", "status", "frames", "size", "render s", "episodes", "return"]
        table = format_table([*headers, "success", "note"], rows, total=self._total_row())
        counts: dict[str, int] = {}
        for r in self.results:
            counts[r.status] = counts.get(r.status, 0) + 1
        tally = ", ".join(f"{n} {status}" for status, n in counts.items()) or "nothing selected"
        if self.partial_metadata:
            tally += f" ({len(self.partial_metadata)} with partial metadata)"
        if self.dry_run:
            planned = sum(r.frames for r in self.results if r.status == "would render")
            return f"{table}\n{tally}; dry run: {planned} frames would be rendered, nothing written"
        frames, seconds = self.frames_rendered, self.seconds
        fps = frames / seconds if seconds else 0.0
        return f"{table}\n{tally}; {frames} frames rendered in {seconds:.1f} s ({fps:.0f} fps)"

    def episodes(self) -> list[Episode]:
        """Every episode the outputs show, once (a group's episodes appear in one video per
        camera with the ``separate`` layout, one per video with ``split_episodes``)."""
        seen: dict[tuple[str, int], Episode] = {}
        for r in self.results:
            for e in r.episodes:
                seen.setdefault((r.group, e.start), e)
        return list(seen.values())

    def _total_row(self) -> list[str]:
        """The table's last row: frames of all outputs; episodes, return, success of all."""
        frames = sum(r.frames for r in self.results)
        rows = sum(r.rows for r in self.results)
        episodes = self.episodes()
        shown = describe(episodes)
        count = f"{len(episodes)}"
        partial = sum(e.partial for e in episodes)
        count += f", {partial} partial" if partial else ""
        outputs = f"total ({len(self.results)} outputs)"
        return [outputs, "", f"{frames}/{rows}", "", "", count if episodes else "",
                shown["return"], shown["success"], ""]  # fmt: skip


def _size(size: tuple[int, int] | None) -> str:
    return "" if size is None else f"{size[0]}x{size[1]}"


def _secs(result: OutputResult) -> str:
    return f"{result.seconds:.1f}" if result.status in ("rendered", "partial", "failed") else ""


def format_table(
    headers: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    total: Sequence[Any] | None = None,
) -> str:
    """A plain-text table with left-aligned columns separated by two spaces; a ``total``
    row comes last, under a rule of its own."""
    body = [*rows, *([total] if total is not None else [])]
    cells = [[str(h) for h in headers], *[[str(c) for c in row] for row in body]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells
    ]
    rule = "  ".join("-" * w for w in widths)
    lines.insert(1, rule)
    if total is not None:
        lines.insert(len(lines) - 1, rule)
    return "\n".join(lines)


def list_groups(store: FrameStore, pattern: str = "*") -> str:
    """A table of the store's groups: rows, episodes, camera sizes, status."""
    rows = []
    for name in store.group_names(pattern):
        try:
            group = store.group(name)
        except StoreFormatError as e:
            rows.append([name, "", "", "", "", f"damaged: {e}"])
            continue
        meta = as_metadata(group)  # lost metadata arrays are named, the rest still listed
        status = group.status
        if meta.partial:
            status += f", partial metadata: {meta.partial_text()}"
        cameras = ", ".join(f"{c} {w}x{h}" for c, (h, w) in group.cameras.items())
        length = f"{group.rows / store.fps:.1f}"
        rows.append([name, group.rows, len(meta.episodes()), length, cameras, status])
    headers = ["group", "rows", "episodes", "video s", "cameras (WxH)", "status"]
    return format_table(headers, rows)
