"""RLinf-style configs and placement strings."""

from __future__ import annotations

from pathlib import Path

import pytest

from collect.eval.cli import main as collect_main
from collect.eval.config import ConfigError, load_config, num_devices
from collect.eval.placement import PlacementError, component_ids, parse_placement, plan_env_workers

CONFIGS = Path(__file__).resolve().parent.parent / "configs"


@pytest.mark.parametrize(
    ("spec", "ids"),
    [("0-3", [0, 1, 2, 3]), ("0,2,5", [0, 2, 5]), ("0-1,4", [0, 1, 4]), (3, [3]), ("7", [7])],
)
def test_placement_strings(spec, ids):
    assert parse_placement(spec) == ids


def test_placement_all_needs_a_device_count():
    assert parse_placement("all", 4) == [0, 1, 2, 3]
    with pytest.raises(PlacementError, match="'all' needs the device count"):
        parse_placement("all")


@pytest.mark.parametrize(
    ("spec", "pattern"),
    [("3-1", "ends before it starts"), ("a-b", "cannot parse"), ("0,0", "twice"), (-1, "negative")],
)
def test_bad_placement_strings(spec, pattern):
    with pytest.raises(PlacementError, match=pattern):
        parse_placement(spec, key="cluster.component_placement.env")


def test_shared_component_keys():
    placement = {"actor": "0-3", "rollout,env": "4-5"}
    assert component_ids(placement, "env") == [4, 5]
    with pytest.raises(PlacementError, match="no entry for 'env'"):
        component_ids({"actor": 0}, "env")


def test_env_split_over_workers():
    workers = plan_env_workers({"env": "2,5"}, total_num_envs=6)
    assert [(w.rank, w.gpu, w.num_envs, w.first_global_env) for w in workers] == [
        (0, 2, 3, 0),
        (1, 5, 3, 3),
    ]
    with pytest.raises(PlacementError, match="total_num_envs=5 does not divide evenly over 2"):
        plan_env_workers({"env": "0-1"}, total_num_envs=5)


@pytest.mark.parametrize(
    ("name", "workers", "per_worker"),
    [
        ("seed_2workers_4envs", 2, 2),
        ("seed_4workers_4envs", 4, 1),
        ("seed_1worker_4envs", 1, 4),
        ("max_throughput_8x8", 8, 1),
        ("memory_constrained_2x8", 2, 4),
        ("testing_1x2", 1, 2),
        ("demo", 2, 2),
    ],
)
def test_shipped_configs_plan_the_seed_layouts(name, workers, per_worker):
    cfg = load_config(CONFIGS / f"{name}.yaml")
    plan = plan_env_workers(cfg.cluster.component_placement, cfg.env.eval.total_num_envs)
    assert len(plan) == workers and {w.num_envs for w in plan} == {per_worker}
    assert [w.gpu for w in plan] == list(range(workers))


def test_overrides_and_interpolation():
    cfg = load_config(
        CONFIGS / "testing_1x2.yaml",
        [
            "runner.output_dir=/data/run7",
            "env.eval.video_cfg.fps=12",
            "cluster.num_gpus_per_node=4",
        ],
    )
    assert cfg.env.eval.video_cfg.frames_path == "/data/run7/video/eval/frames.zarr"
    assert cfg.env.eval.video_cfg.fps == 12
    assert num_devices(cfg) == 4


@pytest.mark.parametrize(
    ("overrides", "pattern"),
    [
        (["env.eval.total_num_envs=0"], "total_num_envs must be a positive integer"),
        (["env.eval.video_cfg.fps=-1"], "video_cfg.fps must be a positive number"),
        (["env.eval.max_episode_steps=abc"], "max_episode_steps must be a positive integer"),
        (["env.eval.video_cfg.video_base_dir=${nope.x}"], "video_base_dir: cannot resolve"),
    ],
)
def test_bad_values_are_config_errors(overrides, pattern):
    with pytest.raises(ConfigError, match=pattern):
        load_config(None, overrides)


def test_cli_exit_status_for_bad_config(tmp_path, capsys):
    assert collect_main([str(tmp_path / "missing.yaml")]) == 2
    assert "does not exist" in capsys.readouterr().err
    bad = tmp_path / "bad.yaml"
    bad.write_text("env: [unclosed")
    assert collect_main([str(bad)]) == 2
    assert "not valid YAML" in capsys.readouterr().err
    assert collect_main([str(CONFIGS / "testing_1x2.yaml"), "env.eval.total_num_envs=3",
                         "cluster.component_placement.env=0-1"]) == 2  # fmt: skip
