"""The sweep's results: records JSON, markdown tables and plots."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Sequence

from hrface_jax import atomic
from hrface_jax.evaluation import plots
from hrface_jax.sweep.jobs import MODELS, RESULTS_NAME, Jobs, model_config, steps_of


def run_key(r: dict) -> tuple:
  return (r["model"], int(r["resolution"]), r.get("dataset"), int(r["steps"]))


def todo_key(jobs: Jobs, model: str, res: int) -> tuple:
  """(run_key, fingerprint) of one (model, resolution) of the sweep."""
  job = "regional" if model == "regional_patches" else model
  config = model_config(jobs.sweep, job, res)
  key = (model, int(res), config.dataset, steps_of(jobs.sweep, model, res))
  return key, jobs.fingerprint(job, res)


def recorded(records: list[dict], key: tuple, fingerprint: str) -> dict | None:
  """The record of run ``key`` made with config ``fingerprint``, if any."""
  return next(
    (
      r
      for r in records
      if run_key(r) == key and r.get("config_fingerprint") == fingerprint
    ),
    None,
  )


def load_records(path: str) -> list[dict]:
  if not os.path.exists(path):
    return []
  with open(path) as f:
    records = json.load(f)
  if not isinstance(records, list):
    raise ValueError(f"{path}: expected a JSON list of records")
  return records


def fmt(v, spec: str, scale: float = 1.0) -> str:
  if v is None or (isinstance(v, float) and not math.isfinite(v)):
    return "–"
  return format(v * scale, spec)


def markdown_table(records: Sequence[dict]) -> str:
  head = (
    "| model | resolution | input | NME (io) | inner | contour | along | across | "
    "no prior | error px | FR@0.10 | train mem GiB | train GFLOP/step | "
    "train img/s | infer ms/img | status |\n"
    "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: "
    "| ---: | ---: | ---: | ---: | --- |"
  )
  order = {m: i for i, m in enumerate(MODELS)}
  rows = sorted(
    records, key=lambda r: (r["resolution"], order.get(r["model"], 9), r["model"])
  )
  lines = [head]
  for r in rows:
    mem = None
    if r.get("train_temp_bytes") is not None:
      mem = r["train_temp_bytes"] + (r.get("train_argument_bytes") or 0)
    status = r.get("status", "ok")
    if r.get("same_as"):
      status = f"= {r['same_as']}"
    lines.append(
      f"| {r['model']} | {r['resolution']} | {r['input_resolution']} | "
      f"{fmt(r.get('nme_inter_ocular'), '.4f')} | "
      f"{fmt(r.get('nme_inner'), '.4f')} | {fmt(r.get('nme_contour'), '.4f')} | "
      f"{fmt(r.get('nme_along'), '.4f')} | {fmt(r.get('nme_across'), '.4f')} | "
      f"{fmt(r.get('unrefined_nme_inter_ocular'), '.4f')} | "
      f"{fmt(r.get('nme_pixels'), '.2f')} | "
      f"{fmt(r.get('failure_rate_0.10'), '.1%')} | {fmt(mem, '.2f', 2**-30)} | "
      f"{fmt(r.get('train_flops'), '.1f', 1e-9)} | "
      f"{fmt(r.get('train_images_per_second'), '.1f')} | "
      f"{fmt(r.get('infer_ms_per_image'), '.1f')} | {status} |"
    )
  return "\n".join(lines) + "\n"


def oracle_table(records: Sequence[dict]) -> str:
  """The crop oracle per resolution (experiments/crop_oracle.py, two-stage
  model): "" when no regional record has it."""
  rows = sorted(
    (r for r in records if r["model"] == "regional" and "oracle_nme_coarse" in r),
    key=lambda r: r["resolution"],
  )
  if not rows:
    return ""
  lines = [
    "| resolution | attention centre error / side | landmarks inside crop | "
    "coarse | predicted crops | ground-truth crops | GT crops moved by the error |",
    "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
  ]
  for r in rows:
    error = r["oracle_attention_center_error_fraction"]
    inside = r["oracle_inside_predicted_crop_fraction"]
    lines.append(
      f"| {r['resolution']} | {fmt(error, '.2%')} | {fmt(inside, '.2%')} | "
      + " | ".join(
        fmt(r[f"oracle_nme_{k}"], ".4f")
        for k in ("coarse", "predicted_crops", "oracle_crops", "shifted_crops")
      )
      + " |"
    )
  return "\n".join(lines) + "\n"


def time_table(records: Sequence[dict]) -> str:
  """Where the sweep's time went, in minutes: rendering, each training job
  once (shared ones are listed once however many records use them), and the
  rest (memory compiles, evaluation, inference timing, the crop oracle)."""
  jobs: dict[str, float] = {}
  rendering = analysis = 0.0
  for r in records:
    if r.get("same_as"):  # a copy of another record: no time of its own
      continue
    rendering += r.get("render_seconds") or 0.0
    analysis += r.get("analysis_seconds") or 0.0
    for name, wall, render in (
      (r.get("job"), r.get("wall_seconds"), r.get("train_render_seconds")),
      (
        r.get("coarse_workdir"),
        r.get("coarse_wall_seconds"),
        r.get("coarse_render_seconds"),
      ),
      (
        r.get("regional_workdir"),
        r.get("regional_wall_seconds"),
        r.get("regional_render_seconds"),
      ),
    ):
      if name and wall is not None and name not in jobs:
        jobs[name] = wall
        rendering += render or 0.0
  if not jobs:
    return ""
  rows = [("rendering the faces", rendering)]
  rows += [(f"training {name}", seconds) for name, seconds in sorted(jobs.items())]
  rows.append(("memory compiles, evaluation, timing, crop oracle", analysis))
  total = sum(seconds for _, seconds in rows)
  lines = ["| part | minutes |", "| --- | ---: |"]
  lines += [f"| {name} | {seconds / 60:.1f} |" for name, seconds in rows]
  lines.append(f"| **total** | **{total / 60:.1f}** |")
  return "\n".join(lines) + "\n"


def write_outputs(out: str, records: list[dict], header: str = "") -> None:
  """JSON, markdown tables and the PNG plots (atomic writes)."""

  os.makedirs(out, exist_ok=True)
  atomic.write_json(os.path.join(out, f"{RESULTS_NAME}.json"), records)
  oracle = oracle_table(records)
  if oracle:
    oracle = "\n## Crop oracle (NME, two-stage model)\n\n" + oracle
  times = time_table(records)
  if times:
    times = (
      "\n## Where the time went\n\nThe recorded times of every run these "
      "results use, runs reused from the workdir included: what the sweep "
      "costs from scratch (this invocation may have taken less).\n\n" + times
    )
  atomic.write_text(
    os.path.join(out, f"{RESULTS_NAME}.md"),
    header + "\n" + markdown_table(records) + oracle + times,
  )
  if not records:
    return
  xs = sorted({int(r["resolution"]) for r in records})
  models = [m for m in MODELS if any(r["model"] == m for r in records)]

  def series(field: Callable[[dict], float | None]) -> dict[str, list]:
    out_ = {}
    for m in models:
      by_res = {int(r["resolution"]): r for r in records if r["model"] == m}
      out_[m] = [field(by_res[x]) if x in by_res else None for x in xs]
    return out_

  def mem(r):
    if r.get("train_temp_bytes") is None:
      return None
    return (r["train_temp_bytes"] + (r.get("train_argument_bytes") or 0)) / 2**30

  def field(name: str) -> Callable[[dict], float | None]:
    return lambda r: r.get(name)

  # (file, value, y label, title, log y); errors start their linear axis at 0.
  figures = (
    ("nme", field("nme_inter_ocular"), "NME (inter-ocular)", "Landmark error", False),
    (
      "nme_inner",
      field("nme_inner"),
      "NME (inter-ocular), inner points",
      "Inner-point error (face contour left out)",
      False,
    ),
    (
      "error_px",
      field("nme_pixels"),
      "mean error (full-resolution pixels)",
      "Landmark error in pixels",
      True,
    ),
    (
      "memory",
      mem,
      "compiled train step, temp + args (GiB / device)",
      "Training memory",
      True,
    ),
    (
      "throughput",
      field("train_images_per_second"),
      "training images / second",
      "Training throughput",
      True,
    ),
  )
  for name, value, ylabel, title, logy in figures:
    plots.plot_lines(
      xs,
      series(value),
      os.path.join(out, f"{name}_vs_resolution.png"),
      xlabel="image resolution (px)",
      ylabel=ylabel,
      logx=True,
      logy=logy,
      ymin=None if logy else 0.0,
      title=f"{title} vs resolution",
      missing_label="not trained (does not fit / OOM / over budget)",
    )
