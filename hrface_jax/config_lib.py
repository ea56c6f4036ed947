"""Loading, merging and checking experiment configs.

Every field and its one default: :func:`hrface_jax.defaults.base_config`
(re-exported here). Files in ``configs/`` start from it and write out their
experiment's table; :func:`load_sibling` gives them ``configs/common.py``.
:func:`validate_config` checks a resolved config before anything compiles.
"""

from __future__ import annotations

import importlib.util
import os
import types
import warnings
from collections.abc import Mapping
from typing import Any

import ml_collections

from hrface_jax import markup as markup_lib
from hrface_jax.defaults import HOLISTIC_STAGES, REGIONAL_STAGES, base_config
from hrface_jax.models import config as model_config

__all__ = [
  "HOLISTIC_STAGES",
  "REGIONAL_STAGES",
  "RESOLUTIONS",
  "add_missing_defaults",
  "base_config",
  "config_differences",
  "config_table",
  "flat_fields",
  "load_config_file",
  "load_sibling",
  "parse_variant",
  "unknown_fields",
  "validate_config",
  "with_defaults",
]

RESOLUTIONS = (256, 512, 1024, 2048, 4096)

# configs/ beside the package (a source checkout), for the deprecated names.
_CONFIGS_DIR = os.path.join(os.path.dirname(os.path.dirname(__file__)), "configs")


def load_config_file(path: str, arg: str | None = None) -> ml_collections.ConfigDict:
  """``get_config([arg])`` of a config file such as ``configs/NAME.py``."""
  full = os.path.abspath(path)
  if not os.path.exists(full):
    raise FileNotFoundError(f"config file {full} does not exist")
  module = _load_module(full)
  return module.get_config(arg) if arg is not None else module.get_config()


