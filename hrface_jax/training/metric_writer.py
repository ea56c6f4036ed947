"""Metric logging: DIR/metrics.jsonl (one JSON object per logged step) and
TensorBoard event files in DIR/tensorboard (tensorboardX: no TensorFlow)."""

from __future__ import annotations

import json
import math
import os


class MetricWriter:
  """Appends scalar metrics; a no-op on processes other than 0."""

  def __init__(self, workdir: str, *, enabled: bool = True):
    self.enabled = enabled
    self._tb = None
    self._path = os.path.join(workdir, "metrics.jsonl")
    if enabled:
      from tensorboardX import SummaryWriter  # noqa: PLC0415  (heavy import)

      self._tb = SummaryWriter(os.path.join(workdir, "tensorboard"))

  def write(self, step: int, scalars: dict[str, float], **extra) -> None:
    if not self.enabled:
      return
    record = {"step": int(step), **extra}
    for k, v in scalars.items():
      v = float(v)
      record[k] = v if math.isfinite(v) else None
      self._tb.add_scalar(k, v, int(step))
    with open(self._path, "a") as f:  # append-only: a crash loses at most a line
      f.write(json.dumps(record) + "\n")
    self._tb.flush()

  def close(self) -> None:
    if self._tb is not None:
      self._tb.close()
