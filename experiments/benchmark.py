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

from hrface_jax import host_memory
from hrface_jax import sweep as rs
from hrface_jax.sweep.benchmark import run_benchmark


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
  host_memory.reexec_with_huge_pages()  # first: see hrface_jax/host_memory.py
  from absl import app, flags

  rs.define_shared_flags(json=True)
  flags.DEFINE_list("models", None, f"Subset of {rs.MODELS}.")
  flags.DEFINE_integer("iters", 5, "Timed calls per step (after one warm-up).")
  flags.DEFINE_integer("pipeline_batches", 5, "Timed pipeline batches.")
  flags.DEFINE_float("memory_budget_gb", None, "As in resolution_sweep.py.")
  app.run(main)
