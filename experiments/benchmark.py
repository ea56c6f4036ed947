r"""Throughput and latency of train / inference steps, and of the input pipeline.

    python experiments/benchmark.py [--budget=small|full | --config=configs/sweep_*.py]
        [--resolutions=256,1024] [--models=regional,holistic_full] [--iters=5]
        [--pipeline_batches=5] [--json=PATH] [--memory_budget_gb=16]

For each model of the sweep config (see experiments/resolution_sweep.py) and
each resolution, on the default device: the pmapped train step (the last
training stage's) and inference step, timed over ``--iters`` calls after a
warm-up call (compile excluded), each call ended by ``block_until_ready``.
Then the host input pipeline's images/s at each resolution (the training
iterator: PNG decode + warp + augmentation, ``--pipeline_batches`` batches
after one warm-up batch), and which side is the bottleneck: "pipeline" when it
delivers fewer images/s than the train step consumes, else "device". Each
train step's achieved GFLOP/s (XLA's cost analysis of the compiled step /
its measured time) is reported against the machine's attainable rate,
measured in the same process (a float32 2048^2 matmul): ``fraction_of_matmul``.
With ``--json`` the records are rewritten after every one (a killed run
keeps what it measured).

Runs whose compiled train step does not fit the memory budget (or that raise
RESOURCE_EXHAUSTED) are reported with ``status`` and the bytes they need.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from hrface_jax import sweep as rs

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
  "infer_step_ms",
  "infer_ms_per_image",
  "infer_images_per_second",
  "pipeline_images_per_second",
  "bottleneck",
  "required_bytes",
)


def time_calls(fn: Callable[[], Any], iters: int) -> float:
  """Mean seconds per ``fn()`` call after one warm-up call (results blocked on)."""
  import jax  # noqa: PLC0415

  jax.block_until_ready(fn())
  t0 = time.perf_counter()
  for _ in range(max(1, iters)):
    jax.block_until_ready(fn())
  return (time.perf_counter() - t0) / max(1, iters)


def matmul_gflops(n: int = 2048, iters: int = 10) -> float:
  """The machine's attainable rate: a float32 n x n matmul in XLA, GFLOP/s."""
  import jax  # noqa: PLC0415
  import jax.numpy as jnp  # noqa: PLC0415

  a = jnp.ones((n, n), jnp.float32)
  f = jax.jit(lambda x: x @ x)
  seconds = time_calls(lambda: f(a), iters)
  return 2.0 * n**3 / seconds / 1e9


def _fake_batch(config, n: int) -> dict:
  """Random uint8 images, landmarks spread over the central face area."""
  import numpy as np  # noqa: PLC0415

  from hrface_jax import markup as markup_lib  # noqa: PLC0415

  rng = np.random.default_rng(0)
  r = config.resolution
  num = markup_lib.get_markup(config.markup).num_landmarks
  return {
    "image": rng.integers(0, 256, (n, r, r, 3), dtype=np.uint8),
    "landmarks": rng.uniform(0.25 * r, 0.75 * r, (n, num, 2)).astype(np.float32),
  }


def device_steps(config, iters: int) -> dict[str, float]:
  """Train and inference step timings of ``config``'s model at its resolution."""
  import jax  # noqa: PLC0415
  from flax import jax_utils  # noqa: PLC0415

  from hrface_jax import evaluation, models  # noqa: PLC0415
  from hrface_jax.training import (
    optim,  # noqa: PLC0415
    stages,  # noqa: PLC0415
    trainer,  # noqa: PLC0415
  )
  from hrface_jax.training.state import create_train_state  # noqa: PLC0415

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

  train_s = time_calls(train_once, iters)
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
  }


def pipeline_images_per_second(config, batches: int) -> float:
  """Host training-iterator throughput (one warm-up batch excluded)."""
  from hrface_jax.data import pipeline  # noqa: PLC0415

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
  """One record per (model, resolution) of ``sweep``; see the module doc."""
  gb = sweep.memory_budget_gb if memory_budget_gb is None else memory_budget_gb
  budget = rs.memory_budget_bytes(gb)
  device = rs.device_description()
  # The limit the steps are measured against, in the same process.
  peak = matmul_gflops()
  log(f"float32 2048^2 matmul: {peak:.1f} GFLOP/s")
  records = []
  pipeline_ips: dict[int, float] = {}
  for res in sweep.resolutions:
    res = int(res)
    for model in sweep.models:
      config = rs.eval_config_at(sweep, model, res)  # as the sweep runs it at res
      rec: dict[str, Any] = {k: None for k in FIELDS}
      rec.update(
        model=model,
        resolution=res,
        input_resolution=rs.input_resolution_of(config),
        batch_size=int(config.batch_size),
        device=device,
        status="ok",
      )
      mem = rs.train_memory(config)
      rec["required_bytes"] = mem["train_temp_bytes"] + mem["train_argument_bytes"]
      rec["train_gflops_per_step"] = mem["train_flops"] / 1e9  # per device
      rec["matmul_gflops"] = peak
      if rec["required_bytes"] > budget:
        rec["status"] = "does_not_fit"
      else:
        try:
          rec.update(device_steps(config, iters))
        except Exception as e:  # noqa: BLE001
          if not rs.is_oom(e):
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
      log(
        f"{model:>17} @ {res:>4}: {rec['status']}"
        + (
          f", train {rec['train_step_ms']:.1f} ms/step "
          f"({rec['train_images_per_second']:.1f} img/s), infer "
          f"{rec['infer_ms_per_image']:.2f} ms/img, pipeline "
          f"{rec['pipeline_images_per_second']:.1f} img/s -> {rec['bottleneck']}; "
          f"{rec['train_achieved_gflops']:.1f} GFLOP/s = "
          f"{rec['fraction_of_matmul']:.1%} of the matmul"
          if rec["status"] == "ok"
          else f", needs {rec['required_bytes'] / 2**30:.2f} GiB"
        )
      )
      records.append(rec)
      if on_record is not None:  # a killed run keeps what it measured
        on_record(records)
  return records


def main(argv) -> None:
  from absl import app, flags  # noqa: PLC0415

  from hrface_jax import atomic  # noqa: PLC0415

  del argv
  rs.quiet_logging()
  f = flags.FLAGS
  if f.config is not None and f.budget is not None:
    raise app.UsageError("give --budget or --config, not both")
  sweep = f.config or rs.load_config_file(f"configs/sweep_{f.budget or 'small'}.py")
  if f["resolutions"].present:
    sweep.resolutions = tuple(int(r) for r in f.resolutions)
  if f.models:
    sweep.models = tuple(f.models)
  if f["dataset"].present:
    sweep.common.dataset = f.dataset
  if f["data_dir"].present:
    sweep.common.data_dir = f.data_dir
  write = None
  if f["json"].present:
    write = lambda records: atomic.write_json(f.json, records)
  run_benchmark(
    sweep,
    iters=f.iters,
    pipeline_batches=f.pipeline_batches,
    memory_budget_gb=f.memory_budget_gb,
    on_record=write,
  )
  if write is not None:
    print(f"wrote {f.json}")


if __name__ == "__main__":
  from absl import app, flags

  rs.define_shared_flags(json=True)
  flags.DEFINE_list("models", None, f"Subset of {rs.MODELS}.")
  flags.DEFINE_integer("iters", 5, "Timed calls per step (after one warm-up).")
  flags.DEFINE_integer("pipeline_batches", 5, "Timed pipeline batches.")
  flags.DEFINE_float("memory_budget_gb", None, "As in resolution_sweep.py.")
  app.run(main)
