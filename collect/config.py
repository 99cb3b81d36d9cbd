"""Eval configs: RLinf-style YAML over embedded defaults, ``key=value`` overrides, validated.

>>> cfg = load_config(overrides=["env.eval.total_num_envs=4", "runner.output_dir=/tmp/run"])
>>> cfg.env.eval.total_num_envs, cfg.env.eval.video_cfg.frames_path
(4, '/tmp/run/video/eval/frames.zarr')
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

__all__ = ["ConfigError", "load_config", "num_devices", "to_container"]


class ConfigError(ValueError):
    """A config file, override or value that cannot be used; the message names the key."""


def _defaults() -> DictConfig:
    text = resources.files("collect").joinpath("configs/default.yaml").read_text()
    return OmegaConf.create(text)


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> DictConfig:
    """Defaults <- YAML file <- ``key=value`` overrides, with ``${...}`` resolved and checked."""
    layers = [_defaults()]
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config file {str(path)!r} does not exist")
        try:
            layers.append(OmegaConf.load(path))
        except (OmegaConfBaseException, ValueError, yaml.YAMLError) as e:
            reason = " ".join(str(e).split())
            raise ConfigError(f"config file {str(path)!r} is not valid YAML: {reason}") from e
    try:
        layers.append(OmegaConf.from_dotlist(list(overrides or [])))
        cfg = OmegaConf.merge(*layers)
        OmegaConf.resolve(cfg)
    except OmegaConfBaseException as e:
        raise ConfigError(f"config error: {e}".splitlines()[0]) from e
    _validate(cfg)
    return cfg


def _validate(cfg: DictConfig) -> None:
    evalc = cfg.env.eval
    for key in ("total_num_envs", "max_episode_steps", "rollout_epoch"):
        value = evalc.get(key)
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise ConfigError(f"env.eval.{key} must be a positive integer. Got {value!r} instead.")
    video = evalc.video_cfg
    if not (isinstance(video.fps, (int, float)) and video.fps > 0):
        raise ConfigError(f"env.eval.video_cfg.fps must be positive. Got {video.fps!r} instead.")
    if not isinstance(video.extra_info_on_video, (list, tuple)) and not OmegaConf.is_list(
        video.extra_info_on_video
    ):
        raise ConfigError("env.eval.video_cfg.extra_info_on_video must be a list of info keys")


def num_devices(cfg: DictConfig) -> int | None:
    """Declared accelerator count (for placement ``all``), or None when not declared."""
    per_node = cfg.cluster.get("num_gpus_per_node")
    return None if per_node is None else int(per_node) * int(cfg.cluster.get("num_nodes", 1))


def to_container(cfg: DictConfig) -> dict[str, Any]:
    """The resolved config as plain JSON-able data (stored in the frame store's root attrs)."""
    return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]
