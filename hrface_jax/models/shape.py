"""Shape prior: a small MLP that moves each point to where the others say it is.

Heatmap networks place each point from what it looks like locally. Where a
point sits *along* a smooth edge (the jaw, a brow, the lips) is barely
visible locally, but the rest of the face fixes it. The prior sees all the
final points in the face's own frame (origin between the outer eye corners,
x along them, unit = their distance, so it is blind to position, rotation
and scale) and adds an offset to each. Its last layer starts at zero, so an
unfitted prior changes nothing.

It is fitted after training, on the trained model's own points on the
training faces (:mod:`hrface_jax.training.shape_fit`): thousands of cheap
steps on cached points, where the train step's few hundred batches of 8 are
far too few for it. The train step never updates it.
"""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

Array = jax.Array


def face_frame(points: Array, corners: tuple[int, int]) -> tuple[Array, Array, Array]:
  """(origin [B, 2], unit [B], rotation [B, 2, 2]) of each face's frame from
  its points ``[B, L, 2]``: the midpoint of ``corners``, their distance (at
  least 1e-3 of the points' spread, so collapsed corners cannot divide by
  zero) and the rotation taking their direction to +x."""
  a, b = points[:, corners[0]], points[:, corners[1]]
  d = b - a
  spread = jnp.max(jnp.ptp(points, axis=1), axis=-1)
  unit = jnp.maximum(jnp.linalg.norm(d, axis=-1), 1e-3 * spread + 1e-6)
  cos, sin = d[:, 0] / unit, d[:, 1] / unit
  rotation = jnp.stack([jnp.stack([cos, sin], -1), jnp.stack([-sin, cos], -1)], -2)
  return 0.5 * (a + b), unit, rotation


def to_frame(points: Array, origin: Array, unit: Array, rotation: Array) -> Array:
  """Image points ``[B, L, 2]`` -> the face frame of :func:`face_frame`."""
  local = jnp.einsum("bij,blj->bli", rotation, points - origin[:, None])
  return local / unit[:, None, None]


def from_frame(local: Array, origin: Array, unit: Array, rotation: Array) -> Array:
  """The inverse of :func:`to_frame`."""
  scaled = local * unit[:, None, None]
  return jnp.einsum("bji,blj->bli", rotation, scaled) + origin[:, None]


class ShapePrior(nn.Module):
  """``points [B, L, 2] -> points [B, L, 2]`` (same pixels), see the module doc."""

  num_landmarks: int
  frame_corners: tuple[int, int] = (36, 45)  # the markup's outer eye corners
  hidden: Sequence[int] = (256, 256)  # MLP widths

  @nn.compact
  def __call__(self, points: Array) -> Array:
    points = points.astype(jnp.float32)
    frame = face_frame(points, self.frame_corners)
    local = to_frame(points, *frame)
    h = local.reshape(local.shape[0], -1)
    for width in self.hidden:
      h = nn.gelu(nn.Dense(width)(h))
    offsets = nn.Dense(
      2 * self.num_landmarks, kernel_init=nn.initializers.zeros, name="offsets"
    )(h)
    return from_frame(local + offsets.reshape(local.shape), *frame)


def apply_shape_prior(outputs: dict[str, Array], prior: ShapePrior | None) -> None:
  """``outputs["landmarks"]`` through ``prior`` (in place); the points it
  moved are kept as ``"unrefined_landmarks"``. No gradient reaches the
  network below: the prior is fitted on its finished output."""
  if prior is None:
    return
  outputs["unrefined_landmarks"] = outputs["landmarks"]
  outputs["landmarks"] = prior(jax.lax.stop_gradient(outputs["landmarks"]))
