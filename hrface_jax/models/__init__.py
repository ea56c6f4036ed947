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
  build_module,
  has_shape_prior,
  params_for_model,
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
from hrface_jax.models.shape import ShapePrior

__all__ = [
  "CoarseLandmarkModel",
  "CoarseNet",
  "HolisticModel",
  "RegionalLandmarkModel",
  "RegionalNet",
  "ShapePrior",
  "add_defaults",
  "build_model",
  "build_module",
  "has_shape_prior",
  "params_for_model",
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


def build_model(
  config: ml_collections.ConfigDict, *, validate: bool = True
) -> nn.Module:
  """The configured model. ``validate=False``: the caller just validated it."""
  if validate:
    validate_model_config(config)
  markup = markup_lib.get_markup(config.markup)
  # Fields one config value sets for every module that has them.
  shared = dict(config.heatmap, dtype=get_dtype(config.compute_dtype))
  shape = None
  if has_shape_prior(config):
    shape = build_module(
      ShapePrior,
      config.shape,
      num_landmarks=markup.num_landmarks,
      frame_corners=tuple(markup.outer_eye_corners),
    )
  if config.model_name == "holistic":
    return build_module(
      HolisticModel,
      config.holistic,
      shared,
      num_landmarks=markup.num_landmarks,
      input_resolution=int(config.input_resolution),
      shape=shape,
    )
  coarse = build_module(
    CoarseNet,
    config.coarse,
    shared,
    num_landmarks=markup.num_landmarks,
    num_regions=markup.num_regions,
  )
  if config.model_name == "coarse":
    return CoarseLandmarkModel(coarse=coarse)
  crop_size, stem_stride = regional_crop(config)
  regional = build_module(
    RegionalNet,
    config.regional,
    shared,
    region_index=tuple(tuple(int(i) for i in v) for v in markup.regions.values()),
    crop_size=crop_size,
    stem_stride=stem_stride,
  )
  patches = ()
  if config.patches.enabled:
    patches = tuple(
      build_module(
        PatchRefiner,
        config.patches,
        shared,
        num_landmarks=markup.num_landmarks,
        size=stage.size,
        stride=stage.stride,
        level=stage.level,
        pad_value=config.regional.pad_value,
      )
      for stage in patch_stages(config)
    )
  return RegionalLandmarkModel(
    coarse=coarse,
    regional=regional,
    center_source=config.coarse.center_source,
    fusion=config.regional.fusion,
    patches=patches,
    patches_from=config.patches.start_from,
    shape=shape,
  )
