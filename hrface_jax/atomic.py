"""Atomic file writes: a reader (or a crash) never sees a half-written file."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from typing import IO, Any


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w") -> Iterator[IO]:
  """Opens a temp file next to ``path``; renames it onto ``path`` on success.

  Creates the parent folder. On an exception the temp file is removed and
  ``path`` is untouched.
  """
  path = os.fspath(path)
  folder = os.path.dirname(os.path.abspath(path))
  os.makedirs(folder, exist_ok=True)
  suffix = os.path.splitext(path)[1]
  fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp_", suffix=suffix)
  try:
    with os.fdopen(fd, mode) as f:
      yield f
    # mkstemp makes 0600 files; give the usual umask-based permissions.
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    os.replace(tmp, path)
  except BaseException:
    if os.path.exists(tmp):
      os.unlink(tmp)
    raise


def write_text(path: str | os.PathLike, text: str) -> None:
  """Writes ``text``, atomically."""
  with atomic_open(path, "w") as f:
    f.write(text)


def write_json(path: str | os.PathLike, obj: Any, indent: int = 2) -> None:
  """Writes ``obj`` as JSON, atomically."""
  with atomic_open(path, "w") as f:
    json.dump(obj, f, indent=indent, sort_keys=isinstance(obj, dict))
