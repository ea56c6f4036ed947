r"""Evaluates checkpoints on a dataset split with the 300-W metric conventions.

    python -m hrface_jax.evaluate --workdir=DIR [--dataset=NAME --split=SPLIT]
    python -m hrface_jax.evaluate --checkpoint=PATH[,PATH...] [--out=DIR]

Writes to ``--out`` (default: ``DIR/eval_<split>``): ``metrics.json`` (flat
keys such as ``nme_inter_ocular``, ``failure_rate_0.10``, ``auc_0.08``),
``ced.png`` (one curve per checkpoint), ``predictions.jsonl`` and
``examples.png`` (worst and median images, predicted and true landmarks).
With several checkpoints, each also gets ``NAME/metrics.json``.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile

import jax
import ml_collections
import numpy as np
from absl import app, flags
from flax import jax_utils

from hrface_jax import checkpointing, evaluation, models, plots, viz
from hrface_jax.data import pipeline

FLAGS = flags.FLAGS
flags.DEFINE_string(
  "workdir", None, "Training workdir (uses its best, else latest, checkpoint)."
)
flags.DEFINE_list(
  "checkpoint",
  None,
  "Checkpoint step folders or workdirs; several give several CED curves on one plot.",
)
flags.DEFINE_string(
  "dataset", None, "Dataset to evaluate on (default: the training config's)."
)
flags.DEFINE_string("split", None, "Split (default: the config's eval split).")
flags.DEFINE_integer(
  "resolution", None, "Evaluate at this resolution instead of the training one."
)
flags.DEFINE_string("data_dir", None, "TFDS data dir (default: the config's).")
flags.DEFINE_string("out", None, "Output folder.")
flags.DEFINE_integer(
  "batch_size", None, "Global eval batch size (default: the training one)."
)
flags.DEFINE_integer("max_examples", 0, "Evaluate at most this many images (0: all).")
flags.DEFINE_integer(
  "num_examples_shown", 4, "Worst and median images in examples.png."
)


def _eval_config(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict(config.to_dict())
  for field, value in (
    ("dataset", FLAGS.dataset),
    ("eval_split", FLAGS.split),
    ("resolution", FLAGS.resolution),
    ("data_dir", FLAGS.data_dir),
    ("batch_size", FLAGS.batch_size),
  ):
    if value is not None:
      config[field] = value
  n = jax.local_device_count()
  config.batch_size = max(n, (config.batch_size // n) * n)
  return config


def _write_jsonl(
  path: str, config, predictions: dict[str, np.ndarray], nmes: np.ndarray
) -> None:
  folder = os.path.dirname(os.path.abspath(path))
  fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp_", suffix=".jsonl")
  with os.fdopen(fd, "w") as f:
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
      f.write(json.dumps(record) + "\n")
  os.replace(tmp, path)


def _examples_sheet(config, predictions, nmes, path: str, k: int) -> None:
  """Worst-k and median-k images, predictions vs ground truth, in network pixels."""
  order = np.argsort(nmes)
  mid = len(order) // 2
  chosen = list(order[::-1][:k]) + list(order[max(mid - k // 2, 0) :][:k])
  wanted = {int(predictions["index"][i]): i for i in chosen}
  tiles, labels = {}, {}
  for batch in pipeline.make_eval_iterator(config, config.eval_split):
    for j, index in enumerate(np.asarray(batch["index"])):
      i = wanted.get(int(index))
      if i is None or not batch["mask"][j] or i in tiles:
        continue
      t = batch["transform"][j]
      pred = predictions["pred"][i] @ t[:, :2].T + t[:, 2]
      tiles[i] = viz.draw_comparison(batch["image"][j], pred, batch["landmarks"][j])
      labels[i] = f"#{int(index)} NME {nmes[i]:.3f}"
    if len(tiles) == len(wanted):
      break
  ordered = [i for i in chosen if i in tiles]
  sheet = viz.contact_sheet(
    [tiles[i] for i in ordered],
    ncols=k,
    tile_size=384,
    labels=[labels[i] for i in ordered],
  )
  viz.save_png(path, sheet)


def evaluate_checkpoint(path: str, *, progress: bool = True):
  """(config, flat metrics, per-image predictions, per-image NME) of one checkpoint."""
  config, params, step = checkpointing.load_for_inference(path)
  config = _eval_config(config)
  model = models.build_model(config)
  p_predict = evaluation.make_p_predict(model)
  p_params = jax_utils.replicate(params)
  predictions = evaluation.predict_split(
    config,
    p_predict,
    p_params,
    config.eval_split,
    max_examples=FLAGS.max_examples,
    progress=progress,
  )
  result, accumulator = evaluation.compute_metrics(config, predictions)
  result["step"] = step
  return config, result, predictions, accumulator.per_image_nme("inter_ocular")


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  paths = list(FLAGS.checkpoint or []) or ([FLAGS.workdir] if FLAGS.workdir else [])
  if not paths:
    raise app.UsageError("give --workdir=DIR or --checkpoint=PATH")
  try:
    runs = []
    for path in paths:
      config, result, predictions, nmes = evaluate_checkpoint(path)
      name = os.path.basename(os.path.normpath(path))
      runs.append((name, config, result, predictions, nmes))
      print(
        f"{path}: step {result['step']}, {config.dataset}/{config.eval_split} "
        f"at {config.resolution}px, {result['num_images']} images: "
        f"NME(io) {result['nme_inter_ocular']:.4f}"
        + (
          f" (coarse {result['coarse_nme_inter_ocular']:.4f})"
          if "coarse_nme_inter_ocular" in result
          else ""
        )
        + f", FR@0.10 {result['failure_rate_0.10']:.4f}, "
        f"AUC@0.08 {result['auc_0.08']:.4f}, error {result['error_pixels']:.2f}px"
      )
  except (ValueError, FileNotFoundError) as e:
    print(f"hrface_jax.evaluate: error: {e}", file=sys.stderr)
    sys.exit(1)

  name, config, result, predictions, nmes = runs[0]
  out = FLAGS.out or os.path.join(
    paths[0] if FLAGS.workdir else os.path.dirname(os.path.normpath(paths[0])),
    f"eval_{config.eval_split}",
  )
  os.makedirs(out, exist_ok=True)
  evaluation.write_json(os.path.join(out, "metrics.json"), result)
  if len(runs) > 1:
    for run_name, _, run_result, _, _ in runs:
      evaluation.write_json(os.path.join(out, run_name, "metrics.json"), run_result)
  plots.plot_ced(
    {n: e for n, _, _, _, e in runs},
    os.path.join(out, "ced.png"),
    title=f"CED, {config.dataset}/{config.eval_split}",
  )
  _write_jsonl(os.path.join(out, "predictions.jsonl"), config, predictions, nmes)
  _examples_sheet(
    config,
    predictions,
    nmes,
    os.path.join(out, "examples.png"),
    FLAGS.num_examples_shown,
  )
  print(f"wrote metrics.json, ced.png, predictions.jsonl, examples.png to {out}")


if __name__ == "__main__":
  app.run(main)
