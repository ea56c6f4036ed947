"""Optimizer and learning-rate schedule from the config."""

from __future__ import annotations

import jax
import ml_collections
import optax

from hrface_jax.models.config import has_shape_prior


def learning_rate_schedule(config: ml_collections.ConfigDict) -> optax.Schedule:
  """Linear warm-up to ``config.learning_rate``, then cosine (or constant) decay."""
  opt = config.optimizer
  warmup = min(int(opt.warmup_steps), max(int(config.total_steps) - 1, 0))
  decay_steps = max(int(config.total_steps) - warmup, 1)
  if opt.schedule == "cosine":
    after = optax.cosine_decay_schedule(
      config.learning_rate, decay_steps, alpha=opt.final_lr_fraction
    )
  elif opt.schedule == "constant":
    after = optax.constant_schedule(config.learning_rate)
  else:
    raise ValueError(
      f"config.optimizer.schedule={opt.schedule!r}: expected 'cosine' or 'constant'"
    )
  if warmup == 0:
    return after
  warm = optax.linear_schedule(0.0, config.learning_rate, warmup)
  return optax.join_schedules([warm, after], [warmup])


def make_optimizer(config: ml_collections.ConfigDict) -> optax.GradientTransformation:
  """Gradient clipping, then Adam or AdamW with the schedule above; nothing
  (no update, no state) for the top-level subtrees in ``frozen_modules`` and
  the shape prior (fitted after training)."""
  opt = config.optimizer
  schedule = learning_rate_schedule(config)
  if opt.name == "adam":
    base = optax.adam(schedule, b1=opt.b1, b2=opt.b2, eps=opt.eps)
  elif opt.name == "adamw":
    base = optax.adamw(
      schedule, b1=opt.b1, b2=opt.b2, eps=opt.eps, weight_decay=opt.weight_decay
    )
  else:
    raise ValueError(f"config.optimizer.name={opt.name!r}: expected 'adam' or 'adamw'")
  parts = []
  if opt.grad_clip_norm > 0:
    parts.append(optax.clip_by_global_norm(opt.grad_clip_norm))
  parts.append(base)
  tx = optax.chain(*parts)
  frozen = tuple(config.get("frozen_modules", ()) or ())
  if has_shape_prior(config) and "shape" not in frozen:
    frozen += ("shape",)  # fitted after training, never by the train step
  if not frozen:
    return tx
  # Frozen subtrees get no update and no optimizer state.
  labels = lambda params: {
    k: jax.tree.map(lambda _, k=k: "frozen" if k in frozen else "train", v)
    for k, v in params.items()
  }
  return optax.multi_transform({"train": tx, "frozen": optax.set_to_zero()}, labels)
