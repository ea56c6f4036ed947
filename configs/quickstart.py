"""Quickstart: a small regional model with patch stages on synthetic 256 px
faces, on a laptop CPU.

The README's first command runs this, then evaluates it: about 9
minutes of training on 2 CPU cores (plus about a minute rendering its 1100
faces on first use), test NME ~0.035 (2026-12-01). The 10-minute budget sets
the steps: the earlier 1600-step schedule (the README gives its flags) scores
0.026 but takes 12-13 minutes on a slower 2-core machine (8.5 on a faster one).

Most steps train the coarse network alone (its own, ~4x cheaper step); the
regional networks and the native-resolution patch stage then train on its
crops (their steps cost ~0.75 s against the coarse network's ~0.16 s).
Precision fusion (configs/regional.py) weighs every estimate by its
heatmap's sharpness, so the finer stages only move a point where they are sure.

Fields not named here keep their defaults (hrface_jax/defaults.py).
"""

import ml_collections

from hrface_jax import config_lib


def get_config() -> ml_collections.ConfigDict:
  config = config_lib.base_config()

  config.model_name = "regional"
  config.resolution = 256
  config.dataset = "hrface_synth"
  config.synth_train_size = 1000  # a small variant of hrface_synth/r256
  config.synth_test_size = 100

  config.batch_size = 8
  config.total_steps = 1100
  config.learning_rate = 4e-3
  config.stages = (("coarse", 0.64), ("regional", 0.18), ("joint", 0.18))
  config.optimizer.warmup_steps = 100
  config.regional.fusion = "precision"
  config.patches.enabled = True  # one stage at 256^2: 32 px patches, 2 px pixels
  # Fitted after the last step on the model's points on the 1000 training
  # faces (hrface_jax/models/shape.py).
  config.shape.enabled = True

  config.log_every_steps = 100
  config.eval_every_steps = 800
  config.checkpoint_every_steps = 400
  return config
