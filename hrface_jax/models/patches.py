"""Native-resolution refinement: a small patch around every landmark.

Beyond the paper. Once the regional estimate is within a few percent of the
face, each landmark gets a fixed-size patch cut around it (the one crop op,
:func:`hrface_jax.models.cropping.crop_windows`) from the image at a chosen
level: the full-resolution image itself, or its area-downsampled copy of
side ``level`` (made on device, like the coarse network's input). A shared
fully convolutional trunk turns every patch into a one-channel heatmap for its
own landmark (a learned per-landmark embedding says which one); soft-argmax
gives the refined point. Stages cascade: each cuts its patches around the
previous stage's points, smaller and finer, so the last heatmap pixel is a
few image pixels even at 4096^2 while compute and memory depend only on the
patch sizes, not on the image.
"""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from hrface_jax.models import cropping, layers
from hrface_jax.models import heatmaps as hm


class PatchRefiner(nn.Module):
  """One refinement stage: a ``size`` x ``size`` patch per landmark.

  ``level``: side of the image the patches are cut from (0: the full
  resolution image, uint8). ``stride``: patch pixels per heatmap pixel (the
  space-to-depth stem's stride), so heatmaps are ``size / stride`` square.
  """

  num_landmarks: int
  size: int
  stride: int
  level: int = 0
  stem_widths: Sequence[int] = (16, 32)
  widths: Sequence[int] = (16, 32, 48)
  blocks: int = 1
  pad_value: int = 0
  temperature: float = 0.1
  dtype: layers.Dtype = jnp.float32

  @nn.compact
  def __call__(self, images: jax.Array, centers: jax.Array) -> dict[str, jax.Array]:
    """Patches around ``centers`` [B, L, 2] (full-image pixels) of ``images``
    [B, H, W, C] uint8 -> refined points [B, L, 2] and what the loss needs."""
    native = self.level <= 0 or self.level >= max(images.shape[1:3])
    if native:
      source, scale = images, 1.0
      pad = self.pad_value
    else:
      # Area-downsampled on device; XLA shares it with the coarse network's
      # input when the sides agree.
      source, scale = layers.prepare_input(images, self.level)
      pad = self.pad_value * (2.0 / 255.0) - 1.0  # the normalised pad value
    at_level = hm.image_to_heatmap(centers, scale)  # level pixels
    patches, origins = cropping.crop_windows(
      source, at_level, self.size, pad_value=pad
    )  # [B, L, s, s, C], origins in level pixels
    x = layers.SpaceToDepthStem(
      layers.stem_factors(self.stride) or (1,),  # stride 1: a per-pixel embedding
      tuple(self.stem_widths),
      self.dtype,
      normalize_input=native,
      name="stem",
    )(patches)
    b, n, f = x.shape[0], x.shape[1], x.shape[2]
    # Which landmark a patch is for: an eye corner and a lid point can share
    # the same pixels.
    embed = self.param(
      "landmark_embedding", nn.initializers.normal(0.02), (n, x.shape[-1])
    )
    x = x + embed[:, None, None, :].astype(self.dtype)
    x = layers.EncoderDecoder(self.widths, self.blocks, 0, self.dtype, name="trunk")(
      x.reshape(b * n, f, f, x.shape[-1])
    )
    x = x.reshape(b, n, f, f, x.shape[-1])
    x = nn.LayerNorm(dtype=self.dtype)(x)
    x = nn.silu(nn.Dense(x.shape[-1], dtype=self.dtype, kernel_init=layers.glorot)(x))
    # One output channel per landmark, each its own: a per-landmark 1x1 head.
    tiny = nn.initializers.variance_scaling(1e-4, "fan_in", "truncated_normal")
    kernel = self.param("head_kernel", tiny, (x.shape[-1], n))
    bias = self.param("head_bias", nn.initializers.zeros, (n,))
    logits = jnp.einsum("blhwc,cl->blhw", x, kernel.astype(self.dtype))
    logits = (logits + bias[:, None, None].astype(self.dtype)).astype(jnp.float32)
    coords, probs, var = hm.soft_argmax(logits[..., None], self.temperature)
    hm_scale = scale * self.stride  # full-image pixels per heatmap pixel
    offset = origins * scale  # the patch origin, as a full-image offset
    return {
      "landmarks": hm.heatmap_to_image(coords[..., 0, :], hm_scale, offset),
      "heatmaps": probs,  # [B, L, f, f, 1]
      "heatmap_scale": jnp.float32(hm_scale),
      "offsets": offset,  # [B, L, 2]: x_full = (x_hm + 0.5) * scale - 0.5 + offset
      "variance_px": var[..., 0] * hm_scale**2,  # [B, L] full-image px^2
    }
