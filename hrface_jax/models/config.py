"""Model config defaults (owned by the model layer)."""

import ml_collections


def add_defaults(config: ml_collections.ConfigDict) -> None:
  del config
