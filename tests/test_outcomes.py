"""Episode outcomes people can trust, and the run report (episodes.csv, summary.json).

Real parts throughout: stores written by FrameWriter / RecordFrames / the eval runner, the
renderer with imageio-ffmpeg's ffmpeg, and the MP4s decoded again. Expected numbers are
computed here from the raw zarr arrays, not through render.episodes.
"""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import zarr
from test_render_helpers import decode, scene

from collect import FrameWriter, open_store
from collect.eval.envs import ENV_TYPES
from collect.outcomes import END_OUTCOMES
from collect.wrappers import RecordFrames
from render import RenderOptions, render_store
from render.cli import main
from render.episodes import outcome_rule, read_episodes
from render.overlay import COLOURS, FAILURE, SUCCESS, UNKNOWN, Overlay
from render.plan import plan_outputs

CONFIGS = Path(__file__).resolve().parent.parent / "configs"


# ----------------------------------------------------------------------------- helpers


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def raw_episodes(store: Path) -> dict[str, list[dict]]:
    """Per group, each episode's rows, return and end, straight from the zarr arrays."""
    root = zarr.open_group(str(store), mode="r")
    found = {}
    for name, group in sorted(root.groups()):
        rows = int(group.attrs["committed_rows"])
        episode = group["episode"][:rows]
        reward = group["reward"][:rows].astype(np.float64)
        terminated, truncated = group["terminated"][:rows], group["truncated"][:rows]
        starts = [0, *(np.flatnonzero(episode[1:] != episode[:-1]) + 1).tolist()]
        stops = [*starts[1:], rows]
        found[name] = [
            {
                "episode": int(episode[a]),
                "first_row": a,
                "last_row": b - 1,
                "return": float(np.nansum(reward[a:b])),  # NaN: no reward given (a reset row)
                "terminated": bool(terminated[b - 1]),
                "truncated": bool(truncated[b - 1]),
            }
            for a, b in zip(starts, stops, strict=True)
        ]
    return found


def check_report_matches_the_store(out: Path, store: Path) -> tuple[list[dict], dict]:
    """episodes.csv and summary.json against the store's own arrays; returns both."""
    rows, summary = read_csv(out / "episodes.csv"), json.loads((out / "summary.json").read_text())
    expected = raw_episodes(store)
    assert [r["group"] for r in rows] == [g for g, eps in expected.items() for _ in eps]
    by_group: dict[str, list[dict]] = {}
    for row in rows:
        by_group.setdefault(row["group"], []).append(row)
    for name, episodes in expected.items():
        rank, gpu, env = (int(x) for x in name.removeprefix("rank").replace("_gpu", " ")
                          .replace("_env", " ").split())  # fmt: skip
        assert len(by_group[name]) == len(episodes)
        for row, e in zip(by_group[name], episodes, strict=True):
            assert (int(row["rank"]), int(row["gpu"]), int(row["env"])) == (rank, gpu, env)
            assert int(row["episode"]) == e["episode"]
            assert (int(row["first_row"]), int(row["last_row"])) == (e["first_row"], e["last_row"])
            assert int(row["steps"]) == e["last_row"] - e["first_row"] + 1
            assert float(row["return"]) == pytest.approx(e["return"], rel=1e-12, abs=1e-12)
            assert row["terminated"] == str(e["terminated"]).lower()
            assert row["truncated"] == str(e["truncated"]).lower()
            partial = not (e["terminated"] or e["truncated"])
            assert row["partial"] == str(partial).lower()
        entry = summary["envs"][name]
        outcomes = [r["outcome"] for r in by_group[name]]
        counts = {o: outcomes.count(o) for o in ("success", "failure", "unknown")}
        known = counts["success"] + counts["failure"]
        assert entry["episodes"] == len(episodes)
        assert entry["partial"] == sum(r["partial"] == "true" for r in by_group[name])
        assert entry["outcomes"] == counts
        assert entry["success_rate"] == (counts["success"] / known if known else None)
        assert entry["mean_return"] == pytest.approx(np.mean([e["return"] for e in episodes]))
    overall = summary["overall"]
    outcomes = [r["outcome"] for r in rows]
    counts = {o: outcomes.count(o) for o in ("success", "failure", "unknown")}
    known = counts["success"] + counts["failure"]
    assert overall["envs"] == len(expected) and overall["episodes"] == len(rows)
    assert overall["outcomes"] == counts
    assert overall["success_rate"] == (counts["success"] / known if known else None)
    assert summary["config"] == dict(zarr.open_group(str(store), mode="r").attrs)["config"]
    assert summary["date"] and summary["store"] == str(store.resolve())
    assert not list(out.glob("*partial*")), "temp files left behind"
    return rows, summary


