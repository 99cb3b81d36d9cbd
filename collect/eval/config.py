"""Eval configs: RLinf's own YAML over embedded defaults, ``key=value`` overrides, validated.

Layers, merged in order: evalframes' defaults (``collect/eval/configs/default.yaml``), the config
file with its ``defaults:`` list composed as Hydra does (:mod:`collect.eval.config_compose`), then
each override. The rules, so that RLinf files load as they are and typos fail at once:

* an override may only set a key that exists (in the defaults, the files, or evalframes'
  schema); ``+key=value`` adds a new key, ``++key=value`` sets or adds (Hydra's syntax);
* in the sections evalframes owns (``env.eval.video_cfg`` and its ``render``) every key must
  be one evalframes knows; keys it reads elsewhere are type-checked
  (:data:`collect.eval.config_schema.READ_KEYS`); everything else (actor, rollout, algorithm,
  hydra, simulator keys) is left as written and never resolved, so interpolations into
  sections an eval does not have (``${actor.model.precision}``) do no harm;
* a ``cluster.component_placement`` mapping replaces the one before it whole (a shared key
  ``"actor,env,rollout": 0-3`` is not merged beside the default ``env: 0``);
* ``env.eval.env_type`` selects the env (RLinf's place); ``env.env_type`` still works;
* every check that can be made before workers start (env type, policy, options, image size,
  codec, render options, placement) is made here, as a :class:`ConfigError` naming the key.

>>> cfg = load_config(overrides=["env.eval.total_num_envs=4", "runner.output_dir=/tmp/run"])
>>> cfg.env.eval.total_num_envs, cfg.env.eval.video_cfg.frames_path
(4, '/tmp/run/video/eval/frames.zarr')
>>> load_config(overrides=["env.eval.max_epsiode_steps=5"])
Traceback (most recent call last):
...
collect.eval.config.ConfigError: override 'env.eval.max_epsiode_steps=5': no key env.eval.max_epsiode_steps; did you mean env.eval.max_episode_steps?
"""  # noqa: E501

from __future__ import annotations

import importlib.util
from importlib import resources
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from .config_compose import ComposeError, Layer, compose
from .config_schema import (
    CLOSED,
    NEAR_MISS_CUTOFF,
    OPEN,
    READ_KEYS,
    RENDER_SET_BY_RUNNER,
    SchemaError,
    check_value,
    closest_key,
    known_keys,
    render_option_names,
)

__all__ = ["ConfigError", "load_config", "num_devices", "to_container"]

PLACEMENT = "cluster.component_placement"
FREE_PREFIXES = ("env.options.",)  # mappings whose keys are checked by what reads them
_ABSENT = object()


class ConfigError(ValueError):
    """A config file, override or value that cannot be used; the message names the key."""


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> DictConfig:
    """Defaults <- the config file (its ``defaults:`` composed) <- ``key=value`` overrides.

    The keys evalframes reads are resolved and checked; the rest is left as written.
    """
    layers = [Layer("evalframes defaults", _defaults())]
    if path is not None:
        layers.extend(_file_layers(Path(path)))
    cfg = layers[0].cfg
    for layer in layers[1:]:
        cfg = _merge(cfg, _prepare(layer))
    for text in overrides or []:
        cfg = _merge(cfg, _prepare(_override_layer(cfg, text)))
    _resolve_read_keys(cfg)
    _validate(cfg)
    return cfg


def num_devices(cfg: DictConfig) -> int | None:
    """Declared accelerator count (for placement ``all``), or None when not declared."""
    per_node = cfg.cluster.get("num_gpus_per_node")
    return None if per_node is None else int(per_node) * int(cfg.cluster.get("num_nodes", 1))


def to_container(cfg: DictConfig) -> dict[str, Any]:
    """The config as plain JSON-able data (stored in the frame store's root attrs): the keys
    the runner reads resolved (by :func:`load_config`), the others as written."""
    return OmegaConf.to_container(cfg, resolve=False)  # type: ignore[return-value]


