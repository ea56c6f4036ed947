"""Grain pipelines: determinism, exact resumption, sharding, eval padding."""

import itertools
import json
from unittest import mock

import numpy as np
import pytest
from conftest import (
  SYNTH_RES,
  SYNTH_TEST,
  SYNTH_TRAIN,
  fake_render_face,
  make_config,
)

from hrface_jax.data import augment, builders, pipeline, prepare


def _take(it, n):
  return [next(it) for _ in range(n)]


def _assert_same(batches_a, batches_b):
  assert len(batches_a) == len(batches_b)
  for a, b in zip(batches_a, batches_b, strict=True):
    assert a.keys() == b.keys()
    for k in a:
      np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def _train(config, pi=0, pc=1):
  return pipeline.make_train_iterator(config, process_index=pi, process_count=pc)


def _seed_of(landmarks, resolution=SYNTH_RES):
  """Identifies an unaugmented stand-in face by its landmarks."""
  for seed in itertools.chain(
    range(SYNTH_TRAIN),
    range(builders.TEST_SEED_OFFSET, builders.TEST_SEED_OFFSET + SYNTH_TEST),
  ):
    if np.allclose(
      fake_render_face(seed, resolution)["landmarks"], landmarks, atol=1e-4
    ):
      return seed
  raise AssertionError("no such face")


def _seed_of_or_none(landmarks):
  try:
    return _seed_of(landmarks)
  except AssertionError:
    return None


def test_train_batches_shapes_and_determinism(synth_data_dir):
  config = make_config(synth_data_dir)
  a = _take(_train(config), 4)
  assert a[0]["image"].shape == (4, SYNTH_RES, SYNTH_RES, 3)
  assert a[0]["image"].dtype == np.uint8
  assert a[0]["landmarks"].shape == (4, 68, 2)
  assert a[0]["landmarks"].dtype == np.float32
  _assert_same(a, _take(_train(config), 4))
  other = _take(_train(make_config(synth_data_dir, seed=1)), 4)
  assert not all(
    np.array_equal(x["image"], y["image"]) for x, y in zip(a, other, strict=True)
  )


def test_train_is_shuffled_infinite_and_augmented(synth_data_dir):
  config = make_config(synth_data_dir, **{"augment.enabled": False})
  batches = _take(_train(config), 9)  # 36 examples = 3 epochs of 12
  seeds = [_seed_of(lm) for b in batches for lm in b["landmarks"]]
  epochs = [seeds[i : i + SYNTH_TRAIN] for i in range(0, 36, SYNTH_TRAIN)]
  for e in epochs:  # each epoch is a permutation of the split...
    assert sorted(e) == list(range(SYNTH_TRAIN))
  assert epochs[0] != epochs[1] != epochs[2]  # ...reshuffled every epoch
  assert epochs[0] != sorted(epochs[0])
  # Without augmentation the synth image is the stored face, untouched.
  face = fake_render_face(seeds[0], SYNTH_RES)
  np.testing.assert_array_equal(batches[0]["image"][0], face["image"])
  # With augmentation (the default) the same element differs.
  aug = _take(_train(make_config(synth_data_dir)), 1)[0]
  assert not np.array_equal(aug["landmarks"], batches[0]["landmarks"])


@pytest.mark.parametrize("n, m", [(2, 3), (3, 5)])  # the second crosses epochs
def test_resume_from_saved_state(synth_data_dir, n, m):
  config = make_config(synth_data_dir)
  it = _train(config)
  _take(it, n)
  state = json.loads(json.dumps(it.get_state()))  # as saved with a checkpoint
  expected = _take(it, m)
  resumed = _train(config)
  resumed.set_state(state)
  _assert_same(expected, _take(resumed, m))


