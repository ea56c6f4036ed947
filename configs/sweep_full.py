"""Resolution sweep, full budget: one GPU, 256^2 .. 4096^2.

    python experiments/resolution_sweep.py --budget=full

Same structure as configs/sweep_small.py; the configs' "gpu" variants and a
real training budget.
"""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
  sweep = ml_collections.ConfigDict()
  sweep.resolutions = (256, 512, 1024, 2048, 4096)
  sweep.models = ("regional", "holistic_input256", "holistic_full")
  sweep.downsample_resolution = 256
  sweep.memory_budget_gb = 0.0  # 0: the device's memory (memory_stats)
  sweep.max_train_gflops_per_step = 0.0  # no time budget: memory decides
  sweep.infer_timing_iters = 10

  sweep.common = ml_collections.ConfigDict(
    dict(
      dataset="hrface_synth",
      synth_train_size=2000,
      synth_test_size=200,
      batch_size=16,
      total_steps=20000,
      learning_rate=1e-3,
      optimizer=dict(warmup_steps=500),
      log_every_steps=100,
      eval_every_steps=20000,
      checkpoint_every_steps=1000,
      keep_checkpoints=1,
      data_workers=8,
      seed=0,
    )
  )
  # configs/regional.py:gpu and configs/holistic.py:gpu nets (their own
  # bf16/EMA schedule, with common's steps, batch and learning rate on top).
  sweep.variant = "gpu"
  sweep.regional = ml_collections.ConfigDict()
  sweep.holistic = ml_collections.ConfigDict()
  return sweep
