r"""Regional vs holistic landmark models from 256^2 to 4096^2.

    python experiments/resolution_sweep.py --budget=small   # 2 CPU cores, < 60 min
    python experiments/resolution_sweep.py --budget=full    # a GPU
    python experiments/resolution_sweep.py --config=configs/sweep_small.py \
        --config.resolutions=256,512 --config.regional_steps=50 \
        [--dataset=ibug_pts --data_dir=...] [--out=DIR] [--workdir=DIR] \
        [--memory_budget_gb=16]

What it trains and measures, and how it reuses finished work, is
:mod:`hrface_jax.sweep`; this script is its command line. Results go to
``--out`` (default experiments/results/): resolution_sweep.json, .md and the
PNG plots, rewritten after every record.
"""

import os

from absl import app, flags

from hrface_jax import host_memory
from hrface_jax import sweep as sweep_lib


def main(argv) -> None:
  del argv
  sweep_lib.quiet_logging()
  f = flags.FLAGS
  if f.config is not None and f.budget is not None:
    raise app.UsageError("give --budget or --config, not both")
  sweep = f.config or sweep_lib.load_config_file(
    f"configs/sweep_{f.budget or 'small'}.py"
  )
  if f["resolutions"].present:
    sweep.resolutions = tuple(int(r) for r in f.resolutions)
  if f["dataset"].present:
    sweep.common.dataset = f.dataset
  if f["data_dir"].present:
    sweep.common.data_dir = f.data_dir
  name = sweep.common.dataset.replace("/", "_")
  workdir = f.workdir or os.path.join(
    sweep_lib.REPO, "runs", f"resolution_sweep_{name}"
  )
  sweep_lib.run_sweep(sweep, f.out, workdir, memory_budget_gb=f.memory_budget_gb)


if __name__ == "__main__":
  host_memory.reexec_with_huge_pages()  # first: see hrface_jax/host_memory.py
  sweep_lib.define_shared_flags()
  flags.DEFINE_string(
    "out", os.path.join(sweep_lib.REPO, "experiments", "results"), "Results."
  )
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