# ----------------------------------------------------------------------------- rules


def test_env_rules_are_declared_once_for_registered_envs_and_light_to_import():
    assert set(END_OUTCOMES) <= set(ENV_TYPES)
    assert END_OUTCOMES["mujoco_tabletop"]["terminated"] == "success"
    code = "import sys, render; assert not {'collect.eval', 'mujoco'} & set(sys.modules)"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_outcome_rule_order_key_then_env_rule_then_unknown(tmp_path):
    path = tmp_path / "s.zarr"
    with FrameWriter(path, num_envs=1, fps=10) as writer:
        for t in range(6):  # terminated at row 2, truncated at row 5
            info = {"is_success": t == 5, "reached": t == 1}
            writer.append(np.zeros((1, 8, 8, 3), np.uint8), reward=1.0, terminated=t == 2,
                          truncated=t == 5, info=info)  # fmt: skip
    (group,) = open_store(path).groups()

    def outcomes(**kwargs):
        return [
            (e.outcome, e.known_from) for e in read_episodes(group, outcome_rule(group, **kwargs))
        ]

    assert outcomes() == [("failure", 2), ("success", 5)]  # is_success is a success key
    assert outcomes(key="reached", env_type="mujoco_tabletop") == [("success", 1), ("failure", 5)]
    with pytest.raises(ValueError, match=r"no info key 'nope' \(--success-key\); it has") as e:
        outcome_rule(group, key="nope")
    assert len(e.value.args) == 1
    plain = tmp_path / "plain.zarr"
    with FrameWriter(plain, num_envs=1, fps=10) as writer:
        for t in range(6):
            writer.append(np.zeros((1, 8, 8, 3), np.uint8), terminated=t == 2, truncated=t == 5)
    (group,) = open_store(plain).groups()
    assert outcomes() == [("unknown", 2), ("unknown", 5)]  # terminated alone says nothing
    assert outcomes(env_type="mujoco_tabletop") == [("success", 2), ("failure", 5)]
    assert outcomes(env_type="gymnasium") == [("unknown", 2), ("unknown", 5)]


# ----------------------------------------------------------------------------- pendulum


class KeptUp(gym.Wrapper):
    """``info["kept_up"]``: the pole stayed up until the time limit (never, at random)."""

    def reset(self, **kwargs):
        obs, info = self.env.reset(**kwargs)
        return obs, {**info, "kept_up": False}

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        return obs, reward, terminated, truncated, {**info, "kept_up": truncated and not terminated}


@pytest.fixture(scope="module")
def pendulum_store(tmp_path_factory):
    """InvertedPendulum-v5, 3 envs, random actions: every finished episode is a fallen pole."""
    path = tmp_path_factory.mktemp("pendulum") / "frames.zarr"
    envs = gym.make_vec(
        "InvertedPendulum-v5",
        num_envs=3,
        vectorization_mode="sync",
        render_mode="rgb_array",
        width=48,
        height=48,
        wrappers=[KeptUp],
    )
    envs = RecordFrames(envs, path, fps=20)
    envs.reset(seed=3)
    rng = np.random.default_rng(3)
    for _ in range(60):
        envs.step(rng.uniform(-3, 3, size=(3, 1)))
    envs.close()
    return path


def test_pendulum_episodes_are_unknown_not_success(pendulum_store, tmp_path, capsys):
    out = tmp_path / "out"
    assert main([str(pendulum_store), str(out)]) == 0
    table = capsys.readouterr().out.splitlines()
    rows, summary = check_report_matches_the_store(out, pendulum_store)
    assert sum(r["terminated"] == "true" for r in rows) >= 3, "random actions drop the pole"
    assert {r["outcome"] for r in rows} == {"unknown"}
    assert summary["overall"]["success_rate"] is None
    assert {e["outcome_rule"] for e in summary["envs"].values()} == {
        "none (no success key, no env rule)"
    }
    # the summary table: "unknown", never a success count; the total row last
    body = [line for line in table if line.startswith("behavior_video")]
    assert len(body) == 3 and all(" unknown" in line for line in body)
    total, partial = table[-2], sum(r["partial"] == "true" for r in rows)
    assert total.startswith("total (3 outputs)") and f"{len(rows)}, {partial} partial" in total
    assert total.split()[-1] == "unknown" and set(table[-3]) <= {"-", " "}


