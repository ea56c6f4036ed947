"""Holistic baseline: a stacked-hourglass heatmap network on the whole image.

    python -m hrface_jax.train --config=configs/holistic.py --workdir=runs/holistic
    # the usual practice (downsample to 256 first):
    python -m hrface_jax.train --config=configs/holistic.py \
        --config.input_resolution=256 ...
    # accelerators: "gpu" and/or a resolution
    python -m hrface_jax.train --config=configs/holistic.py:gpu,1024 ...
"""

from hrface_jax import config_lib


def get_config(variant: str = ""):
  config = config_lib.base_config()
  config.model_name = "holistic"
  config.stages = config_lib.HOLISTIC_STAGES

  config.input_resolution = 0  # 0: full resolution (memory grows with pixels)
  config.heatmap.sigma = 1.5
  config.holistic.levels = 4
  config.holistic.stacks = 2

  gpu, resolution = config_lib.parse_variant(variant, "configs/holistic.py")
  if resolution:
    config.resolution = resolution
  if gpu:
    config.holistic.stem_width = 64
    config.holistic.width = 128
    config.holistic.stacks = 4
    # Activation memory grows with the pixels: the batch shrinks with them
    # (full-resolution input; at 4096 even batch 1 needs ~38 GiB in bf16).
    config_lib.accelerator_schedule(
      config, batch_size=GPU_BATCH_BY_RESOLUTION[config.resolution]
    )
  return config


# Global batch of the "gpu" variant at full-resolution input.
GPU_BATCH_BY_RESOLUTION = {256: 64, 512: 32, 1024: 8, 2048: 2, 4096: 1}
