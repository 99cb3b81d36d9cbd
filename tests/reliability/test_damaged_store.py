"""Part 4: damaged stores. Each case damages one thing in a copy of a small healthy store, then
renders it with ``python -m render`` and checks it with ``python -m collect.check``.

Expected everywhere: a message that names the group and what is wrong, the other groups
render in full, and both exit statuses say what happened (render: 0 complete, 1 some output
failed, partial or with partial metadata, 2 not a store; check: 0 healthy, 1 damaged or
partial metadata, 2 not a store). A lost metadata array (reward, an info key) loses no frame:
the victim's video has every row, marked ``partial metadata`` ("degrade, don't drop").
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import zarr
from chaos import one_line
from framegen import pattern_batch
from test_render_kill import decoded_frames

from collect import FrameWriter
from collect.check import main as check_main
from render.cli import main as render_main

ROWS, ENVS, CHUNK = 40, 3, 8
SIZES = {"zed": (48, 64), "left_realsense": (32, 32)}
VICTIM = "rank0_gpu0_env1"
HEALTHY = ["rank0_gpu0_env0", "rank0_gpu0_env2"]


@pytest.fixture(scope="module")
def healthy_store(tmp_path_factory) -> Path:
    """3 groups x 2 cameras x 40 rows in 8-row chunks, with an info key; never modified."""
    path = tmp_path_factory.mktemp("healthy") / "frames.zarr"
    with FrameWriter(path, num_envs=ENVS, fps=10, chunk_frames=CHUNK) as writer:
        for step in range(ROWS):
            writer.append(pattern_batch(0, ENVS, step, SIZES), info={"success": step == 30})
    return path


def victim(store: Path, *parts: str) -> Path:
    return store.joinpath(VICTIM, *parts)


def chunk(store: Path, camera: str = "zed", index: int = 2) -> Path:
    """A frame chunk file of the victim (index 2: rows 16:24)."""
    return victim(store, "cameras", camera, "c", str(index), "0", "0", "0")


def edit_attrs(path: Path, edit: Callable[[dict], object]) -> None:
    """Change the attributes in a ``zarr.json`` in place."""
    meta = json.loads(path.read_text())
    edit(meta["attributes"])
    path.write_text(json.dumps(meta))


def resize(path: Path, rows: int) -> None:
    array = zarr.open_array(str(path), mode="r+")
    array.resize((rows, *array.shape[1:]))


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])


def garbage(path: Path) -> None:
    path.write_bytes(np.random.default_rng(0).bytes(len(path.read_bytes())))


def stray_partials(store: Path) -> None:
    """What a SIGKILL during zarr's atomic writes leaves behind."""
    (chunk(store).parent / "0.1f2e3d.partial").write_bytes(b"half a chunk")
    (victim(store) / "zarr.json.9a8b7c.partial").write_text('{"half": ')


@dataclass(frozen=True)
class Damage:
    """A way to damage a store and what the render and the check must then say.

    ``status``/``frames``: the victim group's render status and its video's frame count
    (None: no video); ``says``: a fragment both the render and the check print (the check
    alone when ``render_says`` is False); ``render_exit``/``check_exit``: exit statuses;
    ``note``: a fragment of the victim's row in the render's summary table.
    """

    harm: Callable[[Path], None]
    status: str | None
    frames: int | None
    says: str
    render_exit: int
    check_exit: int
    render_says: bool = True
    note: str | None = None


