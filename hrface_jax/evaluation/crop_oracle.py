r"""Where does a regional model's error come from: its crops or its networks?

``python experiments/crop_oracle.py --workdir=...`` is its command line; the
resolution sweep records these figures for every regional run.

Evaluates a trained regional checkpoint three ways on the same images:

* ``coarse``: the coarse network's own landmarks (no crops);
* ``predicted_crops``: the model as it runs (crops centred by the attention);
* ``oracle_crops``: crops centred on the ground-truth region centres, so the
  regional networks see their region where training put it;
* ``shifted_crops``: ground-truth centres moved by the attention's own error,
  per image and region, turned by a random angle: crops as far off as the
  predicted ones, in a direction that carries no information.

If ``oracle_crops`` is much better than ``predicted_crops``, crop placement
limits the model; if ``oracle_crops`` is no better than ``coarse``, the
regional networks themselves do. Beware: a crop centred on the true region
centre leaks ground truth, so a network that ignores the pixels and answers
"the crop centre plus the mean shape" already scores well on ``oracle_crops``.
``shifted_crops`` tells the two apart: a network that localises scores there
about as on ``oracle_crops``, one that only echoes its crop centre about as on
``predicted_crops``. Also reports the
attention's centre error and the fraction of landmarks that fall inside their
region's predicted crop, and both kinds of crops under the other fusion
(``config.regional.fusion``: "confidence" or "precision"; it has no
parameters, so one checkpoint answers for both). NME is inter-ocular, mean
over images, in network pixels.
"""

from __future__ import annotations

import functools
import os
from typing import Any

import jax
import ml_collections
import numpy as np

from hrface_jax import checkpointing, models
from hrface_jax import markup as markup_lib
from hrface_jax.data import pipeline
from hrface_jax.evaluation import metrics
from hrface_jax.models import config as model_config
from hrface_jax.models.regional import points_in_crops, region_slots


def turned(offsets: np.ndarray, angles: np.ndarray) -> np.ndarray:
  """2-D ``offsets`` [..., 2] rotated by ``angles`` [...] (radians)."""
  cos, sin = np.cos(angles), np.sin(angles)
  x, y = offsets[..., 0], offsets[..., 1]
  return np.stack([cos * x - sin * y, sin * x + cos * y], axis=-1)


def crop_oracle(
  workdir: str,
  split: str | None = None,
  fusion: str | None = None,
  *,
  patches: bool = True,
  other_fusion: bool = True,
) -> dict[str, Any]:
  """NMEs of coarse / predicted / oracle / shifted-crop landmarks of a checkpoint.

  ``fusion`` (default: the checkpoint's) is the one reported without suffix;
  ``other_fusion`` adds the other one. ``patches=False`` reports the
  two-stage model (a checkpoint's patch stages and shape prior left out).
  """
  config, params, step = checkpointing.load_for_inference(workdir)
  if not patches:
    # The two-stage model: no patch stages, and no shape prior (it was
    # fitted to the points after them).
    config.patches.enabled = False
    config.shape.enabled = False
    params = models.params_for_model(params, config)
  if config.model_name != "regional":
    raise ValueError(
      f"{workdir}: a {config.model_name!r} checkpoint; crop_oracle needs a regional one"
    )
  markup = markup_lib.get_markup(config.markup)
  index, mask = region_slots(markup.region_indices())  # [R, K]
  configured = fusion or config.regional.fusion
  if configured not in model_config.FUSIONS:
    raise ValueError(f"fusion={configured!r}: expected one of {model_config.FUSIONS}")
  fused_models = {}
  fusions = model_config.FUSIONS if other_fusion else (configured,)
  for name in fusions:  # parameter-free: same params for each
    cfg = ml_collections.ConfigDict(config.to_dict())
    cfg.regional.fusion = name
    fused_models[name] = models.build_model(cfg)

  @functools.partial(jax.jit, static_argnums=0)
  def run(fusion, images, crop_centers):
    out = fused_models[fusion].apply(
      {"params": params}, images, crop_centers=crop_centers
    )
    keys = ("landmarks", "coarse_landmarks", "region_centers", "crop_boxes")
    return {k: out[k] for k in keys}

  nmes: dict[str, list[np.ndarray]] = {}
  center_err, inside = [], []
  turn = np.random.default_rng(0)
  for batch in pipeline.make_eval_iterator(config, split):
    keep = np.asarray(batch["mask"], bool)
    true = np.asarray(batch["landmarks"], np.float32)
    oracle = np.asarray(models.region_centers_from_landmarks(true, markup))
    named = {}
    for name in fusions:
      pred = jax.device_get(run(name, batch["image"], None))
      orc = jax.device_get(run(name, batch["image"], oracle))
      suffix = "" if name == configured else f"_{name}_fusion"
      named[f"predicted_crops{suffix}"] = pred["landmarks"]
      named[f"oracle_crops{suffix}"] = orc["landmarks"]
    error = pred["region_centers"] - oracle  # [B, R, 2]
    shifted = oracle + turned(error, turn.uniform(0, 2 * np.pi, error.shape[:-1]))
    named["shifted_crops"] = jax.device_get(run(configured, batch["image"], shifted))[
      "landmarks"
    ]
    named["coarse"] = pred["coarse_landmarks"]
    for name, points in named.items():
      nmes.setdefault(name, []).append(
        np.asarray(metrics.nme(points, true, markup))[keep]
      )
    center_err.append(np.linalg.norm(error, axis=-1)[keep].ravel())
    ok = np.asarray(points_in_crops(true[:, index], pred["crop_boxes"]))
    inside.append(ok[keep][:, mask])
  result: dict[str, Any] = {
    "workdir": os.path.abspath(workdir),
    "step": step,
    "resolution": int(config.resolution),
    "num_images": int(sum(len(v) for v in nmes["coarse"])),
    "fusion": configured,
  }
  for name, values in nmes.items():
    result[f"nme_{name}"] = float(np.nanmean(np.concatenate(values)))
  result["attention_center_error_px"] = float(np.mean(np.concatenate(center_err)))
  result["attention_center_error_fraction"] = (
    result["attention_center_error_px"] / config.resolution
  )
  result["inside_predicted_crop_fraction"] = float(np.mean(np.concatenate(inside)))
  return result
