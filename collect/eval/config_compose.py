"""Hydra-style ``defaults:`` lists, composed the way RLinf's YAML files expect.

RLinf configs start with a defaults list such as::

    defaults:
      - env/behavior_r1pro@env.eval      # file env/behavior_r1pro.yaml placed at env.eval
      - model/pi0@actor.model
      - override hydra/job_logging: stdout

:func:`compose` turns a config file into the ordered list of layers Hydra would merge: each
entry's file (searched in the config's folder, then ``$EMBODIED_PATH/config``), placed at its
package, with the config itself where ``_self_`` stands (last when not listed, Hydra >= 1.1).
Entries of Hydra's own ``hydra/`` group are skipped; ``optional`` entries that are not found
are skipped silently, other missing entries are skipped with one warning listing them all
(an RLinf training file names model and backend configs an eval never needs).

>>> from pathlib import Path
>>> parse_entry("env/behavior_r1pro@env.eval")
DefaultsEntry(path='env/behavior_r1pro', package='env.eval', optional=False, override=False)
>>> parse_entry({"override hydra/job_logging": "stdout"}).override
True
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

__all__ = ["DefaultsEntry", "Layer", "compose", "load_yaml", "parse_entry", "search_dirs"]

log = logging.getLogger(__name__)
SELF = "_self_"
GLOBAL = "_global_"


class ComposeError(ValueError):
    """A defaults list that cannot be read; the message names the file and the entry."""


@dataclass(frozen=True)
class Layer:
    """One config to merge: where it came from, and its keys placed at the root."""

    source: str
    cfg: DictConfig


@dataclass(frozen=True)
class DefaultsEntry:
    """One item of a defaults list: a config path (``group/option``), its package and flags.

    ``package`` is None when the entry does not name one (the group path is then used, as
    Hydra's ``_group_`` default); ``path`` is None for ``_self_``.
    """

    path: str | None
    package: str | None
    optional: bool = False
    override: bool = False

    @property
    def group(self) -> str:
        """The config group of the path (``env`` for ``env/behavior_r1pro``)."""
        return (self.path or "").rpartition("/")[0]


def parse_entry(item: Any) -> DefaultsEntry:
    """A :class:`DefaultsEntry` from a defaults-list item (a string or a one-key mapping)."""
    if isinstance(item, str):
        if item.strip() == SELF:
            return DefaultsEntry(None, None)
        path, _, package = item.strip().partition("@")
        return DefaultsEntry(path, package or None)
    if isinstance(item, dict) and len(item) == 1:
        (head, option), = item.items()  # fmt: skip
        words = str(head).split()
        flags, target = set(words[:-1]), words[-1] if words else ""
        if not target or flags - {"optional", "override"}:
            raise ComposeError(f"cannot read defaults entry {item!r}")
        group, _, package = target.partition("@")
        path = None if option is None else f"{group}/{option}"
        return DefaultsEntry(path, package or None, "optional" in flags, "override" in flags)
    raise ComposeError(
        f"cannot read defaults entry {item!r}; use 'group/option' or {{group: option}}"
    )


def search_dirs(config_path: Path) -> list[Path]:
    """Where defaults are looked up: the config's folder, then ``$EMBODIED_PATH/config``."""
    dirs = [config_path.resolve().parent]
    embodied = os.environ.get("EMBODIED_PATH")
    if embodied and (Path(embodied) / "config").is_dir():
        dirs.append((Path(embodied) / "config").resolve())
    return dirs


def load_yaml(path: Path) -> DictConfig:
    """One YAML file as a DictConfig; unreadable YAML raises :class:`ComposeError`."""
    try:
        cfg = OmegaConf.load(path)
    except (OmegaConfBaseException, ValueError, yaml.YAMLError) as e:
        reason = " ".join(str(e).split())
        raise ComposeError(f"config file {str(path)!r} is not valid YAML: {reason}") from e
    if not isinstance(cfg, DictConfig):
        raise ComposeError(f"config file {str(path)!r} must hold a mapping of keys")
    return cfg


def compose(path: Path) -> list[Layer]:
    """The layers of ``path`` and its defaults list, in Hydra's merge order."""
    composer = _Composer(search_dirs(path))
    layers = composer.file_layers(path, group="", package="")
    if composer.missing:
        log.warning(
            "%s: defaults not found, skipped: %s (searched %s)",
            path, ", ".join(composer.missing), ", ".join(map(str, composer.dirs)),
        )  # fmt: skip
    return layers


class _Composer:
    """Walks defaults lists depth first, collecting layers and the entries not found."""

    def __init__(self, dirs: list[Path]) -> None:
        self.dirs = dirs
        self.missing: list[str] = []
        self.overrides: dict[str, str | None] = {}  # group -> option, from `override` entries

    def file_layers(self, path: Path, *, group: str, package: str) -> list[Layer]:
        """Layers of one file: its defaults (recursively) with itself at ``_self_``."""
        cfg = load_yaml(path)
        entries = self._entries(cfg, path)
        if not any(e.path is None and not e.override for e in entries):
            entries.append(DefaultsEntry(None, None))  # _self_ last, as Hydra >= 1.1
        layers: list[Layer] = []
        for entry in entries:
            if entry.path is None:
                layers.append(Layer(str(path), _place(cfg, package)))
            else:
                layers.extend(self._entry_layers(entry, group=group, package=package))
        return layers

    def _entries(self, cfg: DictConfig, path: Path) -> list[DefaultsEntry]:
        """Parse and remove ``cfg.defaults``; record its ``override`` entries."""
        raw = cfg.pop("defaults", None)
        if raw is None:
            return []
        if not isinstance(raw, ListConfig):
            raise ComposeError(f"{path}: 'defaults' must be a list")
        entries = []
        for item in OmegaConf.to_container(raw, resolve=False):
            try:
                entry = parse_entry(item)
            except ComposeError as e:
                raise ComposeError(f"{path}: {e}") from None
            if entry.override:
                self.overrides[entry.group or (entry.path or "")] = entry.path
            else:
                entries.append(entry)
        return entries

    def _entry_layers(self, entry: DefaultsEntry, *, group: str, package: str) -> list[Layer]:
        rel = entry.path or ""
        absolute = rel.startswith("/")
        rel = rel.lstrip("/")
        full = rel if absolute or not group else f"{group}/{rel}"
        entry_group = full.rpartition("/")[0]
        if entry_group.split("/")[0] == "hydra":
            return []  # Hydra's own settings (job logging, launcher...): nothing to compose
        if entry_group in self.overrides:
            option = self.overrides[entry_group]
            if option is None:
                return []
            full = option if "/" in option else f"{entry_group}/{option}"
        found = self._find(full)
        if found is None:
            if not entry.optional:
                self.missing.append(full + (f"@{entry.package}" if entry.package else ""))
            return []
        child_package = _child_package(entry, entry_group, group, package)
        return self.file_layers(found, group=entry_group, package=child_package)

    def _find(self, config_path: str) -> Path | None:
        for folder in self.dirs:
            for suffix in (".yaml", ".yml"):
                candidate = folder / f"{config_path}{suffix}"
                if candidate.is_file():
                    return candidate
        return None


def _child_package(entry: DefaultsEntry, entry_group: str, group: str, package: str) -> str:
    """Hydra's package rule: ``@pkg`` relative to the parent's package (``_global_`` is the
    root); no ``@``: the entry's group relative to the parent's group."""
    if entry.package is not None:
        if entry.package.startswith(GLOBAL):
            return entry.package[len(GLOBAL) :].lstrip(".")
        return _join(package, entry.package)
    relative = entry_group[len(group) :].lstrip("/") if group else entry_group
    return _join(package, relative.replace("/", "."))


def _join(*parts: str) -> str:
    return ".".join(p for p in parts if p)


def _place(cfg: DictConfig, package: str) -> DictConfig:
    """``cfg`` nested under the dotted ``package`` (the root for ``""``)."""
    if not package:
        return cfg
    node: Any = OmegaConf.to_container(cfg, resolve=False)
    for key in reversed(package.split(".")):
        node = {key: node}
    return OmegaConf.create(node)
