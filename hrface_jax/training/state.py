"""The training state: everything a step reads and writes, as one pytree."""

from __future__ import annotations

from typing import Any

import flax
import jax
import jax.numpy as jnp
import optax

PyTree = Any


@flax.struct.dataclass
class TrainState:
  """Params, optimizer state and bookkeeping, replicated across devices.

  Attributes:
    step: number of updates applied so far.
    params: model parameters (float32).
    opt_state: optax state.
    ema_params: exponential moving average of params (== params when EMA is
      off, so evaluation code needs no special case).
    rng: base PRNG key; per-step, per-example keys are folded in from it, so
      the data-parallel layout does not change the randomness.
    first_nonfinite_step: -1, or the first step whose loss or gradients were
      not finite (that update was skipped; the run stops at the next log).
  """

  step: jax.Array
  params: PyTree
  opt_state: optax.OptState
  ema_params: PyTree
  rng: jax.Array
  first_nonfinite_step: jax.Array


def create_train_state(
  params: PyTree, tx: optax.GradientTransformation, rng: jax.Array
) -> TrainState:
  return TrainState(
    step=jnp.zeros((), jnp.int32),
    params=params,
    opt_state=tx.init(params),
    ema_params=params,
    rng=rng,
    first_nonfinite_step=jnp.full((), -1, jnp.int32),
  )
