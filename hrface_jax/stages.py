"""Training stages: one run can train coarse-only, then regional, then jointly.

``config.stages`` is a tuple of (name, fraction of total_steps). A stage is a
set of overrides of the config seen by the loss and by crop-centre selection:

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

STAGE_NAMES = ("coarse", "regional", "joint", "holistic")
_MODEL_STAGES = {
  "regional": ("coarse", "regional", "joint"),
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


def stage_config(
  config: ml_collections.ConfigDict, name: str
) -> ml_collections.ConfigDict:
  """The config as the loss and crop selection of stage ``name`` see it."""
  cfg = ml_collections.ConfigDict(config.to_dict())
  if name == "coarse":
    cfg.loss.regional_heatmap_weight = 0.0
    cfg.loss.regional_coord_weight = 0.0
    cfg.train_crop_centers = "gt_jitter"
  elif name == "regional":
    cfg.train_crop_centers = "gt_jitter"
  elif name == "holistic" and cfg.model_name != "holistic":
    raise ValueError(
      f"stage 'holistic' needs model_name='holistic', got {cfg.model_name!r}"
    )
  return cfg
