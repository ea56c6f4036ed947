"""Orbax checkpoints: train state + input-pipeline state + config, per step.

Layout of a workdir::

    DIR/config.json                 resolved config of the run
    DIR/checkpoints/<step>/state    TrainState (host numpy, written by process 0)
    DIR/checkpoints/<step>/data     one JSON file per process: its iterator state
    DIR/checkpoints/<step>/config   the config again, so a copied step folder
                                    is self-contained for evaluate/predict

Kept: the last ``keep_last`` checkpoints plus the ``keep_best`` with the lowest
validation ``nme_inter_ocular``. Saves are asynchronous; a run killed mid-save
leaves only a temporary folder that orbax ignores and cleans up.
"""

from __future__ import annotations

import json
import logging
import os
from typing import Any

import grain
import jax
import ml_collections
import numpy as np
import orbax.checkpoint as ocp
from etils import epath

from hrface_jax import config_lib

BEST_METRIC = "nme_inter_ocular"


# Orbax warnings that say nothing to a user:
# - on every save without metrics when a best_fn is set (the checkpoints
#   between evaluations have none by design; BestN ignores them);
# - three lines on every read-only manager, i.e. every evaluate / predict /
#   load_for_inference of a finished checkpoint.
_ORBAX_NOISE = (
  "Requested `tracked_metric`",
  "CheckpointManagerOptions.read_only=True",
  "Given directory is read only",
)


def _not_orbax_noise(record: logging.LogRecord) -> bool:
  message = record.getMessage()
  return not any(m in message for m in _ORBAX_NOISE)


logging.getLogger("absl").addFilter(_not_orbax_noise)


class IteratorStateSnapshot:
  """Carries one recorded input-iterator state through grain's orbax handler.

  The train loop prefetches, so the live iterator is ahead of the step being
  saved; it records the state in front of each batch and saves that one.
  """

  def __init__(self, state: dict | None = None):
    self.state = state

  def get_state(self) -> bytes:  # grain's handler: non-DatasetIterator -> bytes
    return json.dumps(self.state).encode()

  def set_state(self, state: bytes) -> None:
    self.state = json.loads(state)

  def start_prefetch(self) -> None:  # called by grain's handler after restore
    pass


def _manager(directory: epath.Path, keep_last: int, keep_best: int, **kw):
  policies = [ocp.checkpoint_managers.LatestN(n=keep_last)]
  if keep_best > 0:
    policies.append(
      ocp.checkpoint_managers.BestN(
        get_metric_fn=lambda m: m[BEST_METRIC],
        reverse=True,  # keeps the last n of a descending sort: the lowest NME
        n=keep_best,
        keep_checkpoints_without_metrics=False,
      )
    )
  options = ocp.CheckpointManagerOptions(
    preservation_policy=ocp.checkpoint_managers.AnyPreservationPolicy(policies),
    best_fn=lambda m: m[BEST_METRIC],  # for best_step()
    best_mode="min",
    create=True,
    **kw,
  )
  return ocp.CheckpointManager(
    directory,
    item_names=("state", "data", "config"),
    item_handlers={
      "state": ocp.StandardCheckpointHandler(),
      "data": grain.checkpoint.CheckpointHandler(),
      "config": ocp.JsonCheckpointHandler(),
    },
    options=options,
  )


class Checkpointer:
  """Saves and restores a run's checkpoints under ``workdir/checkpoints``."""

  def __init__(
    self,
    workdir: str,
    *,
    keep_last: int = 2,
    keep_best: int = 1,
    async_save: bool = True,
  ):
    # Orbax's async save needs an absolute path; users pass relative ones.
    self.directory = epath.Path(os.path.abspath(workdir)) / "checkpoints"
    self._manager = _manager(
      self.directory,
      keep_last,
      keep_best,
      enable_async_checkpointing=async_save,
    )

  def latest_step(self) -> int | None:
    return self._manager.latest_step()

  def best_step(self) -> int | None:
    return self._manager.best_step()

  def save(
    self,
    step: int,
    state: Any,
    data_state: dict,
    config: ml_collections.ConfigDict,
    metrics: dict[str, float] | None = None,
  ) -> bool:
    """Starts an (asynchronous) save of host-side ``state`` at ``step``."""
    if metrics is not None and BEST_METRIC not in metrics:
      metrics = None
    return self._manager.save(
      step,
      args=ocp.args.Composite(
        state=ocp.args.StandardSave(state),
        data=grain.checkpoint.CheckpointSave(IteratorStateSnapshot(data_state)),
        config=ocp.args.JsonSave(config.to_dict()),
      ),
      metrics=metrics,
      force=True,
    )

  def restore(self, step: int, target_state: Any) -> tuple[Any, dict]:
    """Restores (state, this process's iterator state) saved at ``step``."""
    snapshot = IteratorStateSnapshot()
    restored = self._manager.restore(
      step,
      args=ocp.args.Composite(
        state=ocp.args.StandardRestore(target_state),
        data=grain.checkpoint.CheckpointRestore(snapshot),
      ),
    )
    return restored.state, snapshot.state

  def wait(self) -> None:
    self._manager.wait_until_finished()

  def close(self) -> None:
    self._manager.wait_until_finished()
    self._manager.close()


def _step_dir(path: epath.Path) -> epath.Path:
  """Resolves a workdir, its checkpoints folder, or a step folder to a step folder."""
  if (path / "state").exists():
    return path
  root = path / "checkpoints" if (path / "checkpoints").exists() else path
  if not root.exists():
    raise FileNotFoundError(f"{path}: no such checkpoint or workdir")
  manager = _manager(root, keep_last=1_000_000, keep_best=0, read_only=True)
  step = manager.best_step()
  step = step if step is not None else manager.latest_step()
  if step is None:
    raise FileNotFoundError(f"{path}: contains no finished checkpoint")
  return root / str(step)


def load_for_inference(
  path: str | os.PathLike,
) -> tuple[ml_collections.ConfigDict, Any, int]:
  """Loads (config, params, step) for evaluation or prediction.

  ``path`` is a workdir (its best checkpoint by validation NME, else its
  latest), a ``checkpoints`` folder, or one step folder. Uses the EMA params,
  which equal the raw params when EMA is off. Config fields newer than the
  checkpoint get their current defaults.
  """
  step_dir = _step_dir(epath.Path(os.path.abspath(path)))
  with ocp.Checkpointer(ocp.JsonCheckpointHandler()) as ckptr:
    config = config_lib.with_defaults(ckptr.restore(step_dir / "config"))
  with ocp.StandardCheckpointer() as ckptr:
    state = ckptr.restore(step_dir / "state")
  params = jax.tree.map(np.asarray, state["ema_params"])
  return config, params, int(np.asarray(state["step"]))
