r"""Trains a landmark model from an ml-collections config.

    python -m hrface_jax.train --config=configs/quickstart.py --workdir=runs/qs \
        [--config.KEY=VALUE ...]

Resumes from the workdir's latest checkpoint when there is one. The loop
itself is :func:`hrface_jax.trainer.train_and_evaluate`.
"""

from __future__ import annotations

import sys

import jax
from absl import app, flags
from ml_collections import config_flags

from hrface_jax.cli import quiet_logging
from hrface_jax.trainer import (  # noqa: F401  (re-exported for scripts)
  NonFiniteLossError,
  maybe_initialize_distributed,
  train_and_evaluate,
)

FLAGS = flags.FLAGS
config_flags.DEFINE_config_file(
  "config", None, "Training config file (configs/NAME.py).", lock_config=True
)
flags.DEFINE_string("workdir", None, "Where checkpoints, logs and metrics go.")


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  quiet_logging()
  config = FLAGS.config
  maybe_initialize_distributed(config)
  try:
    train_and_evaluate(config, FLAGS.workdir)
  except (ValueError, NonFiniteLossError, FileNotFoundError) as e:
    print(f"hrface_jax.train: error: {e}", file=sys.stderr)
    sys.exit(1)


if __name__ == "__main__":
  flags.mark_flags_as_required(["config", "workdir"])
  jax.config.config_with_absl()
  app.run(main)
