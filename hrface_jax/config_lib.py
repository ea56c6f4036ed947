"""The default experiment config, composed from each layer's own defaults.

Files in ``configs/`` start from :func:`base_config` and override what their
experiment changes, so each reads like a table of that experiment.
"""

from __future__ import annotations

import ml_collections

from hrface_jax.data import config as data_config
from hrface_jax.models import config as model_config


def base_config() -> ml_collections.ConfigDict:
  """Every field a training run has, with defaults for a small CPU run."""
  config = ml_collections.ConfigDict()

  # What is trained, on what.
  config.model_name = "regional"  # "regional" | "holistic"
  config.markup = "ibug68"  # see hrface_jax.markup
  config.resolution = 256  # full-resolution side of the (square) face images
  config.seed = 0

  # Schedule (batch_size is global, across all devices and hosts).
  config.batch_size = 8
  config.total_steps = 1000
  config.learning_rate = 1e-3
  config.log_every_steps = 50
  config.eval_every_steps = 500
  config.checkpoint_every_steps = 500

  data_config.add_defaults(config)
  model_config.add_defaults(config)
  return config
