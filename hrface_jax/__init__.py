"""hrface_jax: attention-driven cropping for very high resolution facial landmarks."""

__version__ = "0.1.0"

__all__ = ["Predictor"]


def __getattr__(name: str):
  # Lazy, so `import hrface_jax.data.synth` does not pull in the model stack.
  if name == "Predictor":
    from hrface_jax.inference.predictor import Predictor

    return Predictor
  raise AttributeError(f"module 'hrface_jax' has no attribute {name!r}")
