r"""Compiled device memory and FLOPs of a model's train and inference steps.

    python -m hrface_jax.profile --config=configs/regional.py \
        --resolutions=256,512,1024,2048,4096 [--batch=1] [--json=PATH] \
        [--config.KEY=VALUE ...]

For each resolution, compiles (never runs) the train step (forward, loss_fn,
backward, an optax Adam update) and the inference step of the configured
model on the default backend and reports XLA's ``memory_analysis()`` (temp,
argument and output bytes) and ``cost_analysis()`` FLOPs and bytes accessed
(every optimised op's operands and results: memory traffic if nothing stayed
in cache). Parameters and optimizer state are abstract (``jax.eval_shape``):
a 4096^2 holistic model needs no memory to be measured. Prints a table;
``--json`` writes a list of ``{model, resolution, step, batch, temp_bytes,
argument_bytes, output_bytes, flops, bytes_accessed}`` records.
"""

from __future__ import annotations

import functools
import sys
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import optax
from absl import app, flags
from ml_collections import config_flags

from hrface_jax import atomic, host_memory, models
from hrface_jax import markup as markup_lib
from hrface_jax.cli import private_flags_parser
from hrface_jax.training import stages, trainer

# Private flag set: scripts and tests may import several CLIs (see cli.py).
_FLAGS = flags.FlagValues()
_CONFIG = config_flags.DEFINE_config_file(
  "config",
  None,
  "Model config file (configs/NAME.py).",
  lock_config=False,
  flag_values=_FLAGS,
)
_RESOLUTIONS = flags.DEFINE_list(
  "resolutions",
  ["256", "512", "1024", "2048", "4096"],
  "Image sides to compile.",
  flag_values=_FLAGS,
)
_BATCH = flags.DEFINE_integer("batch", 1, "Images per step.", flag_values=_FLAGS)
_JSON = flags.DEFINE_string(
  "json", None, "Write the records here as JSON.", flag_values=_FLAGS
)


# The compiled steps are analysed, never run. XLA assigns buffers and counts
# FLOPs on the optimised HLO, before code generation, so skipping the
# backend's machine-code optimisation leaves every figure unchanged
# (tests/test_profile.py) and halves the compile time (53 -> 28 s for the
# sweep's regional_patches train step at 1024^2 on 2 CPU cores).
ANALYSIS_COMPILER_OPTIONS = {
  "xla_backend_optimization_level": 0,
  "xla_llvm_disable_expensive_passes": True,
}


def _cost(compiled, key: str) -> float:
  """One figure of XLA's cost analysis (-1 where it has none)."""
  cost = compiled.cost_analysis()
  if isinstance(cost, list | tuple):  # older JAX: one dict per computation
    cost = cost[0] if cost else {}
  return float((cost or {}).get(key, -1.0))


def _record(config, step: str, batch: int, compiled) -> dict[str, Any]:
  mem = compiled.memory_analysis()
  return {
    "model": config.model_name,
    "resolution": int(config.resolution),
    "step": step,
    "batch": batch,
    "temp_bytes": int(mem.temp_size_in_bytes),
    "argument_bytes": int(mem.argument_size_in_bytes),
    "output_bytes": int(mem.output_size_in_bytes),
    "flops": _cost(compiled, "flops"),
    # Operand + result bytes of every optimised op (fusions count once): the
    # step's memory traffic if nothing stayed in cache.
    "bytes_accessed": _cost(compiled, "bytes accessed"),
  }


