"""Holistic baseline: a stacked-hourglass heatmap network on the whole image."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from hrface_jax.models import heatmaps as hm
from hrface_jax.models import layers
from hrface_jax.models.shape import ShapePrior, apply_shape_prior


class HolisticModel(nn.Module):
  """Stacked hourglass (same depthwise-separable blocks) with intermediate
  supervision, on the image resized on device to ``input_resolution`` (its
  longer side; 0 = full resolution, where memory grows with the pixel count).

  Stem: two space-to-depth(2) stages to stride 4; every hourglass runs at
  stride 4 and outputs heatmaps there; the next stack sees its features and
  heatmaps remapped (Newell et al.).
  """

  num_landmarks: int
  input_resolution: int = 0  # longer side it sees (0: full resolution)
  stem_width: int = 32  # stride-2 stage; the hourglasses run at stride 4
  width: int = 64
  levels: int = 4  # hourglass depth: strides 4, 8, 16, 32
  stacks: int = 2  # intermediate supervision on every stack's heatmaps
  blocks: int = 1
  sigma: float = 1.5
  temperature: float = 0.1
  dtype: layers.Dtype = jnp.float32
  shape: ShapePrior | None = None  # fitted after training (models/shape.py)

  @property
  def divisor(self) -> int:
    return 4 * 2 ** (self.levels - 1)

  @nn.compact
  def __call__(
    self,
    images: jax.Array,
    *,
    crop_centers: jax.Array | None = None,
    crop_center_weights: jax.Array | None = None,
    train: bool = False,
  ) -> dict[str, jax.Array]:
    del crop_centers, crop_center_weights, train  # no crops; no train-only behaviour
    x, scale = layers.prepare_input(images, self.input_resolution, self.divisor)
    x = layers.SpaceToDepthStem((2,), (self.stem_width,), dtype=self.dtype)(x)
    x = layers.SepConvBlock(self.stem_width, dtype=self.dtype)(x)
    x = layers.Downsample(self.width, dtype=self.dtype)(x)
    widths = (self.width,) * self.levels
    all_logits = []
    for s in range(self.stacks):
      y = layers.EncoderDecoder(widths, self.blocks, 0, self.dtype, name=f"hg{s}")(x)
      logits = layers.HeatmapHead(self.num_landmarks, self.dtype, name=f"head{s}")(y)
      all_logits.append(logits)
      if s < self.stacks - 1:
        remap = nn.Dense(self.width, dtype=self.dtype, name=f"remap_heat{s}")
        feat = nn.Dense(self.width, dtype=self.dtype, name=f"remap_feat{s}")
        x = x + feat(y) + remap(logits.astype(self.dtype))
    logits = jnp.stack(all_logits, axis=1)  # [B, S, h, w, L]
    coords, probs, var = hm.soft_argmax(logits, self.temperature)
    hm_scale = scale * 4
    stack_landmarks = hm.heatmap_to_image(coords, hm_scale)  # [B, S, L, 2]
    out = {
      "landmarks": stack_landmarks[:, -1],
      "confidence": hm.confidence_from_variance(var[:, -1], self.sigma),
      "stack_landmarks": stack_landmarks,
      "heatmaps": probs,  # [B, S, h, w, L]
      "heatmap_scale": jnp.float32(hm_scale),
    }
    apply_shape_prior(out, self.shape)
    return out
