"""The model sections of the config: made from the modules' fields, handed
back to them, the crop and patch geometry derived from them, and validated.

A network hyperparameter's one default is its Flax module's field:
:func:`module_fields` makes the config sections from them (in
:func:`hrface_jax.defaults.base_config`, which has every other default) and
:func:`build_module` hands them back.

Crop and patch sizes follow from measured errors, not from a hand-written
table per resolution (:func:`crop_fraction_for` and :func:`patch_stages`):

* a regional crop is ``regional.crop_fraction`` of the image side: the
  largest region's extent plus twice the attention's centre error (both
  measured as fractions of the side on held-out faces, 99th percentile), so
  the region fits inside its crop wherever the attention puts it. Its stem
  stride is whatever makes the crop ``regional.feature_size`` features wide:
  memory after the stem is the same at every resolution.
* native-resolution patches (``patches.enabled``) start at
  ``patches.first_window`` of the side (twice the regional estimate's 99th
  percentile error, plus a margin) and shrink by ``patches.shrink`` per stage
  until a heatmap pixel is ``patches.stem_stride`` full-resolution pixels.

``regional.crop_table`` rows ``(resolution, crop_size, stem_stride)`` still
override the rule (checkpoints written before it carry one), and
``regional.crop_size`` / ``regional.stem_stride`` override both when > 0.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Mapping
from typing import Any

import flax.linen as nn
import ml_collections

from hrface_jax import markup as markup_lib
from hrface_jax.models.layers import stem_factors  # noqa: F401  (its old home)

MODEL_NAMES = ("regional", "coarse", "holistic")
CENTER_MODES = ("gt_jitter", "predicted", "mix", "between")
FUSIONS = ("confidence", "precision")
PATCH_STARTS = ("fused", "coarse")

# The first releases' fixed crops (9/16 of the side, R / 64 per feature
# pixel), kept for reference and for configs that want them explicitly.
CROP_TABLE = (
  (256, 144, 4),
  (512, 288, 8),
  (1024, 576, 16),
  (2048, 1152, 32),
  (4096, 2304, 64),
)


def crop_fraction_for(
  region_extent: float, center_error: float, margin: float = 0.02
) -> float:
  """The crop side, as a fraction of the image side, that holds a region of
  ``region_extent`` (its bounding box's longer side) when its centre is off
  by up to ``center_error`` in any direction (both fractions of the side,
  e.g. 99th percentiles on held-out faces): extent + 2 x error + margin."""
  if region_extent <= 0 or center_error < 0:
    raise ValueError(
      f"region_extent={region_extent!r} must be > 0 and "
      f"center_error={center_error!r} >= 0 (fractions of the image side)"
    )
  return min(1.0, region_extent + 2.0 * center_error + margin)


def crop_for_fraction(
  resolution: int, fraction: float, feature_size: int
) -> tuple[int, int]:
  """(crop_size, stem_stride) in full-resolution pixels: the stride that makes
  a ``fraction`` x ``resolution`` crop ``feature_size`` features wide (at
  least 1), and the crop it then has exactly (``feature_size`` x stride)."""
  stride = max(1, round(fraction * resolution / feature_size))
  return feature_size * stride, stride


def crop_table(
  config: ml_collections.ConfigDict, resolutions
) -> list[tuple[int, int, int]]:
  """``(resolution, crop_size, stem_stride)`` rows of ``config`` (for docs)."""
  out = []
  for r in resolutions:
    c = ml_collections.ConfigDict(config.to_dict())
    c.resolution = int(r)
    out.append((int(r), *regional_crop(c)))
  return out


@dataclasses.dataclass(frozen=True)
class PatchStage:
  """One native-resolution refinement stage.

  ``size`` x ``size`` patches of the image area-downsampled to side ``level``
  (0: the full-resolution image), ``stride`` patch pixels per heatmap pixel.
  ``window`` is the patch side and ``pixel`` a heatmap pixel's side, both in
  full-resolution pixels.
  """

  level: int
  size: int
  stride: int
  window: int
  pixel: int


def patch_stages(
  config: ml_collections.ConfigDict, resolution: int | None = None
) -> tuple[PatchStage, ...]:
  """The patch refinement stages at ``resolution`` (default config.resolution).

  Stage k's window is ``first_window x R / shrink^k``, rounded up so that a
  heatmap pixel is ``stem_stride x d`` full pixels for a power of two d; the
  last stage is the one with d = 1 (a heatmap pixel of ``stem_stride`` full
  pixels). Coarse stages (d >= 8) cut their patches from the image
  area-downsampled by d on device (small), finer ones from the full image,
  their stem striding over d x ``stem_stride`` pixels: either way memory
  and FLOPs per stage do not depend on the resolution, only the number of
  stages (log_shrink of it) does.
  """
  p = config.patches
  r = int(resolution or config.resolution)
  f, s = int(p.feature_size), int(p.stem_stride)
  window = float(p.first_window) * r
  stages = []
  while True:
    d = max(1, 2 ** math.ceil(math.log2(max(window / (f * s), 1.0))))
    d = min(d, max(1, r // (f * s)))  # a patch never wider than the image
    if d >= 8 and r % d == 0:
      stages.append(
        PatchStage(level=r // d, size=f * s, stride=s, window=f * s * d, pixel=s * d)
      )
    else:
      stages.append(
        PatchStage(level=0, size=f * s * d, stride=s * d, window=f * s * d, pixel=s * d)
      )
    if d == 1:
      return tuple(stages)
    window = f * s * d / float(p.shrink)


# Module fields the config does not hold in the module's own section: one
# value for several modules (config.heatmap, config.compute_dtype) or a
# top-level field (config.input_resolution). Fields without a default
# (sizes, crop geometry) are derived at build time and never listed.
SHARED_MODULE_FIELDS = frozenset(
  ("sigma", "attention_sigma", "temperature", "dtype", "input_resolution", "shape")
)


def module_fields(module: type[nn.Module], *, exclude=()) -> dict[str, Any]:
  """A Flax module's hyperparameters with their defaults: its dataclass fields
  that have one, less ``exclude`` (Flax's own ``parent`` and ``name`` too).

  The module's field is the one default of each model hyperparameter: the
  config sections are made from these, and :func:`build_module` passes a
  section's values back by name.
  """
  skip = {"parent", "name", *exclude}
  return {
    f.name: f.default
    for f in dataclasses.fields(module)
    if f.name not in skip and f.default is not dataclasses.MISSING
  }


def _frozen(value: Any) -> Any:
  """Lists (a config read back from JSON) as tuples: module fields are hashed."""
  if isinstance(value, list | tuple):
    return tuple(_frozen(v) for v in value)
  return value


def build_module(module: type[nn.Module], *sections: Mapping[str, Any], **fixed: Any):
  """``module`` with each of its fields that a config section names (later
  sections win), then ``fixed`` (derived values: sizes, crop geometry)."""
  names = {f.name for f in dataclasses.fields(module)} - {"parent", "name"}
  kwargs = {k: _frozen(v) for s in sections for k, v in s.items() if k in names}
  return module(**{**kwargs, **fixed})


def add_defaults(config: ml_collections.ConfigDict) -> None:
  """Deprecated (one release): every field's default is in
  :func:`hrface_jax.defaults.base_config`; adds the fields ``config`` lacks."""
  from hrface_jax import config_lib  # noqa: PLC0415  (config_lib imports this)

  warnings.warn(
    "hrface_jax.models.config.add_defaults is deprecated: start from "
    "hrface_jax.config_lib.base_config()",
    DeprecationWarning,
    stacklevel=2,
  )
  config_lib.add_missing_defaults(config)


def has_shape_prior(config: ml_collections.ConfigDict) -> bool:
  """Whether ``config``'s model ends in a shape prior (the coarse model alone
  has none: it ignores ``config.shape``)."""
  return bool(config.shape.enabled) and config.model_name != "coarse"


def params_for_model(params: dict, config: ml_collections.ConfigDict) -> dict:
  """The subtrees of a checkpoint's ``params`` that ``config``'s model has: a
  regional run's params without its patch stages (``patches.enabled`` off)
  and shape prior (``shape.enabled`` off) are its two-stage model."""
  drop = []
  if config.model_name == "regional" and not config.patches.enabled:
    drop.append("patches_")
  if not has_shape_prior(config):
    drop.append("shape")
  return {k: v for k, v in params.items() if not k.startswith(tuple(drop))}


def regional_crop(config: ml_collections.ConfigDict) -> tuple[int, int]:
  """(crop_size, stem_stride) for ``config.resolution``: the overrides, else a
  ``regional.crop_table`` row, else the crop-fraction rule."""
  r = config.regional
  res = int(config.resolution)
  rows = {int(row[0]): (int(row[1]), int(row[2])) for row in (r.crop_table or ())}
  if res in rows:
    size, stride = rows[res]
  elif r.crop_table:
    raise ValueError(
      f"config.resolution={res}: not in config.regional.crop_table "
      f"(resolutions {sorted(rows)}); add a row, or set crop_table=() to use "
      "config.regional.crop_fraction at any resolution"
    )
  else:
    size, stride = crop_for_fraction(res, r.crop_fraction, r.feature_size)
  if r.crop_size > 0:
    size = int(r.crop_size)
  if r.stem_stride > 0:
    stride = int(r.stem_stride)
  return size, stride


def _check(cond: bool, field: str, value, why: str) -> None:
  if not cond:
    raise ValueError(f"config.{field}={value!r}: {why}")


def _check_one_of(field: str, value, choices: tuple) -> None:
  _check(value in choices, field, value, f"expected one of {choices}")


def _validate_patches(config: ml_collections.ConfigDict) -> None:
  p = config.patches
  _check_one_of("patches.start_from", p.start_from, PATCH_STARTS)
  for field in ("feature_size", "stem_stride", "shrink"):
    _check(p[field] >= 1, f"patches.{field}", p[field], "must be >= 1")
  _check(p.shrink >= 2, "patches.shrink", p.shrink, "must be >= 2 (stages shrink)")
  _check(
    0 < p.first_window <= 1,
    "patches.first_window",
    p.first_window,
    "fraction of the image side, in (0, 1]",
  )
  _check(
    0 <= p.train_jitter < 0.5,
    "patches.train_jitter",
    p.train_jitter,
    "fraction of the window, in [0, 0.5)",
  )
  ndown = 2 ** (len(p.widths) - 1)
  _check(
    p.feature_size % ndown == 0,
    "patches.widths",
    p.widths,
    f"{len(p.widths) - 1} downsamplings need patches.feature_size "
    f"({p.feature_size}) divisible by {ndown}",
  )
  _check(
    p.feature_size * p.stem_stride <= config.resolution,
    "patches.feature_size",
    p.feature_size,
    f"a patch of feature_size x stem_stride pixels must fit the "
    f"{config.resolution}px image",
  )


def _validate_coarse(config: ml_collections.ConfigDict) -> None:
  c = config.coarse
  n = len(c.widths)
  _check(n >= 1, "coarse.widths", c.widths, "need at least one level")
  _check(c.stem_stride >= 1, "coarse.stem_stride", c.stem_stride, "must be >= 1")
  div = c.stem_stride * 2 ** (n - 1)
  _check(
    c.input_size > 0 and c.input_size % div == 0,
    "coarse.input_size",
    c.input_size,
    f"must be a positive multiple of {div} (stem stride {c.stem_stride} x "
    f"{n - 1} downsamplings of config.coarse.widths)",
  )
  _check(
    0 <= c.heatmap_level < n,
    "coarse.heatmap_level",
    c.heatmap_level,
    f"must index config.coarse.widths (0..{n - 1})",
  )
  _check(
    c.center_source in ("attention", "landmarks"),
    "coarse.center_source",
    c.center_source,
    "expected 'attention' or 'landmarks'",
  )


def _validate_regional(config: ml_collections.ConfigDict) -> None:
  res = config.resolution
  _check_one_of("train_crop_centers", config.train_crop_centers, CENTER_MODES)
  _check(
    0 <= config.train_crop_jitter < 0.5,
    "train_crop_jitter",
    config.train_crop_jitter,
    "fraction of the image side, in [0, 0.5)",
  )
  _check(
    0 <= config.train_crop_mix_gt_fraction <= 1,
    "train_crop_mix_gt_fraction",
    config.train_crop_mix_gt_fraction,
    "probability, in [0, 1]",
  )
  r = config.regional
  _check(
    0 < r.crop_fraction <= 1,
    "regional.crop_fraction",
    r.crop_fraction,
    "fraction of the image side, in (0, 1]",
  )
  size, stride = regional_crop(config)
  _check(
    size <= res,
    "regional.crop_size",
    size,
    f"crop larger than the resolution ({res})",
  )
  _check(
    size % stride == 0,
    "regional.stem_stride",
    stride,
    f"does not divide the crop size {size}",
  )
  m = r.stem_max_stride
  _check(
    m <= 0 or stride <= m or stride % m == 0,
    "regional.stem_max_stride",
    m,
    f"must divide the stem stride {stride} (crop {size}) it pools down to",
  )
  _check(
    len(r.stem_widths) >= 1,
    "regional.stem_widths",
    r.stem_widths,
    "need at least one width",
  )
  feat = size // stride
  ndown = 2 ** (len(r.widths) - 1)
  _check(
    feat % ndown == 0,
    "regional.widths",
    r.widths,
    f"{len(r.widths) - 1} downsamplings need the {feat}x{feat} feature map "
    f"(crop {size} / stride {stride}) divisible by {ndown}",
  )
  _check(0 <= r.pad_value <= 255, "regional.pad_value", r.pad_value, "uint8 value")
  _check_one_of("regional.fusion", r.fusion, FUSIONS)
  if config.patches.enabled:
    _validate_patches(config)


def _validate_holistic(config: ml_collections.ConfigDict) -> None:
  ho = config.holistic
  _check(ho.levels >= 1, "holistic.levels", ho.levels, "must be >= 1")
  _check(ho.stacks >= 1, "holistic.stacks", ho.stacks, "must be >= 1")
  div = 4 * 2 ** (ho.levels - 1)
  ir = config.input_resolution
  _check(
    ir == 0 or (ir > 0 and ir % div == 0),
    "input_resolution",
    ir,
    f"must be 0 (full resolution) or a positive multiple of {div} "
    f"(stride 4 x {ho.levels - 1} hourglass downsamplings)",
  )


def validate_model_config(config: ml_collections.ConfigDict) -> None:
  """Raises ValueError naming the field and why, before anything compiles."""
  _check(
    config.model_name in MODEL_NAMES,
    "model_name",
    config.model_name,
    f"unknown model; expected one of {MODEL_NAMES}",
  )
  markup_lib.get_markup(config.markup)  # a known markup
  _check(
    config.compute_dtype in ("float32", "bfloat16"),
    "compute_dtype",
    config.compute_dtype,
    "expected 'float32' or 'bfloat16'",
  )
  res = config.resolution
  _check(isinstance(res, int) and res > 0, "resolution", res, "must be > 0")
  h = config.heatmap
  for f in ("sigma", "attention_sigma", "temperature"):
    _check(h[f] > 0, f"heatmap.{f}", h[f], "must be > 0")
  loss = config.loss
  _check(loss.coord in ("wing", "l1"), "loss.coord", loss.coord, "'wing' or 'l1'")
  _check(loss.heatmap in ("mse", "ce"), "loss.heatmap", loss.heatmap, "'mse' or 'ce'")
  _check(loss.wing_w > 0, "loss.wing_w", loss.wing_w, "must be > 0")
  _check(loss.wing_epsilon > 0, "loss.wing_epsilon", loss.wing_epsilon, "must be > 0")
  _check(loss.coord_scale > 0, "loss.coord_scale", loss.coord_scale, "must be > 0")
  for k, v in loss.items():
    if k.endswith("_weight"):
      _check(v >= 0, f"loss.{k}", v, "weights must be >= 0")

  if config.model_name in ("regional", "coarse"):
    _validate_coarse(config)
  if config.model_name == "regional":
    _validate_regional(config)
  if config.model_name == "holistic":
    _validate_holistic(config)
  if config.shape.enabled:
    _validate_shape(config)


def _validate_shape(config: ml_collections.ConfigDict) -> None:
  sh = config.shape  # (the coarse model alone has none: it ignores the section)
  _check(
    len(sh.hidden) >= 1 and all(int(w) > 0 for w in sh.hidden),
    "shape.hidden",
    sh.hidden,
    "one or more positive widths",
  )
  for f in ("fit_examples", "fit_steps"):
    _check(int(sh[f]) >= 0, f"shape.{f}", sh[f], "must be >= 0")
  for f in ("fit_batch_size", "fit_learning_rate"):
    _check(sh[f] > 0, f"shape.{f}", sh[f], "must be > 0")
  for f in ("fit_weight_decay", "fit_noise"):
    _check(sh[f] >= 0, f"shape.{f}", sh[f], "must be >= 0")
