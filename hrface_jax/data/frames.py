"""Frame files: a split's rendered frames back to back, read by memory map.

A 4096^2 frame is 50 MB. Kept inside an array_record record it costs ~0.3 s
of CPU to read (zstd and the record layer: ~0.15 s even uncompressed) and
~0.06 s to deserialise, more than a regional train step's share of a 2-core
machine per image (2026-12-02). Beside the records in a flat file of raw
pixels it is a memory-mapped view: nothing is read until the warp touches
the pixels it needs, the OS page cache keeps it for later epochs and every
worker process shares that cache.

The ``hrface_synth`` builder writes ``frames-{split}.u8`` into the dataset's
folder while it renders (:class:`FrameWriter`, atomically); each record
holds its frame's byte ``frame_offset`` and ``image_shape``, and
:class:`FramedSource` puts the frame back into the record as ``image``.
"""

from __future__ import annotations

import os
from typing import IO, Any

import numpy as np

from hrface_jax import atomic

FRAME_FILE = "frames-{split}.u8"


def frame_path(dataset_dir: str | os.PathLike, split: str) -> str:
  """The frame file of ``split`` in the dataset folder ``dataset_dir``."""
  return os.path.join(os.fspath(dataset_dir), FRAME_FILE.format(split=split))


class FrameWriter:
  """Appends uint8 frames to a frame file; the file appears (atomically) only
  when the ``with`` block ends without an exception."""

  def __init__(self, path: str | os.PathLike):
    self.path = os.fspath(path)
    self._context = atomic.atomic_open(self.path, "wb")
    self._file: IO[bytes] | None = None
    self._offset = 0

  def __enter__(self) -> FrameWriter:
    self._file = self._context.__enter__()
    return self

  def __exit__(self, *exc) -> bool | None:
    self._file = None
    return self._context.__exit__(*exc)

  def append(self, frame: np.ndarray) -> int:
    """Writes ``frame`` (uint8, any shape); returns its byte offset."""
    if self._file is None:
      raise RuntimeError(f"{self.path}: FrameWriter used outside its `with` block")
    if frame.dtype != np.uint8:
      raise ValueError(f"{self.path}: frames must be uint8, got {frame.dtype}")
    offset = self._offset
    data = np.ascontiguousarray(frame)
    self._file.write(memoryview(data).cast("B"))
    self._offset += data.nbytes
    return offset


class FrameFile:
  """Read-only frames of a frame file by (offset, shape); picklable (worker
  processes map the file themselves)."""

  def __init__(self, path: str | os.PathLike):
    self.path = os.fspath(path)
    if not os.path.isfile(self.path):
      raise FileNotFoundError(
        f"{self.path}: the dataset's frame file is missing (its records hold"
        " only offsets into it); delete the dataset folder to render it again"
      )
    self._map: np.ndarray | None = None

  def __getstate__(self) -> dict[str, Any]:
    return {"path": self.path, "_map": None}

  def read(self, offset: int, shape: tuple[int, ...]) -> np.ndarray:
    """The frame at byte ``offset`` of ``shape`` (uint8): a read-only view."""
    if self._map is None:
      self._map = np.memmap(self.path, np.uint8, mode="r")
    size = int(np.prod(shape))
    if offset < 0 or size <= 0 or offset + size > self._map.size:
      raise ValueError(
        f"{self.path}: a frame of shape {tuple(shape)} at byte {offset} lies "
        f"outside the file ({self._map.size} bytes): the file is truncated or "
        "does not belong to these records"
      )
    return self._map[offset : offset + size].reshape(shape)


class FramedSource:
  """A random-access record source whose records carry ``frame_offset``,
  with each record's frame added as ``image`` (see the module doc)."""

  def __init__(self, source, frame_file: FrameFile):
    self.source = source
    self.frame_file = frame_file

  def __len__(self) -> int:
    return len(self.source)

  def __getitem__(self, index: int) -> dict[str, Any]:
    record = dict(self.source[index])
    shape = tuple(int(v) for v in record["image_shape"])
    record["image"] = self.frame_file.read(int(record["frame_offset"]), shape)
    return record
