"""Heatmaps <-> coordinates: spatial soft-argmax, Gaussian targets, mappings.

Heatmaps are channels-last ``[..., h, w, K]``. Coordinates are ``(x, y)`` in
pixels of the heatmap, pixel centres at integers. A heatmap pixel covers
``scale`` pixels of the image it refers to, starting at ``offset``:
``x_image = (x_heatmap + 0.5) * scale - 0.5 + offset``.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp


def spatial_softmax(logits: jax.Array, temperature: float = 1.0) -> jax.Array:
  """softmax(logits / T) over the two spatial axes of ``[..., h, w, K]``."""
  logits = logits.astype(jnp.float32) / temperature
  m = jax.lax.stop_gradient(jnp.max(logits, axis=(-3, -2), keepdims=True))
  e = jnp.exp(logits - m)
  return e / jnp.sum(e, axis=(-3, -2), keepdims=True)


def expectation(probs: jax.Array) -> tuple[jax.Array, jax.Array]:
  """Mean (x, y) [..., K, 2] and mean per-axis variance [..., K] of ``probs``."""
  h, w = probs.shape[-3], probs.shape[-2]
  px = jnp.sum(probs, axis=-3)  # [..., w, K] marginal over rows
  py = jnp.sum(probs, axis=-2)  # [..., h, K]
  xs = jnp.arange(w, dtype=jnp.float32)[:, None]
  ys = jnp.arange(h, dtype=jnp.float32)[:, None]
  mx = jnp.sum(px * xs, axis=-2)
  my = jnp.sum(py * ys, axis=-2)
  vx = jnp.sum(px * jnp.square(xs - mx[..., None, :]), axis=-2)
  vy = jnp.sum(py * jnp.square(ys - my[..., None, :]), axis=-2)
  return jnp.stack([mx, my], axis=-1), 0.5 * (vx + vy)


def soft_argmax(
  logits: jax.Array, temperature: float = 1.0
) -> tuple[jax.Array, jax.Array, jax.Array]:
  """Differentiable sub-pixel argmax of ``[..., h, w, K]`` heatmap logits.

  Returns (coords [..., K, 2] in heatmap pixels, probs [..., h, w, K],
  variance [..., K]: the spread of the distribution, heatmap pixels squared).
  """
  probs = spatial_softmax(logits, temperature)
  coords, var = expectation(probs)
  return coords, probs, var


def confidence_from_variance(var: jax.Array, sigma: float) -> jax.Array:
  """Sharpness in (0, 1]: 1 when as peaked as the sigma-Gaussian target or
  sharper, ~sigma^2 / var for a wide or multi-modal distribution."""
  return jnp.minimum(1.0, sigma**2 / jnp.maximum(var, 1e-6))


def gaussian_heatmaps(
  centers: jax.Array, shape: tuple[int, int], sigma: float
) -> jax.Array:
  """Gaussian targets (peak 1) at ``centers`` [..., K, 2] -> [..., h, w, K]."""
  h, w = shape
  cx = centers[..., None, None, :, 0]  # [..., 1, 1, K]
  cy = centers[..., None, None, :, 1]
  xs = jnp.arange(w, dtype=jnp.float32)[:, None]  # [w, 1]
  ys = jnp.arange(h, dtype=jnp.float32)[:, None, None]  # [h, 1, 1]
  d2 = jnp.square(xs - cx) + jnp.square(ys - cy)
  return jnp.exp(-d2 / (2.0 * sigma**2))


def gaussian_mass(sigma: float) -> float:
  """Sum of a peak-1 Gaussian over the plane: probabilities x this ~ targets."""
  return 2.0 * math.pi * sigma**2


def heatmap_to_image(coords: jax.Array, scale, offset=0.0) -> jax.Array:
  """Heatmap pixels -> image pixels (``offset``: the window's origin)."""
  return (coords + 0.5) * scale - 0.5 + offset


def image_to_heatmap(coords: jax.Array, scale, offset=0.0) -> jax.Array:
  """Image pixels -> heatmap pixels (inverse of :func:`heatmap_to_image`)."""
  return (coords - offset + 0.5) / scale - 0.5