def _load_module(path: str) -> types.ModuleType:
  spec = importlib.util.spec_from_file_location(f"_cfg_{abs(hash(path))}", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def load_sibling(config_file: str, name: str) -> types.ModuleType:
  """The module ``NAME.py`` beside ``config_file`` (a config's ``__file__``):
  how ``configs/*.py`` import ``common`` and each other, however they were
  loaded (absl's config flags, :func:`load_config_file`, the sweep)."""
  path = os.path.join(os.path.dirname(os.path.abspath(config_file)), f"{name}.py")
  if not os.path.exists(path):
    raise FileNotFoundError(f"{config_file}: imports {path}, which does not exist")
  return _load_module(path)


def with_defaults(saved: Mapping[str, Any]) -> ml_collections.ConfigDict:
  """A saved config with the fields it predates filled from :func:`base_config`.

  Checkpoints outlive code: a config saved before a field existed loads with
  that field's current default, so no reader needs its own fallback. Saved
  values win, and saved fields the defaults lack are kept.
  """

  def merge(default: Any, value: Any) -> Any:
    if isinstance(default, Mapping) and isinstance(value, Mapping):
      out = dict(default)
      out.update({k: merge(default.get(k), v) for k, v in value.items()})
      return out
    return value

  saved = saved.to_dict() if isinstance(saved, ml_collections.ConfigDict) else saved
  return ml_collections.ConfigDict(merge(base_config().to_dict(), dict(saved)))


def flat_fields(config: Mapping[str, Any]) -> dict[str, Any]:
  """``{"dotted.field": value}`` of a dict or ConfigDict, in its order; tuples
  (a config's) and lists (JSON's) both as lists."""

  def plain(v: Any) -> Any:
    return [plain(x) for x in v] if isinstance(v, tuple | list) else v

  def flat(d: Mapping[str, Any], prefix: str) -> dict[str, Any]:
    out = {}
    for k, v in d.items():
      if isinstance(v, Mapping):
        out.update(flat(v, f"{prefix}{k}."))
      else:
        out[prefix + k] = plain(v)
    return out

  if isinstance(config, ml_collections.ConfigDict):
    config = config.to_dict()
  return flat(config, "")


def config_differences(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
  """``"field: old -> new"`` for every (dotted) field whose value differs
  (dicts or ConfigDicts)."""

  class Absent:  # a field one side lacks
    def __repr__(self) -> str:
      return "(absent)"

  a, b = flat_fields(old), flat_fields(new)
  absent = Absent()
  pairs = {k: (a.get(k, absent), b.get(k, absent)) for k in sorted(set(a) | set(b))}
  return [f"{k}: {x!r} -> {y!r}" for k, (x, y) in pairs.items() if x != y]


def config_table(config: ml_collections.ConfigDict) -> str:
  """Every field of ``config`` and its value, one per line in dotted order,
  with ``# default: V`` where it is not :func:`base_config`'s: the resolved
  experiment's whole table (``train --print_config``)."""
  fields, defaults = flat_fields(config), flat_fields(base_config())
  width = max(map(len, fields), default=0)
  lines = []
  for key in sorted(fields):
    line = f"{key:<{width}}  {fields[key]!r}"
    if key in defaults and defaults[key] != fields[key]:
      line += f"  # default: {defaults[key]!r}"
    lines.append(line)
  if config.model_name == "regional":  # what the geometry rules derive
    size, stride = model_config.regional_crop(config)
    lines.append(
      f"# at {config.resolution}px: regional crops {size} px, stem stride {stride}"
    )
    if config.patches.enabled:
      stages = ", ".join(
        f"{s.window} px / {s.pixel} px" for s in model_config.patch_stages(config)
      )
      lines.append(f"# patch stages (window / heatmap pixel): {stages}")
  return "\n".join(lines)


def parse_variant(variant: str, path: str) -> tuple[bool, int | None]:
  """``"gpu"``, ``"gpu,4096"`` or ``"4096"`` -> (gpu, resolution or None)."""
  gpu, resolution = False, None
  for part in filter(None, variant.split(",")):
    if part == "gpu":
      gpu = True
    elif part.isdigit() and int(part) in RESOLUTIONS:
      resolution = int(part)
    else:
      raise ValueError(
        f"{path}: unknown variant part {part!r}; use 'gpu' and/or a resolution "
        f"from {RESOLUTIONS}, e.g. '{path}:gpu,1024'"
      )
  return gpu, resolution


def accelerator_schedule(config: ml_collections.ConfigDict, batch_size: int) -> None:
  """Deprecated (one release): ``configs/common.py``'s ``accelerator_schedule``."""
  warnings.warn(
    "hrface_jax.config_lib.accelerator_schedule moved to configs/common.py "
    '(common = config_lib.load_sibling(__file__, "common"))',
    DeprecationWarning,
    stacklevel=2,
  )
  common = load_sibling(os.path.join(_CONFIGS_DIR, "common.py"), "common")
  common.accelerator_schedule(config, batch_size)


def add_missing_defaults(config: ml_collections.ConfigDict) -> None:
  """Adds the :func:`base_config` fields ``config`` lacks, with their defaults
  (in place; what the deprecated ``add_defaults`` of ``hrface_jax.data.config``
  and ``hrface_jax.models.config`` do)."""
  for key, value in base_config().items():
    if key not in config:
      config[key] = value


def unknown_fields(config: ml_collections.ConfigDict) -> list[str]:
  """The dotted names of ``config``'s fields that :func:`base_config` lacks:
  a typo in a config file (``config.regional.fussion = ...``) adds a field
  that nothing reads instead of failing."""
  known = flat_fields(base_config())
  return [key for key in flat_fields(config) if key not in known]


def _positive_int(config: ml_collections.ConfigDict, field: str) -> None:
  value = config[field]
  if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
    raise ValueError(f"config.{field}={value!r}: must be a positive integer")


def validate_config(
  config: ml_collections.ConfigDict, *, num_devices: int, num_processes: int = 1
) -> None:
  """Raises ValueError naming the field and the reason if ``config`` can't run.

  Runs before any compilation, so a typo costs seconds, not a compile.
  """
  unknown = unknown_fields(config)
  if unknown:
    raise ValueError(
      f"config.{unknown[0]}: not a field of the training config "
      f"(hrface_jax/defaults.py has every field); unknown: {', '.join(unknown)}"
    )
  for field in (
    "resolution",
    "batch_size",
    "total_steps",
    "log_every_steps",
    "eval_every_steps",
    "checkpoint_every_steps",
    "distributed_timeout_s",
  ):
    _positive_int(config, field)
  if not config.learning_rate > 0:
    raise ValueError(f"config.learning_rate={config.learning_rate!r}: must be > 0")
  if config.batch_size % num_processes:
    raise ValueError(
      f"config.batch_size={config.batch_size} is not divisible by the number of "
      f"processes ({num_processes})"
    )
  local = config.batch_size // num_processes
  if local % num_devices:
    raise ValueError(
      f"config.batch_size={config.batch_size} gives {local} examples per process, "
      f"not divisible by the {num_devices} local devices"
    )
  markup_lib.get_markup(config.markup)
  from hrface_jax.training import stages  # noqa: PLC0415  (avoids an import cycle)

  stages.validate_stages(config)
  if config.distributed not in ("auto", "on", "off"):
    raise ValueError(
      f"config.distributed={config.distributed!r}: expected 'auto', 'on' or 'off'"
    )
  if config.init_from and not os.path.exists(config.init_from):
    raise ValueError(
      f"config.init_from={config.init_from!r}: no such workdir or checkpoint"
    )
  from hrface_jax.models import validate_model_config  # noqa: PLC0415

  validate_model_config(config)
