"""Shared command-line behaviour of the hrface_jax entry points."""

from absl import flags, logging


def quiet_logging() -> None:
  """WARNING and above unless --verbosity was given: orbax and TFDS log every
  checkpoint and file at INFO, which buries the progress lines."""
  if not flags.FLAGS["verbosity"].present:  # a library sets it to INFO itself
    logging.set_verbosity(logging.WARNING)