def test_pendulum_with_a_success_key_fails_and_is_never_success(pendulum_store, tmp_path, capsys):
    out = tmp_path / "out"
    argv = [str(pendulum_store), str(out), "--success-key", "kept_up", "--overlay"]
    assert main(argv) == 0
    total = capsys.readouterr().out.splitlines()[-2]
    rows, summary = check_report_matches_the_store(out, pendulum_store)
    for row in rows:  # finished: a failure; the cut-off last one: not known yet
        assert row["outcome"] == ("unknown" if row["partial"] == "true" else "failure"), row
    assert summary["overall"]["success_rate"] == 0.0
    assert {e["outcome_rule"] for e in summary["envs"].values()} == {"info key 'kept_up'"}
    finished = sum(r["partial"] == "false" for r in rows)
    assert f"0/{finished}, {len(rows) - finished} unknown" in total
    # a misspelt key fails every group, naming the flag, and exits 1
    assert main([str(pendulum_store), str(tmp_path / "o2"), "--success-key", "kept"]) == 1
    assert "no info key 'kept' (--success-key)" in capsys.readouterr().out


# ----------------------------------------------------------------------------- tabletop


@pytest.fixture(scope="module")
def tabletop_run(tmp_path_factory):
    """The eval runner: 2 tabletop envs, scripted policy, 2 epochs; it renders at the end."""
    from distributed import Client, LocalCluster

    from collect.eval.config import load_config
    from collect.eval.runner import run_eval

    root = tmp_path_factory.mktemp("tabletop")
    cfg = load_config(
        CONFIGS / "testing_1x2.yaml",
        [f"runner.output_dir={root}", "env.policy=scripted", "env.image_size=32",
         "env.eval.max_episode_steps=45", "env.eval.rollout_epoch=2",
         "env.eval.video_cfg.render.preset=ultrafast"],
    )  # fmt: skip
    cluster = LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                           dashboard_address=None)  # fmt: skip
    with cluster, Client(cluster) as client:
        summary = run_eval(cfg, client=client)
    return (
        summary,
        Path(cfg.env.eval.video_cfg.frames_path),
        Path(cfg.env.eval.video_cfg.video_base_dir),
    )


def test_tabletop_scripted_policy_reads_its_real_success_rate(tabletop_run, tmp_path):
    summary, store, video_dir = tabletop_run
    rows, report = check_report_matches_the_store(video_dir, store)  # the runner's render
    assert sum(env.successes.count(True) for env in summary.envs) >= 1
    for env in summary.envs:
        entry = report["envs"][f"rank{env.rank}_gpu{env.gpu}_env{env.env}"]
        assert entry["outcome_rule"] == "info key 'success'"
        assert entry["episodes"] == env.episodes and entry["partial"] == 0
        assert entry["outcomes"]["success"] == sum(env.successes)
        assert entry["success_rate"] == pytest.approx(env.success_rate)
        assert entry["mean_return"] == pytest.approx(env.mean_return, rel=1e-5)
    # without any success key the env's declared rule (terminated = success) gives the same
    bare = tmp_path / "bare.zarr"
    shutil.copytree(store, bare)
    for group in bare.glob("rank*"):
        shutil.rmtree(group / "info")
    render_store(bare, tmp_path / "out")
    again, report2 = check_report_matches_the_store(tmp_path / "out", bare)
    assert [r["outcome"] for r in again] == [r["outcome"] for r in rows]
    assert {e["outcome_rule"] for e in report2["envs"].values()} == {"env rule of mujoco_tabletop"}


# ----------------------------------------------------------------------------- overlay bands

SIZE = 192
FPS = 10
# per env: (rows, end, success rows inside the episode); all envs have 40 rows
BAND_EPISODES = [
    [(6, "terminated", [5]), (24, "truncated", []), (10, None, [])],  # short success, long fail
    [(25, "terminated", [12]), (5, "terminated", []), (10, None, [7])],  # flicker; short fail
]


def expected_outcomes(episodes) -> tuple[list[int], list[bool]]:
    """Per row: the outcome code the overlay must show (0: none yet), and "success so far"."""
    codes, so_far = [], []
    for rows, end, hits in episodes:
        known = hits[0] if hits else (rows - 1 if end else None)
        code = SUCCESS if hits else (FAILURE if end else 0)
        codes += [code if known is not None and i >= known else 0 for i in range(rows)]
        so_far += [bool(hits) and i >= hits[0] for i in range(rows)]
    return codes, so_far


