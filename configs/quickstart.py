"""Quickstart: a small regional model on synthetic 256 px faces, on a laptop CPU.

The README's first command runs this, then evaluates it. Minutes on 2 CPU
cores, including rendering its small synthetic dataset on first use.
"""

from hrface_jax import config_lib


def get_config():
  config = config_lib.base_config()

  config.model_name = "regional"
  config.resolution = 256
  config.dataset = "hrface_synth"
  config.synth_train_size = 600  # a small variant of hrface_synth/r256
  config.synth_test_size = 100

  config.batch_size = 8
  config.total_steps = 600
  config.learning_rate = 2e-3
  config.stages = (("coarse", 0.3), ("regional", 0.4), ("joint", 0.3))
  config.optimizer.warmup_steps = 100

  config.log_every_steps = 50
  config.eval_every_steps = 300
  config.checkpoint_every_steps = 200
  return config
