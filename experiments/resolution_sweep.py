r"""Regional vs holistic landmark models from 256^2 to 4096^2.

    python experiments/resolution_sweep.py --budget=small   # 2 CPU cores, < 60 min
    python experiments/resolution_sweep.py --budget=full    # a GPU
    python experiments/resolution_sweep.py --config=configs/sweep_small.py \
        --config.resolutions=256,512 --config.regional_steps=50 \
        [--dataset=ibug_pts --data_dir=...] [--out=DIR] [--workdir=DIR] \
        [--memory_budget_gb=16]

What is resolution-independent is trained once and shared:

* ``coarse``: the coarse attention network sees every image area-downsampled
  to its fixed input size, so it is trained once (``coarse_steps``, on the
  faces rendered at ``shared_resolution``) and initialises, frozen, the
  regional model of every resolution;
* ``holistic_input256``: the holistic baseline on the image downsampled on
  device to 256^2 is likewise one network: trained once at
  ``shared_resolution`` for ``coarse_steps + regional_steps`` (the regional
  model's total, shared steps included) and evaluated at every resolution.

Then for every resolution R of the sweep config:

* ``regional``: the attention-driven cropping model at R (configs/regional.py),
  its regional networks trained for ``regional_steps`` on crops of R^2 faces;
  the paper's two-stage model;
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

import hashlib
import json
import math
import os
import platform
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import ml_collections

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:  # run as a script from anywhere
  sys.path.insert(0, REPO)

MODELS = ("regional", "regional_patches", "holistic_input256", "holistic_full")
RESULTS_NAME = "resolution_sweep"
JOB_DONE_NAME = "sweep_job.json"  # in a job's workdir once it has trained
DEFAULT_BUDGET_BYTES = 16 * 2**30  # CPU, or a device without memory_stats()
OOM_MARKERS = ("RESOURCE_EXHAUSTED", "out of memory", "Out of memory", "OOM")

# The fields every record has (None where a run did not happen).
RECORD_FIELDS = (
  "model",
  "resolution",
  "input_resolution",
  "nme_inter_ocular",
  "nme_pixels",
  "failure_rate_0.10",
  "train_temp_bytes",
  "train_images_per_second",
  "infer_ms_per_image",
  "device",
  "steps",
)


def load_config_file(path: str, arg: str | None = None) -> ml_collections.ConfigDict:
  """``get_config([arg])`` of a configs/NAME.py file (relative to the repo)."""
  from hrface_jax import config_lib  # noqa: PLC0415

  full = path if os.path.isabs(path) else os.path.join(REPO, path)
  return config_lib.load_config_file(full, arg)


def merge(
  target: ml_collections.ConfigDict, override: ml_collections.ConfigDict, where: str
) -> None:
  """Sets ``override``'s leaves in ``target``; unknown fields are an error."""
  for key, value in override.items():
    if key not in target:
      raise KeyError(f"{where}.{key}: not a field of the training config")
    if isinstance(value, ml_collections.ConfigDict) and isinstance(
      target[key], ml_collections.ConfigDict
    ):
      merge(target[key], value, f"{where}.{key}")
    else:
      target[key] = value


# The sweep's training jobs: what each trains, at which resolution.
JOBS = ("coarse", "holistic_input256", "regional", "holistic_full")