# -- layers ------------------------------------------------------------------------------


def _defaults() -> DictConfig:
    text = resources.files("collect.eval").joinpath("configs/default.yaml").read_text()
    return OmegaConf.create(text)


def _file_layers(path: Path) -> list[Layer]:
    if not path.is_file():
        raise ConfigError(f"config file {str(path)!r} does not exist")
    try:
        return compose(path)
    except ComposeError as e:
        raise ConfigError(str(e)) from None


def _prepare(layer: Layer) -> Layer:
    """Check a layer's keys against the schema and move ``env.env_type`` to its RLinf place."""
    plain = OmegaConf.to_container(layer.cfg, resolve=False)
    _check_layer_keys(plain, layer.source)
    found, legacy = _lookup(plain, "env.env_type")
    if found and legacy is not None:
        has_eval, current = _lookup(plain, "env.eval.env_type")
        if has_eval and current != legacy:
            raise ConfigError(
                f"{layer.source}: env.env_type={legacy!r} and env.eval.env_type={current!r} "
                "disagree; set env.eval.env_type only"
            )
        OmegaConf.update(layer.cfg, "env.eval.env_type", legacy, force_add=True)
    return layer


def _check_layer_keys(plain: dict[str, Any], source: str) -> None:
    """Unknown keys in evalframes' sections, and near-misses of its keys in shared ones."""
    for section in CLOSED:
        found, node = _lookup(plain, section)
        if found and isinstance(node, dict):
            allowed = _allowed_in(section)
            for name in node:
                if name not in allowed:
                    raise ConfigError(f"{source}: {_unknown_key_message(section, name, allowed)}")
    for section in OPEN:
        found, node = _lookup(plain, section)
        if found and isinstance(node, dict):
            ours = _allowed_in(section)
            for name in node:
                if name not in ours and (match := closest_key(name, ours, NEAR_MISS_CUTOFF)):
                    raise ConfigError(
                        f"{source}: unknown key {section}.{name}; did you mean {section}.{match}?"
                    )


def _allowed_in(section: str) -> list[str]:
    """The names evalframes knows directly under ``section``."""
    if section == "env.eval.video_cfg.render":
        return render_option_names()
    prefix = section + "."
    return sorted({k[len(prefix) :].split(".")[0] for k in READ_KEYS if k.startswith(prefix)})


def _unknown_key_message(section: str, name: str, allowed: list[str]) -> str:
    key = f"{section}.{name}"
    if section.endswith(".render") and name in RENDER_SET_BY_RUNNER:
        return f"{key} cannot be set: the runner sets it (fps from env.eval.video_cfg.fps)"
    match = closest_key(name, allowed)
    hint = f"; did you mean {section}.{match}?" if match else f"; known keys: {', '.join(allowed)}"
    return f"unknown key {key}{hint}"


def _merge(base: DictConfig, layer: Layer) -> DictConfig:
    """``layer`` over ``base``; a placement mapping in ``layer`` replaces the earlier one."""
    try:
        merged = OmegaConf.merge(base, layer.cfg)
    except OmegaConfBaseException as e:
        key = getattr(e, "full_key", "") or "?"
        raise ConfigError(f"{layer.source}: cannot merge key {key}: {_first_line(e)}") from None
    found, placement = _lookup(OmegaConf.to_container(layer.cfg, resolve=False), PLACEMENT)
    if found and isinstance(placement, dict):
        merged.cluster.component_placement = placement
    return merged  # type: ignore[return-value]


# -- overrides ---------------------------------------------------------------------------


