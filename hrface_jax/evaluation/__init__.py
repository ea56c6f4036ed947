"""Evaluation: batched, pmapped inference over a dataset split and its metrics
(here), the metrics themselves (``metrics``), checkpoint evaluation
(``checkpoints``, behind ``python -m hrface_jax.evaluate``), plots and the
crop oracle.

Training's periodic validation and the evaluate CLI share this code, so both
report the same numbers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import ml_collections
import numpy as np
from jax.experimental import multihost_utils
from tqdm import tqdm

from hrface_jax import markup as markup_lib
from hrface_jax.data import pipeline
from hrface_jax.evaluation import metrics as metrics_lib

PREDICTION_KEYS = (
  "landmarks",
  "coarse_landmarks",
  "unrefined_landmarks",
  "confidence",
  "crop_boxes",
)
# predict_split's record key of each point output, and its metrics' prefix.
POINT_OUTPUTS = {
  "landmarks": "pred",
  "coarse_landmarks": "coarse",
  "unrefined_landmarks": "unrefined",
}


def make_p_predict(model) -> Callable:
  """pmapped ``(params, images_uint8) -> dict`` of the outputs evaluation needs."""

  def predict(params, images):
    outputs = model.apply({"params": params}, images, train=False)
    return {k: outputs[k] for k in PREDICTION_KEYS if k in outputs}

  return jax.pmap(predict, axis_name="batch")


def to_original_pixels(points: np.ndarray, transform: np.ndarray) -> np.ndarray:
  """Maps [B, L, 2] network-image points back through [B, 2, 3] affines.

  ``transform`` maps original-image pixels to network-image pixels.
  """
  a, t = transform[:, :, :2], transform[:, :, 2]
  inv = np.linalg.inv(a)
  return np.einsum("bij,blj->bli", inv, points - t[:, None, :])


def _all_processes(batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
  """Every process's ``batch`` (same keys and shapes on each), concatenated
  along the batch axis: a collective every process must call."""
  if jax.process_count() == 1:
    return batch
  gathered = multihost_utils.process_allgather(batch)  # [processes, B, ...]
  return {k: np.asarray(v).reshape(-1, *v.shape[2:]) for k, v in gathered.items()}


def predict_split(
  config: ml_collections.ConfigDict,
  p_predict: Callable,
  p_params: Any,
  split: str,
  *,
  max_examples: int = 0,
  progress: bool = False,
) -> dict[str, np.ndarray]:
  """Runs the model over ``split`` (its first ``max_examples`` if > 0);
  returns per-image host arrays, in split order.

  Keys: ``index``, ``true`` and ``pred`` (+ ``coarse``, ``unrefined``: the
  points before the shape prior, ``confidence``) in original-image pixels,
  and ``transform`` (original -> network image).
  Several processes each predict their share; every process returns all.
  """
  devices = jax.local_devices()
  n = len(devices)
  out: dict[str, list[np.ndarray]] = {}
  it = pipeline.make_eval_iterator(config, split, max_examples=max_examples)
  for batch in tqdm(
    it,
    total=len(it),
    desc=f"eval {split}",
    disable=not progress,
    unit="batch",
    leave=False,
  ):
    images = batch["image"]
    sharded = images.reshape(n, -1, *images.shape[1:])
    preds = jax.device_get(p_predict(p_params, sharded))
    preds = {k: v.reshape(-1, *v.shape[2:]) for k, v in preds.items()}
    # The padded batches have the same shapes on every process.
    batch = _all_processes(
      {k: batch[k] for k in ("index", "mask", "transform", "landmarks")}
      | {f"pred_{k}": preds[k] for k in (*POINT_OUTPUTS, "confidence") if k in preds}
    )
    keep = np.asarray(batch["mask"], bool)
    transform = np.asarray(batch["transform"], np.float64)[keep]
    record = {
      "index": np.asarray(batch["index"])[keep],
      "transform": transform,
      "true": to_original_pixels(
        np.asarray(batch["landmarks"], np.float64)[keep], transform
      ),
    }
    for k, name in POINT_OUTPUTS.items():
      if f"pred_{k}" in batch:
        record[name] = to_original_pixels(
          batch[f"pred_{k}"][keep].astype(np.float64), transform
        )
    if "pred_confidence" in batch:
      record["confidence"] = batch["pred_confidence"][keep]
    for k, v in record.items():
      out.setdefault(k, []).append(v)
  if not out:
    raise ValueError(f"split {split!r} of dataset {config.dataset!r} has no examples")
  result = {k: np.concatenate(v) for k, v in out.items()}
  order = np.argsort(result["index"], kind="stable")  # processes interleave
  return {k: v[order] for k, v in result.items()}


def compute_metrics(
  config: ml_collections.ConfigDict, predictions: dict[str, np.ndarray]
) -> tuple[dict[str, float], metrics_lib.LandmarkMetrics]:
  """The flat metrics dict (+ the accumulator, for per-image NMEs)."""
  markup = markup_lib.get_markup(config.markup)
  final = metrics_lib.LandmarkMetrics(markup)
  final.update(predictions["pred"], predictions["true"])
  result = final.result()
  for name in POINT_OUTPUTS.values():  # the points before the last steps
    if name == "pred":
      continue
    if name in predictions:
      other = metrics_lib.LandmarkMetrics(markup, prefix=f"{name}_")
      other.update(predictions[name], predictions["true"])
      result.update(other.result())
  return result, final


def evaluate_during_training(
  config: ml_collections.ConfigDict, p_predict: Callable, p_params: Any
) -> dict[str, float]:
  """Validation metrics on ``config.eval_split`` (for logs and best checkpoint)."""
  predictions = predict_split(
    config,
    p_predict,
    p_params,
    config.eval_split,
    max_examples=config.eval_max_examples,
  )
  result, _ = compute_metrics(config, predictions)
  return result
