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

Faults: a save that runs out of disk raises :class:`CheckpointWriteError`
(the earlier checkpoints stay intact); a finished checkpoint whose files were
damaged later raises :class:`CorruptCheckpointError` naming the file, and
:meth:`Checkpointer.restore_latest` resumes from the newest intact one
instead, moving the damaged ones to ``DIR/checkpoints_damaged/``.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import re
import shutil
import sys
from collections.abc import Iterator
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


class CheckpointWriteError(OSError):
  """A checkpoint could not be written: the disk (or a file size limit) is full."""


class CorruptCheckpointError(ValueError):
  """A finished checkpoint's files cannot be read back (truncated, damaged)."""


_DISK_FULL_ERRNOS = (errno.ENOSPC, errno.EFBIG, errno.EDQUOT)
# Tensorstore (orbax's array writer) reports errno as text, not as OSError.
_DISK_FULL_TEXT = ("No space left on device", "File too large", "Disk quota exceeded")
# The paths a tensorstore / orbax message quotes (database, then its file).
_QUOTED_PATH = re.compile(r"[\"'](/[^\"']+)[\"']")


def _causes(error: BaseException) -> Iterator[BaseException]:
  seen = set()
  while error is not None and id(error) not in seen:
    seen.add(id(error))
    yield error
    error = error.__cause__ or error.__context__


def disk_full_reason(error: BaseException) -> tuple[str, str | None] | None:
  """(what is full, the file being written or None) when ``error`` (or one
  of its causes) is a full disk or an exceeded file size limit; else None."""
  for e in _causes(error):
    if isinstance(e, OSError) and e.errno in _DISK_FULL_ERRNOS:
      return os.strerror(e.errno), e.filename
    text = str(e)
    for reason in _DISK_FULL_TEXT:
      if reason in text:
        paths = _QUOTED_PATH.findall(text)
        return reason, paths[-1] if paths else None
  return None


def _not_orbax_noise(record: logging.LogRecord) -> bool:
  message = record.getMessage()
  if any(m in message for m in _ORBAX_NOISE):
    return False
  # Orbax logs a failed background save with tracebacks from each of its
  # threads; Checkpointer raises one CheckpointWriteError for it instead.
  error = record.exc_info[1] if record.exc_info else None
  return disk_full_reason(error) is None and not any(
    t in message for t in _DISK_FULL_TEXT
  )


def _not_a_secondary_failure(record: logging.LogRecord) -> bool:
  # When one array of a checkpoint fails to read or write, orbax raises that
  # error and leaves the other arrays' futures failed and unread; asyncio
  # reports each when it is garbage collected (at exit: after the one-line
  # error). The error that matters has been raised already.
  return "exception was never retrieved" not in record.getMessage()


logging.getLogger("absl").addFilter(_not_orbax_noise)
logging.getLogger("asyncio").addFilter(_not_a_secondary_failure)


def _drop_closed_loop_callbacks(previous):
  """An unraisable hook without tensorstore's 'Event loop is closed': when one
  read or write of a checkpoint fails, orbax closes its event loop and the
  other arrays' completion callbacks find it closed (a traceback per array,
  after the error that matters)."""

  def hook(unraisable):
    value = unraisable.exc_value
    if isinstance(value, RuntimeError) and str(value) == "Event loop is closed":
      return
    previous(unraisable)

  return hook


sys.unraisablehook = _drop_closed_loop_callbacks(sys.unraisablehook)


def _first_line(error: BaseException) -> str:
  text = str(error).strip() or type(error).__name__
  return text.splitlines()[0][:300]


# Tensorstore names the OCDBT database folder, and for a truncated data file
# the size it found: the file of that size is the truncated one.
_FOUND_SIZE = re.compile(r"not valid for value of size (\d+)")


def _damaged_file(error: BaseException, step_dir: epath.Path) -> str:
  """The file under ``step_dir`` that ``error`` names, else ``step_dir``."""
  for e in _causes(error):
    if isinstance(e, OSError) and e.filename:
      return os.fspath(e.filename)
    text = str(e)
    for path in _QUOTED_PATH.findall(text):
      if not path.startswith(os.fspath(step_dir)):
        continue
      size = _FOUND_SIZE.search(text)
      if size and os.path.isdir(path):
        found = [
          os.path.join(root, f)
          for root, _, files in os.walk(path)
          for f in files
          if os.path.getsize(os.path.join(root, f)) == int(size.group(1))
        ]
        if len(found) == 1:
          return found[0]
      return path
  return os.fspath(step_dir)


def _damaged(
  error: BaseException, step_dir: epath.Path, path: str | None = None
) -> CorruptCheckpointError:
  return CorruptCheckpointError(
    f"{path or _damaged_file(error, step_dir)}: checkpoint is damaged and "
    f"cannot be read ({_first_line(error)})"
  )


# Orbax's JSON files (its errors on them do not name the file).
_JSON_FILES = ("_CHECKPOINT_METADATA", "_METADATA", "metadata")