def _override_layer(cfg: DictConfig, text: str) -> Layer:
    """One ``key=value`` / ``+key=value`` / ``++key=value`` override as a layer, after
    Hydra's rule: a plain override must name a key that exists; ``+`` one that does not."""
    mode = "++" if text.startswith("++") else "+" if text.startswith("+") else ""
    body = text[len(mode) :]
    key, sep, value = body.partition("=")
    key = key.strip()
    if text.startswith("~"):
        raise ConfigError(f"override {text!r}: deleting keys is not supported")
    if not sep or not key:
        raise ConfigError(f"override {text!r} is not key=value")
    exists = _key_exists(cfg, key)
    if mode == "" and not exists:
        raise ConfigError(f"override {text!r}: {_missing_key_message(cfg, key)}")
    if mode == "+" and exists:
        raise ConfigError(f"override {text!r}: {key} is already set; use {key}={value}")
    try:
        layer = OmegaConf.from_dotlist([f"{key}={value}"])
    except OmegaConfBaseException as e:
        raise ConfigError(f"override {text!r}: {_first_line(e)}") from None
    return Layer(f"override {text!r}", layer)


def _key_exists(cfg: DictConfig, key: str) -> bool:
    if key in known_keys() or key.startswith(FREE_PREFIXES):
        return True
    found, _ = _lookup(OmegaConf.to_container(cfg, resolve=False), key)
    return found


def _missing_key_message(cfg: DictConfig, key: str) -> str:
    """``no key a.b.c; did you mean a.b.d?``, the suggestion from under the deepest prefix
    of ``key`` that exists."""
    plain = OmegaConf.to_container(cfg, resolve=False)
    parts = key.split(".")
    prefix = ""
    for depth in range(len(parts) - 1, 0, -1):
        found, node = _lookup(plain, ".".join(parts[:depth]))
        if found and isinstance(node, dict):
            prefix = ".".join(parts[:depth])
            break
    candidates = [k for k in [*_dotted_keys(plain), *known_keys()] if k.startswith(prefix)]
    match = closest_key(key, candidates)
    hint = f"; did you mean {match}?" if match else " (add a new key with +key=value)"
    return f"no key {key}{hint}"


def _dotted_keys(node: Any, prefix: str = "") -> list[str]:
    if not isinstance(node, dict):
        return []
    keys = []
    for name, child in node.items():
        key = f"{prefix}{name}"
        keys.append(key)
        keys.extend(_dotted_keys(child, key + "."))
    return keys


def _lookup(plain: Any, key: str) -> tuple[bool, Any]:
    """``(found, value)`` of a dotted key in plain nested dicts."""
    node = plain
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return False, None
        node = node[part]
    return True, node


# -- resolution and validation -----------------------------------------------------------


def _resolve_read_keys(cfg: DictConfig) -> None:
    """Resolve, in place, the ``${...}`` of the keys evalframes reads, and only those."""
    roots = [k for k in READ_KEYS if not any(k.startswith(o + ".") for o in READ_KEYS)]
    for key in roots:
        parent_key, _, name = key.rpartition(".")
        parent = OmegaConf.select(cfg, parent_key, default=None)
        if not isinstance(parent, DictConfig) or name not in parent:
            continue
        try:
            value = parent[name]
            if isinstance(value, (DictConfig, ListConfig)):
                value = OmegaConf.to_container(value, resolve=True)
        except OmegaConfBaseException as e:
            where = getattr(e, "full_key", "") or key
            raise ConfigError(f"{where}: cannot resolve its value: {_first_line(e)}") from None
        parent[name] = value


def _validate(cfg: DictConfig) -> None:
    """Types of the keys evalframes reads, then every check that needs no worker."""
    plain = to_container(cfg)
    for key in READ_KEYS:
        found, value = _lookup(plain, key)
        if not found:
            continue
        try:
            check_value(key, value)
        except SchemaError as e:
            raise ConfigError(str(e)) from None
    extra = cfg.env.eval.video_cfg.get("extra_info_on_video")
    if isinstance(extra, str):  # RLinf accepts one key as a string
        cfg.env.eval.video_cfg.extra_info_on_video = [extra]
    cfg.env.env_type = cfg.env.eval.env_type  # the runner reads env.env_type
    _check_env(plain)
    _check_video(plain["env"]["eval"]["video_cfg"])
    _check_placement(cfg)


