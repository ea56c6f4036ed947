"""The sweep's training jobs and their records: configs, fingerprints, the
measurements each record carries (memory, throughput, evaluation, the crop
oracle). See :mod:`hrface_jax.sweep`.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import platform
import signal
import threading
import time
from collections.abc import Callable
from typing import Any

import jax
import ml_collections
import numpy as np
from flax import jax_utils

from hrface_jax import (
  atomic,
  checkpointing,
  cli,
  config_lib,
  evaluation,
  models,
  profile,
)
from hrface_jax import markup as markup_lib
from hrface_jax.data import prepare
from hrface_jax.evaluation import crop_oracle
from hrface_jax.training import trainer

# The repository checkout: configs/ paths are relative to it.
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

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
  """``get_config([arg])`` of a configs/NAME.py file (relative to the working
  directory, else to the repository)."""

  if not os.path.isabs(path) and not os.path.exists(path):
    path = os.path.join(REPO, path)
  return config_lib.load_config_file(path, arg)


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


def shares_regional(sweep: ml_collections.ConfigDict, resolution: int) -> bool:
  """Whether the regional model at ``resolution`` takes its regional networks
  from the ``regional_shared_from`` job (see the module doc)."""
  shared = int(sweep.get("regional_shared_from", 0) or 0)
  return 0 < shared < int(resolution)


def train_size_at(sweep: ml_collections.ConfigDict, resolution: int) -> int:
  """Faces the regional job at ``resolution`` trains on (and the size of the
  dataset its records are evaluated from: the test faces are the same)."""
  size = int(sweep.common.synth_train_size)
  if shares_regional(sweep, resolution):
    return int(sweep.get("patch_train_size", 0) or 0) or size
  return size


def steps_of(sweep: ml_collections.ConfigDict, model: str, resolution: int) -> int:
  """Training steps a model's networks had, shared ones included: the
  holistic baselines get the regional model's total (coarse + regional)."""
  coarse, regional = int(sweep.coarse_steps), int(sweep.regional_steps)
  if model == "regional_patches" and shares_regional(sweep, resolution):
    return coarse + 2 * regional  # + its own patch stages' steps
  return coarse + regional


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
    if shares_regional(sweep, resolution):
      # The regional networks come trained (and frozen) from the shared
      # resolution's job; this one trains only the patch stages.
      config.frozen_modules = config.init_modules = ("coarse", "regional")
      config.stages = (("joint", 1.0),)
      config.synth_train_size = train_size_at(sweep, resolution)
      if config.shape.enabled:
        # Fitted on that job's 1000 faces' points: on this job's 100 the
        # prior learns the faces (1024^2 points: test NME 0.0301 -> 0.0298
        # fitted on 100 faces, -> 0.0226 on 1000; 2026-12-01).
        config.init_modules += ("shape",)
        config.shape.fit_steps = 0
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
  "shape",
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

  d = jax.local_devices()
  kind = d[0].device_kind
  if d[0].platform == "cpu":
    kind = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores"
  return f"{d[0].platform} ({kind}) x{len(d)}"


