"""Landmark metrics (300-W conventions): the one implementation.

Training's validation, the evaluate CLI and the experiments all use this
module. The per-image functions take numpy arrays or jax arrays (also inside
``jax.jit``): each picks its array namespace from its inputs, so the same code
runs on the host and on the device. :class:`LandmarkMetrics` accumulates
batches on the host and reduces them to a flat dict of floats.

Conventions:
  * coordinates are ``(x, y)`` pixels, ``pred`` and ``true`` are ``[B, L, 2]``;
    pass full-resolution pixels to get ``error_pixels`` in those pixels (NME
    does not depend on the scale);
  * NME of an image = mean over its (visible) points of the point-to-point
    error, divided by the image's normaliser (:data:`NORMALISATIONS`);
  * an image fails at threshold ``t`` when its NME is not ``<= t`` (so an error
    exactly at ``t`` is not a failure, and a NaN NME, e.g. from a diverged
    model, is one); the CED at ``t`` is the fraction of images with NME ``<= t``;
  * AUC at ``t`` is the area under the CED from 0 to ``t`` divided by ``t``
    (perfect predictions give 1, all failures give 0). It is computed exactly:
    the CED is a step function, and its integral is ``mean(max(t - nme, 0))``.
  * rates and AUCs are fractions in [0, 1], not percentages.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from hrface_jax.markup import Markup

Array = Any  # np.ndarray | jax.Array

NORMALISATIONS = ("inter_ocular", "inter_pupil", "box_diagonal")
DEFAULT_THRESHOLDS = (0.08, 0.10)


def _xp(*arrays: Any):
  """jax.numpy if any input is a jax array (or tracer), else numpy."""
  return jnp if any(isinstance(a, jax.Array) for a in arrays) else np


def _check_points(name: str, x: Array) -> None:
  if x.ndim != 3 or x.shape[-1] != 2:
    raise ValueError(f"{name} must have shape [B, L, 2]; got {tuple(x.shape)}")


# ----------------------------------------------------------------------------
# Normalisers, one value per image.


def inter_ocular(true: Array, markup: Markup) -> Array:
  """Distance between the outer eye corners of the ground truth, ``[B]``."""
  xp = _xp(true)
  right, left = markup.outer_eye_corners
  return xp.linalg.norm(true[:, right] - true[:, left], axis=-1)


def inter_pupil(true: Array, markup: Markup) -> Array:
  """Distance between the means of the right-eye and left-eye points, ``[B]``."""
  xp = _xp(true)
  right = true[:, np.asarray(markup.right_eye)].mean(axis=1)
  left = true[:, np.asarray(markup.left_eye)].mean(axis=1)
  return xp.linalg.norm(right - left, axis=-1)


def box_diagonal(
  true: Array, markup: Markup | None = None, landmark_mask: Array | None = None
) -> Array:
  """Diagonal of the bounding box of the (visible) ground-truth points, ``[B]``.

  ``markup`` is unused (accepted so all normalisers share a signature).
  """
  del markup
  xp = _xp(true, landmark_mask)
  if landmark_mask is None:
    lo, hi = true.min(axis=1), true.max(axis=1)
  else:
    m = xp.asarray(landmark_mask, bool)[..., None]
    lo = xp.where(m, true, xp.inf).min(axis=1)
    hi = xp.where(m, true, -xp.inf).max(axis=1)
  return xp.linalg.norm(hi - lo, axis=-1)


def normaliser(
  true: Array,
  markup: Markup,
  normalisation: str = "inter_ocular",
  landmark_mask: Array | None = None,
) -> Array:
  """The per-image normaliser called ``normalisation`` (one of NORMALISATIONS)."""
  if normalisation == "inter_ocular":
    return inter_ocular(true, markup)
  if normalisation == "inter_pupil":
    return inter_pupil(true, markup)
  if normalisation == "box_diagonal":
    return box_diagonal(true, markup, landmark_mask)
  raise ValueError(
    f"unknown normalisation {normalisation!r}; known: {list(NORMALISATIONS)}"
  )


# ----------------------------------------------------------------------------
# Per-image errors.


def point_errors(pred: Array, true: Array) -> Array:
  """Euclidean error of each point in pixels, ``[B, L]``."""
  xp = _xp(pred, true)
  return xp.linalg.norm(pred - true, axis=-1)


def _mean_over(
  errors: Array, landmark_mask: Array | None, indices: Sequence[int] | None = None
) -> Array:
  """Mean error over ``indices`` (all points if None) and visible points, [B].

  NaN for an image with no visible point among them.
  """
  xp = _xp(errors, landmark_mask)
  if indices is not None:
    idx = np.asarray(indices)
    errors = errors[:, idx]
    if landmark_mask is not None:
      landmark_mask = landmark_mask[:, idx]
  if landmark_mask is None:
    return errors.mean(axis=1)
  m = xp.asarray(landmark_mask, bool)
  total = xp.where(m, errors, 0.0).sum(axis=1)
  count = m.sum(axis=1)
  return xp.where(count > 0, total / xp.maximum(count, 1), xp.nan)


def _divide(x: Array, norm: Array) -> Array:
  """``x / norm``, NaN where the normaliser is not positive (undefined NME)."""
  xp = _xp(x, norm)
  return xp.where(norm > 0, x / xp.where(norm > 0, norm, 1.0), xp.nan)


def nme(
  pred: Array,
  true: Array,
  markup: Markup,
  normalisation: str = "inter_ocular",
  landmark_mask: Array | None = None,
) -> Array:
  """Normalised mean error of each image, ``[B]``.

  Args:
    pred, true: ``[B, L, 2]`` points in the same pixel frame.
    markup: gives the eye indices for the normalisers.
    normalisation: one of :data:`NORMALISATIONS`.
    landmark_mask: optional ``[B, L]`` bool, False for invisible or padded
      points (left out of the mean and of the box diagonal).

  Returns NaN for an image whose normaliser is 0 or that has no visible point.
  """
  _check_points("pred", pred)
  _check_points("true", true)
  err = _mean_over(point_errors(pred, true), landmark_mask)
  return _divide(err, normaliser(true, markup, normalisation, landmark_mask))


def subset_nme(
  pred: Array,
  true: Array,
  markup: Markup,
  subsets: Mapping[str, Sequence[int]],
  normalisation: str = "inter_ocular",
  landmark_mask: Array | None = None,
) -> dict[str, Array]:
  """NME over each named subset of points (e.g. ``markup.groups``), ``{name: [B]}``.

  The normaliser is the whole face's, so subsets are comparable with the NME.
  """
  err = point_errors(pred, true)
  norm = normaliser(true, markup, normalisation, landmark_mask)
  return {
    name: _divide(_mean_over(err, landmark_mask, idx), norm)
    for name, idx in subsets.items()
  }


def group_nme(pred, true, markup: Markup, normalisation="inter_ocular", mask=None):
  """Per-group NME (``markup.groups``), ``{group: [B]}``."""
  return subset_nme(pred, true, markup, markup.groups, normalisation, mask)


def region_nme(pred, true, markup: Markup, normalisation="inter_ocular", mask=None):
  """Per-region NME (``markup.regions``, the crops), ``{region: [B]}``."""
  return subset_nme(pred, true, markup, markup.regions, normalisation, mask)


def subset_keys(markup: Markup) -> dict[str, tuple[int, ...]]:
  """Groups and regions under one namespace, as reported by LandmarkMetrics.

  A region whose name is also a group's with different points is reported as
  ``region_<name>`` (with the same points the entry is the same, kept once).
  ``inner`` is every point off the face contour (300-W's "51 points"), when
  the markup names its contour group.
  """
  out = {k: tuple(v) for k, v in markup.groups.items()}
  if markup.contour_group:
    out["inner"] = markup.inner_indices()
  for name, idx in markup.regions.items():
    idx = tuple(idx)
    if name in out and out[name] != idx:
      name = f"region_{name}"
    out[name] = idx
  return out


def per_image_metrics(
  pred: Array,
  true: Array,
  markup: Markup,
  landmark_mask: Array | None = None,
) -> dict[str, Array]:
  """Every per-image quantity LandmarkMetrics reduces, ``{key: [B]}``.

  Jit-friendly: compute it on device and feed the result to
  :meth:`LandmarkMetrics.update_per_image`. Keys: ``nme_<normalisation>``,
  ``error_pixels``, ``nme_inter_ocular/<group or region>`` and, where the
  markup has curves, ``along_inter_ocular`` / ``across_inter_ocular``: the
  mean absolute error component along / across the points' curves
  (:func:`along_across_errors`), in inter-ocular units.
  """
  _check_points("pred", pred)
  _check_points("true", true)
  err = point_errors(pred, true)
  mean_err = _mean_over(err, landmark_mask)
  out = {"error_pixels": mean_err}
  for n in NORMALISATIONS:
    out[f"nme_{n}"] = _divide(mean_err, normaliser(true, markup, n, landmark_mask))
  io = normaliser(true, markup, "inter_ocular")
  for name, idx in subset_keys(markup).items():
    out[f"nme_inter_ocular/{name}"] = _divide(_mean_over(err, landmark_mask, idx), io)
  if markup.curves:
    along, across, defined = along_across_errors(pred, true, markup)
    # _mean_over leaves out the masked points (and so their NaNs).
    on_curve = defined if landmark_mask is None else defined & landmark_mask
    for name, part in (("along", along), ("across", across)):
      out[f"{name}_inter_ocular"] = _divide(_mean_over(part, on_curve), io)
  return out


def along_across_errors(
  pred: Array, true: Array, markup: Markup
) -> tuple[Array, Array, Array]:
  """Each point's error split along and across its curve, ``[B, L]`` each.

  (|component along the tangent|, |component across it|, defined): the
  tangent of ``true`` runs between the point's neighbours on its markup
  curve (:attr:`Markup.curves`). Undefined (False, components NaN) for
  points on no curve and where the neighbours coincide (the inner lip
  corners of a closed mouth). Where along a smooth edge a point sits is
  barely in its pixels; across the edge it is: the two parts say which one
  a model gets wrong.
  """
  xp = _xp(pred, true)
  prev, nxt = markup.curve_neighbours()
  chord = true[:, nxt] - true[:, prev]
  length = xp.linalg.norm(chord, axis=-1)
  defined = length > 1e-6
  tangent = chord / xp.where(defined, length, 1.0)[..., None]
  err = pred - true
  along = err[..., 0] * tangent[..., 0] + err[..., 1] * tangent[..., 1]
  across = err[..., 1] * tangent[..., 0] - err[..., 0] * tangent[..., 1]
  return (
    xp.where(defined, xp.abs(along), xp.nan),
    xp.where(defined, xp.abs(across), xp.nan),
    defined,
  )


# ----------------------------------------------------------------------------
# Reductions over images.


def _valid(nmes: Array, image_mask: Array | None):
  xp = _xp(nmes, image_mask)
  if image_mask is None:
    return xp.ones(nmes.shape, bool)
  return xp.asarray(image_mask, bool)


def failure_rate(
  nmes: Array, threshold: float, image_mask: Array | None = None
) -> Array:
  """Fraction of (unmasked) images whose NME is not <= ``threshold``.

  NaN NMEs count as failures. NaN when there is no image.
  """
  xp = _xp(nmes, image_mask)
  valid = _valid(nmes, image_mask)
  fail = valid & ~(nmes <= threshold)
  n = valid.sum()
  return xp.where(n > 0, fail.sum() / xp.maximum(n, 1), xp.nan)


def ced_curve(
  nmes: Array,
  max_threshold: float = 0.10,
  num_steps: int = 1001,
  image_mask: Array | None = None,
) -> tuple[Array, Array]:
  """Cumulative error distribution: thresholds ``[S]`` and fractions ``[S]``.

  ``fractions[i]`` is the fraction of images with NME ``<= thresholds[i]``;
  thresholds run evenly from 0 to ``max_threshold`` inclusive.
  """
  xp = _xp(nmes, image_mask)
  valid = _valid(nmes, image_mask)
  thresholds = xp.linspace(0.0, max_threshold, num_steps)
  ok = (nmes[None, :] <= thresholds[:, None]) & valid[None, :]
  n = xp.maximum(valid.sum(), 1)
  return thresholds, ok.sum(axis=1) / n


def auc(nmes: Array, threshold: float, image_mask: Array | None = None) -> Array:
  """Area under the CED from 0 to ``threshold``, divided by ``threshold``.

  Exact for the step-function CED: ``mean(clip(1 - nme / threshold, 0, 1))``;
  NaN NMEs count as failures (contribute 0). NaN when there is no image.
  """
  xp = _xp(nmes, image_mask)
  valid = _valid(nmes, image_mask)
  score = xp.clip(1.0 - nmes / threshold, 0.0, 1.0)
  score = xp.where(valid & (nmes <= threshold), score, 0.0)
  n = valid.sum()
  return xp.where(n > 0, score.sum() / xp.maximum(n, 1), xp.nan)


def mean_over_images(values: Array, image_mask: Array | None = None) -> Array:
  """Mean over (unmasked) images; NaN values propagate (a NaN NME is news)."""
  xp = _xp(values, image_mask)
  valid = _valid(values, image_mask)
  n = valid.sum()
  total = xp.where(valid, values, 0.0).sum()
  return xp.where(n > 0, total / xp.maximum(n, 1), xp.nan)


def threshold_key(name: str, threshold: float) -> str:
  """``failure_rate_0.08``-style key (two decimals, more if needed)."""
  s = f"{threshold:.2f}"
  if abs(float(s) - threshold) > 1e-12:
    s = f"{threshold:g}"
  return f"{name}_{s}"


# ----------------------------------------------------------------------------
# Streaming accumulation on the host.


class LandmarkMetrics:
  """Accumulates batches of predictions and reduces them to a flat dict.

  Usage::

    m = LandmarkMetrics(markup)
    for batch in data:
      m.update(pred, true, landmark_mask, image_mask)
    results = m.result()          # {"nme_inter_ocular": ..., ...}
    nmes = m.per_image_nme()      # [N], for CED plots and worst examples

  ``image_mask`` drops padded images; images with no visible landmark are
  dropped too. Result keys (with ``prefix`` in front of each):
  ``nme_inter_ocular``, ``nme_inter_pupil``, ``nme_box_diagonal``,
  ``failure_rate_<t>`` and ``auc_<t>`` (inter-ocular NME, for each threshold),
  ``error_pixels``, ``nme_inter_ocular/<group or region>``, ``num_images``,
  ``along_inter_ocular`` and ``across_inter_ocular`` (markups with curves).
  A group/region mean is over the images where it has a visible point.
  """

  def __init__(
    self,
    markup: Markup,
    thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
    prefix: str = "",
  ):
    self.markup = markup
    self.thresholds = tuple(float(t) for t in thresholds)
    self.prefix = prefix
    self._subsets = subset_keys(markup)
    self.reset()

  def reset(self) -> None:
    self._values: dict[str, list[np.ndarray]] = {}
    self._defined: dict[str, list[np.ndarray]] = {}
    self._num_images = 0

  @property
  def num_images(self) -> int:
    return self._num_images

  def update(
    self,
    pred: Array,
    true: Array,
    landmark_mask: Array | None = None,
    image_mask: Array | None = None,
  ) -> None:
    """Adds a batch: ``pred``/``true`` ``[B, L, 2]``, masks ``[B, L]``/``[B]``."""
    pred = np.asarray(pred, np.float64)
    true = np.asarray(true, np.float64)
    _check_points("pred", pred)
    _check_points("true", true)
    if pred.shape != true.shape:
      raise ValueError(
        f"pred shape {pred.shape} does not match true shape {true.shape}"
      )
    if true.shape[1] != self.markup.num_landmarks:
      raise ValueError(
        f"got {true.shape[1]} landmarks per face; markup {self.markup.name!r} "
        f"has {self.markup.num_landmarks}"
      )
    lm = None if landmark_mask is None else np.asarray(landmark_mask, bool)
    if lm is not None and lm.shape != true.shape[:2]:
      raise ValueError(f"landmark_mask shape {lm.shape} != {true.shape[:2]}")
    with np.errstate(invalid="ignore", divide="ignore"):
      per_image = per_image_metrics(pred, true, self.markup, lm)
    self.update_per_image(per_image, landmark_mask=lm, image_mask=image_mask)

  def update_per_image(
    self,
    per_image: Mapping[str, Array],
    landmark_mask: Array | None = None,
    image_mask: Array | None = None,
  ) -> None:
    """Adds the output of :func:`per_image_metrics` (e.g. computed on device)."""
    per_image = {k: np.asarray(v, np.float64) for k, v in per_image.items()}
    b = per_image["nme_inter_ocular"].shape[0]
    keep = np.ones(b, bool) if image_mask is None else np.asarray(image_mask, bool)
    if keep.shape != (b,):
      raise ValueError(f"image_mask shape {keep.shape} != ({b},)")
    lm = None if landmark_mask is None else np.asarray(landmark_mask, bool)
    if lm is not None:
      keep = keep & lm.any(axis=1)
    for key, v in per_image.items():
      defined = np.ones(b, bool)
      if lm is not None and "/" in key:
        defined = lm[:, np.asarray(self._subsets[key.split("/", 1)[1]])].any(axis=1)
      self._values.setdefault(key, []).append(v[keep])
      self._defined.setdefault(key, []).append(defined[keep])
    self._num_images += int(keep.sum())

  def _cat(self, key: str) -> tuple[np.ndarray, np.ndarray]:
    if key not in self._values:
      return np.zeros(0), np.zeros(0, bool)
    return np.concatenate(self._values[key]), np.concatenate(self._defined[key])

  def per_image_nme(self, normalisation: str = "inter_ocular") -> np.ndarray:
    """NME of every accumulated image, in update order, ``[N]``."""
    if normalisation not in NORMALISATIONS:
      raise ValueError(
        f"unknown normalisation {normalisation!r}; known: {list(NORMALISATIONS)}"
      )
    return self._cat(f"nme_{normalisation}")[0]

  def per_image(self, key: str) -> np.ndarray:
    """Any per-image quantity by its result key (without prefix), ``[N]``."""
    return self._cat(key)[0]

  def result(self) -> dict[str, float]:
    """The flat dict of floats described in the class docstring."""
    p = self.prefix
    out: dict[str, float] = {}
    for n in NORMALISATIONS:
      out[f"{p}nme_{n}"] = float(mean_over_images(self.per_image_nme(n)))
    io = self.per_image_nme("inter_ocular")
    for t in self.thresholds:
      out[p + threshold_key("failure_rate", t)] = float(failure_rate(io, t))
    for t in self.thresholds:
      out[p + threshold_key("auc", t)] = float(auc(io, t))
    out[f"{p}error_pixels"] = float(mean_over_images(self.per_image("error_pixels")))
    for key in ("along_inter_ocular", "across_inter_ocular"):
      if key in self._values:
        out[p + key] = float(mean_over_images(self.per_image(key)))
    for name in self._subsets:
      v, defined = self._cat(f"nme_inter_ocular/{name}")
      out[f"{p}nme_inter_ocular/{name}"] = float(mean_over_images(v, defined))
    out[f"{p}num_images"] = self._num_images
    return out
