"""Training: the jitted train step and loop (``trainer``), its state and
optimizer, the stage schedule, metric writing and multi-host set-up.
``python -m hrface_jax.train`` is the command line."""