def _check_env(plain: dict[str, Any]) -> None:
    """env type, policy, options and image size, as the env worker would apply them."""
    from .envs import ENV_TYPES, POLICIES, VectorEnv
    from .envs.base import CAMERA_NAMES, resolve_image_sizes

    env, name = plain["env"], plain["env"]["eval"]["env_type"]
    cls = ENV_TYPES.get(name)
    if cls is None:
        raise ConfigError(f"env.eval.env_type: {ENV_TYPES.unknown(name)}")
    if name == "behavior" and importlib.util.find_spec("omnigibson") is None:
        raise ConfigError(
            "env.eval.env_type: 'behavior' needs omnigibson (Isaac Sim, an RTX GPU), which is "
            "not installed here; use env.eval.env_type=mujoco_tabletop to try the pipeline"
        )
    policy = env["policy"]
    if policy not in POLICIES:
        raise ConfigError(f"env.policy: {POLICIES.unknown(policy)}")
    if policy == "scripted" and cls.scripted_policy is VectorEnv.scripted_policy:
        raise ConfigError(f"env.policy: env_type {name!r} has no scripted policy; use random")
    _check_env_options(cls, name, env)
    if env.get("image_size") is not None and name != "behavior":
        try:
            resolve_image_sizes(env["image_size"], CAMERA_NAMES)
        except ValueError as e:
            raise ConfigError(f"env.image_size: {e}") from None


def _check_env_options(cls: type, name: str, env: dict[str, Any]) -> None:
    """``env.options`` (and ``env.image_size``) against the env class's keyword arguments."""
    from .envs.registry import check_options as check

    options = {**env["options"], "max_episode_steps": env["eval"]["max_episode_steps"]}
    if env.get("image_size") is not None:
        try:
            check(cls, name, {"image_size": env["image_size"]})
        except TypeError:
            raise ConfigError(
                f"env.image_size: env_type {name!r} takes no image size (its cameras set it); "
                "set env.image_size=null"
            ) from None
    try:
        check(cls, name, options)
    except TypeError as e:
        raise ConfigError(f"env.options: {e}") from None


def _check_video(video: dict[str, Any]) -> None:
    """Frame codec, writer priority and render options of ``env.eval.video_cfg``."""
    from collect.codecs import get_codec
    from collect.recorders import writer_cpus
    from collect.writer_process import PRIORITIES
    from render.options import OptionError, RenderOptions

    key = "env.eval.video_cfg"
    try:
        get_codec(video["codec"] if isinstance(video["codec"], str) else dict(video["codec"]))
    except (ValueError, TypeError, ImportError) as e:
        raise ConfigError(f"{key}.codec: {e}") from None
    if video["writer_priority"] not in PRIORITIES:
        raise ConfigError(
            f"{key}.writer_priority must be one of {', '.join(PRIORITIES)}. "
            f"Got {video['writer_priority']!r} instead."
        )
    try:
        writer_cpus(video, key=f"{key}.writer_cpus")
    except ValueError as e:
        raise ConfigError(str(e)) from None
    try:
        RenderOptions(**video["render"])
    except OptionError as e:
        raise ConfigError(e.render(lambda field: f"{key}.render.{field}")) from None
    except (ValueError, TypeError) as e:
        raise ConfigError(f"{key}.render: {e}") from None


def _check_placement(cfg: DictConfig) -> None:
    """The env workers can be planned (placement parses, envs split evenly)."""
    from .placement import PlacementError, plan_env_workers

    try:
        plan_env_workers(
            OmegaConf.to_container(cfg.cluster.component_placement),
            cfg.env.eval.total_num_envs,
            num_devices(cfg),
        )
    except PlacementError as e:
        raise ConfigError(str(e)) from None


def _first_line(e: BaseException) -> str:
    return str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
