"""Pieces the experiment tables in configs/ share (big_vision's configs/common).

A config file loads it as ``common = config_lib.load_sibling(__file__, "common")``.
Every field and its default is in hrface_jax/defaults.py; what is here is a
choice several experiments make the same way.
"""

import ml_collections


def cpu_schedule(config: ml_collections.ConfigDict) -> None:
  """The small CPU run every model trains with by default: the same batch,
  steps and learning rate, so the models compare like for like."""
  config.batch_size = 8
  config.total_steps = 1000
  config.learning_rate = 1e-3
  config.optimizer.warmup_steps = 100


def accelerator_schedule(config: ml_collections.ConfigDict, batch_size: int) -> None:
  """The "gpu" variants' schedule: bigger batches, longer, bf16, EMA (the
  same for every model but the batch, which the model's memory sets)."""
  config.batch_size = batch_size
  config.total_steps = 60_000
  config.learning_rate = 1e-3 * (batch_size / 64) ** 0.5
  config.optimizer.warmup_steps = 1000
  config.optimizer.ema_decay = 0.999
  config.compute_dtype = "bfloat16"
  config.log_every_steps = 100
  config.eval_every_steps = 2000
  config.checkpoint_every_steps = 2000
  config.data_workers = 8