@pytest.fixture(scope="module")
def band_store(tmp_path_factory):
    path = tmp_path_factory.mktemp("bands") / "s.zarr"
    flags = []
    for episodes in BAND_EPISODES:
        env = []
        for rows, end, hits in episodes:
            env += [(end if i == rows - 1 else None, i in hits) for i in range(rows)]
        flags.append(env)
    with FrameWriter(path, num_envs=2, fps=FPS) as writer:
        for t in range(40):
            frames = np.stack([scene(SIZE, SIZE, t, seed=e) for e in range(2)])
            writer.append(
                {"zed": frames},
                reward=0.25,
                terminated=[f[t][0] == "terminated" for f in flags],
                truncated=[f[t][0] == "truncated" for f in flags],
                info={"success": [f[t][1] for f in flags]},
            )
    return path


def closest(decoded: np.ndarray, candidates: dict) -> object:
    """The candidate picture nearest (mean absolute difference) to the decoded one."""
    errors = {k: np.abs(decoded.astype(int) - c.astype(int)).mean() for k, c in candidates.items()}
    return min(errors, key=errors.get)


def border_of(frame: np.ndarray) -> int:
    """The outcome code the left border's colour says (0: no border)."""
    edge = frame[SIZE // 3 : 2 * SIZE // 3, 1].reshape(-1, 3).mean(axis=0)
    for code, rgb in COLOURS.items():
        if np.abs(edge - rgb).max() < 40:
            return code
    return 0


WORDS = {SUCCESS: "SUCCESS", FAILURE: "FAILURE", UNKNOWN: "UNKNOWN", 0: ""}


def draw_row(overlay: Overlay, frame: np.ndarray, row: int, **values: object) -> np.ndarray:
    """``frame`` (the stored picture of ``row``) with the overlay of ``row`` drawn on it, some
    of its values replaced: the picture the video would show if the row said that."""
    columns = {k: v[row : row + 1].copy() for k, v in overlay.columns.items()}
    for name, value in values.items():
        columns[name][0] = value
    one = Overlay(row, columns, overlay.bands, overlay.font_size, overlay.border)
    return one(row, frame[None].copy())[0]


def read_bands(overlay: Overlay, decoded: np.ndarray, stored: np.ndarray, row: int):
    """What a decoded frame says: the top band's outcome, the border's, the success key."""
    top, bottom = overlay.bands
    said_top = closest(
        decoded[top.top : top.bottom],
        {c: draw_row(overlay, stored, row, outcome=c, result=w)[top.top : top.bottom]
         for c, w in WORDS.items()},
    )  # fmt: skip
    said_bottom = closest(
        decoded[bottom.top : bottom.bottom],
        {v: draw_row(overlay, stored, row, outcome=said_top, **{"info/success": v})[
            bottom.top : bottom.bottom] for v in ("yes", "no")},
    )  # fmt: skip
    return said_top, border_of(decoded), said_bottom


def test_overlay_bands_agree_on_every_frame(band_store, tmp_path):
    report = render_store(band_store, tmp_path, overlay=True, crf=16)
    assert report.ok, report.summary()
    store = open_store(band_store)
    plans, _ = plan_outputs(store, tmp_path, RenderOptions(overlay=True))
    seen = {}
    for plan, video, episodes in zip(plans, report.outputs, BAND_EPISODES, strict=True):
        (overlay,) = plan.transforms
        frames, stored = decode(video), store.group(plan.group).frames("zed")
        codes, so_far = expected_outcomes(episodes)
        assert len(frames) == len(codes) == 40
        seen[plan.group] = []
        for i, frame in enumerate(frames):
            said = read_bands(overlay, frame, stored[i], i)
            border = codes[i] if codes[i] != UNKNOWN else 0  # no colour for unknown
            assert said == (codes[i], border, "yes" if so_far[i] else "no"), (plan.group, i)
            seen[plan.group].append(said[0])
    # env0's short episode (0.6 s) shows its success on its last row only, not from step 0;
    # the long failure shows on its last row; env1's success shows from row 12, its key's row
    env0, env1 = seen.values()
    assert env0[:6] == [0] * 5 + [SUCCESS] and env0[6:30] == [0] * 23 + [FAILURE]
    assert env1[:25] == [0] * 12 + [SUCCESS] * 13 and env1[25:30] == [0] * 4 + [FAILURE]
