"""hrface_jax: attention-driven cropping for very high resolution facial landmarks."""

__version__ = "0.1.0"
