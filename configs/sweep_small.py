"""Resolution sweep, small budget: 2 CPU cores, about 30 minutes.

256^2 and 1024^2 only: the two ends of the small budget. A third resolution
(512^2) would cost about 10 minutes, all of it taken from the training steps:
at 150 steps every model was still near the mean shape (NME 0.38-0.45). At
300 steps regional reaches 0.22 and holistic-256 0.29 (2026-11-22). The sweep
took 30.3 min (+3.4 min rendering the faces) on a 2-core CPU that is about
half as fast as the one the 150-step sweep ran on (26 min, 3 sizes).

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
  sweep.resolutions = (256, 1024)
  # regional | holistic_input256 (downsampled to downsample_resolution) |
  # holistic_full (input_resolution=0, where it fits in memory).
  sweep.models = ("regional", "holistic_input256", "holistic_full")
  sweep.downsample_resolution = 256
  # "Fits": the compiled train step's temp + argument bytes <= this budget.
  # 0: the device's memory_stats() bytes_limit, else 16 GB (CPU).
  sweep.memory_budget_gb = 0.0
  # A time budget: runs whose compiled train step costs more are recorded
  # ("over_compute_budget", with their memory and FLOPs), not trained. On 2
  # CPU cores full-resolution holistic at 1024^2 (79 GFLOPs a step) would
  # take longer than the whole sweep. 0: no limit.
  sweep.max_train_gflops_per_step = 60.0
  sweep.infer_timing_iters = 3  # timed inference batches (after one warm-up)
  sweep.variant = ""  # configs/regional.py / holistic.py variant ("" | "gpu")

  sweep.common = ml_collections.ConfigDict(
    dict(
      dataset="hrface_synth",
      synth_train_size=200,  # the same seeds (faces) at every resolution
      # 100 test faces: a paired NME difference of ~0.01 is then about one
      # standard error (40 gave ~0.012-0.014 at 150 steps).
      synth_test_size=100,
      batch_size=4,
      total_steps=300,
      learning_rate=2e-3,
      # Cross-entropy heatmap loss (the default; explicit here because the
      # short budget relies on it): stronger gradients than MSE while the maps
      # are still flat. It helped both models a little in 150-step trials at
      # 256^2 (NME 0.358 -> 0.352 regional, 0.341 -> 0.333 holistic).
      loss=dict(heatmap="ce"),
      optimizer=dict(warmup_steps=30),
      log_every_steps=10,
      eval_every_steps=300,  # one evaluation, at the end
      checkpoint_every_steps=100,
      keep_checkpoints=1,
      seed=0,
    )
  )
  sweep.regional = ml_collections.ConfigDict()
  # A stacked hourglass of about the regional model's FLOPs (5.0 GFLOPs per
  # train step of 4 on a 256^2 input, regional 3.3 at 256^2 and 4.3 at
  # 1024^2): the same compute class, so "same steps" is a fair budget.
  sweep.holistic = ml_collections.ConfigDict(
    dict(holistic=dict(stem_width=16, width=32, levels=4, stacks=2))
  )
  return sweep
