"""Part 6: bad input to every public entry point.

``FrameWriter`` (constructor, first ``append``, ``append`` mid-run), the adapters,
``RecordFrames``, ``render_store`` and the three command lines (``python -m render``,
``python -m collect``, ``python -m collect.check``). Each bad input must give a clear one-line
error raised by evalframes (never a traceback from deep inside numpy, zarr or ffmpeg), a usage
exit status from the command lines, and a writer must keep every row stored before it. The
writer's cases of ``tests/test_writer.py`` are reused, not copied.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import psutil
import pytest
import zarr
from chaos import one_line, raised_in_our_code, unwritable_dir
from framegen import pattern_batch
from test_writer import BAD_INPUTS as WRITER_TEST_CASES

from collect import FrameInputError, FrameWriter, adapters, open_store
from collect.check import main as check_main
from collect.eval.cli import main as collect_main
from render import render_store
from render.cli import main as render_main

ENVS = 4
GOOD = {"zed": np.full((ENVS, 8, 8, 3), 9, np.uint8)}
TWO_CAMERAS = {**GOOD, "wrist": np.full((ENVS, 8, 8, 3), 9, np.uint8)}


def frames(shape=(ENVS, 8, 8, 3), dtype=np.uint8, value=9) -> np.ndarray:
    return np.full(shape, value, dtype)


def clear_error(error: BaseException) -> str:
    """``Type: message`` of an error asserted to be one line, one argument, raised by us."""
    raised_in_our_code(error)
    assert len(error.args) == 1, error.args
    return f"{type(error).__name__}: {one_line(str(error))}"


def record_error(observe, entry: str, case: str, error: BaseException, tmp: Path) -> str:
    shown = clear_error(error).replace(str(tmp) + "/", "")
    observe(6, f"{entry}: {case}", f"`{shown[:170]}`", bad_input=True)
    return shown


# ----------------------------------------------------------------------------- FrameWriter()

CONSTRUCTOR = {
    "num_envs=0": ({"num_envs": 0}, "num_envs must be a positive integer. Got 0 instead."),
    "num_envs=2.5": ({"num_envs": 2.5}, "num_envs must be a positive integer. Got 2.5"),
    "num_envs='4'": ({"num_envs": "4"}, "num_envs must be a positive integer. Got '4'"),
    "rank=-1 (groups readers never list)": ({"rank": -1}, "rank must be an integer >= 0"),
    "gpu=None": ({"gpu": None}, "gpu must be an integer >= 0. Got None instead."),
    "fps=0": ({"fps": 0}, "fps must be a positive number. Got 0 instead."),
    "fps=nan": ({"fps": float("nan")}, "fps must be a positive number. Got nan"),
    "fps=inf": ({"fps": float("inf")}, "fps must be a positive number. Got inf"),
    "flush_interval=0": ({"flush_interval": 0}, "flush_interval must be a positive number"),
    "max_buffer_mb=-1": ({"max_buffer_mb": -1}, "max_buffer_mb must be a positive number"),
    "chunk_frames=0": ({"chunk_frames": 0}, "chunk_frames must be a positive integer"),
    "chunk_frames=2.5": ({"chunk_frames": 2.5}, "chunk_frames must be a positive integer"),
    "threads=0": ({"threads": 0}, "threads must be a positive integer"),
    "unknown codec": (
        {"codec": "h264"},
        "unknown frame codec 'h264'; choose from avif, jpeg, lz4, none, webp, zstd",
    ),
    "jpeg quality 101": ({"codec": {"id": "jpeg", "quality": 101}}, "quality must be in 0..100"),
    "zstd level 99": (
        {"codec": {"id": "zstd", "level": 99}},
        "frame codec {'id': 'zstd', 'level': 99}: Value must be less than or equal to 22",
    ),
    "codec option typo": ({"codec": {"id": "zstd", "lvl": 3}}, "unexpected keyword argument 'lvl'"),
    "store=None": ({"store": None}, "store must be a path or a URL. Got None instead."),
}


@pytest.mark.parametrize("case", list(CONSTRUCTOR))
def test_frame_writer_arguments(tmp_path, case, observe):
    kwargs, message = CONSTRUCTOR[case]
    kwargs = {"store": tmp_path / "s.zarr", **kwargs}
    with pytest.raises((ValueError, TypeError)) as error:
        FrameWriter(**kwargs)
    record_error(observe, "FrameWriter()", case, error.value, tmp_path)
    assert message in str(error.value)


def foreign_group(tmp_path: Path) -> Path:
    zarr.open_group(str(tmp_path / "other.zarr"), mode="w").attrs["x"] = 1
    return tmp_path / "other.zarr"


def taken_store(tmp_path: Path) -> Path:
    with FrameWriter(tmp_path / "s.zarr") as writer:
        writer.append(frames((1, 8, 8, 3)))
    return tmp_path / "s.zarr"


def file_parent(tmp_path: Path) -> Path:
    (tmp_path / "file").write_text("not a folder")
    return tmp_path / "file" / "s.zarr"


STORE_PATHS = {
    "store under a file": (file_parent, OSError, "cannot create frame store at 'file/s.zarr'"),
    "store in an unwritable folder": (lambda tmp: tmp / "ro" / "s.zarr", OSError, "ro/s.zarr"),
    "store is another zarr group": (foreign_group, ValueError, "not an evalframes frame store"),
    "this worker's groups exist": (taken_store, FileExistsError, "group 'rank0_gpu0_env0' "),
}


@pytest.mark.parametrize("case", list(STORE_PATHS))
def test_frame_writer_store_paths(tmp_path, case, observe):
    make, kind, message = STORE_PATHS[case]
    with contextlib.ExitStack() as stack:
        if "unwritable" in case:
            stack.enter_context(unwritable_dir(tmp_path / "ro"))
        with pytest.raises(kind) as error:
            FrameWriter(make(tmp_path))
    record_error(observe, "FrameWriter()", case, error.value, tmp_path)
    assert message in str(error.value).replace(str(tmp_path) + "/", "")


# ----------------------------------------------------------------------------- append()


@dataclass(frozen=True)
class Bad:
    """A bad ``append`` after three good ones (``before``), and the message it must give."""

    obs: Any
    message: str | re.Pattern
    kwargs: dict = field(default_factory=dict)
    before: dict = field(default_factory=lambda: GOOD)
    before_kwargs: dict = field(default_factory=dict)


MID_RUN = {
    **{f"{case} (tests/test_writer.py)": Bad(obs, re.compile(pattern))
       for case, (obs, pattern) in WRITER_TEST_CASES.items()},
    "inf in float frames": Bad(frames(dtype=np.float32, value=np.inf), "env 0: frame contains NaN"),
    "empty batch (0 envs)": Bad(frames((0, 8, 8, 3)), "does not have 4 envs first"),
    "no cameras at all": Bad({}, "cameras changed mid-run: now []"),
    "a camera vanishes": Bad(GOOD, "now ['zed'], first step had ['wrist', 'zed']",
                             before=TWO_CAMERAS),
    "bool frames": Bad(frames(dtype=bool), "unsupported frame dtype bool"),
    "object frames": Bad(frames(dtype=object), "unsupported frame dtype object"),
    "5-D batch": Bad(frames((ENVS, 1, 8, 8, 3)), "does not have 4 envs first"),
    "obs None": Bad(None, "unsupported observation type NoneType"),
    "frames as a list": Bad({"zed": [frames()[0]] * ENVS}, "expected an array or tensor, got list"),
    "reward 'abc'": Bad(GOOD, "reward must be numbers", {"reward": "abc"}),
    "reward a dict": Bad(GOOD, "reward must be numbers", {"reward": {"a": 1}}),
    "terminated 'yes'": Bad(GOOD, "terminated must be numbers", {"terminated": "yes"}),
    "truncated with 3 values": Bad(GOOD, "truncated has 3 values, expected 4",
                                   {"truncated": [0, 1, 0]}),
    "info a string": Bad(GOOD, "info must be a dict or a list", {"info": "abc"}),
    "info tuple key": Bad(GOOD, "info key ('a',) is not a string", {"info": {("a",): 1}}),
    "info list with int key": Bad(GOOD, "info key 1 is not a string", {"info": [{1: 2}] * ENVS}),
    "info list of 3 dicts": Bad(GOOD, "info list has 3 envs, expected 4", {"info": [{}] * 3}),
    "info None values": Bad(GOOD, "'x': values must be numbers", {"info": {"x": None}}),
    "info bytes values": Bad(GOOD, "'b': values must be numbers", {"info": {"b": [b"x"] * 4}}),
    "info int beyond int64": Bad(GOOD, "'big': values must be numbers", {"info": {"big": 2**70}}),
    "info key changes type": Bad(GOOD, "info key 's': got float64 values after bool ones",
                                 {"info": {"s": 0.5}}, before_kwargs={"info": {"s": True}}),
}  # fmt: skip


@pytest.mark.parametrize("case", list(MID_RUN))
def test_bad_append_mid_run_is_refused_and_keeps_the_rows(tmp_path, case, observe):
    bad = MID_RUN[case]
    writer = FrameWriter(tmp_path / "s.zarr", num_envs=ENVS)
    for _ in range(3):
        writer.append(bad.before, **bad.before_kwargs)
    writer.flush()  # stored before the bad input
    with pytest.raises(FrameInputError) as error:
        writer.append(bad.obs, **bad.kwargs)
    shown = record_error(observe, "FrameWriter.append() mid-run", case, error.value, tmp_path)
    writer.append(bad.before, **bad.before_kwargs)
    writer.close()
    groups = open_store(tmp_path / "s.zarr").groups()
    assert [g.rows for g in groups] == [4] * ENVS, shown
    assert all((g.frames("zed") == 9).all() for g in groups)
    if isinstance(bad.message, re.Pattern):
        assert bad.message.search(str(error.value)), shown
    else:
        assert bad.message in str(error.value), shown


FIRST_APPEND = {
    "a requested camera is missing": ({"cameras": ["nope"]}, GOOD, "cameras ['nope'] requested"),
    "shard_frames not a multiple of chunk_frames": (
        {"chunk_frames": 8, "shard_frames": 12}, GOOD, "shard_frames must be a multiple of"
    ),
    "empty frames (0x8)": ({}, {"zed": frames((ENVS, 0, 8, 3))}, "camera 'zed': empty frames"),
    "no cameras at all": ({}, {}, "observation has no cameras"),
    "huge frames over max_buffer_mb": (
        {"max_buffer_mb": 64}, frames((ENVS, 4096, 4096, 3), value=0),
        "needs 192.0 MiB plus two ring rows of 192.0 MiB, but max_buffer_mb is 64",
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", list(FIRST_APPEND))
def test_bad_first_append_leaves_a_readable_empty_store(tmp_path, case, observe):
    kwargs, obs, message = FIRST_APPEND[case]
    writer = FrameWriter(tmp_path / "s.zarr", num_envs=ENVS, **kwargs)
    with pytest.raises(ValueError) as error:
        writer.append(obs)
    record_error(observe, "FrameWriter.append() first row", case, error.value, tmp_path)
    writer.close()
    assert message in str(error.value)
    assert [g.rows for g in open_store(tmp_path / "s.zarr").groups()] == [0] * ENVS


def test_huge_frames_stay_within_the_memory_cap(tmp_path, observe):
    """1024x1024 noise from 2 envs under a 64 MiB cap: buffers stay within it, append waits.

    Both processes are measured: the rollout's growth (its ring pages) and the writer
    process's peak (ring pages it maps, its chunk buffer, zarr's encode copies, and the
    interpreter with numpy and zarr loaded)."""
    cap_mb, size = 64, (2, 1024, 1024, 3)
    rng = np.random.default_rng(0)
    batches = [rng.integers(0, 256, size, dtype=np.uint8) for _ in range(4)]
    process = psutil.Process()
    before = process.memory_info().rss
    peak, writer_peak = before, 0
    with FrameWriter(tmp_path / "s.zarr", num_envs=2, max_buffer_mb=cap_mb) as writer:
        child = psutil.Process(writer.writer_pid)
        for step in range(40):
            writer.append(batches[step % 4])
            peak = max(peak, process.memory_info().rss)
            writer_peak = max(writer_peak, child.memory_info().rss)
    grown, writer_mb = (peak - before) / 2**20, writer_peak / 2**20
    observe(
        6, "FrameWriter.append(): huge frames (1024x1024, 2 envs, max_buffer_mb=64)",
        f"40 rows stored; rollout resident memory grew at most {grown:.0f} MiB, the writer "
        f"process peaked at {writer_mb:.0f} MiB resident (cap {cap_mb} MiB for frame buffers, "
        f"plus the interpreter and compression buffers); ring high water "
        f"{writer.stats.queue_high_water} of {writer.stats.ring_slots} rows, append blocked "
        f"{writer.stats.blocked_seconds:.2f} s",
        bad_input=True,
    )  # fmt: skip
    assert [g.rows for g in open_store(tmp_path / "s.zarr").groups()] == [40, 40]
    assert grown < cap_mb + 32  # the ring, inside the cap; the rest is small
    assert writer_mb < cap_mb + 192  # frame buffers within the cap, plus the stated constant


# ----------------------------------------------------------------------------- adapters

ADAPTERS: dict[str, tuple[Callable[[], Any], str]] = {
    "to_camera_batches('frames')": (
        lambda: adapters.to_camera_batches("frames", 2), "unsupported observation type str"
    ),
    "to_camera_batches(3 envs for 2)": (
        lambda: adapters.to_camera_batches({"zed": frames((3, 8, 8, 3))}, 2), "(N=2, H, W, C)"
    ),
    "to_numpy_uint8_rgb(bool)": (
        lambda: adapters.to_numpy_uint8_rgb(frames(dtype=bool), "zed"), "dtype bool"
    ),
    "info_columns(strings)": (
        lambda: adapters.info_columns({"a": ["x", "y"]}, 2), "'a': values must be numbers"
    ),
    "as_env_vector(3 values for 2)": (
        lambda: adapters.as_env_vector([1, 2, 3], 2, "reward", np.float32), "3 values"
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", list(ADAPTERS))
def test_adapters(tmp_path, case, observe):
    call, message = ADAPTERS[case]
    with pytest.raises(FrameInputError) as error:
        call()
    record_error(observe, "collect.adapters", case, error.value, tmp_path)
    assert message in str(error.value)


def test_record_frames_without_rgb_rendering(tmp_path, observe):
    gym = pytest.importorskip("gymnasium")
    from collect.wrappers import RecordFrames

    envs = gym.make_vec("CartPole-v1", num_envs=2, vectorization_mode="sync")
    with pytest.raises(ValueError) as error:
        RecordFrames(envs, tmp_path / "s.zarr")
    envs.close()
    record_error(observe, "collect.RecordFrames()", "env without render_mode", error.value,
                 tmp_path)  # fmt: skip
    assert "rgb_array" in str(error.value)


# ----------------------------------------------------------------------------- render


@pytest.fixture(scope="module")
def small_store(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("small") / "frames.zarr"
    with FrameWriter(path, num_envs=2, fps=10) as writer:
        for step in range(6):
            writer.append(pattern_batch(0, 2, step))
    return path


def empty(tmp: Path) -> Path:
    (tmp / "empty").mkdir()
    return tmp / "empty"


def not_a_dir(tmp: Path) -> str:
    (tmp / "file").write_text("x")
    return str(tmp / "file")


RENDER_CLI = {  # (store, out) -> argv; (exit status, message): every one names its flag
    "--size 0x5": (["--size", "0x5"], 2, "--size must be two positive integers WxH. Got 0x5"),
    "--size 10x": (["--size", "10x"], 2, "--size: size must look like WIDTHxHEIGHT (640x480)"),
    "--size -3x4": (["--size", "-3x4"], 2, "--size must be two positive integers WxH. Got -3x4"),
    "--size 1x1": (["--size", "1x1"], 2, "--size must be from 16x16 to 8192x8192 pixels. Got 1x1"),
    "--size 100000x100000": (
        ["--size", "100000x100000"], 2, "--size must be from 16x16 to 8192x8192 pixels"
    ),
    "--scale 0.01": (["--scale", "0.01"], 2, "--scale 0.01 makes"),
    "--scale 100": (["--scale", "100"], 2, "each side must be from 16 to 8192 pixels"),
    "--size with --scale": (["--size", "64x64", "--scale", "2"], 2, "pass --size or --scale"),
    "--fit wide": (["--size", "64x64", "--fit", "wide"], 2, "argument --fit: invalid choice"),
    "--fps -1": (["--fps", "-1"], 2, "--fps must be a positive number. Got -1.0 instead."),
    "--fps 0": (["--fps", "0"], 2, "--fps must be a positive number. Got 0.0 instead."),
    "--fps nan": (["--fps", "nan"], 2, "--fps must be a positive number. Got nan instead."),
    "--fps inf": (["--fps", "inf"], 2, "--fps must be a positive number. Got inf instead."),
    "--scale 0": (["--scale", "0"], 2, "--scale must be a positive number"),
    "--crf 99": (["--crf", "99"], 2, "--crf must be an integer from 0 to 63. Got 99"),
    "--crf abc": (["--crf", "abc"], 2, "argument --crf: invalid int value: 'abc'"),
    "--codec nope (unknown codec)": (["--codec", "nope"], 2, "unknown video codec 'nope'"),
    "--preset fastest": (["--preset", "fastest"], 2, "libx264 rejects crf=23 preset=fastest"),
    "--layout grd": (["--layout", "grd"], 2, "unknown layout 'grd'; choose from"),
    "--workers 0": (["--workers", "0"], 2, "--workers must be a positive integer. Got 0"),
    "--encoder-threads 0": (
        ["--encoder-threads", "0"], 2, "--encoder-threads must be a positive integer"
    ),
    "--cameras ,": (["--cameras", ","], 2, "--cameras must name at least one camera"),
    "--cameras nope": (["--cameras", "nope"], 1, "has no camera 'nope'; it has zed"),
    "--overlay-keys without --overlay": (
        ["--overlay-keys", "success"], 2, "--overlay-keys needs --overlay"
    ),
    "--groups 'rank9_*'": (["--groups", "rank9_*"], 2, "no group of"),
    "--workers with --scheduler": (
        ["--workers", "2", "--scheduler", "tcp://x:1"], 2, "pass --scheduler or --workers"
    ),
    "--scheduler unreachable": (
        ["--scheduler", "tcp://127.0.0.1:1"], 2, "cannot connect to the Dask scheduler"
    ),
    "--bogus": (["--bogus"], 2, "unrecognized arguments: --bogus"),
}  # fmt: skip
RENDER_PATHS = {  # tmp -> (store, out); (exit status, message)
    "OUT is a file": (lambda s, t: [s, not_a_dir(t)], 2, "is a file; pass a directory"),
    "OUT under a file": (lambda s, t: [s, not_a_dir(t) + "/out"], 2, "Not a directory"),
    "STORE missing": (lambda s, t: [t / "missing.zarr", t / "o"], 2, "does not exist"),
    "STORE is a file": (lambda s, t: [not_a_dir(t), t / "o"], 2, "is not a readable zarr group"),
    "STORE an empty folder": (lambda s, t: [empty(t), t / "o"], 2, "is not a readable zarr group"),
    "STORE another zarr group": (
        lambda s, t: [foreign_group(t), t / "o"], 2, "not an evalframes frame store"
    ),
}  # fmt: skip


LOG_PREFIX = re.compile(r"^[A-Z]+ [\w.]+:\w+\.py:\d+ ")  # pytest's log format; stderr has none


def run_cli(main: Callable, argv: list, capsys, caplog) -> tuple[int, str]:
    """Exit status and what a person would read: stderr, or the failed lines of the summary."""
    status = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    if status == 2:
        return status, one_line(err)
    said = [x for x in (out + err + caplog.text).splitlines() if "error" in x.lower()]
    if not said:
        return status, out.strip().splitlines()[-1]
    return status, LOG_PREFIX.sub("", " ".join(said[-1].split()))


@pytest.mark.parametrize("case", [*RENDER_CLI, *RENDER_PATHS])
def test_render_command_line(small_store, tmp_path, case, capsys, caplog, observe):
    if case in RENDER_CLI:
        args, status, message = RENDER_CLI[case]
        argv = [small_store, tmp_path / "out", *args]
    else:
        make, status, message = RENDER_PATHS[case]
        argv = make(small_store, tmp_path)
    got, said = run_cli(render_main, argv, capsys, caplog)
    said = said.replace(str(tmp_path) + "/", "").replace(str(small_store.parent) + "/", "")
    observe(6, f"python -m render: {case}", f"exit {got}: `{said[:170]}`", bad_input=True)
    assert (got, message in said) == (status, True), said
    assert "Traceback" not in said


def test_render_into_an_unwritable_folder_is_one_usage_error(small_store, tmp_path, capsys,
                                                             caplog, observe):  # fmt: skip
    with unwritable_dir(tmp_path / "ro") as out:
        status = render_main([str(small_store), str(out)])
    _, err = capsys.readouterr()
    observe(
        6, "python -m render: OUT an unwritable folder",
        f"exit {status}: `{err.strip().replace(str(out), 'OUT')[:170]}`",
        bad_input=True,
    )  # fmt: skip
    assert status == 2
    assert one_line(err)


RENDER_API = {
    "size=(0, 5)": ({"size": (0, 5)}, ValueError, "size must be two positive integers"),
    "fps=-1": ({"fps": -1}, ValueError, "fps must be a positive number. Got -1 instead."),
    "layout='grd'": ({"layout": "grd"}, ValueError, "unknown layout 'grd'"),
    "codec='nope'": ({"codec": "nope"}, ValueError, "unknown video codec 'nope'"),
}


@pytest.mark.parametrize("case", list(RENDER_API))
def test_render_store_arguments(small_store, tmp_path, case, observe):
    kwargs, kind, message = RENDER_API[case]
    with pytest.raises(kind) as error:
        render_store(small_store, tmp_path / "out", **kwargs)
    record_error(observe, "render_store()", case, error.value, tmp_path)
    assert message in str(error.value)


# ----------------------------------------------------------------------------- collect CLIs


def bad_yaml(tmp: Path) -> str:
    (tmp / "bad.yaml").write_text("env: [unclosed\n")
    return str(tmp / "bad.yaml")


SMALL_RUN = ["env.eval.max_episode_steps=2", "env.eval.total_num_envs=2", "env.image_size=16"]
COLLECT_CLI = {  # tmp -> argv; (exit status, message)
    "total_num_envs=0": (lambda t: ["env.eval.total_num_envs=0"], 2, "must be a positive integer"),
    "3 envs over 2 workers": (
        lambda t: ["env.eval.total_num_envs=3", "cluster.component_placement.env=0-1"],
        2, "does not divide evenly over 2 env workers",
    ),
    "placement '0-x'": (
        lambda t: ["cluster.component_placement.env=0-x"], 2, "cannot parse placement '0-x'"
    ),
    "video fps -1": (
        lambda t: ["env.eval.video_cfg.fps=-1"], 2, "env.eval.video_cfg.fps must be a positive"
    ),
    "max_episode_steps=abc": (
        lambda t: ["env.eval.max_episode_steps=abc"], 2, "Got 'abc' instead"
    ),
    "config file missing": (lambda t: [t / "missing.yaml"], 2, "does not exist"),
    "config file not YAML": (lambda t: [bad_yaml(t)], 2, "is not valid YAML"),
    "unknown env_type (before any worker starts)": (
        lambda t: ["env.env_type=nope", f"runner.output_dir={t}", *SMALL_RUN],
        2, "env.eval.env_type: unknown env_type 'nope'; choose from",
    ),
    "output folder is a file (found by the workers)": (
        lambda t: [f"runner.output_dir={not_a_dir(t)}", *SMALL_RUN],
        1, "cannot create frame store at",
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", list(COLLECT_CLI))
def test_collect_command_line(tmp_path, case, capsys, caplog, observe):
    make, status, message = COLLECT_CLI[case]
    got, said = run_cli(collect_main, make(tmp_path), capsys, caplog)
    said = said.replace(str(tmp_path) + "/", "")
    observe(6, f"python -m collect: {case}", f"exit {got}: `{said[:170]}`", bad_input=True)
    assert (got, message in said) == (status, True), said


def test_collect_unknown_option_is_one_line(capsys, observe):
    with pytest.raises(SystemExit) as exit_:
        collect_main(["--bogus"])
    err = capsys.readouterr().err
    observe(
        6, "python -m collect: --bogus",
        f"exit {exit_.value.code}: {err.count(chr(10))} line: `{err.strip()}`",
        bad_input=True,
    )  # fmt: skip
    assert exit_.value.code == 2
    one_line(err)


CHECK_CLI = {
    "STORE missing": (lambda s, t: [t / "missing.zarr"], "does not exist"),
    "STORE is a file": (lambda s, t: [not_a_dir(t)], "is not a readable zarr group"),
    "STORE another zarr group": (lambda s, t: [foreign_group(t)], "not an evalframes"),
    "--groups matching nothing": (lambda s, t: [s, "--groups", "rank9_*"], "no group matches"),
    "--bogus": (lambda s, t: [s, "--bogus"], "unrecognized arguments: --bogus"),
}  # fmt: skip


@pytest.mark.parametrize("case", list(CHECK_CLI))
def test_check_command_line(small_store, tmp_path, case, capsys, caplog, observe):
    make, message = CHECK_CLI[case]
    got, said = run_cli(check_main, make(small_store, tmp_path), capsys, caplog)
    said = said.replace(str(tmp_path) + "/", "")
    observe(6, f"python -m collect.check: {case}", f"exit {got}: `{said[:170]}`", bad_input=True)
    assert (got, message in said) == (2, True), said
