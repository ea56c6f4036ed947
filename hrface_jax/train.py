r"""Trains a landmark model from an ml-collections config.

    python -m hrface_jax.train --config=configs/quickstart.py --workdir=runs/qs \
        [--config.KEY=VALUE ...]
    python -m hrface_jax.train --config=configs/regional.py:gpu --print_config

Resumes from the workdir's latest checkpoint when there is one. The loop
itself is :func:`hrface_jax.training.trainer.train_and_evaluate`.
"""

from __future__ import annotations

import os
import sys

import jax
import ml_collections
from absl import app, flags
from ml_collections import config_flags

from hrface_jax import config_lib, host_memory
from hrface_jax.checkpointing import CheckpointWriteError, disk_full_reason
from hrface_jax.cli import private_flags_parser, quiet_logging
from hrface_jax.training import multihost
from hrface_jax.training.trainer import (  # noqa: F401  (re-exported for scripts)
  NonFiniteLossError,
  maybe_initialize_distributed,
  train_and_evaluate,
)

# Private flag set: scripts and tests may import several CLIs (see cli.py).
FLAGS = flags.FlagValues()
config_flags.DEFINE_config_file(
  "config",
  None,
  "Training config file (configs/NAME.py).",
  lock_config=True,
  flag_values=FLAGS,
)
flags.DEFINE_string(
  "workdir", None, "Where checkpoints, logs and metrics go.", flag_values=FLAGS
)
flags.DEFINE_bool(
  "print_config",
  False,
  "Print the resolved config (every field, overrides applied, '# default:' "
  "where a value is not the default), check it and exit without training.",
  flag_values=FLAGS,
)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  quiet_logging()
  if FLAGS.config is None:
    raise app.UsageError("--config is required")
  if FLAGS.print_config:
    print_config(FLAGS.config)
    return
  if FLAGS.workdir is None:
    raise app.UsageError("--workdir is required")
  config = FLAGS.config
  try:
    maybe_initialize_distributed(config)
    train_and_evaluate(config, FLAGS.workdir)
  except Exception as e:
    lost = multihost.is_runtime_failure(e) and multihost.describe_runtime_failure(e)
    if lost:
      print(f"hrface_jax.train: error: {lost}", file=sys.stderr, flush=True)
      # Not sys.exit: JAX's exit handler would wait for the lost process at a
      # shutdown barrier, then abort.
      os._exit(1)
    if isinstance(e, OSError) and not isinstance(
      e, FileNotFoundError | CheckpointWriteError
    ):
      # Metrics or logs, not a checkpoint, hit a full disk.
      full = disk_full_reason(e)
      if full is None:
        raise
      reason, path = full
      print(
        f"hrface_jax.train: error: the disk is full ({reason}) writing "
        f"{path or FLAGS.workdir}",
        file=sys.stderr,
      )
      sys.exit(1)
    known = (ValueError, NonFiniteLossError, FileNotFoundError, CheckpointWriteError)
    if not isinstance(e, known):
      raise
    print(f"hrface_jax.train: error: {e}", file=sys.stderr)
    sys.exit(1)


def print_config(config: ml_collections.ConfigDict) -> None:
  """The resolved experiment table, after the checks a run makes first."""
  try:
    config_lib.validate_config(config, num_devices=jax.local_device_count())
  except ValueError as e:
    print(f"hrface_jax.train: error: {e}", file=sys.stderr)
    sys.exit(1)
  print(config_lib.config_table(config))


_parse_flags = private_flags_parser(FLAGS, "hrface_jax.train", __doc__)


if __name__ == "__main__":
  host_memory.reexec_with_huge_pages()  # first: see hrface_jax/host_memory.py
  app.run(main, flags_parser=_parse_flags)
