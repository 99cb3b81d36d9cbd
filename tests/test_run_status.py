"""What a run says about itself: failed and interrupted runs, reruns into the same store,
RLinf's ``info_on_video``, and Ctrl-C on ``python -m collect``."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import collect.eval.envs
from collect import open_store
from collect.check import check_store
from collect.eval.config import ConfigError, load_config, to_container
from collect.eval.placement import plan_env_workers
from collect.eval.runner import run_eval, run_worker

ROOT = Path(__file__).resolve().parent.parent
TESTING = ROOT / "configs" / "testing_1x2.yaml"


def tiny(tmp_path: Path, *more: str) -> list[str]:
    return [
        f"runner.output_dir={tmp_path}",
        "env.image_size=32",
        "env.eval.max_episode_steps=6",
        "env.eval.video_cfg.render.preset=ultrafast",
        *more,
    ]


@pytest.fixture(scope="module")
def client():
    from distributed import Client, LocalCluster

    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                           dashboard_address=None)  # fmt: skip
    with Client(cluster) as client:
        yield client
    cluster.close()


def one_worker(tmp_path: Path) -> tuple[dict, object]:
    cfg = load_config(TESTING, tiny(tmp_path, "env.eval.video_cfg.save_video=false"))
    worker = plan_env_workers(
        to_container(cfg)["cluster"]["component_placement"], cfg.env.eval.total_num_envs, None
    )[0]
    return to_container(cfg), worker


class CrashingPolicy:
    """The scripted policy, until it raises at step ``at`` (a bug in a policy)."""

    def __init__(self, inner: object, at: int) -> None:
        self.inner, self.at, self.step = inner, at, 0

    def __call__(self, obs: object) -> object:
        self.step += 1
        if self.step > self.at:
            raise RuntimeError("the policy crashed")
        return self.inner(obs)


@pytest.mark.parametrize(("at", "rows", "state"), [(0, 0, "empty"), (3, 3, "unfinished")])
def test_a_failed_run_marks_its_groups_failed_and_check_says_so(
    tmp_path, monkeypatch, at, rows, state
):
    cfg, worker = one_worker(tmp_path)
    scripted = collect.eval.envs.make_policy

    def crashing(name: str, env: object, **kwargs: object) -> CrashingPolicy:
        if at == 0:
            raise RuntimeError("the policy crashed before the first step")
        return CrashingPolicy(scripted(name, env, **kwargs), at)

    monkeypatch.setattr(collect.eval.envs, "make_policy", crashing)  # run_worker imports it
    with pytest.raises(RuntimeError, match="crashed"):
        run_worker(worker, cfg)
    path = cfg["env"]["eval"]["video_cfg"]["frames_path"]
    groups = open_store(path).groups()
    assert [(g.rows, g.status) for g in groups] == [(rows, "failed")] * worker.num_envs
    health = check_store(path)
    assert health.exit_status == 1
    assert [g.state for g in health.groups] == [state] * worker.num_envs
    assert health.report().splitlines()[-1].endswith(f"{worker.num_envs} {state}")


def test_a_rerun_into_the_same_store_is_refused_or_replaces_the_whole_run(tmp_path, client):
    first = load_config(TESTING, tiny(tmp_path, "env.eval.video_cfg.save_video=false"))
    run_eval(first, client=client)
    again = load_config(TESTING, tiny(tmp_path, "env.eval.video_cfg.save_video=false"))
    with pytest.raises(ConfigError, match=r"already holds a run \(2 env groups\); set "
                       r"env\.eval\.video_cfg\.overwrite=true"):  # fmt: skip
        run_eval(again, client=client)
    # another layout, overwrite: only the new run is in the store
    other = load_config(TESTING, tiny(
        tmp_path, "env.eval.video_cfg.save_video=false", "env.eval.video_cfg.overwrite=true",
        "env.eval.total_num_envs=1",
    ))  # fmt: skip
    run_eval(other, client=client)
    store = open_store(other.env.eval.video_cfg.frames_path)
    assert [(g.name, g.rows, g.status) for g in store.groups()] == [
        ("rank0_gpu0_env0", 6, "complete")
    ]
    assert check_store(store.location).exit_status == 0


def test_a_folder_that_is_not_a_store_is_never_replaced(tmp_path):
    cfg = load_config(TESTING, tiny(tmp_path, "env.eval.video_cfg.overwrite=true"))
    path = Path(cfg.env.eval.video_cfg.frames_path)
    path.mkdir(parents=True)
    (path / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match="exists and is not an evalframes frame store"):
        run_eval(cfg)
    assert (path / "notes.txt").read_text() == "mine"


@pytest.mark.parametrize(("info_on_video", "overlay"), [("true", True), ("false", False)])
def test_info_on_video_draws_the_overlay_with_the_extra_keys(
    tmp_path, client, info_on_video, overlay
):
    cfg = load_config(TESTING, tiny(tmp_path, f"env.eval.video_cfg.info_on_video={info_on_video}"))
    summary = run_eval(cfg, client=client)
    assert summary.render_ok and len(summary.videos) == 2
    video_dir = Path(cfg.env.eval.video_cfg.video_base_dir)
    for video in summary.videos:
        options = json.loads((video_dir / ".render" / f"{video.name}.json").read_text())["options"]
        assert options["overlay"] is overlay
        assert options["overlay_keys"] == (["success"] if overlay else None)


def test_ctrl_c_is_one_line_exit_130_and_groups_interrupted(tmp_path):
    cmd = [sys.executable, "-m", "collect", str(TESTING), f"runner.output_dir={tmp_path}",
           "env.image_size=32", "env.eval.max_episode_steps=5000",
           "env.eval.video_cfg.save_video=false",
           "env.eval.video_cfg.flush_interval=0.2"]  # fmt: skip
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "MUJOCO_GL": "egl"}, start_new_session=True,
        preexec_fn=_default_sigint,
    )  # fmt: skip
    store = tmp_path / "video" / "eval" / "frames.zarr"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not _has_rows(store):
        time.sleep(0.5)
    assert _has_rows(store), "the run never committed a row"
    os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C reaches the terminal's whole process group
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, f"stdout:\n{out}\nstderr:\n{err}"
    assert err.strip().splitlines() == ["python -m collect: interrupted"], err
    deadline = time.monotonic() + 60  # the writer processes commit what was appended
    while time.monotonic() < deadline and {g.status for g in open_store(store).groups()} != {
        "interrupted"
    }:
        time.sleep(0.5)
    groups = open_store(store).groups()
    assert {g.status for g in groups} == {"interrupted"} and all(g.rows > 0 for g in groups)


def _default_sigint() -> None:
    """In the child, before exec: Ctrl-C as a terminal delivers it. An ignored SIGINT is
    inherited across exec, and tests started in the background (a shell's ``&``) have one."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _has_rows(store: Path) -> bool:
    try:
        return any(g.rows > 0 for g in open_store(store).groups())
    except (OSError, ValueError):
        return False
