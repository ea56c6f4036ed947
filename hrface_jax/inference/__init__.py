"""Inference on photos: :class:`predictor.Predictor` (a checkpoint, faces in
any image size) and the face detector it falls back on.
``python -m hrface_jax.predict`` is the command line."""