def model_config(
  sweep: ml_collections.ConfigDict, job: str, resolution: int
) -> ml_collections.ConfigDict:
  """The training config of one job of the sweep (see the module doc).

  ``job`` is one of :data:`JOBS` or a model of :data:`MODELS` (its job).
  ``coarse`` and ``holistic_input256`` train at ``sweep.shared_resolution``
  whatever ``resolution`` is; a regional job's coarse network comes from the
  coarse job (``init_from``, frozen).
  """
  job = "regional" if job == "regional_patches" else job
  if job not in JOBS:
    raise ValueError(f"sweep job {job!r}: expected one of {JOBS} or {MODELS}")
  shared = int(sweep.shared_resolution)
  base = "holistic" if job.startswith("holistic") else "regional"
  # The variant ("" or "gpu") picks the config file's own widths/schedule.
  config = load_config_file(f"configs/{base}.py", sweep.get("variant", ""))
  merge(config, sweep.common, "common")
  merge(config, sweep[base], base)
  config.resolution = int(resolution)
  coarse_steps, regional_steps = int(sweep.coarse_steps), int(sweep.regional_steps)
  if job == "coarse":
    config.model_name = "coarse"
    config.stages = (("coarse", 1.0),)
    merge(config, sweep.coarse, "coarse")
  if job in ("coarse", "holistic_input256"):
    config.resolution = shared
    config.synth_train_size = int(sweep.shared_train_size)
  if job == "coarse":
    config.total_steps = coarse_steps
  elif job == "regional":
    merge(
      config, sweep.get("per_resolution", ml_collections.ConfigDict()), "per_resolution"
    )
    config.total_steps = regional_steps
    config.frozen_modules = ("coarse",)
    config.init_modules = ("coarse",)
    config.stages = tuple(tuple(s) for s in sweep.regional_stages)
    config.patches.enabled = "regional_patches" in tuple(sweep.models)
  else:  # the holistic baseline gets the regional model's total
    config.total_steps = coarse_steps + regional_steps
  if job == "holistic_input256":
    config.input_resolution = int(sweep.downsample_resolution)
  elif job == "holistic_full":
    config.input_resolution = 0
  config.eval_every_steps = min(int(config.eval_every_steps), config.total_steps)
  return config


# Where the data is read from and how the run is logged do not change its
# result: a copy of the data elsewhere reuses the results made from it.
_NOT_FINGERPRINTED = (
  "data_dir",
  "data_workers",
  "data_threads",
  "data_cache_gb",
  "log_every_steps",
  "checkpoint_every_steps",
  "keep_checkpoints",
  "keep_best_checkpoints",
  "init_from",  # a path; what it holds is fingerprinted instead (run_jobs)
  "distributed_timeout_s",  # how long processes wait for a lost one
)


# Fields of a regional config that a coarse-only run does not read: changing
# them must not retrain the shared coarse network.
_NOT_COARSE = (
  "regional",
  "patches",
  "train_crop_centers",
  "train_crop_jitter",
  "train_crop_mix_gt_fraction",
)


def config_fingerprint(config: ml_collections.ConfigDict, extra: str = "") -> str:
  """12 hex digits naming a run's config (the fields that shape its result).

  A sweep reuses a recorded result, or resumes a run's workdir, only for the
  same fingerprint: change a loss weight and the runs it touches train again
  instead of reporting (or resuming) the old model. ``extra`` adds what the
  config does not hold (the fingerprint of the run a job starts from).
  """
  d = {k: v for k, v in config.to_dict().items() if k not in _NOT_FINGERPRINTED}
  text = json.dumps(d, sort_keys=True, default=repr) + extra
  return hashlib.sha256(text.encode()).hexdigest()[:12]


def run_name(job: str, resolution: int, steps: int, fingerprint: str) -> str:
  """A job's workdir under the sweep's --workdir."""
  return f"{job}_r{resolution}_s{steps}_{fingerprint}"


def input_resolution_of(config: ml_collections.ConfigDict) -> int:
  """The side of the image the (first) network sees."""
  if config.model_name in ("regional", "coarse"):
    return int(config.coarse.input_size)
  return int(config.input_resolution) or int(config.resolution)


def collapses(sweep: ml_collections.ConfigDict, model: str, resolution: int) -> bool:
  """holistic_full at R == downsample size is holistic_input256's network."""
  return model == "holistic_full" and resolution == int(sweep.downsample_resolution)


def device_description() -> str:
  import jax  # noqa: PLC0415

  d = jax.local_devices()
  kind = d[0].device_kind
  if d[0].platform == "cpu":
    kind = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores"
  return f"{d[0].platform} ({kind}) x{len(d)}"