def test_sharding_gives_processes_disjoint_examples(synth_data_dir):
  config = make_config(synth_data_dir, batch_size=4, **{"augment.enabled": False})
  seen = []
  for pi in range(2):
    batches = _take(_train(config, pi, 2), 3)  # B_local 2: one epoch of 6
    assert batches[0]["image"].shape[0] == 2
    seen.append({_seed_of(lm) for b in batches for lm in b["landmarks"]})
  assert seen[0].isdisjoint(seen[1])
  assert seen[0] | seen[1] == set(range(SYNTH_TRAIN))
  # Different processes also draw different augmentations.
  aug = make_config(synth_data_dir, batch_size=4)
  a, b = _take(_train(aug, 0, 2), 1)[0], _take(_train(aug, 1, 2), 1)[0]
  assert not np.array_equal(a["image"], b["image"])


def test_eval_iterator_pads_and_masks(synth_data_dir):
  config = make_config(synth_data_dir)
  it = pipeline.make_eval_iterator(config, "test", process_index=0, process_count=1)
  batches = list(it)
  assert len(batches) == len(it) == 2  # 5 examples, batch 4
  mask = np.concatenate([b["mask"] for b in batches])
  index = np.concatenate([b["index"] for b in batches])
  assert mask.tolist() == [True] * 5 + [False] * 3
  assert index.tolist() == [0, 1, 2, 3, 4, -1, -1, -1]
  last = batches[-1]
  assert last["image"].shape == (4, SYNTH_RES, SYNTH_RES, 3)
  assert last["transform"].shape == (4, 2, 3) and last["transform"].dtype == np.float32
  assert not last["image"][1:].any()
  # Deterministic, unaugmented: synth at its own resolution -> identity.
  for b in batches:
    for i in np.flatnonzero(b["mask"]):
      seed = _seed_of(b["landmarks"][i])
      assert seed - builders.TEST_SEED_OFFSET in range(SYNTH_TEST)
      np.testing.assert_array_equal(
        b["image"][i], fake_render_face(seed, SYNTH_RES)["image"]
      )
      np.testing.assert_allclose(b["transform"][i], np.eye(2, 3))
  _assert_same(
    batches,
    list(pipeline.make_eval_iterator(config, "test", process_index=0, process_count=1)),
  )


def test_eval_crop_transform_maps_original_landmarks(synth_data_dir):
  config = make_config(synth_data_dir, resolution=32, crop_to_face=True)
  src = builders.HrfaceSynth(
    config=builders.synth_config(SYNTH_RES, SYNTH_TRAIN, SYNTH_TEST),
    data_dir=synth_data_dir,
  ).as_data_source("test")
  for b in pipeline.make_eval_iterator(
    config, "test", process_index=0, process_count=1
  ):
    for i in np.flatnonzero(b["mask"]):
      original = src[int(b["index"][i])]["landmarks"].astype(np.float64)
      t = b["transform"][i].astype(np.float64)
      np.testing.assert_allclose(
        original @ t[:, :2].T + t[:, 2], b["landmarks"][i], atol=1e-3
      )
      assert b["image"][i].shape == (32, 32, 3)


def test_eval_sharding_equal_batch_counts(synth_data_dir):
  config = make_config(synth_data_dir, batch_size=4)
  per_process = [
    list(pipeline.make_eval_iterator(config, "test", process_index=pi, process_count=2))
    for pi in range(2)
  ]
  assert len(per_process[0]) == len(per_process[1]) == 2  # 3 and 2 examples, B 2
  idx = [
    {int(i) for b in batches for i, m in zip(b["index"], b["mask"], strict=True) if m}
    for batches in per_process
  ]
  assert idx[0].isdisjoint(idx[1]) and idx[0] | idx[1] == set(range(SYNTH_TEST))


def test_config_errors(synth_data_dir):
  with pytest.raises(ValueError, match="not divisible by the 3 JAX processes"):
    _train(make_config(synth_data_dir, batch_size=4), 0, 3)
  with pytest.raises(ValueError, match="markup has 98 points"):
    next(_train(make_config(synth_data_dir, markup="wflw98")))


