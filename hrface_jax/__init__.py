"""hrface_jax: attention-driven cropping for very high resolution facial landmarks."""

import importlib
import importlib.abc
import importlib.util
import sys
import warnings

__version__ = "0.1.0"

__all__ = ["Predictor"]

# Modules that moved when the package was grouped by role (0.1.0): their old
# import paths still work, with a DeprecationWarning, until the next release.
MOVED_MODULES = {
  "hrface_jax.trainer": "hrface_jax.training.trainer",
  "hrface_jax.train_state": "hrface_jax.training.state",
  "hrface_jax.optim": "hrface_jax.training.optim",
  "hrface_jax.stages": "hrface_jax.training.stages",
  "hrface_jax.multihost": "hrface_jax.training.multihost",
  "hrface_jax.writers": "hrface_jax.training.metric_writer",
  "hrface_jax.metrics": "hrface_jax.evaluation.metrics",
  "hrface_jax.plots": "hrface_jax.evaluation.plots",
  "hrface_jax.predictor": "hrface_jax.inference.predictor",
  "hrface_jax.face_detect": "hrface_jax.inference.face_detect",
}


class _MovedModules(importlib.abc.MetaPathFinder, importlib.abc.Loader):
  """Imports an old module path as the module it moved to (the same object)."""

  def __init__(self) -> None:
    self._specs = {}

  def find_spec(self, fullname, path=None, target=None):
    if fullname in MOVED_MODULES:
      return importlib.util.spec_from_loader(fullname, self)
    return None

  def create_module(self, spec):
    new = MOVED_MODULES[spec.name]
    warnings.warn(
      f"{spec.name} moved to {new}; import it from there (the old path goes "
      "in the next release)",
      DeprecationWarning,
      stacklevel=2,
    )
    module = importlib.import_module(new)
    self._specs[spec.name] = module.__spec__  # the import system overwrites it
    return module

  def exec_module(self, module) -> None:
    # Already imported under its new name; give it back its own spec.
    module.__spec__ = self._specs.pop(module.__spec__.name)


if not any(isinstance(f, _MovedModules) for f in sys.meta_path):
  sys.meta_path.append(_MovedModules())


def __getattr__(name: str):
  # Lazy, so `import hrface_jax.data.synth` does not pull in the model stack.
  if name == "Predictor":
    from hrface_jax.inference.predictor import Predictor

    return Predictor
  raise AttributeError(f"module 'hrface_jax' has no attribute {name!r}")
