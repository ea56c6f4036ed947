"""Throughput and latency of the sweep's train / inference steps and of the
input pipeline, against the machine's attainable rate; the command line is
``experiments/benchmark.py`` (its docstring says what is measured).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import jax_utils

from hrface_jax import evaluation, host_memory, models
from hrface_jax import markup as markup_lib
from hrface_jax.data import pipeline
from hrface_jax.sweep import jobs
from hrface_jax.training import optim, stages, trainer
from hrface_jax.training.state import create_train_state

FIELDS = (
  "model",
  "resolution",
  "input_resolution",
  "batch_size",
  "device",
  "status",
  "train_step_ms",
  "train_images_per_second",
  "train_gflops_per_step",
  "train_achieved_gflops",
  "matmul_gflops",
  "fraction_of_matmul",
  "train_gbytes_per_step",
  "stream_gbps",
  "roofline_gflops",
  "fraction_of_roofline",
  "infer_step_ms",
  "infer_ms_per_image",
  "infer_images_per_second",
  "train_page_faults_per_step",
  "huge_pages",
  "pipeline_images_per_second",
  "bottleneck",
  "required_bytes",
)


def _minor_page_faults() -> int:
  """This process's minor page faults so far (0 where not counted)."""
  try:
    import resource  # noqa: PLC0415  (Unix only)
  except ImportError:
    return 0
  return int(resource.getrusage(resource.RUSAGE_SELF).ru_minflt)


def time_calls(fn: Callable[[], Any], iters: int) -> float:
  """Mean seconds per ``fn()`` call after one warm-up call (results blocked on)."""
  return time_and_faults(fn, iters)[0]


def time_and_faults(fn: Callable[[], Any], iters: int) -> tuple[float, float]:
  """(mean seconds, mean minor page faults) per ``fn()`` call after one
  warm-up call (results blocked on). The faults show whether the host
  allocator hands each call fresh pages (see hrface_jax/host_memory.py)."""
  jax.block_until_ready(fn())
  n = max(1, iters)
  faults = _minor_page_faults()
  t0 = time.perf_counter()
  for _ in range(n):
    jax.block_until_ready(fn())
  seconds = (time.perf_counter() - t0) / n
  return seconds, (_minor_page_faults() - faults) / n


def matmul_gflops(n: int = 2048, iters: int = 10) -> float:
  """The machine's attainable rate: a float32 n x n matmul in XLA, GFLOP/s."""
  a = jnp.ones((n, n), jnp.float32)
  f = jax.jit(lambda x: x @ x)
  seconds = time_calls(lambda: f(a), iters)
  return 2.0 * n**3 / seconds / 1e9


def stream_gbps(mib: int = 256, iters: int = 10) -> float:
  """The machine's memory bandwidth: a copy between two preallocated
  ``mib`` MiB host arrays, bytes read + written per second / 1e9."""
  src = np.ones(mib << 18, np.float32)
  dst = np.empty_like(src)
  # time_calls' warm-up call faults both arrays in before the timed copies.
  seconds = time_calls(lambda: np.copyto(dst, src), iters)
  return 2.0 * src.nbytes / seconds / 1e9


def _fake_batch(config, n: int) -> dict:
  """Random uint8 images, landmarks spread over the central face area."""
  rng = np.random.default_rng(0)
  r = config.resolution
  num = markup_lib.get_markup(config.markup).num_landmarks
  return {
    "image": rng.integers(0, 256, (n, r, r, 3), dtype=np.uint8),
    "landmarks": rng.uniform(0.25 * r, 0.75 * r, (n, num, 2)).astype(np.float32),
  }


def device_steps(config, iters: int) -> dict[str, float]:
  """Train and inference step timings of ``config``'s model at its resolution."""
  devices = jax.local_devices()
  model = models.build_model(config)
  tx = optim.make_optimizer(config)
  rng = jax.random.PRNGKey(config.seed)
  state = create_train_state(trainer.init_params(config, model, rng), tx, rng)
  params = state.params
  batch_size = config.batch_size // jax.process_count()
  batch = trainer.shard(_fake_batch(config, batch_size), devices)
  controls = stages.stage_controls(config, stages.schedule(config)[-1].name)
  p_train = trainer.make_p_train_step(config, model, tx)
  holder = {"state": trainer.replicate(state, devices)}
  del state

  def train_once():
    # The step donates its state: keep the new one for the next call.
    holder["state"], metrics = p_train(holder["state"], batch, controls)
    return metrics

  train_s, train_faults = time_and_faults(train_once, iters)
  p_predict = evaluation.make_p_predict(model)
  p_params = jax_utils.replicate(params, devices)
  infer_s = time_calls(lambda: p_predict(p_params, batch["image"]), iters)
  n = config.batch_size
  return {
    "train_step_ms": 1000 * train_s,
    "train_images_per_second": n / train_s,
    "infer_step_ms": 1000 * infer_s,
    "infer_ms_per_image": 1000 * infer_s / batch_size,
    "infer_images_per_second": batch_size / infer_s,
    "train_page_faults_per_step": train_faults,
    "huge_pages": host_memory.is_tuned(),
  }


