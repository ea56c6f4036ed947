"""Grain input pipelines (no TensorFlow): training and evaluation batches.

Training::

  it = pipeline.make_train_iterator(config)   # infinite, this process's slices
  batch = next(it)  # {'image': uint8 [B, R, R, 3], 'landmarks': f32 [B, N, 2]}
  state = it.get_state()          # JSON-serialisable dict
  it.set_state(state)             # resumes exactly (order and augmentation)

``B = config.batch_size // jax.process_count()``. The global batches are a
function of ``config.seed`` and the step alone: one shuffled, augmented stream
of examples (each augmented by its position in the stream), cut into global
batches of ``config.batch_size``; process ``p`` reads the ``p``-th slice of
``B`` examples of each (:func:`global_example_index`). So 1 process or N, 1
device or N, train on the same examples with the same augmentation, and
resuming from a saved state reproduces them exactly.

Evaluation: :func:`make_eval_iterator` (finite, deterministic, padded).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import grain
import ml_collections
import numpy as np
from absl import flags

from hrface_jax import markup as markup_lib
from hrface_jax.data import augment, builders, prepare

Batch = dict[str, np.ndarray]


def _processes(process_index: int | None, process_count: int | None) -> tuple[int, int]:
  if process_index is None or process_count is None:
    import jax  # pylint: disable=g-import-not-at-top

    process_index = jax.process_index() if process_index is None else process_index
    process_count = jax.process_count() if process_count is None else process_count
  if not 0 <= process_index < process_count:
    raise ValueError(f"process_index {process_index} not in [0, {process_count})")
  return process_index, process_count


def local_batch_size(config: ml_collections.ConfigDict, process_count: int) -> int:
  """The per-process batch size; the global batch must split evenly."""
  if config.batch_size % process_count:
    raise ValueError(
      f"batch_size {config.batch_size} is not divisible by the"
      f" {process_count} JAX processes"
    )
  return config.batch_size // process_count


def crop_to_face(config: ml_collections.ConfigDict) -> bool:
  """``config.crop_to_face``; None -> False for hrface_synth, True otherwise."""
  value = config.get("crop_to_face", None)
  if value is None:
    return prepare.parse_dataset(config.dataset)[0] != "hrface_synth"
  return bool(value)


class _FrameCache:
  """Decoded frames by example id, up to ``max_bytes`` (then no more are
  added): each frame is decoded once per process. Decoding is a pure
  function of the stored bytes, so cached and fresh frames are identical.
  Frames from frame files (rendered faces) need no cache: they are
  memory-mapped views (:mod:`hrface_jax.data.frames`)."""

  def __init__(self, max_bytes: float):
    self.max_bytes = max_bytes
    self.bytes = 0
    self.frames: dict[Any, np.ndarray] = {}

  def __getstate__(self):  # workers start with an empty cache of their own
    return {"max_bytes": self.max_bytes, "bytes": 0, "frames": {}}

  def get(self, key: Any, data: bytes) -> np.ndarray:
    frame = self.frames.get(key) if key is not None else None
    if frame is None:
      frame = builders.decode_image(data)
      if key is not None and self.bytes + frame.nbytes <= self.max_bytes:
        frame.setflags(write=False)  # shared by every later epoch
        self.frames[key] = frame
        self.bytes += frame.nbytes
    return frame


class _Preprocess(grain.transforms.RandomMap):
  """Decode + warp (+ augment) one source element; picklable for workers."""

  def __init__(self, config: ml_collections.ConfigDict, augment_: bool):
    markup = markup_lib.get_markup(config.markup)
    self.num_landmarks = markup.num_landmarks
    self.flip_permutation = markup.flip_permutation
    self.resolution = int(config.resolution)
    self.crop_to_face = crop_to_face(config)
    self.face_box_scale = float(config.face_box_scale)
    aug = config.augment.to_dict()
    self.aug = aug if augment_ and aug.get("enabled", True) else None
    self.dataset = config.dataset
    self.cache = _FrameCache(float(config.get("data_cache_gb", 0.0)) * 2**30)

  def _frame_and_landmarks(self, element: dict[str, Any]):
    """The record's decoded image and landmarks, checked: a damaged or hostile
    record stops the run naming it instead of feeding the model NaNs."""
    where = f"dataset {self.dataset!r} example {element.get('id')!r}"
    landmarks = np.asarray(element["landmarks"], np.float32)
    if landmarks.shape != (self.num_landmarks, 2):
      raise ValueError(
        f"{where} has landmarks of shape {landmarks.shape}, but the markup has"
        f" {self.num_landmarks} points: set config.markup to the dataset's markup"
      )
    if not np.isfinite(landmarks).all():
      raise ValueError(f"{where}: landmarks are not finite (NaN or inf)")
    try:
      frame = element.get("image")  # a frame file's view
      if frame is None:
        frame = self.cache.get(element.get("id"), element["image_png"])
    except ValueError as e:
      raise ValueError(f"{where}: {e}") from None
    shape = tuple(int(v) for v in element["image_shape"])
    if frame.shape != shape:
      raise ValueError(
        f"{where}: the image decodes to {frame.shape}, but the record says {shape}"
      )
    return frame, landmarks

  def __call__(self, element: dict[str, Any], rng: np.random.Generator | None):
    frame, landmarks = self._frame_and_landmarks(element)
    out = augment.preprocess(
      frame,
      landmarks,
      element["face_box"],
      resolution=self.resolution,
      crop_to_face=self.crop_to_face,
      face_box_scale=self.face_box_scale,
      aug=self.aug,
      rng=rng,
      flip_permutation=self.flip_permutation,
    )
    if not np.isfinite(out["landmarks"]).all():  # e.g. a degenerate face box
      raise ValueError(
        f"dataset {self.dataset!r} example {element.get('id')!r}: preprocessing"
        f" gave non-finite landmarks (face box {np.asarray(element['face_box'])})"
      )
    return out

  def random_map(self, element: dict[str, Any], rng: np.random.Generator):
    out = self(element, rng)
    return {"image": out["image"], "landmarks": out["landmarks"]}


class _EvalPreprocess(grain.transforms.MapWithIndex):
  def __init__(self, config: ml_collections.ConfigDict):
    self.pre = _Preprocess(config, augment_=False)

  def map_with_index(self, index: int, element: dict[str, Any]):
    out = self.pre(element, None)
    out["index"] = np.int32(index)
    out["mask"] = np.bool_(True)
    return out


def _pipeline_seed(seed: int) -> int:
  # The 0 was the process index when each process had its own stream; kept so
  # that single-process runs see the same data as before.
  return int(np.random.SeedSequence([int(seed), 0]).generate_state(1)[0])


def global_example_index(
  local_index: int, local_batch: int, process_index: int, process_count: int
) -> int:
  """Position in the global example stream of a process's ``local_index``-th.

  Global batch ``k`` is the stream's examples ``[k G, (k + 1) G)``, ``G =
  local_batch * process_count``; process ``p`` reads ``[k G + p B, k G + (p +
  1) B)`` of it, ``B = local_batch``: disjoint slices, in the order the pmap
  axis (process-major) lays out the global batch.
  """
  step, offset = divmod(local_index, local_batch)
  return (step * process_count + process_index) * local_batch + offset


class _ProcessSlices(grain.MapDataset):
  """This process's slice of every global batch of ``parent`` (a stream)."""

  def __init__(
    self, parent: grain.MapDataset, local_batch: int, process_index: int, count: int
  ):
    super().__init__(parent)
    self._local_batch, self._index, self._count = local_batch, process_index, count

  def __len__(self) -> int:
    return len(self._parent) // self._count

  def __getitem__(self, index):
    if isinstance(index, slice):
      return self.slice(index)
    return self._parent[
      global_example_index(index, self._local_batch, self._index, self._count)
    ]

  def __str__(self) -> str:
    return f"_ProcessSlices(process {self._index} of {self._count})"