def test_worker_processes_resume_exactly(synth_data_dir):
  config = make_config(synth_data_dir, data_workers=2)
  it = _train(config)
  _take(it, 2)
  state = json.loads(json.dumps(it.get_state()))
  expected = _take(it, 3)
  resumed = _train(config)
  resumed.set_state(state)
  _assert_same(expected, _take(resumed, 3))
  _assert_same(_take(_train(config), 2), _take(_train(config), 2))


class _PngRecords:
  """``source``'s records as real datasets store them: the frame as PNG bytes
  in the record, no frame file."""

  def __init__(self, source):
    self.source = source

  def __len__(self):
    return len(self.source)

  def __getitem__(self, index):
    record = dict(self.source[index])
    del record["frame_offset"]
    record["image_png"] = builders.encode_png(np.asarray(record.pop("image")))
    return record


def _png_records():
  """Patches the pipeline's data sources to :class:`_PngRecords`."""
  get = prepare.get_data_source
  return mock.patch.object(
    prepare, "get_data_source", lambda config, split: _PngRecords(get(config, split))
  )


def test_fast_high_resolution_path_gives_the_same_examples(synth_data_dir):
  """Whole-pixel shifts without rotation or zoom take the copy path of the
  warp, and decoded PNG frames come from the cache after the first epoch: the
  batches are those of the resampling path without a cache, step for step."""
  fast = {
    "augment.rotation_deg": 0.0,
    "augment.scale_min": 1.0,
    "augment.scale_max": 1.0,
    "augment.whole_pixel_shifts": True,
  }
  cached = make_config(synth_data_dir, data_cache_gb=1.0, **fast)
  plain = make_config(synth_data_dir, **fast)
  steps = 2 * SYNTH_TRAIN // plain.batch_size + 1  # past the first epoch
  with (
    _png_records(),
    mock.patch.object(augment, "_is_whole_pixel_shift", return_value=False),
  ):  # the bilinear warp, as before the fast path
    want = _take(_train(plain), steps)
  decode = builders.decode_image
  with (
    _png_records(),
    mock.patch.object(builders, "decode_image", side_effect=decode) as spy,
  ):
    _assert_same(_take(_train(cached), steps), want)
  # Each frame decoded about once, though every one was read twice or more.
  assert spy.call_count < steps * plain.batch_size - SYNTH_TRAIN // 2
  # The translation was applied (not all frames are the stored ones).
  assert any(_seed_of_or_none(lm) is None for b in want for lm in b["landmarks"])


def test_frame_files_give_the_batches_png_records_give(synth_data_dir):
  """Rendered faces' frames come from the frame file as views, not decoded,
  and give the same examples as PNG frames in the records, step for step,
  augmentation on."""
  config = make_config(synth_data_dir)
  record = prepare.get_data_source(config, "train")[0]
  assert record["image_png"] == b""
  assert isinstance(record["image"].base, np.memmap)
  steps = SYNTH_TRAIN // 4 + 2  # into the second epoch
  with mock.patch.object(builders, "decode_image") as decode:
    from_files = _take(_train(config), steps)
  decode.assert_not_called()
  with _png_records():
    assert prepare.get_data_source(config, "train")[0]["image_png"][:4] == b"\x89PNG"
    _assert_same(from_files, _take(_train(config), steps))


def test_only_decoded_frames_are_cached(synth_data_dir):
  """PNG frames: the decoded frame is kept (decoding costs), within the
  budget. Frame-file frames are views the OS caches: none is kept."""
  frame = SYNTH_RES * SYNTH_RES * 3
  config = make_config(synth_data_dir, data_cache_gb=1.0)
  pre = pipeline._Preprocess(config, True)
  for png in (True, False):
    pre.cache = pipeline._FrameCache(2.5 * frame)
    source = prepare.get_data_source(config, "train")
    if png:
      source = _PngRecords(source)
    for i in (0, 1, 2, 0):
      pre(source[i], np.random.default_rng(i))
    assert pre.cache.bytes == (2 * frame if png else 0)
    assert len(pre.cache.frames) == (2 if png else 0)