def pipeline_images_per_second(config, batches: int) -> float:
  """Host training-iterator throughput (one warm-up batch excluded)."""
  it = pipeline.make_train_iterator(config)
  next(it)
  t0 = time.perf_counter()
  n = 0
  for _ in range(max(1, batches)):
    n += len(next(it)["image"])
  return n / (time.perf_counter() - t0)


def run_benchmark(
  sweep,
  *,
  iters: int = 5,
  pipeline_batches: int = 5,
  memory_budget_gb: float | None = None,
  log: Callable[[str], None] = print,
  on_record: Callable[[list[dict]], None] | None = None,
) -> list[dict]:
  """One record per (model, resolution) of ``sweep``: see
  ``experiments/benchmark.py``'s docstring."""
  gb = sweep.memory_budget_gb if memory_budget_gb is None else memory_budget_gb
  budget = jobs.memory_budget_bytes(gb)
  device = jobs.device_description()
  # The limit the steps are measured against, in the same process.
  peak = matmul_gflops()
  bandwidth = stream_gbps()
  log(f"float32 2048^2 matmul: {peak:.1f} GFLOP/s; memory copy: {bandwidth:.1f} GB/s")
  if not host_memory.is_tuned():
    log(
      "host memory: 4 KiB pages (no GLIBC_TUNABLES=glibc.malloc.hugetlb=1): "
      "steps fault their buffers in every call, see hrface_jax/host_memory.py"
    )
  records = []
  pipeline_ips: dict[int, float] = {}
  for res in sweep.resolutions:
    res = int(res)
    for model in sweep.models:
      config = jobs.eval_config_at(sweep, model, res)  # as the sweep runs it at res
      rec: dict[str, Any] = {k: None for k in FIELDS}
      rec.update(
        model=model,
        resolution=res,
        input_resolution=jobs.input_resolution_of(config),
        batch_size=int(config.batch_size),
        device=device,
        status="ok",
      )
      mem = jobs.train_memory(config)
      rec["required_bytes"] = mem["train_temp_bytes"] + mem["train_argument_bytes"]
      rec["train_gflops_per_step"] = mem["train_flops"] / 1e9  # per device
      rec["matmul_gflops"] = peak
      rec["train_gbytes_per_step"] = mem["train_bytes_accessed"] / 1e9
      rec["stream_gbps"] = bandwidth
      # The roofline: a step can go no faster than its FLOPs at the matmul
      # rate nor its memory traffic at the copy rate.
      intensity = mem["train_flops"] / max(mem["train_bytes_accessed"], 1.0)
      rec["roofline_gflops"] = min(peak, intensity * bandwidth)
      if rec["required_bytes"] > budget:
        rec["status"] = "does_not_fit"
      else:
        try:
          rec.update(device_steps(config, iters))
        except Exception as e:  # noqa: BLE001
          if not jobs.is_oom(e):
            raise
          rec.update(status="oom", error=str(e)[:300])
      if res not in pipeline_ips:
        pipeline_ips[res] = pipeline_images_per_second(config, pipeline_batches)
      rec["pipeline_images_per_second"] = pipeline_ips[res]
      if rec["train_images_per_second"]:
        slow = rec["pipeline_images_per_second"] < rec["train_images_per_second"]
        rec["bottleneck"] = "pipeline" if slow else "device"
        # XLA's FLOPs of the compiled step / its measured time (every device
        # runs the same step at once).
        achieved = rec["train_gflops_per_step"] / (rec["train_step_ms"] / 1000)
        rec["train_achieved_gflops"] = achieved
        rec["fraction_of_matmul"] = achieved / peak
        rec["fraction_of_roofline"] = achieved / rec["roofline_gflops"]
      log(
        f"{model:>17} @ {res:>4}: {rec['status']}"
        + (
          f", train {rec['train_step_ms']:.1f} ms/step "
          f"({rec['train_images_per_second']:.1f} img/s), infer "
          f"{rec['infer_ms_per_image']:.2f} ms/img, pipeline "
          f"{rec['pipeline_images_per_second']:.1f} img/s -> {rec['bottleneck']}; "
          f"{rec['train_achieved_gflops']:.1f} GFLOP/s = "
          f"{rec['fraction_of_matmul']:.1%} of the matmul, "
          f"{rec['fraction_of_roofline']:.0%} of the roofline "
          f"({rec['roofline_gflops']:.1f}), "
          f"{rec['train_page_faults_per_step']:.0f} page faults/step"
          if rec["status"] == "ok"
          else f", needs {rec['required_bytes'] / 2**30:.2f} GiB"
        )
      )
      records.append(rec)
      if on_record is not None:  # a killed run keeps what it measured
        on_record(records)
  return records