def check_readable(step_dir: epath.Path) -> None:
  """Parses the step folder's JSON files and reads its arrays in full.

  Raises:
    CorruptCheckpointError: naming the damaged file and what is wrong.
  """
  for root, _, files in os.walk(step_dir):
    for name in sorted(files):
      if name in _JSON_FILES or name.endswith(".json"):
        path = os.path.join(root, name)
        try:
          with open(path, "rb") as f:
            json.loads(f.read())
        except (OSError, ValueError) as e:
          raise _damaged(e, step_dir, path) from None
  try:
    with ocp.StandardCheckpointer() as ckptr:
      ckptr.restore(step_dir / "state")
  except Exception as e:  # noqa: BLE001  (anything orbax/tensorstore raise)
    raise _damaged(e, step_dir) from None


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
      # Left by a save that failed (full disk) or was killed: never a
      # checkpoint, and in the way of saving that step again.
      cleanup_tmp_directories=True,
    )
    self._saving_step: int | None = None  # the async save in flight
    self._write_failed = False

  def latest_step(self) -> int | None:
    return self._manager.latest_step()

  def best_step(self) -> int | None:
    return self._manager.best_step()

  @contextlib.contextmanager
  def _disk_full_as_error(self, step: int | None) -> Iterator[None]:
    """Turns orbax's (often asynchronous) write failures on a full disk into
    one :class:`CheckpointWriteError` that names the path."""
    try:
      yield
    except Exception as e:
      full = disk_full_reason(e)
      if full is None:
        raise
      self._write_failed = True
      reason, path = full
      step = step if step is not None else self._saving_step
      previous = [s for s in self._manager.all_steps() if s != step]
      raise CheckpointWriteError(
        f"saving the step-{step} checkpoint failed: the disk is full ({reason}) "
        f"writing {path or self.directory}; the last complete checkpoint is "
        f"step {max(previous) if previous else None}: free space, then run "
        "again to resume from it",
      ) from None

  def save(
    self,
    step: int,
    state: Any,
    data_state: dict,
    config: ml_collections.ConfigDict,
    metrics: dict[str, float] | None = None,
  ) -> bool:
    """Starts an (asynchronous) save of host-side ``state`` at ``step``.

    Raises:
      CheckpointWriteError: this save, or the previous asynchronous one, ran
        out of disk space.
    """
    if metrics is not None and BEST_METRIC not in metrics:
      metrics = None
    with self._disk_full_as_error(None):  # the previous async save's error
      self._manager.wait_until_finished()
    self._saving_step = step
    with self._disk_full_as_error(step):
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
    """Restores (state, this process's iterator state) saved at ``step``.

    Raises:
      CorruptCheckpointError: the step's files cannot be read back.
    """
    snapshot = IteratorStateSnapshot()
    try:
      restored = self._manager.restore(
        step,
        args=ocp.args.Composite(
          state=ocp.args.StandardRestore(target_state),
          data=grain.checkpoint.CheckpointRestore(snapshot),
        ),
      )
    except Exception:
      # A damaged file, or a target of another structure (a changed model):
      # only the first is the checkpoint's fault, so read it without one.
      check_readable(self.directory / str(step))
      raise
    return restored.state, snapshot.state

  def restore_latest(self, target_state: Any) -> tuple[int, Any, dict] | None:
    """(step, state, iterator state) of the newest checkpoint that reads back.

    Damaged checkpoints (files truncated or corrupted after they were
    written) are skipped with a warning and moved to
    ``checkpoints_damaged/`` next to ``checkpoints/``, so that the run can
    save those steps again. None when there is no intact checkpoint.
    """
    for step in sorted(self._manager.all_steps(), reverse=True):
      try:
        return (step, *self.restore(step, target_state))
      except CorruptCheckpointError as e:
        self._set_aside(step, e)
    return None

  def _set_aside(self, step: int, error: CorruptCheckpointError) -> None:
    moved = self.directory.parent / "checkpoints_damaged" / str(step)
    print(
      f"hrface_jax: WARNING: skipping the step-{step} checkpoint: {error}; "
      f"moved it to {moved}",
      file=sys.stderr,
      flush=True,
    )
    if jax.process_index() == 0:
      moved.parent.mkdir(parents=True, exist_ok=True)
      if moved.exists():  # damaged again at the same step: keep the latest
        shutil.rmtree(moved)
      os.replace(self.directory / str(step), moved)
    self._manager.reload()

  def wait(self) -> None:
    with self._disk_full_as_error(None):
      self._manager.wait_until_finished()

  def close(self) -> None:
    already_reported = self._write_failed
    try:
      with self._disk_full_as_error(None):
        self._manager.wait_until_finished()
        self._manager.close()
    except CheckpointWriteError:
      if not already_reported:
        raise
      # Already reported by the save that failed; closing cannot add to it.
      with contextlib.suppress(Exception):
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

  Raises:
    FileNotFoundError: no checkpoint at ``path``.
    CorruptCheckpointError: its files cannot be read back (names the file).
  """
  step_dir = _step_dir(epath.Path(os.path.abspath(path)))
  try:
    with ocp.Checkpointer(ocp.JsonCheckpointHandler()) as ckptr:
      saved_config = ckptr.restore(step_dir / "config")
    with ocp.StandardCheckpointer() as ckptr:
      state = ckptr.restore(step_dir / "state")
  except Exception as e:  # noqa: BLE001  (anything orbax/tensorstore raise)
    check_readable(step_dir)  # names the damaged file when it can
    raise _damaged(e, step_dir) from None
  config = config_lib.with_defaults(saved_config)
  params = jax.tree.map(np.asarray, state["ema_params"])
  return config, params, int(np.asarray(state["step"]))