def memory_budget_bytes(budget_gb: float = 0.0) -> int:
  """``budget_gb`` if > 0, else the device's bytes_limit, else 16 GB."""
  if budget_gb and budget_gb > 0:
    return int(budget_gb * 2**30)
  import jax  # noqa: PLC0415

  try:
    stats = jax.local_devices()[0].memory_stats() or {}
  except Exception:  # noqa: BLE001  (backends without memory stats)
    stats = {}
  return int(stats.get("bytes_limit", 0)) or DEFAULT_BUDGET_BYTES


def is_oom(error: BaseException) -> bool:
  text = f"{type(error).__name__}: {error}"
  return any(m in text for m in OOM_MARKERS)


def train_memory(config: ml_collections.ConfigDict) -> dict[str, int]:
  """Compiled train-step bytes per device (batch = the per-device batch)."""
  import jax  # noqa: PLC0415

  from hrface_jax import profile  # noqa: PLC0415

  batch = max(1, config.batch_size // jax.process_count() // jax.local_device_count())
  (rec,) = profile.profile_resolution(config, config.resolution, batch, ("train",))
  return {
    "train_temp_bytes": rec["temp_bytes"],
    "train_argument_bytes": rec["argument_bytes"],
    "train_flops": rec["flops"],
  }


def train_throughput(workdir: str) -> float | None:
  """Median logged images/s, the first interval (the compile) left out.

  One compiled step serves every stage; the median shrugs off the compile
  interval of a resumed run.
  """
  path = os.path.join(workdir, "metrics.jsonl")
  if not os.path.exists(path):
    return None
  values = []
  with open(path) as f:
    for line in f:
      r = json.loads(line)
      if r.get("images_per_second") is not None:
        values.append(r["images_per_second"])
  values = sorted(values[1:] or values)
  return float(values[len(values) // 2]) if values else None


def infer_ms_per_image(
  config, params, iters: int, p_predict: Callable | None = None
) -> float:
  """Mean ms per image of the pmapped inference step (warm-up excluded);
  ``p_predict``: the one evaluation compiled for these shapes, if any."""
  import jax  # noqa: PLC0415
  import numpy as np  # noqa: PLC0415
  from flax import jax_utils  # noqa: PLC0415

  from hrface_jax import evaluation, models, trainer  # noqa: PLC0415

  devices = jax.local_devices()
  n = len(devices)
  per = max(1, config.batch_size // jax.process_count() // n)
  if p_predict is None:
    p_predict = evaluation.make_p_predict(models.build_model(config))
  p_params = jax_utils.replicate(params, devices)
  rng = np.random.default_rng(0)
  r = config.resolution
  images = rng.integers(0, 256, (n * per, r, r, 3), dtype=np.uint8)
  images = trainer.shard({"image": images}, devices)["image"]
  jax.block_until_ready(p_predict(p_params, images))  # compile + warm-up
  t0 = time.perf_counter()
  for _ in range(max(1, iters)):
    jax.block_until_ready(p_predict(p_params, images))
  dt = (time.perf_counter() - t0) / max(1, iters)
  return 1000.0 * dt / (n * per)


def eval_config_at(
  sweep: ml_collections.ConfigDict, model: str, resolution: int
) -> ml_collections.ConfigDict:
  """The config a model is evaluated with at ``resolution``: its job's
  config, on the sweep's R^2 faces (for the shared jobs too)."""
  config = model_config(sweep, model, resolution)
  config.resolution = int(resolution)
  config.synth_train_size = int(sweep.common.synth_train_size)
  config.synth_resolution = 0
  if model == "regional":
    config.patches.enabled = False
  return config


def model_params(params: dict, config: ml_collections.ConfigDict) -> dict:
  """The subtrees of a job's ``params`` that ``config``'s model has (a
  regional run's params without its patch stages are the two-stage model)."""
  if config.model_name == "regional" and not config.patches.enabled:
    return {k: v for k, v in params.items() if not k.startswith("patches_")}
  return params


def evaluate_params(
  config: ml_collections.ConfigDict, params: dict, p_predict: Callable | None = None
) -> dict:
  """Final metrics of ``params`` on ``config``'s eval split."""
  import jax  # noqa: PLC0415
  from flax import jax_utils  # noqa: PLC0415

  from hrface_jax import evaluation, models  # noqa: PLC0415

  if p_predict is None:
    p_predict = evaluation.make_p_predict(models.build_model(config))
  preds = evaluation.predict_split(
    config,
    p_predict,
    jax_utils.replicate(params, jax.local_devices()),
    config.eval_split,
  )
  return evaluation.compute_metrics(config, preds)[0]


def contour_group(config: ml_collections.ConfigDict) -> str:
  from hrface_jax import markup  # noqa: PLC0415

  return markup.get_markup(config.markup).contour_group


def render_seconds(config: ml_collections.ConfigDict) -> float:
  """Prepares (renders, for hrface_synth) ``config``'s dataset if missing;
  the seconds it took (0 when it was there)."""
  from hrface_jax.data import prepare  # noqa: PLC0415

  t0 = time.perf_counter()
  builder = prepare.builder_for_config(config)
  if builder.is_prepared():
    return 0.0
  prepare.ensure_prepared(config)
  return round(time.perf_counter() - t0, 1)


class _Jobs:
  """Trains each job of a sweep at most once (resuming a workdir that holds
  a part of it) and remembers its workdir and fingerprint."""

  def __init__(self, sweep, workdir: str, log: Callable[[str], None]):
    self.sweep, self.workdir, self.log = sweep, workdir, log
    self.done: dict[tuple[str, int], dict[str, Any]] = {}

  def resolution_of(self, job: str, resolution: int) -> int:
    shared = job in ("coarse", "holistic_input256")
    return int(self.sweep.shared_resolution) if shared else int(resolution)

  def config(self, job: str, resolution: int) -> ml_collections.ConfigDict:
    config = model_config(self.sweep, job, resolution)
    if job == "regional":
      config.init_from = self.path("coarse", resolution)
    return config

  def fingerprint(self, job: str, resolution: int) -> str:
    config = model_config(self.sweep, job, resolution)
    extra = ""
    if job == "regional":  # what it starts from is part of what it is
      extra = "coarse:" + self.fingerprint("coarse", resolution)
    if job == "coarse":  # what the coarse network alone never reads
      for field in _NOT_COARSE:
        del config[field]
    return config_fingerprint(config, extra)

  def path(self, job: str, resolution: int) -> str:
    res = self.resolution_of(job, resolution)
    config = model_config(self.sweep, job, resolution)
    name = run_name(
      job, res, int(config.total_steps), self.fingerprint(job, resolution)
    )
    return os.path.join(self.workdir, name)

  def train(self, job: str, resolution: int) -> dict[str, Any]:
    """Trains the job (once); returns {workdir, wall_seconds, render_seconds}."""
    from hrface_jax import atomic, trainer  # noqa: PLC0415

    key = (job, self.resolution_of(job, resolution))
    if key in self.done:
      return self.done[key]
    if job == "regional":
      self.train("coarse", resolution)
    config = self.config(job, resolution)
    workdir = self.path(job, resolution)
    # A finished job keeps its own timings: a later sweep that reuses it
    # reports how long it took, not how long finding it done took.
    finished = os.path.join(workdir, JOB_DONE_NAME)
    if os.path.exists(finished):
      with open(finished) as f:
        self.done[key] = {**json.load(f), "workdir": workdir}
      self.log(f"  reusing {os.path.basename(workdir)} (finished)")
      return self.done[key]
    rendered = render_seconds(config)
    self.log(f"  training {os.path.basename(workdir)} ({config.total_steps} steps)")
    t0 = time.perf_counter()
    trainer.train_and_evaluate(config, workdir)
    timings = {
      "wall_seconds": round(time.perf_counter() - t0, 1),
      "render_seconds": rendered,
    }
    atomic.write_json(finished, timings)
    self.done[key] = {**timings, "workdir": workdir}
    return self.done[key]


def _oracle_fields(workdir: str, split: str | None = None) -> dict[str, Any]:
  """The crop oracle's figures for a regional workdir (two-stage model)."""
  import crop_oracle  # noqa: PLC0415

  result = crop_oracle.crop_oracle(workdir, split, patches=False, other_fusion=False)
  keep = (
    "nme_coarse",
    "nme_predicted_crops",
    "nme_oracle_crops",
    "nme_shifted_crops",
    "attention_center_error_fraction",
    "inside_predicted_crop_fraction",
  )
  return {f"oracle_{k}": result[k] for k in keep}


def run_one(
  sweep: ml_collections.ConfigDict,
  model: str,
  resolution: int,
  jobs: _Jobs,
  budget_bytes: int,
  log: Callable[[str], None] = print,
) -> dict[str, Any]:
  """Trains (if not yet) and evaluates one (model, resolution); its record."""
  from hrface_jax import checkpointing, evaluation, models  # noqa: PLC0415

  t_record = time.perf_counter()
  job = "regional" if model == "regional_patches" else model
  config = eval_config_at(sweep, model, resolution)
  train_config = jobs.config(job, resolution)
  record: dict[str, Any] = {k: None for k in RECORD_FIELDS}
  steps = int(train_config.total_steps)
  if job == "regional":
    steps += int(sweep.coarse_steps)  # the shared coarse network's steps count
  record.update(
    config_fingerprint=jobs.fingerprint(job, resolution),
    model=model,
    resolution=int(resolution),
    input_resolution=input_resolution_of(config),
    device=device_description(),
    steps=steps,
    batch_size=int(config.batch_size),
    dataset=config.dataset,
    memory_budget_bytes=int(budget_bytes),
    status="ok",
  )
  try:
    record.update(train_memory(config))
  except Exception as e:  # noqa: BLE001
    if not is_oom(e):
      raise
    record.update(status="oom", error=f"compiling the train step: {e}"[:500])
    return record
  need = record["train_temp_bytes"] + record["train_argument_bytes"]
  record["required_bytes"] = int(need)
  if need > budget_bytes:
    record["status"] = "does_not_fit"
    log(
      f"  {model} @ {resolution}: does not fit: train step needs "
      f"{need / 2**30:.2f} GiB > budget {budget_bytes / 2**30:.2f} GiB"
    )
    return record
  # A time budget, not a memory one: on a CPU, full-resolution holistic at
  # 1024^2 fits in RAM but would take longer than the whole small sweep.
  max_gflops = float(sweep.get("max_train_gflops_per_step", 0) or 0)
  gflops = (record["train_flops"] or 0) / 1e9
  if job == "holistic_full" and max_gflops > 0 and gflops > max_gflops:
    record["status"] = "over_compute_budget"
    log(
      f"  {model} @ {resolution}: not trained: {gflops:.0f} GFLOPs per train "
      f"step > the sweep's max_train_gflops_per_step={max_gflops:g}"
    )
    return record

  record["render_seconds"] = render_seconds(config)
  try:
    t_train = time.perf_counter()
    trained = jobs.train(job, resolution)
    t0 = time.perf_counter()
    t_train = t0 - t_train
    _, params, _ = checkpointing.load_for_inference(trained["workdir"])
    params = model_params(params, config)
    # One compiled inference step for the evaluation and the timing (their
    # batches have the same shape).
    p_predict = evaluation.make_p_predict(models.build_model(config))
    metrics = evaluate_params(config, params, p_predict)
    record["eval_seconds"] = round(time.perf_counter() - t0, 1)
    record["infer_ms_per_image"] = infer_ms_per_image(
      config, params, int(sweep.infer_timing_iters), p_predict
    )
  except Exception as e:  # noqa: BLE001
    if not is_oom(e):
      raise
    record.update(status="oom", error=str(e)[:500])
    log(f"  {model} @ {resolution}: out of memory: {str(e)[:200]}")
    return record
  if model == "regional":
    record.update(_oracle_fields(trained["workdir"]))
  # Everything but training and rendering: compiling for memory, evaluating,
  # timing inference, the crop oracle.
  record["analysis_seconds"] = round(
    time.perf_counter() - t_record - t_train - record["render_seconds"], 1
  )
  record.update(
    job=os.path.basename(trained["workdir"]),
    nme_inter_ocular=metrics.get("nme_inter_ocular"),
    nme_pixels=metrics.get("error_pixels"),
    # Off the contour and along it: see Markup.contour_group.
    nme_inner=metrics.get("nme_inter_ocular/inner"),
    nme_contour=metrics.get(f"nme_inter_ocular/{contour_group(config)}"),
    **{"failure_rate_0.10": metrics.get("failure_rate_0.10")},
    failure_rate_008=metrics.get("failure_rate_0.08"),
    auc_010=metrics.get("auc_0.10"),
    coarse_nme_inter_ocular=metrics.get("coarse_nme_inter_ocular"),
    num_test_images=metrics.get("num_images"),
    train_images_per_second=train_throughput(trained["workdir"]),
    wall_seconds=trained["wall_seconds"],
    train_render_seconds=trained["render_seconds"],
    trained_at=jobs.resolution_of(job, resolution),
  )
  if job == "regional":
    coarse = jobs.train("coarse", resolution)  # done: its workdir and timings
    record.update(
      coarse_workdir=os.path.basename(coarse["workdir"]),
      coarse_wall_seconds=coarse["wall_seconds"],
      coarse_render_seconds=coarse["render_seconds"],
    )
  return record


# ----------------------------------------------------------------------------
# Results: JSON, markdown, plots.
# ----------------------------------------------------------------------------


def run_key(r: dict) -> tuple:
  return (r["model"], int(r["resolution"]), r.get("dataset"), int(r["steps"]))


def _todo_key(jobs: _Jobs, model: str, res: int) -> tuple:
  """(run_key, fingerprint) of one (model, resolution) of the sweep."""
  job = "regional" if model == "regional_patches" else model
  config = model_config(jobs.sweep, job, res)
  steps = int(config.total_steps)
  if job == "regional":
    steps += int(jobs.sweep.coarse_steps)
  key = (model, int(res), config.dataset, steps)
  return key, jobs.fingerprint(job, res)


def _recorded(records: list[dict], key: tuple, fingerprint: str) -> dict | None:
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


def _fmt(v, spec: str, scale: float = 1.0) -> str:
  if v is None or (isinstance(v, float) and not math.isfinite(v)):
    return "–"
  return format(v * scale, spec)


def markdown_table(records: Sequence[dict]) -> str:
  head = (
    "| model | resolution | input | NME (io) | inner | contour | error px | "
    "FR@0.10 | train mem GiB | train GFLOP/step | train img/s | infer ms/img | "
    "status |\n"
    "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: "
    "| ---: | --- |"
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
      f"{_fmt(r.get('nme_inter_ocular'), '.4f')} | "
      f"{_fmt(r.get('nme_inner'), '.4f')} | {_fmt(r.get('nme_contour'), '.4f')} | "
      f"{_fmt(r.get('nme_pixels'), '.2f')} | "
      f"{_fmt(r.get('failure_rate_0.10'), '.1%')} | {_fmt(mem, '.2f', 2**-30)} | "
      f"{_fmt(r.get('train_flops'), '.1f', 1e-9)} | "
      f"{_fmt(r.get('train_images_per_second'), '.1f')} | "
      f"{_fmt(r.get('infer_ms_per_image'), '.1f')} | {status} |"
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
      f"| {r['resolution']} | {_fmt(error, '.2%')} | {_fmt(inside, '.2%')} | "
      + " | ".join(
        _fmt(r[f"oracle_nme_{k}"], ".4f")
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


def write_text(path: str, text: str) -> None:
  from hrface_jax import atomic  # noqa: PLC0415

  with atomic.atomic_open(path) as f:
    f.write(text)


def write_outputs(out: str, records: list[dict], header: str = "") -> None:
  """JSON, markdown tables and the PNG plots (atomic writes)."""
  from hrface_jax import evaluation, plots  # noqa: PLC0415

  os.makedirs(out, exist_ok=True)
  evaluation.write_json(os.path.join(out, f"{RESULTS_NAME}.json"), records)
  oracle = oracle_table(records)
  if oracle:
    oracle = "\n## Crop oracle (NME, two-stage model)\n\n" + oracle
  times = time_table(records)
  if times:
    times = "\n## Where the time went\n\n" + times
  write_text(
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
  header = (
    f"# Resolution sweep\n\nDataset {dataset}: a coarse network trained once "
    f"({sweep.coarse_steps} steps on {sweep.shared_train_size} faces at "
    f"{sweep.shared_resolution}^2), then {sweep.regional_steps} steps of the "
    f"regional networks on {sweep.common.synth_train_size} faces at each "
    f"resolution; holistic baselines get the same total. Batch "
    f"{sweep.common.get('batch_size')}, {sweep.common.synth_test_size} test faces, "
    f"device {device_description()}, memory budget {budget / 2**30:.1f} GiB.\n"
  )
  jobs = _Jobs(sweep, workdir, log)
  todo = [(res, m) for res in sweep.resolutions for m in sweep.models]
  t_start = time.perf_counter()
  for i, (res, model) in enumerate(todo):
    key, fingerprint = _todo_key(jobs, model, res)
    if _recorded(records, key, fingerprint) is not None:
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
      twin_key, twin_print = _todo_key(jobs, "holistic_input256", res)
      twin = _recorded(records, twin_key, twin_print)
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
      f"{_fmt(record.get('nme_inter_ocular'), '.4f')}, "
      f"{_fmt(record.get('nme_pixels'), '.2f')} px"
    )
  write_outputs(out, records, header)
  log(f"sweep done in {(time.perf_counter() - t_start) / 60:.1f} min; {json_path}")
  return records


def quiet_experiment_logging() -> None:
  """Progress lines only: import the libraries that set absl's verbosity to
  INFO (orbax, TFDS), then turn it down unless --verbosity was given."""
  from hrface_jax import checkpointing, trainer  # noqa: F401, PLC0415
  from hrface_jax.cli import quiet_logging  # noqa: PLC0415

  quiet_logging()


def main(argv) -> None:
  from absl import app, flags  # noqa: PLC0415

  del argv
  quiet_experiment_logging()
  f = flags.FLAGS
  if f.config is not None and f.budget is not None:
    raise app.UsageError("give --budget or --config, not both")
  sweep = f.config or load_config_file(f"configs/sweep_{f.budget or 'small'}.py")
  if f["resolutions"].present:
    sweep.resolutions = tuple(int(r) for r in f.resolutions)
  if f["dataset"].present:
    sweep.common.dataset = f.dataset
  if f["data_dir"].present:
    sweep.common.data_dir = f.data_dir
  name = sweep.common.dataset.replace("/", "_")
  workdir = f.workdir or os.path.join(REPO, "runs", f"resolution_sweep_{name}")
  run_sweep(sweep, f.out, workdir, memory_budget_gb=f.memory_budget_gb)


def define_shared_flags(*, json: bool = False) -> None:
  """The flags the sweep and the benchmark share, on absl's global FLAGS."""
  from absl import flags  # noqa: PLC0415
  from ml_collections import config_flags  # noqa: PLC0415

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


if __name__ == "__main__":
  from absl import app, flags

  define_shared_flags()
  flags.DEFINE_string("out", os.path.join(REPO, "experiments", "results"), "Results.")
  flags.DEFINE_string(
    "workdir", None, "Training runs (default runs/resolution_sweep_*)."
  )
  flags.DEFINE_float(
    "memory_budget_gb",
    None,
    "Device memory budget for 'fits'; default the sweep config's "
    "(0: device memory_stats(), else 16 GB).",
  )
  app.run(main)
