r"""Regional vs holistic landmark models from 256^2 to 4096^2: the resolution
sweep's library (``experiments/resolution_sweep.py`` is its command line).

What is resolution-independent is trained once and shared:

* ``coarse``: the coarse attention network sees every image area-downsampled
  to its fixed input size, so it is trained once (``coarse_steps``, on the
  faces rendered at ``shared_resolution``) and initialises, frozen, the
  regional model of every resolution;
* ``holistic_input256``: the holistic baseline on the image downsampled on
  device to 256^2 is likewise one network: trained once at
  ``shared_resolution`` for ``coarse_steps + regional_steps`` (the regional
  model's total, shared steps included) and evaluated at every resolution;
* the regional networks above ``regional_shared_from`` (0: none): once crops
  are area-averaged to a fixed stride before the learned stem
  (``regional.stem_max_stride``), the regional networks see the same pixels
  at every larger resolution (a crop is a fixed fraction of the side), so
  the networks trained at ``regional_shared_from`` serve, frozen, every
  larger resolution, whose own job trains only its patch stages (for
  ``regional_steps``). Their parameters must have the same shapes (checked
  when they are loaded).

Then for every resolution R of the sweep config:

* ``regional``: the attention-driven cropping model at R (configs/regional.py),
  its regional networks trained for ``regional_steps`` on crops of R^2 faces
  (or those of ``regional_shared_from``); the paper's two-stage model;
* ``regional_patches``: the same run's model with its native-resolution patch
  stages (beyond the paper; ``config.patches``). The patch stages train in
  the same run; their loss does not reach the regional networks (their
  centres are a stop-gradient), so ``regional`` is that run without them;
* ``holistic_input256``: the shared baseline evaluated on R^2 faces;
* ``holistic_full``: the holistic baseline at full resolution
  (``input_resolution=0``), trained only where its compiled train step
  (temp + argument bytes, from ``hrface_jax.profile``) fits the memory
  budget and its FLOPs the compute budget (``max_train_gflops_per_step``);
  otherwise a record says so with the bytes and FLOPs it would need. At
  R = 256 it is ``holistic_input256`` (``same_as``).

All runs use the same faces (hrface_synth renders face i identically at
every resolution) and the same test faces; each record's ``steps`` counts the
steps its model had, shared ones included. After each record the results
are rewritten to OUT/resolution_sweep.json (and .md, and the PNG plots);
records already there (same config fingerprint) are skipped, and a run
interrupted mid-training resumes from its workdir's checkpoint. Each record
also says how long its parts took (``render_seconds`` of its resolution's
faces, ``wall_seconds`` of its training, ``eval_seconds``), and a regional one
carries the crop oracle's figures at its resolution (``oracle_*``).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

import ml_collections
from absl import flags
from ml_collections import config_flags

from hrface_jax import cli
from hrface_jax.sweep.jobs import (
  JOBS,
  MODELS,
  RECORD_FIELDS,
  REPO,
  RESULTS_NAME,
  Jobs,
  collapses,
  config_fingerprint,
  device_description,
  eval_config_at,
  input_resolution_of,
  is_oom,
  load_config_file,
  memory_budget_bytes,
  model_config,
  run_one,
  shares_regional,
  steps_of,
  train_in_subprocess,
  train_memory,
  train_size_at,
)
from hrface_jax.sweep.report import (
  fmt,
  load_records,
  markdown_table,
  oracle_table,
  recorded,
  run_key,
  time_table,
  todo_key,
  write_outputs,
)

__all__ = [
  "JOBS",
  "MODELS",
  "RECORD_FIELDS",
  "REPO",
  "RESULTS_NAME",
  "Jobs",
  "collapses",
  "config_fingerprint",
  "define_shared_flags",
  "device_description",
  "eval_config_at",
  "input_resolution_of",
  "is_oom",
  "load_config_file",
  "load_records",
  "markdown_table",
  "memory_budget_bytes",
  "model_config",
  "oracle_table",
  "quiet_logging",
  "recorded",
  "run_one",
  "run_sweep",
  "shares_regional",
  "steps_of",
  "time_table",
  "todo_key",
  "train_in_subprocess",
  "train_memory",
  "train_size_at",
  "write_outputs",
]


def run_sweep(
  sweep: ml_collections.ConfigDict,
  out: str,
  workdir: str,
  *,
  memory_budget_gb: float | None = None,
  log: Callable[[str], None] = print,
) -> list[dict]:
  """Runs every (resolution, model) not yet in OUT's JSON; returns all records."""
  out = os.path.abspath(out)
  json_path = os.path.join(out, f"{RESULTS_NAME}.json")
  records = load_records(json_path)
  gb = sweep.memory_budget_gb if memory_budget_gb is None else memory_budget_gb
  budget = memory_budget_bytes(gb)
  for m in sweep.models:
    if m not in MODELS:
      raise ValueError(f"sweep.models: unknown model {m!r}; expected {MODELS}")
  dataset = sweep.common.get("dataset", "hrface_synth")
  shared_from = int(sweep.get("regional_shared_from", 0) or 0)
  above = [r for r in sweep.resolutions if shares_regional(sweep, r)]
  shared_text = ""
  if shared_from and above:
    shared_text = (
      f" (up to {shared_from}^2; above it, {shared_from}^2's regional networks "
      f"serve frozen and {sweep.regional_steps} steps train only the patch "
      f"stages, on {train_size_at(sweep, max(above))} faces)"
    )
  header = (
    f"# Resolution sweep\n\nDataset {dataset}: a coarse network trained once "
    f"({sweep.coarse_steps} steps on {sweep.shared_train_size} faces at "
    f"{sweep.shared_resolution}^2), then {sweep.regional_steps} steps of the "
    f"regional networks on {sweep.common.synth_train_size} faces at each "
    f"resolution{shared_text}; holistic baselines get the coarse + regional "
    f"total. Batch {sweep.common.get('batch_size')}, "
    f"{sweep.common.synth_test_size} test faces, device {device_description()}, "
    f"memory budget {budget / 2**30:.1f} GiB.\n"
  )
  jobs = Jobs(sweep, workdir, log)
  todo = [(res, m) for res in sweep.resolutions for m in sweep.models]
  t_start = time.perf_counter()
  for i, (res, model) in enumerate(todo):
    key, fingerprint = todo_key(jobs, model, res)
    if recorded(records, key, fingerprint) is not None:
      log(f"[{i + 1}/{len(todo)}] {model} @ {res}: already in {json_path}; skipping")
      continue
    same = [r for r in records if run_key(r) == key]
    if same:  # the same run with another config (or one recorded before
      # fingerprints): its result is not this config's, so it is replaced
      log(
        f"[{i + 1}/{len(todo)}] {model} @ {res}: recorded in {json_path} with "
        f"another config (fingerprint {same[0].get('config_fingerprint')} != "
        f"{fingerprint}); running again"
      )
      records = [r for r in records if run_key(r) != key]
    log(
      f"[{i + 1}/{len(todo)}] {model} @ {res}: starting "
      f"({(time.perf_counter() - t_start) / 60:.1f} min into this sweep)"
    )
    if collapses(sweep, model, res):
      twin_key, twin_print = todo_key(jobs, "holistic_input256", res)
      twin = recorded(records, twin_key, twin_print)
      if twin is None:
        records = [r for r in records if run_key(r) != twin_key]
        twin = run_one(sweep, "holistic_input256", res, jobs, budget, log)
        records.append(twin)
      record = dict(twin, model=model, input_resolution=int(res))
      record["same_as"] = "holistic_input256"
      record["config_fingerprint"] = fingerprint
    else:
      record = run_one(sweep, model, res, jobs, budget, log)
    records.append(record)
    write_outputs(out, records, header)
    log(
      f"[{i + 1}/{len(todo)}] {model} @ {res}: {record['status']}, NME "
      f"{fmt(record.get('nme_inter_ocular'), '.4f')}, "
      f"{fmt(record.get('nme_pixels'), '.2f')} px"
    )
  write_outputs(out, records, header)
  log(f"sweep done in {(time.perf_counter() - t_start) / 60:.1f} min; {json_path}")
  return records


def quiet_logging() -> None:
  """Progress lines only: absl's verbosity down (orbax and TFDS, imported with
  this package, set it to INFO) unless --verbosity was given."""
  cli.quiet_logging()


def define_shared_flags(*, json: bool = False) -> None:
  """The flags the sweep and the benchmark share, on absl's global FLAGS."""
  if "config" not in flags.FLAGS:
    config_flags.DEFINE_config_file("config", None, "configs/sweep_*.py")
  if "resolutions" not in flags.FLAGS:
    flags.DEFINE_list("resolutions", None, "Override the config's resolutions.")
  if "dataset" not in flags.FLAGS:
    flags.DEFINE_string("dataset", None, "hrface_synth | ibug_pts[/NAME] | wflw")
  if "data_dir" not in flags.FLAGS:
    flags.DEFINE_string("data_dir", None, "Datasets dir ($HRFACE_DATA_DIR).")
  if json and "json" not in flags.FLAGS:
    flags.DEFINE_string("json", None, "Write the records here as JSON.")
  if "budget" not in flags.FLAGS:
    flags.DEFINE_enum(
      "budget", None, ["small", "full"], "configs/sweep_BUDGET.py (default small)."
    )
