"""Training stages: one run can train coarse-only, then regional, then jointly.

``config.stages`` is a tuple of (name, fraction of total_steps). A stage is a
few numbers the train step takes as inputs (:func:`stage_controls`): which
loss terms count and where crops are centred. They are arrays, not static
config, so one compiled train step serves every stage of a run:

=========  =====================================================================
coarse     only the coarse network's losses (regional loss weights set to 0)
regional   regional networks on crops around jittered ground-truth centres
joint      everything, crops from ``config.train_crop_centers``
           (predicted / mix / between)
holistic   the holistic baseline's single stage
=========  =====================================================================
"""

from __future__ import annotations

import dataclasses

import ml_collections
import numpy as np

from hrface_jax.models.config import CENTER_MODES

STAGE_NAMES = ("coarse", "regional", "joint", "holistic")
_MODEL_STAGES = {
  "regional": ("coarse", "regional", "joint"),
  "coarse": ("coarse",),
  "holistic": ("holistic",),
}


@dataclasses.dataclass(frozen=True)
class Stage:
  name: str
  start_step: int  # inclusive
  end_step: int  # exclusive


def validate_stages(config: ml_collections.ConfigDict) -> None:
  stages = config.stages
  allowed = _MODEL_STAGES.get(config.model_name, STAGE_NAMES)
  if not stages:
    raise ValueError("config.stages is empty: give at least one (name, fraction)")
  for entry in stages:
    if len(entry) != 2:
      raise ValueError(f"config.stages entry {entry!r}: expected (name, fraction)")
    name, fraction = entry
    if name not in allowed:
      raise ValueError(
        f"config.stages: stage {name!r} is not one of {allowed} for "
        f"model_name={config.model_name!r}"
      )
    if not fraction > 0:
      raise ValueError(f"config.stages: stage {name!r} has fraction {fraction!r} <= 0")


def schedule(config: ml_collections.ConfigDict) -> list[Stage]:
  """Splits ``total_steps`` among the stages in proportion to their fractions."""
  total = sum(f for _, f in config.stages)
  out, start = [], 0
  for i, (name, fraction) in enumerate(config.stages):
    last = i == len(config.stages) - 1
    end = (
      config.total_steps
      if last
      else start + round(config.total_steps * fraction / total)
    )
    if end > start:
      out.append(Stage(name, start, end))
    start = end
  return out


def stage_at(stages: list[Stage], step: int) -> Stage:
  for stage in stages:
    if stage.start_step <= step < stage.end_step:
      return stage
  return stages[-1]


def stage_controls(
  config: ml_collections.ConfigDict, name: str
) -> dict[str, np.ndarray | dict[str, np.ndarray]]:
  """Stage ``name`` as train-step inputs (the same structure for every stage).

  ``loss_scales``: multipliers of the regional and patch loss terms (0 in
  "coarse").
  ``crop_mode``: index into ``CENTER_MODES`` of the crop centres' source.
  """
  regional = 0.0 if name == "coarse" else 1.0
  mode = config.train_crop_centers if name == "joint" else "gt_jitter"
  return {
    "loss_scales": {
      "regional_heatmap": np.float32(regional),
      "regional_coord": np.float32(regional),
      "patch_heatmap": np.float32(regional),
      "patch_coord": np.float32(regional),
    },
    "crop_mode": np.int32(CENTER_MODES.index(mode)),
  }
