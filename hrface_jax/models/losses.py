"""Losses: heatmap MSE against Gaussian targets, Wing / L1 on coordinates.

:func:`loss_fn` combines them for every stage of the configured model,
weighted by ``config.loss.*_weight``, so a training stage such as "coarse
only" is a weight setting.
"""

from __future__ import annotations

from collections.abc import Mapping

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from hrface_jax import markup as markup_lib
from hrface_jax.models import cropping
from hrface_jax.models import heatmaps as hm
from hrface_jax.models.regional import region_slots


def wing_loss(x: jax.Array, w: float = 10.0, epsilon: float = 2.0) -> jax.Array:
  """Elementwise Wing loss (Feng et al. 2018): w ln(1 + |x|/eps) if |x| < w,
  else |x| - C with C = w - w ln(1 + w/eps) (continuous at |x| = w)."""
  a = jnp.abs(x)
  c = w - w * np.log1p(w / epsilon)
  return jnp.where(a < w, w * jnp.log1p(a / epsilon), a - c)


def _masked_mean(x: jax.Array, mask: jax.Array | None) -> jax.Array:
  """Sum over the masked-in terms / number of ALL terms.

  Dividing by the mask's count instead would make the loss depend on how a
  batch is split across devices (the mean of per-device ratios is not the
  global ratio), so 1 and N devices would not give the same update.
  """
  if mask is None:
    return jnp.mean(x)
  mask = jnp.broadcast_to(mask, x.shape).astype(x.dtype)
  return jnp.sum(x * mask) / x.size


def coordinate_loss(
  pred: jax.Array,
  true: jax.Array,
  config: ml_collections.ConfigDict,
  mask: jax.Array | None = None,
) -> jax.Array:
  """Wing or L1 on [..., 2] coordinates (summed over x, y; mean over points).

  Errors are rescaled to pixels of a ``loss.coord_scale``-px image first.
  """
  lc = config.loss
  d = (pred - true).astype(jnp.float32) * (lc.coord_scale / config.resolution)
  if lc.coord == "wing":
    per = wing_loss(d, lc.wing_w, lc.wing_epsilon)
  else:
    per = jnp.abs(d)
  return _masked_mean(jnp.sum(per, axis=-1), mask)


def heatmap_loss(
  probs: jax.Array,
  targets: jax.Array,
  sigma: float,
  mask: jax.Array | None = None,
  kind: str = "mse",
) -> jax.Array:
  """Loss of [..., h, w, K] softmax heatmaps against peak-1 Gaussian targets.

  "mse": probabilities are scaled by the Gaussian's mass (so a perfect
  prediction matches the target's shape, peak 1); the squared error is summed
  over pixels and divided by that mass: O(1) whatever the map size.
  "ce": cross-entropy of the softmax against the normalised target (KL up to
  a constant); its gradient w.r.t. the logits, (p - q) / T, stays strong
  while the heatmaps are still flat, where the MSE's is ~p ~ 1 / (h w).
  """
  if kind == "ce":
    q = targets / jnp.maximum(jnp.sum(targets, axis=(-3, -2), keepdims=True), 1e-12)
    ce = -jnp.sum(q * jnp.log(jnp.maximum(probs, 1e-30)), axis=(-3, -2))
    ent = -jnp.sum(q * jnp.log(jnp.maximum(q, 1e-30)), axis=(-3, -2))
    return _masked_mean(ce - ent, mask)  # KL(q || p): 0 when p matches q
  z = hm.gaussian_mass(sigma)
  se = jnp.sum(jnp.square(probs * z - targets), axis=(-3, -2)) / z  # [..., K]
  return _masked_mean(se, mask)


def _targets(points: jax.Array, probs: jax.Array, sigma: float) -> jax.Array:
  return hm.gaussian_heatmaps(points, probs.shape[-3:-1], sigma)


def _coarse_terms(config, outputs, landmarks, markup) -> dict[str, jax.Array]:
  """Coarse landmark heatmaps and the region attention maps (blobs at each
  region's box centre)."""
  sigma, asig, kind = (
    config.heatmap.sigma,
    config.heatmap.attention_sigma,
    config.loss.heatmap,
  )
  probs = outputs["coarse_heatmaps"]
  scale = outputs["coarse_heatmap_scale"]
  targets = _targets(hm.image_to_heatmap(landmarks, scale), probs, sigma)
  centers = cropping.region_centers_from_landmarks(landmarks, markup)
  att = outputs["attention_maps"]
  att_targets = _targets(hm.image_to_heatmap(centers, scale), att, asig)
  return {
    "coarse_heatmap": heatmap_loss(probs, targets, sigma, kind=kind),
    "coarse_coord": coordinate_loss(outputs["coarse_landmarks"], landmarks, config),
    "attention_heatmap": heatmap_loss(att, att_targets, asig, kind=kind),
    "attention_coord": coordinate_loss(outputs["region_centers"], centers, config),
  }


