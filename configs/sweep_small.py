"""Resolution sweep, small budget: 256^2 to 4096^2 on 2 CPU cores, < 60 min.

    python experiments/resolution_sweep.py --budget=small
    python experiments/resolution_sweep.py --config=configs/sweep_small.py \
        --config.regional_steps=100 --config.resolutions=256,1024

What does not depend on the resolution is trained once (see
hrface_jax/sweep): the coarse attention network, which sees every image at
256^2, the 256^2-input holistic baseline, and the regional networks from
1024^2 up (their crops are area-averaged to the same stride there). Per
resolution up to 1024^2 the regional networks and their patch stages train,
on the same faces rendered at that resolution; above it only the patch
stages. Every model's steps count the shared ones: the holistic baselines
train for coarse_steps + regional_steps.

``common`` is merged into every run's config (configs/regional.py or
configs/holistic.py); ``regional`` / ``holistic`` only into that model's
(``regional`` into the shared coarse run too: the networks must match);
``coarse`` only into the shared coarse run; ``per_resolution`` only into the
regional runs at each resolution.
"""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
  sweep = ml_collections.ConfigDict()
  sweep.resolutions = (256, 512, 1024, 2048, 4096)
  # regional (the paper's two-stage model) | regional_patches (the same run
  # with its native-resolution patch stages) | holistic_input256 (downsampled
  # to downsample_resolution) | holistic_full (input_resolution=0, where it
  # fits the memory and compute budgets).
  sweep.models = ("regional", "regional_patches", "holistic_input256", "holistic_full")
  sweep.downsample_resolution = 256
  # "Fits": the compiled train step's temp + argument bytes <= this budget.
  # 0: the device's memory_stats() bytes_limit, else 16 GB (CPU).
  sweep.memory_budget_gb = 0.0
  # A time budget: full-resolution holistic runs whose compiled train step
  # costs more are recorded ("over_compute_budget", with their memory and
  # FLOPs), not trained. 0: no limit.
  # 15: full-resolution holistic trains at 256^2 only (9.9 GFLOPs a step of
  # 8); at 512^2 (40 GFLOPs) its 1800 steps alone would take ~45 min here.
  sweep.max_train_gflops_per_step = 15.0
  sweep.infer_timing_iters = 3  # timed inference batches (after one warm-up)
  sweep.variant = ""  # configs/regional.py / holistic.py variant ("" | "gpu")
  # Each training job in a process of its own (memory: see
  # hrface_jax.sweep.jobs.train_in_subprocess).
  sweep.train_in_subprocess = True

  # The shared, resolution-independent training.
  sweep.shared_resolution = 256
  sweep.shared_train_size = 1000  # faces the coarse net and holistic-256 see
  sweep.coarse_steps = 1500
  # Per resolution: the regional networks and patch stages, coarse frozen.
  sweep.regional_steps = 300
  sweep.regional_stages = (("regional", 0.5), ("joint", 0.5))
  # Above 1024^2 the crops are area-averaged to 1024^2's stride before the
  # regional stem (stem_max_stride below), so 1024^2's regional networks
  # serve 2048^2 and 4096^2 frozen: their jobs train only the patch stages.
  sweep.regional_shared_from = 1024
  # Faces those patch-only jobs train on: a 4096^2 face takes 1.3 s to render
  # and 50 MB to keep in memory.
  sweep.patch_train_size = 100

  sweep.common = ml_collections.ConfigDict(
    dict(
      dataset="hrface_synth",
      # The faces the regional networks train on at each resolution (the
      # shared ones, rendered at that resolution). With 100 they overfit:
      # NME 0.032 on their training faces, 0.039 on the test faces at 256^2
      # (2026-12-01).
      synth_train_size=1000,
      synth_test_size=100,
      batch_size=8,
      learning_rate=4e-3,
      optimizer=dict(warmup_steps=50),
      log_every_steps=25,
      eval_every_steps=100000,  # one evaluation, at the end
      checkpoint_every_steps=100,
      keep_checkpoints=1,
      seed=0,
    )
  )
  # The coarse run's too. Crops at 2048^2 and 4096^2 are area-averaged to a
  # stride of 16 before the learned stem (the patch stages read native
  # pixels): their stem would otherwise take ~80% of a 4096^2 step.
  # The coarse network twice as wide as the small default: 0.038 against 0.050
  # test NME after 1500 steps (2026-11-30), nearer holistic-256's 0.036.
  # The patch stages refine the coarse network's points (as in
  # configs/regional_patches.py): NME 0.0338 against 0.0372 from the
  # two-stage estimate at 256^2, 0.0296 against 0.0321 at 4096^2.
  sweep.regional = ml_collections.ConfigDict(
    dict(
      coarse=dict(stem_width=32, widths=(32, 64, 96, 128)),
      regional=dict(stem_max_stride=16),
      patches=dict(start_from="coarse"),
    )
  )
  sweep.coarse = ml_collections.ConfigDict()
  # Only the per-resolution regional runs. Frames at 2K-4K are too big to
  # resample or recolour every step on 2 cores: the regional networks see
  # whole-pixel shifts and mirrors of them, brightness and contrast (the
  # coarse net and holistic-256 see rotations and zooms of the 256^2 faces
  # as well).
  # The regional jobs (and holistic below) end by fitting a shape prior on
  # their points on the training faces (hrface_jax/models/shape.py): at
  # 1024^2, fitted to the previous sweep's checkpoints, test NME 0.0301 ->
  # 0.0226 (regional_patches) and 0.0346 -> 0.0277 (holistic-256), the jaw
  # 0.0585 -> 0.043 (2026-12-01). 2048^2 and 4096^2 take 1024^2's.
  sweep.per_resolution = ml_collections.ConfigDict(
    dict(
      shape=dict(enabled=True),
      augment=dict(
        rotation_deg=0.0,
        scale_min=1.0,
        scale_max=1.0,
        whole_pixel_shifts=True,
        saturation=0.0,  # no per-pixel colour or noise passes over 4K frames
        noise_prob=0.0,
      ),
    )
  )
  # A stacked hourglass of about the regional model's FLOPs (5.0 GFLOPs per
  # train step of 4 on a 256^2 input): the same compute class, so "same
  # steps" is a fair budget.
  sweep.holistic = ml_collections.ConfigDict(
    dict(
      holistic=dict(stem_width=16, width=32, levels=4, stacks=2),
      shape=dict(enabled=True),
    )
  )
  return sweep