ROW_DAMAGE = "rows 16:24 unreadable"
CASES = {
    "truncated chunk file": Damage(lambda s: truncate(chunk(s)), "partial", 32, ROW_DAMAGE, 1, 1),
    "zero-length chunk file": Damage(
        lambda s: chunk(s).write_bytes(b""), "partial", 32, ROW_DAMAGE, 1, 1
    ),
    "garbage bytes in a chunk": Damage(
        lambda s: garbage(chunk(s)), "partial", 32, ROW_DAMAGE, 1, 1
    ),
    "deleted chunk file": Damage(
        lambda s: chunk(s).unlink(), "partial", 32, "chunk files missing for rows 16:24", 1, 1
    ),
    "deleted zarr.json of a camera array": Damage(
        lambda s: victim(s, "cameras", "zed", "zarr.json").unlink(),
        "failed", None, "array 'cameras/zed' is missing (no zarr.json)", 1, 1,
    ),
    "corrupted zarr.json of a camera array": Damage(
        lambda s: garbage(victim(s, "cameras", "zed", "zarr.json")),
        "failed", None, "array 'cameras/zed' metadata unreadable", 1, 1,
    ),
    "deleted zarr.json of a scalar array (reward)": Damage(
        lambda s: victim(s, "reward", "zarr.json").unlink(),
        "rendered", ROWS, "array 'reward' is missing (no zarr.json)", 1, 1,
        note="partial metadata: reward missing",
    ),
    "garbage bytes in a reward chunk": Damage(
        lambda s: garbage(victim(s, "reward", "c", "0")),
        "rendered", ROWS, "array 'reward' rows 0:40 unreadable", 1, 1,
        note="partial metadata: reward unreadable",
    ),
    "deleted zarr.json of an info array": Damage(
        lambda s: victim(s, "info", "success", "zarr.json").unlink(),
        "rendered", ROWS, "info array 'success' has no metadata", 1, 1,
        note="partial metadata: info/success missing",
    ),
    "deleted episode array": Damage(
        lambda s: shutil.rmtree(victim(s, "episode")),
        "rendered", ROWS, "array 'episode' is missing (no zarr.json)", 1, 1,
        note="partial metadata: episode missing",
    ),
    "deleted zarr.json of a group": Damage(
        lambda s: victim(s, "zarr.json").unlink(),
        "failed", None, f"group '{VICTIM}': metadata missing (no zarr.json)", 1, 1,
    ),
    "corrupted zarr.json of a group": Damage(
        lambda s: victim(s, "zarr.json").write_text("{garbage"),
        "failed", None, f"group '{VICTIM}': metadata unreadable", 1, 1,
    ),
    "group attributes without committed_rows": Damage(
        lambda s: edit_attrs(victim(s, "zarr.json"), lambda a: a.pop("committed_rows")),
        "failed", None, f"group '{VICTIM}': attributes incomplete", 1, 1,
    ),
    "a camera array shorter than the committed rows": Damage(
        lambda s: resize(victim(s, "cameras", "left_realsense"), 20),
        "partial", 16, "has 20 rows, fewer than the 40 committed", 1, 1,
    ),
    "committed_rows beyond every array": Damage(
        lambda s: edit_attrs(victim(s, "zarr.json"), lambda a: a.update(committed_rows=ROWS + 16)),
        "partial", ROWS, "has 40 rows, fewer than the 56 committed", 1, 1,
    ),
    "stray *.partial files (left by a SIGKILL)": Damage(
        stray_partials, "rendered", ROWS, "3 groups: 3 ok, 0 damaged", 0, 0, render_says=False
    ),
    "deleted zarr.json of the root": Damage(
        lambda s: (s / "zarr.json").unlink(), None, None, "is not a readable zarr group", 2, 2
    ),
    "corrupted zarr.json of the root": Damage(
        lambda s: garbage(s / "zarr.json"), None, None, "is not a readable zarr group", 2, 2
    ),
    "unknown format version": Damage(
        lambda s: edit_attrs(s / "zarr.json", lambda a: a["evalframes"].update(version=99)),
        None, None, "store format version 99; this evalframes reads version 1", 2, 2,
    ),
}  # fmt: skip


def quote(text: str, fragment: str, replace: dict[str, str], width: int = 150) -> str:
    """The message that carries ``fragment``, from its ``group '...'`` on, quoted for a table."""
    line = next((x for x in text.splitlines() if fragment in x), None)
    if line is None:
        return "nothing"
    for old, new in replace.items():
        line = line.replace(old, new)
    start = line.find("group '")
    line = " ".join(line[start if 0 <= start <= line.find(fragment) else 0 :].split())
    return f"`{line[:width]}{'...' if len(line) > width else ''}`"


def row_of(summary: str, group: str) -> str:
    """A group's row in the render summary table ("" when it has none)."""
    prefix = f"behavior_video_{group}.mp4"
    return next((x for x in summary.splitlines() if x.startswith(prefix)), "")