def _read_options(config: ml_collections.ConfigDict, batch: int) -> grain.ReadOptions:
  threads = int(config.get("data_threads", 4))
  # The buffer holds preprocessed images: keep it to a few batches.
  buffer = max(threads, int(config.get("prefetch_batches", 2)) * batch)
  return grain.ReadOptions(num_threads=threads, prefetch_buffer_size=buffer)


def _maybe_mp(ds: grain.IterDataset, config: ml_collections.ConfigDict):
  workers = int(config.get("data_workers", 0))
  if workers <= 0:
    return ds
  if not flags.FLAGS.is_parsed():
    # Grain's workers read its absl flags; outside an absl app (notebooks,
    # tests) nothing parsed them, so let them take their defaults.
    flags.FLAGS.mark_as_parsed()
  return ds.mp_prefetch(
    grain.MultiprocessingOptions(
      num_workers=workers,
      per_worker_buffer_size=max(1, int(config.get("prefetch_batches", 2))),
    )
  )


def make_train_iterator(
  config: ml_collections.ConfigDict,
  *,
  process_index: int | None = None,
  process_count: int | None = None,
) -> grain.DatasetIterator:
  """Infinite, shuffled, augmented batches: this process's slices of the
  global batches.

  The global stream is the train split reshuffled every epoch; each process
  reads a disjoint slice of every global batch (:func:`global_example_index`),
  augmented by the example's position in the global stream. Returns a grain
  ``DatasetIterator``: ``next(it)`` gives ``{'image': uint8 [B, R, R, 3],
  'landmarks': float32 [B, N, 2]}``; ``it.get_state()`` / ``it.set_state()``
  save and restore the position (a JSON-serialisable dict).
  """
  pi, pc = _processes(process_index, process_count)
  batch = local_batch_size(config, pc)
  source = prepare.get_data_source(config, config.train_split)
  if not len(source):
    raise ValueError(
      f"train split {config.train_split!r} of {config.dataset!r} has no examples"
    )
  stream = (
    grain.MapDataset.source(source)
    .seed(_pipeline_seed(config.seed))
    .shuffle()
    .repeat()
    .random_map(_Preprocess(config, augment_=True))
  )
  ds = _ProcessSlices(stream, batch, pi, pc)
  ids = ds.to_iter_dataset(_read_options(config, batch)).batch(
    batch, drop_remainder=True
  )
  return iter(_maybe_mp(ids, config))


