"""Coarse attention network: the whole image, small, -> landmarks + region centres."""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from hrface_jax.models import heatmaps as hm
from hrface_jax.models import layers


class CoarseNet(nn.Module):
  """Fully convolutional encoder-decoder on the area-downsampled image.

  Predicts one heatmap per landmark and one attention map per region; the
  soft-argmax of each gives sub-pixel coordinates, returned in full-image
  pixels.
  """

  num_landmarks: int
  num_regions: int
  input_size: int = 256  # the whole image is area-downsampled to this, on device
  stem_stride: int = 4  # space-to-depth stem
  stem_width: int = 16
  widths: Sequence[int] = (16, 32, 48, 64)  # encoder-decoder levels, strides 4..32
  blocks: int = 1  # residual blocks per level
  # Level the heads read (stride stem_stride * 2**level): 64x64 maps.
  heatmap_level: int = 0
  sigma: float = 1.5  # Gaussian target std, in heatmap pixels
  attention_sigma: float = 3.0  # the same for the region attention maps
  temperature: float = 0.1  # spatial softmax temperature: softmax(logits / T)
  dtype: layers.Dtype = jnp.float32

  @nn.compact
  def __call__(self, images: jax.Array) -> dict[str, jax.Array]:
    x, scale = layers.prepare_input(images, self.input_size)
    factors = layers.stem_factors(self.stem_stride)
    x = layers.SpaceToDepthStem(factors, (self.stem_width,), dtype=self.dtype)(x)
    x = layers.EncoderDecoder(
      self.widths, self.blocks, self.heatmap_level, dtype=self.dtype
    )(x)
    # Full-image pixels per heatmap pixel (the stem, then 2 per level).
    hm_scale = scale * self.stem_stride * 2**self.heatmap_level
    lm_logits = layers.HeatmapHead(self.num_landmarks, self.dtype, name="landmarks")(x)
    att_logits = layers.HeatmapHead(self.num_regions, self.dtype, name="attention")(x)
    lm, lm_probs, lm_var = hm.soft_argmax(lm_logits, self.temperature)
    ctr, att_probs, _ = hm.soft_argmax(att_logits, self.temperature)
    return {
      "coarse_landmarks": hm.heatmap_to_image(lm, hm_scale),
      "coarse_confidence": hm.confidence_from_variance(lm_var, self.sigma),
      "coarse_variance_px": lm_var * hm_scale**2,  # [B, L] full-image px^2
      "coarse_heatmaps": lm_probs,
      "attention_maps": att_probs,
      "region_centers": hm.heatmap_to_image(ctr, hm_scale),
      "coarse_heatmap_scale": jnp.float32(hm_scale),
    }


class CoarseLandmarkModel(nn.Module):
  """The coarse attention network on its own, as a landmark model.

  Its parameters sit under ``coarse`` as in :class:`RegionalLandmarkModel`, so a
  coarse network trained once (at the fixed input size every resolution
  shares) initialises the regional model of any resolution.
  """

  coarse: CoarseNet

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
    out = dict(self.coarse(images))
    out["landmarks"] = out["coarse_landmarks"]
    out["confidence"] = out["coarse_confidence"]
    return out
