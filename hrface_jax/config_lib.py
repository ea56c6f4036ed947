"""The default experiment config, composed from each layer's own defaults.

Files in ``configs/`` start from :func:`base_config` and override what their
experiment changes, so each reads like a table of that experiment.
:func:`validate_config` checks a resolved config before anything compiles.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Mapping
from typing import Any

import ml_collections

from hrface_jax import markup as markup_lib
from hrface_jax.data import config as data_config
from hrface_jax.models import config as model_config

RESOLUTIONS = (256, 512, 1024, 2048, 4096)

# Training stages: name -> what changes (see hrface_jax/training/stages.py).
REGIONAL_STAGES = (("coarse", 0.3), ("regional", 0.4), ("joint", 0.3))
HOLISTIC_STAGES = (("holistic", 1.0),)


def base_config() -> ml_collections.ConfigDict:
  """Every field a training run has, with defaults for a small CPU run."""
  config = ml_collections.ConfigDict()

  # What is trained, on what.
  config.model_name = "regional"  # "regional" | "holistic"
  config.markup = "ibug68"  # see hrface_jax.markup
  config.resolution = 256  # full-resolution side of the (square) face images
  config.seed = 0

  # Schedule. batch_size is global: across all devices and hosts.
  config.batch_size = 8
  config.total_steps = 1000
  config.learning_rate = 1e-3
  # (stage name, fraction of total_steps), run in order in one run.
  config.stages = REGIONAL_STAGES

  config.optimizer = ml_collections.ConfigDict(
    dict(
      name="adamw",  # "adam" | "adamw"
      b1=0.9,
      b2=0.999,
      eps=1e-8,
      weight_decay=1e-4,  # adamw only
      schedule="cosine",  # "cosine" | "constant" (after warm-up)
      warmup_steps=100,
      final_lr_fraction=0.01,
      grad_clip_norm=1.0,  # 0 disables
      ema_decay=0.0,  # 0 disables the EMA of parameters
    )
  )

  # Reuse: top-level parameter subtrees ("coarse", "regional", "patches_0",
  # ...) copied from another run's checkpoint (its best, else latest) when
  # this run starts from scratch, and subtrees that are not trained (their
  # gradients are never computed). A coarse network trained once at its fixed
  # input size serves the regional model at every resolution this way.
  config.init_from = ""  # a workdir or checkpoint; "" = none
  config.init_modules = ("coarse",)  # what init_from provides
  config.frozen_modules = ()

  # Bookkeeping.
  config.log_every_steps = 50
  config.eval_every_steps = 500
  config.eval_max_examples = 0  # 0: the whole eval split
  config.checkpoint_every_steps = 500
  config.keep_checkpoints = 2  # the last K...
  config.keep_best_checkpoints = 1  # ...plus the best by validation NME
  config.device_prefetch_batches = 2  # batches put on the devices ahead of the step
  # Multi-host: "auto" initialises jax.distributed when a cluster is detected.
  config.distributed = "auto"  # "auto" | "on" | "off"
  # A process without a heartbeat for this long is declared lost; the others
  # then stop with an error instead of waiting for it.
  config.distributed_timeout_s = 30

  data_config.add_defaults(config)
  model_config.add_defaults(config)
  return config


def load_config_file(path: str, arg: str | None = None) -> ml_collections.ConfigDict:
  """``get_config([arg])`` of a config file such as ``configs/NAME.py``."""
  full = os.path.abspath(path)
  if not os.path.exists(full):
    raise FileNotFoundError(f"config file {full} does not exist")
  spec = importlib.util.spec_from_file_location(f"_cfg_{abs(hash(full))}", full)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config(arg) if arg is not None else module.get_config()


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


def config_differences(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
  """``"field: old -> new"`` for every (dotted) field whose value differs
  (dicts or ConfigDicts)."""

  def plain(v: Any) -> Any:  # tuples from a config, lists from JSON: as lists
    return [plain(x) for x in v] if isinstance(v, tuple | list) else v

  def flat(d: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out = {}
    for k, v in d.items():
      if isinstance(v, Mapping):
        out.update(flat(v, f"{prefix}{k}."))
      else:
        out[prefix + k] = plain(v)
    return out

  class Absent:  # a field one side lacks
    def __repr__(self) -> str:
      return "(absent)"

  as_dict = lambda c: c.to_dict() if isinstance(c, ml_collections.ConfigDict) else c
  a, b = flat(as_dict(old)), flat(as_dict(new))
  absent = Absent()
  pairs = {k: (a.get(k, absent), b.get(k, absent)) for k in sorted(set(a) | set(b))}
  return [f"{k}: {x!r} -> {y!r}" for k, (x, y) in pairs.items() if x != y]


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
  """Training schedule for a GPU/TPU run: bigger batches, longer, bf16, EMA."""
  config.batch_size = batch_size
  config.total_steps = 60_000
  config.learning_rate = 1e-3 * (batch_size / 64) ** 0.5
  config.optimizer.warmup_steps = 1000
  config.optimizer.ema_decay = 0.999
  config.compute_dtype = "bfloat16"
  config.log_every_steps = 100
  config.eval_every_steps = 2000
  config.checkpoint_every_steps = 2000
  config.data_workers = 8


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
