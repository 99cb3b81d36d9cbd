"""Part 5: the disk fills up (or a file-size limit is hit) while a writer is recording.

Two ways to run out of room: a 1 MiB tmpfs (needs root and ``mount``; skipped otherwise) and
a file-size limit (``RLIMIT_FSIZE``, with SIGXFSZ ignored) lowered on a running writer child,
which works for any user. Either way the writer must raise a clear error at the next
``append`` (or at ``close``), not hang, and every row it reported committed must read back.
"""

from __future__ import annotations

import contextlib
import re
import resource
import signal
import sys
from pathlib import Path

import pytest
from chaos import WRITER_CHILD, Child, one_line, raised_in_our_code, tmpfs
from framegen import assert_group_matches, pattern_batch

from collect import FrameWriter, WriterError, open_store

ERROR = "collect.writer_process.WriterError"  # how the uncaught error ends the child's traceback
COMMITTED = re.compile(r"rows up to (\d+) are committed and readable")


def ignore_sigxfsz() -> None:
    """In the child: a write past RLIMIT_FSIZE fails with EFBIG instead of killing it."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)


def rows_appended(child: Child) -> int:
    return max((int(x.split()[0]) for x in list(child.lines) if x.split()[0].isdigit()), default=0)


def rows_committed(child: Child) -> int:
    steps = [x.split() for x in list(child.lines) if x.split()[0].isdigit()]
    return max((int(fields[2]) for fields in steps), default=0)


def writer_pid(child: Child) -> int:
    """The pid of the writer process (which writes the files), from the child's ready line."""
    return next(int(x.split()[2]) for x in list(child.lines) if x.startswith("ready"))


def record_until_full(store: Path, how: str) -> tuple[Child, int]:
    """Run a writer child that appends until the room runs out; its exit status."""
    child = Child(
        [sys.executable, WRITER_CHILD, store, 0, "--rows", 10**6, "--sleep", 0.01],
        preexec_fn=ignore_sigxfsz,
    )
    if how == "file-size limit":
        child.wait_until(lambda c: rows_committed(c) >= 24)  # several chunks committed
        resource.prlimit(writer_pid(child), resource.RLIMIT_FSIZE, (4096, 4096))
    return child, child.finish(timeout=60)


@pytest.mark.parametrize("how", ["tmpfs", "file-size limit"])
def test_writer_raises_at_the_next_append_and_keeps_what_was_flushed(tmp_path, how, observe):
    with contextlib.ExitStack() as stack:
        where = stack.enter_context(tmpfs(tmp_path / "disk")) if how == "tmpfs" else tmp_path
        store = where / "frames.zarr"
        child, status = record_until_full(store, how)
        raised = [x for x in child.stderr.splitlines() if x.startswith(ERROR)]
        last = raised[-1] if raised else child.stderr
        reported = int(COMMITTED.search(last).group(1)) if COMMITTED.search(last) else -1
        groups = open_store(store).groups()
        wrong = []
        for group in groups:
            try:
                assert_group_matches(group, rank=0, env=group.env)
            except AssertionError as e:
                wrong.append(str(e))
        observe(
            5, f"disk full mid-run ({how}), writer child",
            f"exit {status} after {rows_appended(child)} appends, raising "
            f"`{last.replace(str(where) + '/', '')[:200]}`; stored rows "
            f"{[g.rows for g in groups]} (reported committed {reported}), all exact, status "
            f"{sorted({g.status for g in groups})}",
            silent_losses=len(wrong) + sum(max(0, reported - g.rows) for g in groups),
        )  # fmt: skip
    assert status == 1  # the error ended the run: no hang (finish() would have killed it)
    assert last.startswith(f"{ERROR}: rank 0: writing frames to ")
    assert "No space left on device" in last or "File too large" in last
    assert reported > 0 and all(reported <= g.rows <= rows_appended(child) for g in groups)
    assert wrong == []


def fill(disk: Path) -> None:
    """Write to a file on ``disk`` until it has no room left."""
    with contextlib.suppress(OSError), (disk / "filler").open("wb") as f:
        while True:
            f.write(b"\0" * 65536)
            f.flush()


def test_writer_raises_at_close_when_the_last_flush_finds_the_disk_full(tmp_path, observe):
    with tmpfs(tmp_path / "disk") as disk:
        writer = FrameWriter(disk / "frames.zarr", num_envs=2, chunk_frames=16, flush_interval=60)
        for step in range(20):  # one chunk written, 4 rows waiting in the buffer
            writer.append(pattern_batch(0, 2, step))
        writer.flush()
        for step in range(20, 24):
            writer.append(pattern_batch(0, 2, step))
        fill(disk)
        with pytest.raises(WriterError) as error:
            writer.close()
        (disk / "filler").unlink()
        groups = open_store(disk / "frames.zarr").groups()
        for group in groups:
            assert_group_matches(group, rank=0, env=group.env)
        observe(
            5, "disk full at close() (tmpfs, last partial chunk)",
            f"close() raised `{one_line(str(error.value)).replace(str(disk) + '/', '')[:160]}`; "
            f"stored rows {[g.rows for g in groups]}, exact; status "
            f"{sorted({g.status for g in groups})}",
        )  # fmt: skip
        raised_in_our_code(error.value)
        assert "No space left on device" in str(error.value)
        assert "rows up to 20 are committed" in str(error.value)
        assert [g.rows for g in groups] == [20, 20]
        # no room to record "failed" either: the groups read as a writer that died
        assert {g.status for g in groups} == {"recording"}
