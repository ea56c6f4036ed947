"""Deprecated (one release): the data fields' defaults are in
:func:`hrface_jax.defaults.base_config` with every other field's."""

import warnings

import ml_collections


def add_defaults(config: ml_collections.ConfigDict) -> None:
  """Deprecated: adds the :func:`hrface_jax.config_lib.base_config` fields
  ``config`` lacks (all of them, not only the data layer's)."""
  from hrface_jax import config_lib  # noqa: PLC0415  (config_lib imports models)

  warnings.warn(
    "hrface_jax.data.config.add_defaults is deprecated: start from "
    "hrface_jax.config_lib.base_config()",
    DeprecationWarning,
    stacklevel=2,
  )
  config_lib.add_missing_defaults(config)
