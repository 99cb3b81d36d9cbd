"""Strict, RLinf-compatible configs: typos and bad values fail before any worker starts (exit
2, one line), RLinf's own eval and training files run with only evalframes keys overridden."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

import collect.eval.runner
from collect.eval.cli import main as collect_main
from collect.eval.config import load_config
from collect.eval.placement import plan_env_workers
from collect.store import open_store

ROOT = Path(__file__).resolve().parent.parent
TESTING = ROOT / "configs" / "testing_1x2.yaml"
RLINF = Path(__file__).resolve().parent / "fixtures" / "rlinf"
EMBODIED = RLINF / "examples" / "embodiment"
EVAL_CFG = RLINF / "evaluations" / "behavior" / "behavior_openpi_pi05_rlinf_eval.yaml"
TRAIN_CFG = EMBODIED / "config" / "behavior_ppo_openpi.yaml"


@pytest.fixture
def no_workers(monkeypatch):
    """Fail the test if anything tries to start the eval or a Dask cluster. (Only the
    runner's names are patched: a module imported meanwhile, e.g. render, would keep a
    patched ``collect.dask_cluster.dask_client`` for good.)"""

    def forbidden(*args, **kwargs):
        raise AssertionError("a worker was started for a bad config")

    monkeypatch.setattr(collect.eval.runner, "run_eval", forbidden)
    monkeypatch.setattr(collect.eval.runner, "dask_client", forbidden)  # what run_eval starts


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return str(path)


# Each case: files to write (name -> YAML), argv (with {tmp} for tmp_path), and a fragment of
# the one-line message. Files named in argv come first.
BAD = {
    "override typo": ({}, [str(TESTING), "env.eval.max_epsiode_steps=5"],
                      "no key env.eval.max_epsiode_steps; "
                      "did you mean env.eval.max_episode_steps?"),
    "override typo env": ({}, [str(TESTING), "env.imagesize=32"],
                          "did you mean env.image_size?"),
    "override typo video_cfg": ({}, [str(TESTING), "env.eval.video_cfg.save_frame=false"],
                                "did you mean env.eval.video_cfg.save_frames?"),
    "override typo section": ({}, ["envv.eval.total_num_envs=4"],
                              "did you mean env.eval.total_num_envs?"),
    "override not key=value": ({}, [str(TESTING), "env.eval.total_num_envs"],
                               "is not key=value"),
    "add an existing key": ({}, ["+env.policy=random"], "env.policy is already set"),
    "file typo video_cfg": ({"c.yaml": "env:\n  eval:\n    video_cfg:\n      save_fames: true\n"},
                            ["{tmp}/c.yaml"], "unknown key env.eval.video_cfg.save_fames; "
                            "did you mean env.eval.video_cfg.save_frames?"),
    "typo in a defaults file": (
        {"c.yaml": "defaults:\n  - env/x@env.eval\n",
         "env/x.yaml": "env_type: mujoco_tabletop\nvideo_cfg:\n  info_on_vidoe: false\n"},
        ["{tmp}/c.yaml"], "x.yaml: unknown key env.eval.video_cfg.info_on_vidoe"),
    "file near-miss env.eval": ({"c.yaml": "env:\n  eval:\n    total_num_env: 4\n"},
                                ["{tmp}/c.yaml"], "did you mean env.eval.total_num_envs?"),
    "render fps in file": ({"c.yaml": "env:\n  eval:\n    video_cfg:\n      render:\n"
                            "        fps: 10\n"}, ["{tmp}/c.yaml"],
                           "env.eval.video_cfg.render.fps cannot be set"),
    "new key in video_cfg": ({}, ["+env.eval.video_cfg.foo=1"],
                             "unknown key env.eval.video_cfg.foo"),
    "wrong type override": ({}, ["env.eval.total_num_envs=two"],
                            "env.eval.total_num_envs must be a positive integer. Got 'two'"),
    "wrong type file": ({"c.yaml": "env:\n  eval:\n    video_cfg:\n      save_video: 'yes'\n"},
                        ["{tmp}/c.yaml"], "env.eval.video_cfg.save_video must be true or false"),
    "wrong type fps": ({}, ["env.eval.video_cfg.fps=-1"], "video_cfg.fps must be a positive"),
    "unknown env": ({}, ["env.eval.env_type=mujoco"], "env.eval.env_type: unknown env_type "
                    "'mujoco'; choose from behavior, mujoco_tabletop, synthetic"),
    "unknown env (old key)": ({}, ["env.env_type=nope"], "unknown env_type 'nope'"),
    "both env keys disagree": ({"c.yaml": "env:\n  env_type: synthetic\n  eval:\n"
                                "    env_type: mujoco_tabletop\n"}, ["{tmp}/c.yaml"], "disagree"),
    "unknown policy": ({}, ["env.policy=ppo"], "env.policy: unknown policy 'ppo'"),
    "bad image size": ({}, ["env.image_size=0"], "env.image_size"),
    "unknown env option": ({}, ["env.options.fps=3"],
                           "env.options: env_type 'mujoco_tabletop' has no option 'fps'"),
    "bad placement": ({}, ["cluster.component_placement.env=0-a"],
                      "cluster.component_placement.env: cannot parse placement '0-a'"),
    "placement all without count": ({}, ["cluster.component_placement.env=all"],
                                    "set cluster.num_gpus_per_node"),
    "uneven split": ({}, ["env.eval.total_num_envs=3", "cluster.component_placement.env=0-1"],
                     "does not divide evenly over 2 env workers"),
    "env in two placement keys": ({"c.yaml": "cluster:\n  component_placement:\n    env: 0\n"
                                   "    env,rollout: 1\n"}, ["{tmp}/c.yaml"],
                                  "names 'env' in 2 keys"),
    "bad codec": ({}, ["env.eval.video_cfg.codec=h265"], "env.eval.video_cfg.codec: unknown "
                  "frame codec 'h265'"),
    "bad writer priority": ({}, ["env.eval.video_cfg.writer_priority=high"],
                            "env.eval.video_cfg.writer_priority must be one of"),
    "bad writer cpus": ({}, ["env.eval.video_cfg.writer_cpus=3-1"],
                        "env.eval.video_cfg.writer_cpus: placement '3-1': range '3-1' ends"),
    "writer cpus not ids": ({}, ["env.eval.video_cfg.writer_cpus=[1]"],
                            "env.eval.video_cfg.writer_cpus"),
    "bad render crf": ({}, ["env.eval.video_cfg.render.crf=99"],
                       "env.eval.video_cfg.render.crf must be an integer from 0 to 63"),
    "bad render layout": ({}, ["env.eval.video_cfg.render.layout=grd"], "unknown layout 'grd'"),
    "unresolvable read key": ({}, ["env.eval.video_cfg.video_base_dir=${nope.x}"],
                              "env.eval.video_cfg.video_base_dir: cannot resolve"),
    "missing file": ({}, ["{tmp}/missing.yaml"], "does not exist"),
    "not YAML": ({"c.yaml": "env: [unclosed"}, ["{tmp}/c.yaml"], "not valid YAML"),
}  # fmt: skip
if importlib.util.find_spec("omnigibson") is None:
    BAD["behavior without omnigibson"] = ({}, ["env.eval.env_type=behavior"], "needs omnigibson")


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_configs_exit_2_with_one_line_before_any_worker(case, tmp_path, capsys, no_workers):
    files, argv, fragment = BAD[case]
    for name, text in files.items():
        write(tmp_path, name, text)
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    assert collect_main(argv) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    assert err.startswith("python -m collect: error: ") and fragment in err, err


def test_shared_key_placement_replaces_the_default(tmp_path):
    path = write(tmp_path, "c.yaml", 'cluster:\n  component_placement:\n    "actor,env,rollout": '
                 "0-3\nenv:\n  eval:\n    total_num_envs: 8\n")  # fmt: skip
    cfg = load_config(path)
    placement = dict(cfg.cluster.component_placement)
    assert placement == {"actor,env,rollout": "0-3"}  # no default `env: 0` beside it
    workers = plan_env_workers(placement, cfg.env.eval.total_num_envs)
    assert [(w.rank, w.gpu, w.num_envs) for w in workers] == [(r, r, 2) for r in range(4)]
    # a placement given whole on the command line replaces too; one entry merges
    cfg = load_config(path, ["cluster.component_placement={env: 0-1, rollout: 2}"])
    assert dict(cfg.cluster.component_placement) == {"env": "0-1", "rollout": 2}


def test_rlinf_training_config_loads_without_its_model_defaults(caplog):
    cfg = load_config(TRAIN_CFG, ["env.eval.env_type=mujoco_tabletop"])
    assert [r.message.count("defaults not found") for r in caplog.records] == [1]
    assert "model/pi0@actor.model" in caplog.text
    # composed: env/behavior_r1pro at env.train and env.eval, the file's own keys over them
    assert cfg.env.train.omni_config.task.activity_name == "turning_on_radio"
    assert cfg.env.eval.max_episode_steps == 20 and cfg.env.eval.auto_reset is False
    assert cfg.env.eval.video_cfg.video_base_dir == "../results/video/eval"
    assert cfg.env.eval.video_cfg.info_on_video is True  # from the defaults file
    # sections the runner never reads are left as written, interpolations included
    from omegaconf import OmegaConf

    raw = OmegaConf.to_container(cfg, resolve=False)
    assert raw["rollout"]["model"]["precision"] == "${actor.model.precision}"
    assert raw["hydra"]["searchpath"] == ["file://${oc.env:EMBODIED_PATH}/config/"]


def test_defaults_self_order_and_overrides(tmp_path):
    write(tmp_path, "env/a.yaml", "max_episode_steps: 7\ntotal_num_envs: 2\n")
    first = write(tmp_path, "first.yaml", "defaults:\n  - _self_\n  - env/a@env.eval\n"
                  "env:\n  eval:\n    max_episode_steps: 99\n")  # fmt: skip
    last = write(tmp_path, "last.yaml", "defaults:\n  - env/a@env.eval\n"
                 "env:\n  eval:\n    max_episode_steps: 99\n")  # fmt: skip
    assert load_config(first).env.eval.max_episode_steps == 7  # defaults over _self_
    assert load_config(last).env.eval.max_episode_steps == 99  # _self_ last (Hydra >= 1.1)
    assert load_config(last, ["++env.eval.extra=1"]).env.eval.extra == 1  # Hydra's ++
    assert load_config(last, ["env.env_type=synthetic"]).env.eval.env_type == "synthetic"


def _run_rlinf(cfg_path: Path, tmp_path: Path, monkeypatch, capsys, *more: str) -> Path:
    """``python -m collect`` on an RLinf file from ``tmp/work`` (its ``../results`` log path
    lands in tmp), overriding only evalframes keys; returns the video folder."""
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("EMBODIED_PATH", str(EMBODIED))
    argv = [
        str(cfg_path),
        "env.eval.env_type=mujoco_tabletop",
        "env.eval.video_cfg.save_frames=true",
        "env.eval.max_episode_steps=4",
        "env.eval.rollout_epoch=1",
        "env.image_size=32",
        "env.eval.video_cfg.render.preset=ultrafast",
        *more,
    ]
    assert collect_main(argv) == 0, capsys.readouterr().err
    return tmp_path / "results" / "video" / "eval"


def test_rlinf_eval_config_runs(tmp_path, monkeypatch, capsys):
    videos = _run_rlinf(EVAL_CFG, tmp_path, monkeypatch, capsys, "cluster.num_gpus_per_node=2")
    names = sorted(p.name for p in videos.glob("*.mp4"))
    assert names == [f"behavior_video_rank{r}_gpu{r}_env{e}.mp4" for r in (0, 1) for e in (0, 1)]
    assert len(open_store(videos / "frames.zarr").group_names()) == 4


def test_rlinf_training_config_runs(tmp_path, monkeypatch, capsys):
    videos = _run_rlinf(TRAIN_CFG, tmp_path, monkeypatch, capsys, "env.eval.total_num_envs=2")
    names = sorted(p.name for p in videos.glob("*.mp4"))
    # placement `env,rollout: 1-1`: one env worker, rank 0 on accelerator 1
    assert names == ["behavior_video_rank0_gpu1_env0.mp4", "behavior_video_rank0_gpu1_env1.mp4"]