def profile_resolution(
  config: ml_collections.ConfigDict,
  resolution: int,
  batch: int = 1,
  steps: tuple[str, ...] = ("train", "infer"),
  compiler_options: dict[str, Any] | None = ANALYSIS_COMPILER_OPTIONS,
) -> list[dict[str, Any]]:
  """Records of ``steps`` ("train", "infer") of ``config``'s model at
  ``resolution``, compiled with ``compiler_options``."""
  for step in steps:
    if step not in ("train", "infer"):
      raise ValueError(f"profile step {step!r}: expected 'train' or 'infer'")
  config = ml_collections.ConfigDict(config.to_dict())
  config.resolution = int(resolution)
  model = models.build_model(config)
  markup = markup_lib.get_markup(config.markup)
  images = jax.ShapeDtypeStruct((batch, resolution, resolution, 3), jnp.uint8)
  landmarks = jax.ShapeDtypeStruct((batch, markup.num_landmarks, 2), jnp.float32)
  rng = jax.ShapeDtypeStruct((2,), jnp.uint32)
  init = functools.partial(model.init, train=False)
  params = jax.eval_shape(init, jax.random.PRNGKey(0), images)["params"]
  tx = optax.adam(1e-3)
  opt_state = jax.eval_shape(tx.init, params)
  # Crop and patch centres as the last training stage makes them.
  crop_mode = stages.stage_controls(config, stages.schedule(config)[-1].name)[
    "crop_mode"
  ]

  def train_step(params, opt_state, images, landmarks, rng):
    keys = jax.random.split(rng, batch)
    kwargs = trainer.train_crop_centers(config, markup, landmarks, keys, crop_mode)

    def loss_of(p):
      out = model.apply({"params": p}, images, **kwargs, train=True)
      return models.loss_fn(config, out, landmarks)

    (loss, _), grads = jax.value_and_grad(loss_of, has_aux=True)(params)
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, loss

  def infer_step(params, images):
    out = model.apply({"params": params}, images, train=False)
    return out["landmarks"], out["confidence"]

  lowerings = {
    "train": lambda: jax.jit(train_step).lower(
      params, opt_state, images, landmarks, rng
    ),
    "infer": lambda: jax.jit(infer_step).lower(params, images),
  }
  options = dict(compiler_options or {})
  return [
    _record(config, s, batch, lowerings[s]().compile(compiler_options=options))
    for s in steps
  ]


_HEADER = (
  f"{'model':<9} {'res':>5} {'step':<5} {'batch':>5} {'temp GiB':>9} "
  f"{'args GiB':>9} {'out GiB':>8} {'GFLOPs':>10}"
)


def format_row(r: dict[str, Any]) -> str:
  gib = 2.0**30
  return (
    f"{r['model']:<9} {r['resolution']:>5} {r['step']:<5} {r['batch']:>5} "
    f"{r['temp_bytes'] / gib:>9.3f} {r['argument_bytes'] / gib:>9.3f} "
    f"{r['output_bytes'] / gib:>8.3f} {r['flops'] / 1e9:>10.1f}"
  )


def format_table(records: list[dict[str, Any]]) -> str:
  return "\n".join([_HEADER] + [format_row(r) for r in records])


def main(argv) -> None:
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  config = _CONFIG.value
  if config is None:
    raise app.UsageError("give --config=configs/NAME.py")
  try:
    resolutions = [int(r) for r in _RESOLUTIONS.value]
  except ValueError:
    raise app.UsageError(
      f"--resolutions={','.join(_RESOLUTIONS.value)}: expected integers"
    ) from None
  print(f"backend: {jax.default_backend()} ({jax.devices()[0].device_kind})")
  print(_HEADER, flush=True)
  records = []
  for res in resolutions:
    try:
      recs = profile_resolution(config, res, _BATCH.value)
    except ValueError as e:  # a config that can't run at this resolution
      print(f"resolution {res}: {e}", file=sys.stderr)
      sys.exit(1)
    for r in recs:
      print(format_row(r), flush=True)
    records.extend(recs)
  if _JSON.value:
    atomic.write_json(_JSON.value, records)
    print(f"wrote {_JSON.value}")


_parse_flags = private_flags_parser(_FLAGS, "hrface_jax.profile", __doc__)


if __name__ == "__main__":
  host_memory.reexec_with_huge_pages()  # first: see hrface_jax/host_memory.py
  app.run(main, flags_parser=_parse_flags)