def _regional_terms(
  config, outputs, landmarks, markup
) -> tuple[dict[str, jax.Array], jax.Array]:
  """Each region's landmarks in its crop; points the crop misses are left out
  (no prediction inside the crop can reach them). Also returns which points
  of the padded regions [B, R, K] are inside their crops, over the real ones."""
  sigma = config.heatmap.sigma
  index, mask = region_slots(markup.region_indices())
  true = landmarks[:, index]  # [B, R, K, 2]
  probs = outputs["regional_heatmaps"]  # [B, R, f, f, K]
  f = probs.shape[-2]
  local = hm.image_to_heatmap(
    true, outputs["regional_heatmap_scale"], outputs["crop_origins"][:, :, None]
  )
  inside = jnp.all((local >= -0.5) & (local <= f - 0.5), axis=-1) & mask
  targets = _targets(local, probs, sigma)
  terms = {
    "regional_heatmap": heatmap_loss(
      probs, targets, sigma, inside, config.loss.heatmap
    ),
    "regional_coord": coordinate_loss(
      outputs["regional_landmarks"], true, config, inside
    ),
  }
  return terms, jnp.sum(inside, axis=(1, 2)) / mask.sum()


def _patch_terms(
  config, outputs, landmarks
) -> tuple[dict[str, jax.Array], dict[str, jax.Array]]:
  """Every native-resolution patch stage: each landmark's heatmap in its own
  patch (points outside their patch left out), summed over the stages."""
  sigma, kind = config.heatmap.sigma, config.loss.heatmap
  heat, coord, metrics = 0.0, 0.0, {}
  i = 0
  while f"patch{i}_heatmaps" in outputs:
    probs = outputs[f"patch{i}_heatmaps"]  # [B, L, f, f, 1]
    f = probs.shape[-2]
    local = hm.image_to_heatmap(
      landmarks, outputs[f"patch{i}_heatmap_scale"], outputs[f"patch{i}_offsets"]
    )  # [B, L, 2]
    inside = jnp.all((local >= -0.5) & (local <= f - 0.5), axis=-1)
    targets = _targets(local[..., None, :], probs, sigma)
    heat = heat + heatmap_loss(probs, targets, sigma, inside[..., None], kind)
    points = outputs[f"patch{i}_landmarks"]
    coord = coord + coordinate_loss(points, landmarks, config, inside)
    metrics[f"patch{i}_inside_fraction"] = jnp.mean(inside)
    metrics[f"patch{i}_error_px"] = jnp.mean(
      jnp.linalg.norm(points - landmarks, axis=-1)
    )
    i += 1
  return {"patch_heatmap": heat, "patch_coord": coord}, metrics


def loss_fn(
  config: ml_collections.ConfigDict,
  outputs: dict[str, jax.Array],
  landmarks: jax.Array,
  loss_scales: Mapping[str, jax.Array] | None = None,
) -> tuple[jax.Array, dict[str, jax.Array]]:
  """(total loss, metrics) of a model's ``outputs`` against ``landmarks`` [B, L, 2].

  Pure. Terms (each reported as ``loss_<term>``): coarse_heatmap,
  coarse_coord, attention_heatmap, attention_coord, regional_heatmap,
  regional_coord (regional model), patch_heatmap, patch_coord (its patch
  stages, when on); holistic_heatmap, holistic_coord. Term t
  counts ``loss.t_weight`` x ``loss_scales[t]`` (default 1; a training
  stage's switch, traced, so it does not recompile).
  ``error_px``: mean point-to-point error of the final landmarks, pixels.
  """
  landmarks = landmarks.astype(jnp.float32)
  sigma = config.heatmap.sigma
  lc = config.loss
  kind = lc.heatmap
  terms: dict[str, jax.Array] = {}
  metrics: dict[str, jax.Array] = {}
  if config.model_name == "holistic":
    probs = outputs["heatmaps"]  # [B, S, h, w, L]
    points = hm.image_to_heatmap(landmarks, outputs["heatmap_scale"])
    targets = _targets(points, probs, sigma)[:, None]
    terms["holistic_heatmap"] = heatmap_loss(probs, targets, sigma, kind=kind)
    terms["holistic_coord"] = coordinate_loss(
      outputs["stack_landmarks"], landmarks[:, None], config
    )
  else:
    markup = markup_lib.get_markup(config.markup)
    terms.update(_coarse_terms(config, outputs, landmarks, markup))
    metrics["coarse_error_px"] = jnp.mean(
      jnp.linalg.norm(outputs["coarse_landmarks"] - landmarks, axis=-1)
    )
    if config.model_name == "regional":
      regional, inside = _regional_terms(config, outputs, landmarks, markup)
      terms.update(regional)
      metrics["regional_inside_fraction"] = jnp.mean(inside)
      if "patch0_heatmaps" in outputs:
        patch_terms, patch_metrics = _patch_terms(config, outputs, landmarks)
        terms.update(patch_terms)
        metrics.update(patch_metrics)
  scales = loss_scales or {}
  loss = sum(lc[f"{k}_weight"] * scales.get(k, 1.0) * v for k, v in terms.items())
  metrics.update({f"loss_{k}": v for k, v in terms.items()})
  metrics["error_px"] = jnp.mean(
    jnp.linalg.norm(outputs["landmarks"] - landmarks, axis=-1)
  )
  return loss, metrics
