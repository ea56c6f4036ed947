"""The package's public import paths: modules that moved keep their old ones."""

import importlib
import sys

import pytest

import hrface_jax


@pytest.mark.parametrize("old,new", sorted(hrface_jax.MOVED_MODULES.items()))
def test_a_moved_module_imports_from_its_old_path_with_a_warning(old, new):
  sys.modules.pop(old, None)
  with pytest.warns(DeprecationWarning, match=new):
    moved = importlib.import_module(old)
  assert moved is importlib.import_module(new)
  assert moved.__spec__.name == new  # its own spec, not the alias's
  sys.modules.pop(old, None)


def test_an_unknown_module_is_still_an_import_error():
  with pytest.raises(ModuleNotFoundError):
    importlib.import_module("hrface_jax.no_such_module")