def status_of(summary: str, group: str) -> str | None:
    """A group's status in the render summary table (None when it has no row)."""
    for line in summary.splitlines():
        if line.startswith(f"behavior_video_{group}.mp4"):
            return line.split()[1]
    return None


@pytest.mark.parametrize("case", list(CASES))
def test_damage_is_reported_and_the_other_groups_render(healthy_store, tmp_path, case, capsys,
                                                        caplog, observe):  # fmt: skip
    damage = CASES[case]
    store, out = tmp_path / "frames.zarr", tmp_path / "out"
    shutil.copytree(healthy_store, store)
    damage.harm(store)

    render_exit = render_main([str(store), str(out)])
    rendered = capsys.readouterr()
    check_exit = check_main([str(store)])
    checked = capsys.readouterr()
    said = rendered.out + rendered.err + caplog.text  # the CLI logs to stderr; pytest takes it
    videos = {g: decoded_frames(out / f"behavior_video_{g}.mp4") for g in HEALTHY if out.exists()}
    shown = {str(tmp_path) + "/": ""}
    observe(
        4, case,
        f"render: exit {render_exit}, {VICTIM} {status_of(rendered.out, VICTIM) or '-'}, "
        f"others {'/'.join(map(str, videos.values())) or '-'} frames, "
        f"says {quote(said, damage.says, shown)}; "
        f"check: exit {check_exit}, says {quote(checked.out + checked.err, damage.says, shown)}",
        damaged_case=True,
    )  # fmt: skip
    assert (render_exit, check_exit) == (damage.render_exit, damage.check_exit)
    assert damage.says in checked.out + checked.err
    assert not damage.render_says or damage.says in said
    if damage.render_exit == 2:  # not a store: one line on stderr, nothing rendered
        assert one_line(rendered.err).startswith("python -m render: error:")
        assert not out.exists() or not list(out.glob("*.mp4"))
        return
    assert videos == dict.fromkeys(HEALTHY, ROWS)
    assert status_of(rendered.out, VICTIM) == damage.status
    if damage.note is not None:
        assert damage.note in row_of(rendered.out, VICTIM)
    video = out / f"behavior_video_{VICTIM}.mp4"
    assert (decoded_frames(video) if video.exists() else None) == damage.frames


def test_check_lists_every_group_even_when_the_root_is_unreadable(healthy_store, tmp_path, capsys,
                                                                  observe):  # fmt: skip
    store = tmp_path / "frames.zarr"
    shutil.copytree(healthy_store, store)
    (store / "zarr.json").unlink()
    chunk(store).unlink()
    status = check_main([str(store)])
    out, err = capsys.readouterr()
    shown = {str(tmp_path) + "/": ""}
    observe(
        4, "root zarr.json and a chunk deleted: python -m collect.check",
        f"exit {status}, says {quote(err, 'is not a readable', shown)}, still checks the groups: "
        f"{quote(out, 'missing', shown)}, {quote(out, 'groups:', shown)}",
        damaged_case=True,
    )  # fmt: skip
    assert status == 2
    assert one_line(err).endswith(
        f"{str(store)!r} is not a readable zarr group: no group metadata (zarr.json) at its root"
    )
    assert out.strip().splitlines()[-1] == "3 groups: 2 ok, 1 damaged"
    assert "chunk files missing for rows 16:24" in out


def test_check_without_decoding_sees_missing_files_but_not_bad_bytes(healthy_store, tmp_path,
                                                                     capsys, observe):  # fmt: skip
    store = tmp_path / "frames.zarr"
    shutil.copytree(healthy_store, store)
    garbage(chunk(store, index=1))
    chunk(store, index=3).unlink()
    quick = check_main([str(store), "--no-decode"])
    quick_out = capsys.readouterr().out
    full = check_main([str(store)])
    full_out = capsys.readouterr().out
    observe(
        4, "python -m collect.check --no-decode (garbage chunk + deleted chunk)",
        f"--no-decode: exit {quick}, {quick_out.count('    ')} problem (the missing file); "
        f"decoding: exit {full}, {full_out.count('    ')} problems",
    )  # fmt: skip
    assert (quick, full) == (1, 1)
    assert "chunk file missing for rows 24:32" in quick_out and "8:16" not in quick_out
    assert "rows 8:16 unreadable" in full_out and "missing for rows 24:32" in full_out
