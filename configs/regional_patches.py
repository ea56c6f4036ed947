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
  from 1024^2 to 8192^2, hrface_jax.profile, 2026-11-30);
* a shape prior (config.shape), fitted after the last train step.

Variants as configs/regional.py ("gpu" and/or a resolution).
"""

import ml_collections

from hrface_jax import config_lib

regional = config_lib.load_sibling(__file__, "regional")


def get_config(variant: str = "") -> ml_collections.ConfigDict:
  config = regional.get_config(variant)
  config.patches.enabled = True
  # The first stage refines the coarse network's points, not the two-stage
  # estimate: the regional networks (as fine as the coarse one at 9/16 crops,
  # trained 300 steps against its 1500) moved points away from the truth.
  # Small sweep checkpoints, test NME: 0.0372 -> 0.0338 at 256^2, 0.0328 ->
  # 0.0301 at 1024^2, 0.0321 -> 0.0296 at 4096^2 (2026-12-01).
  config.patches.start_from = "coarse"
  config.regional.stem_max_stride = 16
  # A shape prior fitted after training on the model's points on (up to
  # 1000 of) the training faces (hrface_jax/models/shape.py): small sweep,
  # test NME 0.0338 -> 0.0252 at 256^2 (2026-12-01).
  config.shape.enabled = True
  return config
