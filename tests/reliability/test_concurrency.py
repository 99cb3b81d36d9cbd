"""Part 3: 8 writer processes x 8 envs append to one store at once; a render runs while the
late writers are still appending.

Every frame is a ``framegen`` pattern that encodes its rank, env, camera and step, so the store
is checked exactly, while writing (by a reader racing the late writers: a torn row would show
as a frame that is not its pattern) and after. The render must cover what was committed when
it planned, frame for frame, and nothing else. The writers are ``tests/writer_child.py``
(three cameras: one more than the issue asks).
"""

from __future__ import annotations

import json
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from chaos import WRITER_CHILD, Child
from framegen import SIZES, assert_group_matches
from test_render_helpers import composed, decode

from collect import open_store
from render import get_layout
from render.compose import Canvas
from render.plan import sidecar_path

WORKERS, ENVS = 8, 8
LATE = (6, 7)  # ranks still appending while the render runs; stopped by SIGTERM after it
ROWS, LATE_SLEEP = 24, 0.1
WORST_TILE_ERROR = 30  # mean |error| of a camera's tile in a frame; a missing tile gives ~100


def appended(child: Child) -> int:
    """Rows the writer child has reported appended so far."""
    rows = [int(line.split()[0]) for line in list(child.lines) if line.split()[0].isdigit()]
    return max(rows, default=0)


def start_writer(store: Path, rank: int) -> Child:
    """An early writer appends ``ROWS`` rows and exits; a late one appends until SIGTERM."""
    late = ["--rows", 10**6, "--sleep", LATE_SLEEP] if rank in LATE else ["--rows", ROWS]
    return Child([sys.executable, WRITER_CHILD, store, rank, "--num-envs", ENVS, *late])


@dataclass
class Race:
    """What the racing reader and the mid-write render saw."""

    store: Path
    out: Path
    render_exit: int = 0
    render_stderr: str = ""
    writer_exits: list[int] = field(default_factory=list)
    late_rows: dict[int, int] = field(default_factory=dict)  # rank -> rows appended in all
    reads: int = 0  # committed rows of late groups checked frame by frame while writing
    torn: list[str] = field(default_factory=list)


def read_late_groups(race: Race) -> None:
    """Read every committed row of the late writers' groups and check each frame exactly."""
    reader = open_store(race.store)
    for rank in LATE:
        for env in range(ENVS):
            group = reader.group(f"rank{rank}_gpu{rank}_env{env}")
            try:
                assert_group_matches(group, rank=rank, env=env)
            except AssertionError as e:
                race.torn.append(str(e))
            race.reads += group.rows


@pytest.fixture(scope="module")
def race(tmp_path_factory) -> Race:
    """All writers start at once; when the early ones are done, a render runs while a reader
    checks the late writers' groups; then the late writers get SIGTERM."""
    race = Race(tmp_path_factory.mktemp("race") / "frames.zarr", tmp_path_factory.mktemp("out"))
    writers = {rank: start_writer(race.store, rank) for rank in range(WORKERS)}
    race.writer_exits = [w.finish(timeout=120) for r, w in writers.items() if r not in LATE]
    render = Child([sys.executable, "-m", "render", race.store, race.out])
    while render.proc.poll() is None:
        read_late_groups(race)
        time.sleep(0.5)
    race.render_exit, race.render_stderr = render.finish(), render.stderr
    for rank in LATE:
        race.writer_exits.append(writers[rank].stop(signal.SIGTERM))
        race.late_rows[rank] = appended(writers[rank])
    return race


def test_every_frame_of_every_writer_is_stored_exactly(race, observe):
    groups = open_store(race.store).groups()
    wrong = []
    for group in groups:
        try:
            assert_group_matches(group, rank=group.rank, env=group.env)
        except AssertionError as e:
            wrong.append(str(e))
    rows = sorted({g.rows for g in groups})
    frames = sum(g.rows for g in groups) * len(SIZES)
    observe(
        3, f"{WORKERS} writer processes x {ENVS} envs x {len(SIZES)} cameras, one store",
        f"writers exit {sorted(set(race.writer_exits))}; {len(groups)} groups, rows {rows}, "
        f"{frames} frames checked pixel for pixel: {len(wrong)} differ; status "
        f"{sorted({g.status for g in groups})}",
        silent_losses=len(wrong),
    )  # fmt: skip
    assert race.writer_exits == [0] * (WORKERS - len(LATE)) + [128 + signal.SIGTERM] * len(LATE)
    assert len(groups) == WORKERS * ENVS and not wrong
    for group in groups:  # +1: a row appended by a late writer but not yet printed
        expected = race.late_rows.get(group.rank, ROWS)
        assert expected <= group.rows <= expected + (group.rank in LATE)
        assert group.status == ("interrupted" if group.rank in LATE else "complete")


def test_a_reader_racing_the_writers_never_sees_a_torn_row(race, observe):
    observe(
        3, "reader racing 2 late writers (while the render ran)",
        f"{race.reads} committed rows x {len(SIZES)} cameras read back while being appended "
        f"to: {len(race.torn)} not their pattern",
        silent_losses=len(race.torn),
    )  # fmt: skip
    assert race.reads > 0 and race.torn == []


def worst_tile_error(video: np.ndarray, expected: np.ndarray, canvas: Canvas) -> float:
    """The largest mean absolute error of one camera's tile in one frame."""
    error = np.abs(video.astype(np.int16) - expected.astype(np.int16))
    tiles = [error[:, t.top : t.top + t.height, t.left : t.left + t.width] for t in canvas.tiles]
    return float(max(tile.mean(axis=(1, 2, 3)).max() for tile in tiles))


def test_render_while_writers_append_renders_exactly_the_committed_rows(race, observe):
    store = open_store(race.store)
    rendered, errors = {}, []
    for group in store.groups():
        video = decode(race.out / f"behavior_video_{group.name}.mp4")
        rendered[group.name] = rows = len(video)
        (canvas,) = get_layout("behavior").canvases(group.cameras)
        errors.append(worst_tile_error(video, composed(race.store, group.name)[0][:rows], canvas))
    late = {name: rows for name, rows in rendered.items() if int(name[4]) in LATE}
    observe(
        3, "python -m render while 2 writers still append",
        f"exit {race.render_exit}; {len(rendered)} MP4s; the late groups' MP4s hold "
        f"{min(late.values())}-{max(late.values())} rows of the {min(race.late_rows.values())}+ "
        f"appended in the end; worst camera tile error {max(errors):.1f}/255 (a missing "
        f"camera: ~100)",
    )  # fmt: skip
    assert race.render_exit == 0, race.render_stderr
    assert len(rendered) == WORKERS * ENVS
    assert all(rows == ROWS for name, rows in rendered.items() if name not in late)
    assert all(0 < rows < race.late_rows[int(name[4])] for name, rows in late.items())
    for name, rows in late.items():  # what was committed when the render planned
        sidecar = json.loads(sidecar_path(race.out / f"behavior_video_{name}.mp4").read_text())
        assert sidecar["rows"] == [0, rows] and sidecar["complete"]
    assert max(errors) < WORST_TILE_ERROR
