"""Attention-driven cropping (Chandran et al. 2020): coarse attention network
+ full-resolution crops + regional refinement networks.

    python -m hrface_jax.train --config=configs/regional.py --workdir=runs/regional
    python -m hrface_jax.train --config=configs/regional.py:gpu,4096 ...  # accelerators

Variant: "gpu" (wider nets, accelerator schedule) and/or a resolution
(256, 512, 1024, 2048, 4096). Memory is flat in the resolution, so the
accelerator batch is the same at every size.

Crops are config.regional.crop_fraction of the side at every resolution, cut
to config.regional.feature_size features by a stem whose stride follows
(hrface_jax.models.config.crop_table lists them; a crop_table of rows
(resolution, crop_size, stem_stride) overrides the rule).

Fields not named here keep their defaults (hrface_jax/defaults.py): the
networks' depths and widths are their Flax modules' fields.
"""

import ml_collections

from hrface_jax import config_lib

common = config_lib.load_sibling(__file__, "common")


def get_config(variant: str = "") -> ml_collections.ConfigDict:
  gpu, resolution = config_lib.parse_variant(variant, "configs/regional.py")
  config = config_lib.base_config()
  config.model_name = "regional"

  # Data: rendered faces (hrface_synth) at the network's resolution, iBUG-68
  # points; the default augmentation (zoom, rotation, shift, mirror, colour).
  config.dataset = "hrface_synth"
  config.markup = "ibug68"
  config.resolution = resolution or 256

  # Schedule: the small CPU run ("gpu": common.accelerator_schedule below).
  common.cpu_schedule(config)  # batch 8, 1000 steps, learning rate 1e-3
  config.stages = (("coarse", 0.3), ("regional", 0.4), ("joint", 0.3))

  # Coarse attention network: whole image area-downsampled to 256 px.
  config.coarse.input_size = 256
  config.coarse.center_source = "attention"
  config.heatmap.sigma = 1.5
  # Crops: 9/16 of the side, cut to 36x36 features by the stem at every size.
  config.regional.crop_fraction = 0.5625
  config.regional.feature_size = 36
  config.regional.share_trunk = False  # per-region parameters (vmapped)
  config.regional.differentiable_crop = False
  # "precision" fusion: every estimate, the coarse one included, weighted by
  # 1 / its heatmap variance in image pixels^2 (and each patch stage's point
  # with the one it refines). With a well-trained coarse network it is the
  # better one: 0.0506 against 0.0739 ("confidence", regional estimates only)
  # at 256^2 in a 300-step regional run on a coarse net at NME 0.050
  # (experiments/crop_oracle.py, 2026-11-30). An untrained coarse network
  # drags good crops back towards itself, so it was "confidence" before.
  config.regional.fusion = "precision"
  # Joint stage: per example, ground-truth or predicted crop centres.
  config.train_crop_centers = "mix"
  config.train_crop_jitter = 0.03

  # Losses: heatmap cross-entropy + Wing on the soft-argmax at 1/20 weight
  # (the weights' history: hrface_jax/defaults.py).
  config.loss.heatmap = "ce"
  config.loss.coord = "wing"

  if gpu:  # wider nets, 72x72 regional features, 64x64 coarse maps
    config.coarse.stem_stride = 2
    config.coarse.stem_width = 32
    config.coarse.widths = (32, 64, 128, 192)
    config.coarse.heatmap_level = 1
    config.coarse.blocks = 2
    config.regional.feature_size = 72  # R / 128 per heatmap pixel at 9/16 crops
    config.regional.stem_widths = (32, 64)
    config.regional.widths = (64, 96, 128)
    config.regional.blocks = 2
    common.accelerator_schedule(config, batch_size=64)
  return config
