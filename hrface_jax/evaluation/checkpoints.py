"""Evaluating saved checkpoints: a workdir's best (or latest) checkpoint, or
several, on a dataset split; metrics, CED plot, per-image predictions and an
examples sheet. ``python -m hrface_jax.evaluate`` is its command line.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import Any

import jax
import ml_collections
import numpy as np
from flax import jax_utils

from hrface_jax import atomic, checkpointing, evaluation, models, viz
from hrface_jax.data import pipeline, prepare
from hrface_jax.evaluation import plots


def eval_config(
  config: ml_collections.ConfigDict,
  *,
  dataset: str | None = None,
  split: str | None = None,
  resolution: int | None = None,
  data_dir: str | None = None,
  batch_size: int | None = None,
) -> ml_collections.ConfigDict:
  """The training config with the evaluation overrides applied (a copy)."""
  config = ml_collections.ConfigDict(config.to_dict())
  if resolution is not None and int(resolution) != int(config.resolution):
    if int(resolution) <= 0:
      raise ValueError(f"--resolution={resolution}: must be positive")
    if config.get("synth_resolution", 0) in (0, int(config.resolution)):
      # Synthetic faces are rendered at the evaluated resolution (same faces,
      # more or less detail), not upsampled from the training one.
      config.synth_resolution = int(resolution)
    config.resolution = int(resolution)
  for field, value in (
    ("dataset", dataset),
    ("eval_split", split),
    ("data_dir", data_dir),
    ("batch_size", batch_size),
  ):
    if value is not None:
      config[field] = value
  if int(config.batch_size) <= 0:
    raise ValueError(f"--batch_size={config.batch_size}: must be positive")
  # pmap needs a multiple of the local devices; padding rows are masked out.
  n = jax.local_device_count()
  config.batch_size = -(-int(config.batch_size) // n) * n
  return config


def _workdir_of(path: str) -> tuple[str, bool]:
  """(the run's workdir, whether ``path`` names one step folder)."""
  path = os.path.normpath(os.path.abspath(path))
  if os.path.isdir(os.path.join(path, "state")):
    parent = os.path.dirname(path)
    if os.path.basename(parent) == "checkpoints":
      return os.path.dirname(parent), True
    return parent, True
  if os.path.basename(path) == "checkpoints":
    return os.path.dirname(path), False
  return path, False


def _run_name(path: str, step: int) -> str:
  workdir, is_step = _workdir_of(path)
  name = os.path.basename(workdir)
  return f"{name}@{step}" if is_step else name


def _write_jsonl(
  path: str, config, predictions: dict[str, np.ndarray], nmes: np.ndarray
) -> None:
  with atomic.atomic_open(path, "w") as f:
    for i in range(len(nmes)):
      record = {
        "dataset": config.dataset,
        "split": config.eval_split,
        "index": int(predictions["index"][i]),
        "nme_inter_ocular": float(nmes[i]),
        "pred": np.round(predictions["pred"][i], 3).tolist(),
        "true": np.round(predictions["true"][i], 3).tolist(),
      }
      if "coarse" in predictions:
        record["coarse"] = np.round(predictions["coarse"][i], 3).tolist()
      if "confidence" in predictions:
        record["confidence"] = np.round(predictions["confidence"][i], 4).tolist()
      f.write(json.dumps(record) + "\n")


def examples_sheet(
  config: ml_collections.ConfigDict,
  predictions: dict[str, np.ndarray],
  nmes: np.ndarray,
  path: str,
  k: int,
) -> None:
  """Worst-k and median-k images, predicted vs true, in network pixels."""
  order = np.argsort(-np.nan_to_num(nmes, nan=np.inf), kind="stable")
  mid = len(order) // 2
  median = np.argsort(nmes, kind="stable")[max(mid - k // 2, 0) :][:k]
  chosen = list(dict.fromkeys([*order[:k].tolist(), *median.tolist()]))
  wanted = {int(predictions["index"][i]): i for i in chosen}
  tiles, labels = {}, {}
  # Only the chosen images are drawn; the pass stops once all are found.
  for batch in pipeline.make_eval_iterator(config, config.eval_split):
    for j, index in enumerate(np.asarray(batch["index"])):
      i = wanted.get(int(index))
      if i is None or not batch["mask"][j] or i in tiles:
        continue
      t = np.asarray(batch["transform"][j], np.float64)
      pred = predictions["pred"][i] @ t[:, :2].T + t[:, 2]
      tiles[i] = viz.draw_comparison(batch["image"][j], pred, batch["landmarks"][j])
      kind = "worst" if i in order[:k] else "median"
      labels[i] = f"{kind} #{int(index)} NME {nmes[i]:.3f}"
    if len(tiles) == len(wanted):
      break
  ordered = [i for i in chosen if i in tiles]
  if not ordered:
    raise ValueError(f"{path}: none of the chosen examples were found again")
  sheet = viz.contact_sheet(
    [tiles[i] for i in ordered],
    ncols=max(1, k),
    tile_size=384,
    labels=[labels[i] for i in ordered],
  )
  viz.save_png(path, sheet)


def evaluate_checkpoint(
  path: str,
  *,
  max_examples: int = 0,
  progress: bool = True,
  manual_dir: str | None = None,
  **overrides: Any,
) -> tuple[
  ml_collections.ConfigDict, dict[str, Any], dict[str, np.ndarray], np.ndarray
]:
  """(config, flat metrics, per-image predictions, per-image NME) of one checkpoint.

  ``overrides``: ``dataset``, ``split``, ``resolution``, ``data_dir``,
  ``batch_size`` (see :func:`eval_config`). ``manual_dir``: the real
  dataset's local copy, prepared first when it is not yet.
  """
  config, params, step = checkpointing.load_for_inference(path)
  config = eval_config(config, **overrides)
  if manual_dir:
    prepare.prepare_from_folder(config, manual_dir)
  model = models.build_model(config)
  p_predict = evaluation.make_p_predict(model)
  p_params = jax_utils.replicate(params)
  predictions = evaluation.predict_split(
    config,
    p_predict,
    p_params,
    config.eval_split,
    max_examples=max_examples,
    progress=progress,
  )
  result, accumulator = evaluation.compute_metrics(config, predictions)
  result["step"] = step
  return config, result, predictions, accumulator.per_image_nme("inter_ocular")


def _report_skipped(config: ml_collections.ConfigDict) -> None:
  """Names the evaluated split's files that preparation left out as broken:
  the metrics are over the others only."""
  skipped = prepare.skipped_examples(
    prepare.builder_for_config(config), config.eval_split
  )
  if skipped:
    print(
      f"{len(skipped)} broken file(s) of {config.dataset}/{config.eval_split}"
      " were left out (not evaluated):"
    )
    for reason in skipped:
      print(f"  {reason}")


def evaluate(
  paths: Sequence[str],
  out: str | None = None,
  *,
  max_examples: int = 0,
  num_examples_shown: int = 4,
  progress: bool = True,
  manual_dir: str | None = None,
  **overrides: Any,
) -> tuple[str, list[dict[str, Any]]]:
  """Evaluates each checkpoint and writes the output files; (out, metrics)."""
  if not paths:
    raise ValueError("no checkpoint given")
  runs = []
  names: set[str] = set()
  for path in paths:
    config, result, predictions, nmes = evaluate_checkpoint(
      path,
      max_examples=max_examples,
      progress=progress,
      manual_dir=manual_dir,
      **overrides,
    )
    name = _run_name(path, result["step"])
    while name in names:  # two runs with the same folder name
      name += "'"
    names.add(name)
    result.update(
      checkpoint=os.path.abspath(path),
      dataset=config.dataset,
      split=config.eval_split,
      resolution=int(config.resolution),
    )
    runs.append((name, config, result, predictions, nmes))
    print(
      f"{path}: step {result['step']}, {config.dataset}/{config.eval_split} "
      f"at {config.resolution}px, {result['num_images']} images: "
      f"NME(io) {result['nme_inter_ocular']:.4f}"
      + "".join(
        f" ({what} {result[f'{key}_nme_inter_ocular']:.4f})"
        for key, what in (("unrefined", "before the shape prior"), ("coarse", "coarse"))
        if f"{key}_nme_inter_ocular" in result
      )
      + f", FR@0.10 {result['failure_rate_0.10']:.4f}, "
      f"AUC@0.08 {result['auc_0.08']:.4f}, error {result['error_pixels']:.2f}px"
      + (
        f"; along / across the curves {result['along_inter_ocular']:.4f} / "
        f"{result['across_inter_ocular']:.4f}"
        if "along_inter_ocular" in result
        else ""
      )
    )

  _, config, result, predictions, nmes = runs[0]
  _report_skipped(config)
  if out is None:
    workdir, is_step = _workdir_of(paths[0])
    suffix = f"_step{result['step']}" if is_step else ""
    out = os.path.join(workdir, f"eval_{config.eval_split}{suffix}")
  os.makedirs(out, exist_ok=True)
  atomic.write_json(os.path.join(out, "metrics.json"), result)
  _write_jsonl(os.path.join(out, "predictions.jsonl"), config, predictions, nmes)
  if len(runs) > 1:
    for run_name, run_config, run_result, run_predictions, run_nmes in runs:
      folder = os.path.join(out, run_name.replace(os.sep, "_"))
      atomic.write_json(os.path.join(folder, "metrics.json"), run_result)
      _write_jsonl(
        os.path.join(folder, "predictions.jsonl"),
        run_config,
        run_predictions,
        run_nmes,
      )
  plots.plot_ced(
    {n: e for n, _, _, _, e in runs},
    os.path.join(out, "ced.png"),
    title=f"CED, {config.dataset}/{config.eval_split} at {config.resolution}px",
  )
  examples_sheet(
    config, predictions, nmes, os.path.join(out, "examples.png"), num_examples_shown
  )
  return out, [r for _, _, r, _, _ in runs]
