"""Models: coarse attention + attention-driven crops + regional nets; holistic.

model = build_model(config)
variables = model.init(rng, images_uint8)           # [B, H, W, 3]
out = model.apply(variables, images_uint8, crop_centers=None, train=False)
out["landmarks"]   # [B, L, 2] float32, full-image pixels
out["confidence"]  # [B, L] in (0, 1]
loss, metrics = loss_fn(config, out, true_landmarks)
"""

from __future__ import annotations

import flax.linen as nn
import ml_collections

from hrface_jax import markup as markup_lib
from hrface_jax.models.coarse import CoarseLandmarkModel, CoarseNet
from hrface_jax.models.config import (
  add_defaults,
  patch_stages,
  regional_crop,
  validate_model_config,
)
from hrface_jax.models.cropping import (
  crop_boxes,
  crop_center_jitter,
  crop_windows,
  jitter_centers,
  region_centers_from_landmarks,
)
from hrface_jax.models.heatmaps import gaussian_heatmaps, soft_argmax
from hrface_jax.models.holistic import HolisticModel
from hrface_jax.models.layers import get_dtype
from hrface_jax.models.losses import coordinate_loss, heatmap_loss, loss_fn, wing_loss
from hrface_jax.models.patches import PatchRefiner
from hrface_jax.models.regional import RegionalLandmarkModel, RegionalNet

__all__ = [
  "CoarseLandmarkModel",
  "CoarseNet",
  "HolisticModel",
  "RegionalLandmarkModel",
  "RegionalNet",
  "add_defaults",
  "build_model",
  "coordinate_loss",
  "crop_boxes",
  "crop_center_jitter",
  "crop_windows",
  "gaussian_heatmaps",
  "heatmap_loss",
  "jitter_centers",
  "loss_fn",
  "PatchRefiner",
  "patch_stages",
  "region_centers_from_landmarks",
  "regional_crop",
  "soft_argmax",
  "validate_model_config",
  "wing_loss",
]


def build_model(config: ml_collections.ConfigDict) -> nn.Module:
  """The configured model (validates the config first)."""
  validate_model_config(config)
  markup = markup_lib.get_markup(config.markup)
  dtype = get_dtype(config.compute_dtype)
  h = config.heatmap
  if config.model_name == "holistic":
    ho = config.holistic
    return HolisticModel(
      num_landmarks=markup.num_landmarks,
      input_resolution=int(config.input_resolution),
      stem_width=ho.stem_width,
      width=ho.width,
      levels=ho.levels,
      stacks=ho.stacks,
      blocks=ho.blocks,
      sigma=h.sigma,
      temperature=h.temperature,
      dtype=dtype,
    )
  c, r = config.coarse, config.regional
  crop_size, stem_stride = regional_crop(config)
  coarse = CoarseNet(
    num_landmarks=markup.num_landmarks,
    num_regions=markup.num_regions,
    input_size=c.input_size,
    stem_stride=c.stem_stride,
    stem_width=c.stem_width,
    widths=tuple(c.widths),
    blocks=c.blocks,
    heatmap_level=c.heatmap_level,
    sigma=h.sigma,
    attention_sigma=h.attention_sigma,
    temperature=h.temperature,
    dtype=dtype,
  )
  if config.model_name == "coarse":
    return CoarseLandmarkModel(coarse=coarse)
  regional = RegionalNet(
    region_index=tuple(tuple(int(i) for i in v) for v in markup.regions.values()),
    crop_size=crop_size,
    stem_stride=stem_stride,
    stem_widths=tuple(r.stem_widths),
    widths=tuple(r.widths),
    blocks=r.blocks,
    share_trunk=r.share_trunk,
    differentiable_crop=r.differentiable_crop,
    remat_stem=r.remat_stem,
    stem_max_stride=r.stem_max_stride,
    pad_value=r.pad_value,
    sigma=h.sigma,
    temperature=h.temperature,
    dtype=dtype,
  )
  patches = ()
  if config.patches.enabled:
    p = config.patches
    patches = tuple(
      PatchRefiner(
        num_landmarks=markup.num_landmarks,
        size=stage.size,
        stride=stage.stride,
        level=stage.level,
        stem_widths=tuple(p.stem_widths),
        widths=tuple(p.widths),
        blocks=p.blocks,
        pad_value=r.pad_value,
        temperature=h.temperature,
        dtype=dtype,
      )
      for stage in patch_stages(config)
    )
  return RegionalLandmarkModel(
    coarse=coarse,
    regional=regional,
    center_source=c.center_source,
    fusion=r.fusion,
    patches=patches,
  )
