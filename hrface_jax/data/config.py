"""Data-layer config defaults (owned by the data layer)."""

import ml_collections


def add_defaults(config: ml_collections.ConfigDict) -> None:
  config.dataset = "hrface_synth"
  config.data_dir = ""  # "" -> $HRFACE_DATA_DIR or ./data
