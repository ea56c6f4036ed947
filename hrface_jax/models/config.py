"""Model config defaults (owned by the model layer) and their validation.

Every model field has one default, and it gives a *small* model: it trains
on 256-512 px synthetic faces to a visible result in minutes on a laptop CPU
(``configs/regional.py:gpu`` and ``configs/holistic.py:gpu`` widen it). A
network hyperparameter's default is its Flax module's field
(:func:`module_fields` makes the config sections from them and
:func:`build_module` hands them back); the crop and patch geometry, the
heatmap targets, losses and training crops are defined here.

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
from collections.abc import Mapping
from typing import Any

import flax.linen as nn
import ml_collections

from hrface_jax import markup as markup_lib
from hrface_jax.models.coarse import CoarseNet
from hrface_jax.models.holistic import HolisticModel
from hrface_jax.models.layers import stem_factors  # noqa: F401  (its old home)
from hrface_jax.models.patches import PatchRefiner
from hrface_jax.models.regional import RegionalLandmarkModel, RegionalNet
from hrface_jax.models.shape import ShapePrior

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
_NOT_PER_MODULE = frozenset(
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
  """Adds every model field with its default (small, CPU-friendly) value.

  Network hyperparameters come from the modules' own field defaults
  (:func:`module_fields`); what is written here is what no module holds.
  """
  config.compute_dtype = "float32"  # "float32" | "bfloat16" (params stay float32)
  # Holistic model: longer image side it sees (0 = full resolution).
  config.input_resolution = module_fields(HolisticModel)["input_resolution"]
  coarse = module_fields(CoarseNet)
  config.heatmap = ml_collections.ConfigDict(
    {k: coarse[k] for k in ("sigma", "attention_sigma", "temperature")}
  )
  landmark_model = module_fields(RegionalLandmarkModel)

  config.coarse = ml_collections.ConfigDict(
    dict(
      **module_fields(CoarseNet, exclude=_NOT_PER_MODULE),
      center_source=landmark_model["center_source"],
    )
  )

  config.regional = ml_collections.ConfigDict(
    dict(
      # Crop side / image side: the largest region's extent (0.44 of the side
      # on hrface_synth, the lower jaw) plus twice the attention's 99th
      # percentile centre error, plus 0.02 (crop_fraction_for).
      crop_fraction=0.5625,
      feature_size=36,  # crop features per side after the stem, every resolution
      crop_table=(),  # rows (resolution, crop_size, stem_stride) override the rule
      crop_size=0,  # > 0 overrides the rule and the table (full-resolution pixels)
      stem_stride=0,  # > 0 overrides them; must divide crop_size
      **module_fields(RegionalNet, exclude=_NOT_PER_MODULE),
      fusion=landmark_model["fusion"],
    )
  )

  # Native-resolution refinement (beyond the paper; off = the paper's model).
  config.patches = ml_collections.ConfigDict(
    dict(
      enabled=False,
      feature_size=16,  # heatmap side of every patch stage
      stem_stride=2,  # the last stage's heatmap pixel, in full-resolution pixels
      # First window / image side: about twice the regional estimate's 99th
      # percentile error (patch_stages).
      first_window=0.125,
      shrink=4,  # each stage's window / the next one's
      # "fused": the first stage refines the two-stage (regional) estimate;
      # "coarse": the coarse network's.
      start_from=landmark_model["patches_from"],
      # Every stage's network (their pad_value is config.regional's).
      **module_fields(PatchRefiner, exclude={*_NOT_PER_MODULE, "level", "pad_value"}),
      # Training centres: ground truth + uniform +- this fraction of the
      # stage's window (the joint stage mixes in the model's own points).
      train_jitter=0.2,
    )
  )

  config.holistic = ml_collections.ConfigDict(
    module_fields(HolisticModel, exclude=_NOT_PER_MODULE)
  )

  # Shape prior (regional and holistic models; hrface_jax/models/shape.py):
  # fitted after the last train step on the model's own points on up to
  # fit_examples training faces (unaugmented), for fit_steps Adam steps of
  # fit_batch_size faces, each point jittered by fit_noise inter-ocular
  # distances. fit_steps=0: keep the prior as it is (e.g. from init_from).
  # fit_mirrored: the faces' mirror images too (training/shape_fit.py).
  config.shape = ml_collections.ConfigDict(
    dict(
      enabled=False,
      **module_fields(ShapePrior, exclude={"frame_corners"}),
      fit_examples=1000,
      fit_mirrored=True,
      fit_steps=4000,
      fit_batch_size=128,
      fit_learning_rate=1e-3,
      fit_weight_decay=1e-2,
      fit_noise=0.005,
    )
  )

  # Crop centres in the joint stage (the coarse and regional stages crop
  # around jittered ground truth): jittered ground truth ("gt_jitter"),
  # predicted by the attention ("predicted"), per example a mix of both
  # ("mix"), or per example and region a uniform random point between them
  # ("between").
  config.train_crop_centers = "mix"
  config.train_crop_jitter = 0.03  # uniform +-, as a fraction of the image side
  config.train_crop_mix_gt_fraction = 0.5  # "mix": P(ground truth) per example

  config.loss = ml_collections.ConfigDict(
    dict(
      # "ce" (KL to the normalised target) | "mse" (Gaussian targets). While the
      # maps are still flat the MSE's gradient is ~1 / (map pixels): the
      # regional maps of a 40-step test run stayed flat under it.
      heatmap="ce",
      coord="wing",  # "wing" | "l1"
      wing_w=10.0,
      wing_epsilon=2.0,
      # Coordinate errors are measured in pixels of a coord_scale-px version
      # of the image, so the Wing parameters mean the same at every resolution.
      coord_scale=256.0,
      # Coordinate terms weigh 1/20 of the heatmap terms. At weight 1 their
      # gradient (Wing on a soft-argmax, tens of pixels early on) swamped the
      # heatmap term's: a flat map whose mean moves satisfies it, so the
      # regional maps never left uniform (their heatmap loss flat for 300
      # steps) and the model answered with its crop centres. At 0.05 the
      # small sweep's regional NME at 256^2 went 0.329 -> 0.223, and the
      # holistic baseline's 0.327 -> 0.295 (2026-11-22).
      coarse_heatmap_weight=1.0,
      coarse_coord_weight=0.05,
      attention_heatmap_weight=1.0,
      attention_coord_weight=0.05,
      regional_heatmap_weight=1.0,
      regional_coord_weight=0.05,
      patch_heatmap_weight=1.0,
      patch_coord_weight=0.05,
      holistic_heatmap_weight=1.0,
      holistic_coord_weight=0.05,
    )
  )


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
