"""Holistic baseline: a stacked-hourglass heatmap network on the whole image.

    python -m hrface_jax.train --config=configs/holistic.py --workdir=runs/holistic
    # the usual practice (downsample to 256 first):
    python -m hrface_jax.train --config=configs/holistic.py \
        --config.input_resolution=256 ...
    # accelerators: "gpu" and/or a resolution
    python -m hrface_jax.train --config=configs/holistic.py:gpu,1024 ...

Fields not named here keep their defaults (hrface_jax/defaults.py).
"""

import ml_collections

from hrface_jax import config_lib

common = config_lib.load_sibling(__file__, "common")

# Global batch of the "gpu" variant at full-resolution input: activation
# memory grows with the pixels (at 4096 even batch 1 needs ~38 GiB in bf16).
GPU_BATCH_BY_RESOLUTION = {256: 64, 512: 32, 1024: 8, 2048: 2, 4096: 1}


def get_config(variant: str = "") -> ml_collections.ConfigDict:
  gpu, resolution = config_lib.parse_variant(variant, "configs/holistic.py")
  config = config_lib.base_config()
  config.model_name = "holistic"

  # Data: as configs/regional.py.
  config.dataset = "hrface_synth"
  config.markup = "ibug68"
  config.resolution = resolution or 256

  # Schedule: the small CPU run ("gpu": common.accelerator_schedule below).
  common.cpu_schedule(config)  # batch 8, 1000 steps, learning rate 1e-3
  config.stages = (("holistic", 1.0),)

  # Model: 2 stacked 4-level hourglasses on the image it sees.
  config.input_resolution = 0  # 0: full resolution (memory grows with pixels)
  config.heatmap.sigma = 1.5
  config.holistic.levels = 4
  config.holistic.stacks = 2
  config.loss.heatmap = "ce"
  config.loss.coord = "wing"

  if gpu:
    config.holistic.stem_width = 64
    config.holistic.width = 128
    config.holistic.stacks = 4
    common.accelerator_schedule(
      config, batch_size=GPU_BATCH_BY_RESOLUTION[config.resolution]
    )
  return config
