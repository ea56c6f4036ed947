"""Resolution sweep, small budget: 2 CPU cores, under 30 minutes.

    python experiments/resolution_sweep.py --budget=small
    python experiments/resolution_sweep.py --config=configs/sweep_small.py \
        --config.common.total_steps=100

``common`` is merged into every run's config (configs/regional.py or
configs/holistic.py); ``regional`` / ``holistic`` only into that model's.
Every model gets the same steps, batch, learning rate and synthetic faces.
"""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
  sweep = ml_collections.ConfigDict()
  sweep.resolutions = (256, 512, 1024)
  # regional | holistic_input256 (downsampled to downsample_resolution) |
  # holistic_full (input_resolution=0, where it fits in memory).
  sweep.models = ("regional", "holistic_input256", "holistic_full")
  sweep.downsample_resolution = 256
  # "Fits": the compiled train step's temp + argument bytes <= this budget.
  # 0: the device's memory_stats() bytes_limit, else 16 GB (CPU).
  sweep.memory_budget_gb = 0.0
  sweep.infer_timing_iters = 3  # timed inference batches (after one warm-up)
  sweep.variant = ""  # configs/regional.py / holistic.py variant ("" | "gpu")

  sweep.common = ml_collections.ConfigDict(
    dict(
      dataset="hrface_synth",
      synth_train_size=200,  # the same seeds (faces) at every resolution
      synth_test_size=40,
      batch_size=8,
      total_steps=150,
      learning_rate=2e-3,
      optimizer=dict(warmup_steps=20),
      log_every_steps=10,
      eval_every_steps=150,  # one evaluation, at the end
      checkpoint_every_steps=150,
      keep_checkpoints=1,
      seed=0,
    )
  )
  sweep.regional = ml_collections.ConfigDict()
  sweep.holistic = ml_collections.ConfigDict()
  return sweep
