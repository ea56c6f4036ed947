"""Holistic baseline: a stacked-hourglass heatmap network on the whole image.

    python -m hrface_jax.train --config=configs/holistic.py --workdir=runs/holistic
    # the usual practice (downsample to 256 first):
    python -m hrface_jax.train --config=configs/holistic.py \
        --config.input_resolution=256 ...
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

  if variant == "gpu":
    config.holistic.stem_width = 64
    config.holistic.width = 128
    config.holistic.stacks = 4
  elif variant:
    raise ValueError(f"configs/holistic.py: unknown variant {variant!r}; use 'gpu'")
  return config
