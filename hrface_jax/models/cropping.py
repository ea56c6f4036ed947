"""Attention-driven cropping: static-size windows of the full-resolution image.

The one crop op is :func:`crop_window`: a ``jax.lax.dynamic_slice`` of the
image. A window is centred on its centre unless that would take it past the
image's border: then it is moved inside (:func:`crop_origins` clamps the
origin), so a crop is always a plain slice of image pixels. (Padding the
image so border windows stay centred cost 30% of a 4096^2 train step on CPU:
XLA turns pad-then-slice into a per-element gather loop.) Only a window
larger than the image is padded, with ``pad_value``. :func:`crop_windows`
vmaps it over images and regions. A window covers full-image pixels
``[x0, x0 + size)``, ``[y0, y0 + size)``; its origin ``(x0, y0)`` is returned
to map crop-local coordinates back (``x_full = x_crop + x0``).
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from hrface_jax import markup as markup_lib


def crop_padding(size: int) -> int:
  """Pixels of padding per side: enough for a (size + 1) window around any
  centre inside the image (the +1 is for sub-pixel crops)."""
  return size // 2 + 2


def crop_origins(
  centers: jax.Array, size: int, image_hw: tuple[int, int], *, subpixel: bool
) -> jax.Array:
  """Window origins (x0, y0) [..., 2] float32 for ``centers`` [..., 2].

  Hard crops round to whole pixels; sub-pixel crops keep the fraction. A
  window that fits the image is kept inside it (moved off its centre at the
  border); a larger one is centred on the image's padding, within
  :func:`crop_padding` (a centre far off the image, e.g. from an untrained
  attention map, gives a border window either way).
  """
  p = crop_padding(size)
  h, w = image_hw
  o = centers.astype(jnp.float32) - (size - 1) / 2.0
  if not subpixel:
    o = jnp.floor(o + 0.5)
  span = size + 1 if subpixel else size  # pixels a window reads
  lo = jnp.array([0.0 if span <= w else -p, 0.0 if span <= h else -p])
  hi = jnp.array(
    [
      w - span if span <= w else w + p - size - 1,
      h - span if span <= h else h + p - size - 1,
    ],
    jnp.float32,
  )
  return jnp.clip(o, lo, hi)


def _window(image: jax.Array, origin: jax.Array, n: int, pad_value) -> jax.Array:
  """``image[y0 : y0+n, x0 : x0+n]`` (an origin from :func:`crop_origins`).

  A window that fits the image is a dynamic_slice (its origin is inside).
  One larger than the image (small images) is sliced out of the image padded
  by ``crop_padding(n)`` with ``pad_value``.
  """
  h, w, c = image.shape
  o = origin.astype(jnp.int32)
  if n <= h and n <= w:
    return jax.lax.dynamic_slice(image, (o[1], o[0], 0), (n, n, c))
  p = crop_padding(n)
  padded = jnp.pad(
    image,
    ((p, p), (p, p), (0, 0)),
    constant_values=jnp.asarray(pad_value, image.dtype),
  )
  return jax.lax.dynamic_slice(padded, (o[1] + p, o[0] + p, 0), (n, n, c))


def crop_window(
  image: jax.Array,
  origin: jax.Array,
  size: int,
  subpixel: bool = False,
  pad_value: int = 0,
) -> jax.Array:
  """One window of image [H, W, C] at full-image ``origin`` (x0, y0) [2].

  Hard: the uint8 pixels ``[y0, y0 + size) x [x0, x0 + size)`` of the image
  padded by :func:`crop_padding` with ``pad_value`` (same dtype).
  Sub-pixel: a float32 bilinear resampling at the fractional origin, which
  is differentiable with respect to ``origin``.
  """
  base = jnp.floor(origin)
  if not subpixel:
    return _window(image, base, size, pad_value)
  win = _window(image, base, size + 1, pad_value).astype(jnp.float32)
  fx, fy = origin[0] - base[0], origin[1] - base[1]
  top = win[:-1, :-1] * (1 - fx) + win[:-1, 1:] * fx
  bottom = win[1:, :-1] * (1 - fx) + win[1:, 1:] * fx
  return top * (1 - fy) + bottom * fy


def crop_windows(
  images: jax.Array,
  centers: jax.Array,
  size: int,
  *,
  pad_value: int = 0,
  subpixel: bool = False,
) -> tuple[jax.Array, jax.Array]:
  """Crops [B, R, size, size, C] around ``centers`` [B, R, 2] of images [B, H, W, C].

  Returns (crops, origins [B, R, 2] float32 full-image pixels).
  """
  h, w = images.shape[1:3]
  origins = crop_origins(centers, size, (h, w), subpixel=subpixel)
  one = lambda im, o: crop_window(im, o, size, subpixel, pad_value)
  return jax.vmap(jax.vmap(one, (None, 0)))(images, origins), origins


def crop_boxes(origins: jax.Array, size: int) -> jax.Array:
  """(x0, y0, x1, y1) [..., 4] of windows at ``origins``; x1, y1 exclusive."""
  return jnp.concatenate([origins, origins + size], axis=-1)


def region_centers_from_landmarks(
  landmarks: jax.Array,
  markup: markup_lib.Markup | str | Sequence[Sequence[int]],
) -> jax.Array:
  """Centre of each region's bounding box: [..., L, 2] -> [..., R, 2].

  The box centre, not the mean: it is nearest to the region's farthest point
  (the mean of the nose is pulled towards its five nostril points), so a
  crop around it holds the whole region with the most room to spare.
  ``markup``: a Markup, its name, or the regions' landmark indices.
  """
  if isinstance(markup, str):
    markup = markup_lib.get_markup(markup)
  if isinstance(markup, markup_lib.Markup):
    regions = markup.region_indices()
  else:
    regions = [np.asarray(r, np.int32) for r in markup]

  def box_centre(idx):
    points = landmarks[..., idx, :]
    return 0.5 * (jnp.min(points, axis=-2) + jnp.max(points, axis=-2))

  return jnp.stack([box_centre(idx) for idx in regions], axis=-2)


def crop_center_jitter(
  rng: jax.Array, config: ml_collections.ConfigDict, shape: tuple[int, ...]
) -> jax.Array:
  """Uniform jitter of ``shape`` (e.g. [R, 2]) in full-image pixels:
  +-``config.train_crop_jitter`` x the image side (``config.resolution``)."""
  amount = float(config.train_crop_jitter) * float(config.resolution)
  return jax.random.uniform(rng, shape, jnp.float32, -amount, amount)


def jitter_centers(rng: jax.Array, centers: jax.Array, amount: float) -> jax.Array:
  """``centers`` + uniform noise in [-amount, amount] pixels (pure)."""
  return centers + jax.random.uniform(rng, centers.shape, jnp.float32, -amount, amount)