def memory_budget_bytes(budget_gb: float = 0.0) -> int:
  """``budget_gb`` if > 0, else the device's bytes_limit, else 16 GB."""
  if budget_gb and budget_gb > 0:
    return int(budget_gb * 2**30)

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

  batch = max(1, config.batch_size // jax.process_count() // jax.local_device_count())
  (rec,) = profile.profile_resolution(config, config.resolution, batch, ("train",))
  return {
    "train_temp_bytes": rec["temp_bytes"],
    "train_argument_bytes": rec["argument_bytes"],
    "train_flops": rec["flops"],
    "train_bytes_accessed": rec["bytes_accessed"],
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
  config, on the sweep's R^2 faces (for the shared jobs too). A regional
  model's is that of training all of it at ``resolution`` (the memory and
  FLOPs recorded are the whole model's train step's), shared networks or not.
  """
  whole = ml_collections.ConfigDict(sweep.to_dict())
  whole.regional_shared_from = 0
  config = model_config(whole, model, resolution)
  config.resolution = int(resolution)
  config.synth_train_size = train_size_at(sweep, resolution)
  config.synth_resolution = 0
  if model == "regional":
    # The paper's two-stage model: no patch stages, and no shape prior (the
    # job's was fitted to the points after its patch stages).
    config.patches.enabled = False
    config.shape.enabled = False
  return config


def evaluate_params(
  config: ml_collections.ConfigDict, params: dict, p_predict: Callable | None = None
) -> dict:
  """Final metrics of ``params`` on ``config``'s eval split."""

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

  return markup_lib.get_markup(config.markup).contour_group


def render_seconds(config: ml_collections.ConfigDict) -> float:
  """Prepares (renders, for hrface_synth) ``config``'s dataset if missing;
  the seconds it took (0 when it was there)."""

  t0 = time.perf_counter()
  builder = prepare.builder_for_config(config)
  if builder.is_prepared():
    return 0.0
  prepare.ensure_prepared(config)
  return round(time.perf_counter() - t0, 1)


def _exit_with_parent(parent: int, poll_seconds: float = 2.0) -> None:
  """Ends this process once ``parent`` is gone: a sweep killed with SIGTERM
  or SIGKILL leaves no training job running on as an orphan."""
  while os.getppid() == parent:
    time.sleep(poll_seconds)
  os._exit(1)


def _in_child(fn: Callable[..., Any], args: tuple, errors, parent: int) -> None:
  """The body of :func:`run_in_subprocess`'s process."""
  threading.Thread(target=_exit_with_parent, args=(parent,), daemon=True).start()
  cli.quiet_logging()
  try:
    fn(*args)
  except BaseException as e:  # noqa: BLE001  (reported to the parent)
    errors.put(f"{type(e).__name__}: {e}")
    raise SystemExit(1) from None


def run_in_subprocess(fn: Callable[..., Any], *args: Any, what: str) -> None:
  """``fn(*args)`` in a fresh (spawned) process, waited for; its errors come
  back as a RuntimeError with their text, prefixed by ``what``. The process
  ends when this one does, however this one ends."""
  ctx = multiprocessing.get_context("spawn")  # not fork: the parent runs XLA
  errors = ctx.SimpleQueue()
  proc = ctx.Process(target=_in_child, args=(fn, args, errors, os.getpid()))
  proc.start()
  proc.join()
  if proc.exitcode == 0:
    return
  if not errors.empty():
    why = errors.get()
  elif proc.exitcode == -signal.SIGKILL:
    why = "killed by SIGKILL (out of memory? the kernel's OOM killer sends it)"
  else:
    why = f"it exited with code {proc.exitcode}"
  raise RuntimeError(f"{what} (in its own process): {why}")


def _train(config: ml_collections.ConfigDict, workdir: str) -> None:
  # Looked up in the job's process (a reference to the function itself would
  # be pickled as whatever this process's trainer attribute is).
  trainer.train_and_evaluate(config, workdir)


def train_in_subprocess(config: ml_collections.ConfigDict, workdir: str) -> None:
  """``trainer.train_and_evaluate`` in a process of its own (see
  :func:`run_in_subprocess`).

  A sweep runs many jobs one after another; run in the sweep's own process,
  the 4096^2 job peaked at 24 GB there (OOM-killed on a 23 GB machine,
  2026-12-01) against 13 GB as a process of its own: what earlier jobs leave
  behind (allocator arenas, caches) stays with the process. A job's process
  ends with it.
  """
  run_in_subprocess(_train, config, workdir, what=f"training {workdir}")


class Jobs:
  """Trains each job of a sweep at most once (resuming a workdir that holds
  a part of it) and remembers its workdir and fingerprint."""

  def __init__(self, sweep, workdir: str, log: Callable[[str], None]):
    self.sweep, self.workdir, self.log = sweep, workdir, log
    self.done: dict[tuple[str, int], dict[str, Any]] = {}

  def resolution_of(self, job: str, resolution: int) -> int:
    shared = job in ("coarse", "holistic_input256")
    return int(self.sweep.shared_resolution) if shared else int(resolution)

  def starts_from(self, job: str, resolution: int) -> tuple[str, int] | None:
    """The (job, resolution) whose networks this job starts from, if any."""
    if job != "regional":
      return None
    if shares_regional(self.sweep, resolution):
      return "regional", int(self.sweep.regional_shared_from)
    return "coarse", int(resolution)

  def config(self, job: str, resolution: int) -> ml_collections.ConfigDict:
    config = model_config(self.sweep, job, resolution)
    source = self.starts_from(job, resolution)
    if source:
      config.init_from = self.path(*source)
    return config

  def fingerprint(self, job: str, resolution: int) -> str:
    config = model_config(self.sweep, job, resolution)
    extra = ""
    source = self.starts_from(job, resolution)
    if source:  # what it starts from is part of what it is
      extra = f"{source[0]}:" + self.fingerprint(*source)
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

    key = (job, self.resolution_of(job, resolution))
    if key in self.done:
      return self.done[key]
    if (
      job == "regional"
      and shares_regional(self.sweep, resolution)
      and "regional_patches" not in tuple(self.sweep.models)
    ):  # no patch stages: nothing of its own to train
      return self.train("regional", int(self.sweep.regional_shared_from))
    source = self.starts_from(job, resolution)
    if source:
      self.train(*source)
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
    if self.sweep.get("train_in_subprocess", True):
      train_in_subprocess(config, workdir)
    else:
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
  jobs: Jobs,
  budget_bytes: int,
  log: Callable[[str], None] = print,
) -> dict[str, Any]:
  """Trains (if not yet) and evaluates one (model, resolution); its record."""

  t_record = time.perf_counter()
  job = "regional" if model == "regional_patches" else model
  config = eval_config_at(sweep, model, resolution)
  record: dict[str, Any] = {k: None for k in RECORD_FIELDS}
  steps = steps_of(sweep, model, resolution)
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
    params = models.params_for_model(params, config)
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
    # Along and across the markup's curves (metrics.along_across_errors):
    # pixels pay across them; along them a point's place is the face's shape.
    nme_along=metrics.get("along_inter_ocular"),
    nme_across=metrics.get("across_inter_ocular"),
    **{"failure_rate_0.10": metrics.get("failure_rate_0.10")},
    failure_rate_008=metrics.get("failure_rate_0.08"),
    auc_010=metrics.get("auc_0.10"),
    coarse_nme_inter_ocular=metrics.get("coarse_nme_inter_ocular"),
    # The same model's points before its shape prior (None: it has none).
    unrefined_nme_inter_ocular=metrics.get("unrefined_nme_inter_ocular"),
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
    if shares_regional(sweep, resolution):
      shared = jobs.train("regional", int(sweep.regional_shared_from))
      record.update(
        regional_workdir=os.path.basename(shared["workdir"]),
        regional_wall_seconds=shared["wall_seconds"],
        regional_render_seconds=shared["render_seconds"],
      )
  return record
