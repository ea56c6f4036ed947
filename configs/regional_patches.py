"""Attention-driven cropping + native-resolution patches (beyond the paper).

    python -m hrface_jax.train --config=configs/regional_patches.py \
        --workdir=runs/rp4096 --config.resolution=4096
    python -m hrface_jax.profile --config=configs/regional_patches.py \
        --resolutions=256,1024,4096,8192

configs/regional.py (the paper's two-stage model), plus:

* patch stages (config.patches): after the regional estimate, a small patch
  around every landmark is refined, cascading from a window of
  patches.first_window of the side down to a heatmap pixel of
  patches.stem_stride full-resolution pixels (2 px): 1 stage at 256^2, 3 at
  4096^2, 4 at 8192^2 (hrface_jax.models.config.patch_stages);
* regional crops whose stem stride exceeds 16 are area-averaged to it before
  the learned stem (the patch stages read the native pixels): the regional
  stage then costs the same at 2048^2-8192^2 as at 1024^2, and the train
  step's memory is flat in the resolution (0.15-0.16 GiB temp at batch 1
  from 1024^2 to 8192^2, hrface_jax.profile, 2026-11-30).

Variants as configs/regional.py ("gpu" and/or a resolution).
"""

import os

from hrface_jax import config_lib


def get_config(variant: str = ""):
  here = os.path.dirname(os.path.abspath(__file__))
  config = config_lib.load_config_file(os.path.join(here, "regional.py"), variant)
  config.patches.enabled = True
  config.regional.stem_max_stride = 16
  return config