class EvalIterator(Iterator[Batch]):
  """Finite iterator of padded eval batches; ``len()`` is the batch count.

  Every process yields the same number of batches (so multi-host steps stay
  in lock-step); padding rows have ``mask`` False and ``index`` -1.
  """

  def __init__(
    self,
    it: Iterator[Batch],
    num_batches: int,
    batch: int,
    resolution: int,
    num_landmarks: int,
  ):
    self._it = it
    self._num_batches = num_batches
    self._batch = batch
    self._yielded = 0
    self._pad = {
      "image": np.zeros((resolution, resolution, 3), np.uint8),
      "landmarks": np.zeros((num_landmarks, 2), np.float32),
      "transform": np.eye(2, 3, dtype=np.float32),
      "index": np.int32(-1),
      "mask": np.bool_(False),
    }

  def __len__(self) -> int:
    return self._num_batches

  def __iter__(self) -> EvalIterator:
    return self

  def __next__(self) -> Batch:
    if self._yielded >= self._num_batches:
      raise StopIteration
    self._yielded += 1
    try:
      b = next(self._it)
    except StopIteration:
      b = None
    n = 0 if b is None else len(b["mask"])
    if n == self._batch:
      return b
    pads = {
      k: np.broadcast_to(v, (self._batch - n,) + np.shape(v))
      for k, v in self._pad.items()
    }
    if b is None:
      return {k: np.ascontiguousarray(v) for k, v in pads.items()}
    return {k: np.concatenate([b[k], pads[k]]) for k in self._pad}


def make_eval_iterator(
  config: ml_collections.ConfigDict,
  split: str | None = None,
  *,
  max_examples: int = 0,
  process_index: int | None = None,
  process_count: int | None = None,
) -> EvalIterator:
  """Finite, deterministic, unaugmented batches of ``split`` (default
  ``config.eval_split``; its first ``max_examples`` if > 0) for this process:
  the examples ``process_index::process_count``.

  Batches: ``image`` uint8 [B, R, R, 3], ``landmarks`` float32 [B, N, 2]
  (network pixels), ``transform`` float32 [B, 2, 3] (original-image pixels ->
  network pixels; invert it to map predictions back), ``index`` int32 [B]
  (position in the split, -1 for padding), ``mask`` bool [B].
  """
  pi, pc = _processes(process_index, process_count)
  batch = local_batch_size(config, pc)
  source = prepare.get_data_source(config, split or config.eval_split)
  n = min(len(source), max_examples) if max_examples > 0 else len(source)
  # map_with_index before slicing: the index is the position in the split.
  ds = grain.MapDataset.source(source).map_with_index(_EvalPreprocess(config))
  ds = ds[:n][pi::pc]
  num_batches = math.ceil(math.ceil(n / pc) / batch)
  ids = ds.to_iter_dataset(_read_options(config, batch)).batch(batch)
  return EvalIterator(
    iter(_maybe_mp(ids, config)),
    num_batches,
    batch,
    int(config.resolution),
    markup_lib.get_markup(config.markup).num_landmarks,
  )
