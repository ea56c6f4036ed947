"""TFDS builders: iBUG .pts folders, WFLW, hrface_synth; bad input; prepare."""

import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import (
  SYNTH_RES,
  build_fake_synth,
  fake_render_face,
  make_config,
  write_ibug_pair,
  write_image,
)

from hrface_jax.data import builders, formats, frames, prepare


@pytest.fixture
def ibug_tree(tmp_path):
  """300-W style: helen/{trainset,testset}, afw; mixed extension cases."""
  root = tmp_path / "300w"
  files = {}
  for folder, stem, ext in [
    ("helen/trainset", "h1", ".jpg"),
    ("helen/trainset", "h2", ".PNG"),
    ("helen/testset", "t1", ".png"),
    ("helen/testset", "t2", ".jpg"),
    ("afw", "a1", ".JPEG"),
  ]:
    files[f"{folder}/{stem}.pts"] = write_ibug_pair(
      str(root / folder), stem, ext, seed=len(files), h=30 + len(files), w=44
    )
  (root / "afw" / "notes.txt").write_text("ignored")
  write_image(root / "afw" / "unannotated.jpg", 10, 10, 9)  # no .pts: ignored
  return str(root), files


def _examples(builder, split):
  src = prepare.data_source(builder, split)
  return {src[i]["id"].decode(): src[i] for i in range(len(src))}


def test_ibug_folder_builds_with_0_based_coordinates(ibug_tree, tmp_path):
  root, files = ibug_tree
  b = builders.build(builders.IbugPts(data_dir=str(tmp_path / "data")), root)
  train, test = _examples(b, "train"), _examples(b, "test")
  assert sorted(test) == ["helen/testset/t1.pts", "helen/testset/t2.pts"]
  assert sorted(train) == [
    "afw/a1.pts",
    "helen/trainset/h1.pts",
    "helen/trainset/h2.pts",
  ]
  for key, ex in {**train, **test}.items():
    image, pts = files[key]
    np.testing.assert_allclose(ex["landmarks"], pts - 1, atol=1e-4)
    assert ex["landmarks"].dtype == np.float32
    np.testing.assert_array_equal(ex["image_shape"], image.shape)
    np.testing.assert_array_equal(builders.decode_image(ex["image_png"]), image)
    np.testing.assert_allclose(
      ex["face_box"], [*(pts - 1).min(0), *(pts - 1).max(0)], atol=1e-4
    )
  assert b.info.metadata["markup"] == "ibug68"


def test_ibug_hash_holdout_without_test_folders():
  paths = [f"lfpw/img_{i:04d}.pts" for i in range(2000)]
  splits = builders.assign_ibug_splits(paths)
  frac = sum(s == "test" for s in splits.values()) / len(paths)
  assert 0.07 < frac < 0.13
  # Stable: a file's split does not depend on the other files.
  again = builders.assign_ibug_splits(paths[:500])
  assert all(again[p] == splits[p] for p in paths[:500])


def test_ibug_test_dirs_are_configurable():
  paths = ["helen/testset/a.pts", "ibug/b.pts", "afw/c.pts", "Test/d.pts"]
  assert builders.assign_ibug_splits(paths) == {
    "helen/testset/a.pts": "test",
    "ibug/b.pts": "train",
    "afw/c.pts": "train",
    "Test/d.pts": "test",
  }
  custom = builders.assign_ibug_splits(paths, ("testset", "ibug"))
  assert [custom[p] for p in paths] == ["test", "test", "train", "train"]


def _corrupt(kind, root):
  """Makes one example of the tree bad; returns (file named, problem)."""
  t1 = os.path.join(root, "helen/testset/t1")
  if kind == "missing_image":
    os.remove(t1 + ".png")
    return t1 + ".pts", "no image with the same stem"
  if kind == "undecodable_image":
    with open(t1 + ".png", "wb") as f:
      f.write(b"\x89PNG not really")
    return t1 + ".png", "does not decode"
  if kind == "wrong_point_count":
    formats.write_pts(t1 + ".pts", np.ones((39, 2)))
    return t1 + ".pts", "has 39 points, expected 68"
  if kind in ("malformed_number", "nan"):
    lines = open(t1 + ".pts").read().splitlines()
    lines[3 + 5] = "1.2.3 4" if kind == "malformed_number" else "nan 4"
    open(t1 + ".pts", "w").write("\n".join(lines) + "\n")
    return t1 + ".pts:9", "malformed number '1.2.3'" if kind != "nan" else "NaN"
  raise AssertionError(kind)


BAD_KINDS = [
  "missing_image",
  "undecodable_image",
  "wrong_point_count",
  "malformed_number",
  "nan",
]


@pytest.mark.parametrize("kind", BAD_KINDS)
def test_ibug_bad_input_fails_cleanly_or_is_skipped(ibug_tree, tmp_path, kind):
  root, _ = ibug_tree
  named, problem = _corrupt(kind, root)
  data_dir = tmp_path / "data"
  with pytest.raises(ValueError) as e:
    builders.build(builders.IbugPts(data_dir=str(data_dir)), root)
  assert named in str(e.value) and problem in str(e.value)
  # Nothing half-built: no dataset folder at all, and not "prepared".
  assert not (data_dir / "ibug_pts").exists(), list(data_dir.rglob("*"))
  assert not builders.IbugPts(data_dir=str(data_dir)).is_prepared()

  b = builders.build(builders.IbugPts(data_dir=str(data_dir), skip_bad=True), root)
  assert b.info.splits["test"].num_examples == 1
  assert b.info.splits["train"].num_examples == 3
  assert len(b.skipped["test"]) == 1 and problem in b.skipped["test"][0]
  # The count survives on disk (prepare reports it).
  reread = builders.IbugPts(data_dir=str(data_dir))
  assert len(reread.info.metadata["skipped"]["test"]) == 1
  assert "skipped 1" in prepare.summary(reread)


def test_ibug_unknown_point_count_is_an_error(tmp_path):
  for i in range(2):
    write_ibug_pair(str(tmp_path / "src"), f"x{i}", ".png", seed=i, n=10)
  with pytest.raises(ValueError, match="10 points, which matches no known markup"):
    builders.build(
      builders.IbugPts(data_dir=str(tmp_path / "data"), skip_bad=True),
      str(tmp_path / "src"),
    )
  assert not (tmp_path / "data" / "ibug_pts").exists()


def _wflw_tree(root, n_train=2, n_test=1):
  rng = np.random.default_rng(3)
  ann_dir = os.path.join(root, builders.WFLW_ANNOTATIONS)
  os.makedirs(ann_dir)
  truth = {}
  for split, n in (("train", n_train), ("test", n_test)):
    lines = []
    for i in range(n):
      name = f"{i // 2}--Parade/{split}_{i // 2}.jpg"  # two faces share an image
      path = os.path.join(root, "WFLW_images", name)
      os.makedirs(os.path.dirname(path), exist_ok=True)
      image = write_image(path, 50, 60, seed=i) if not os.path.exists(path) else None
      coords = np.round(rng.uniform(0, 50, 196), 4)
      box = [1, 2, 40, 45]
      attrs = [int(v) for v in rng.integers(0, 2, 6)]
      lines.append(
        " ".join([*map(str, coords), *map(str, box), *map(str, attrs), name])
      )
      truth[(split, i)] = (coords.reshape(98, 2), box, attrs, name, image)
    with open(os.path.join(ann_dir, f"list_98pt_rect_attr_{split}.txt"), "w") as f:
      f.write("\n".join(lines) + "\n")
  return truth


def test_wflw_builds_with_coordinates_unchanged(tmp_path):
  root = str(tmp_path / "WFLW")
  truth = _wflw_tree(root, n_train=3, n_test=1)
  b = builders.build(builders.Wflw(data_dir=str(tmp_path / "data")), root)
  assert b.info.splits["train"].num_examples == 3
  train = _examples(b, "train")
  for (split, i), (coords, box, attrs, name, _) in truth.items():
    if split != "train":
      continue
    ex = train[f"{name}#{1 + i % 2}"]
    np.testing.assert_allclose(ex["landmarks"], coords, atol=1e-4)  # 0-based
    np.testing.assert_array_equal(ex["face_box"], box)
    np.testing.assert_array_equal(ex["attributes"], attrs)
  ex = train[f"{truth[('train', 0)][3]}#1"]
  np.testing.assert_array_equal(
    builders.decode_image(ex["image_png"]), truth[("train", 0)][4]
  )


def test_wflw_missing_image(tmp_path):
  root = str(tmp_path / "WFLW")
  _wflw_tree(root, n_train=2, n_test=3)  # test faces 0 and 1 share test_0.jpg
  gone = os.path.join(root, "WFLW_images", "0--Parade", "test_0.jpg")
  os.remove(gone)
  data_dir = str(tmp_path / "data")
  with pytest.raises(ValueError, match=f"{gone}: image file is missing"):
    builders.build(builders.Wflw(data_dir=data_dir), root)
  assert not (tmp_path / "data" / "wflw").exists()
  b = builders.build(builders.Wflw(data_dir=data_dir, skip_bad=True), root)
  assert b.info.splits["test"].num_examples == 1
  assert len(b.skipped["test"]) == 2


def test_split_with_every_example_bad_is_a_clear_error(tmp_path):
  root = str(tmp_path / "WFLW")
  _wflw_tree(root, n_train=2, n_test=1)
  os.remove(os.path.join(root, "WFLW_images", "0--Parade", "test_0.jpg"))
  with pytest.raises(ValueError, match="split 'test' has no usable examples"):
    builders.build(builders.Wflw(data_dir=str(tmp_path / "data"), skip_bad=True), root)
  assert not (tmp_path / "data" / "wflw").exists()


def test_synth_builder_seeds_and_sizes(tmp_path, fake_synth):
  del fake_synth
  d = str(tmp_path / "data")
  assert builders.synth_config(1024) == "r1024"
  cfg = builders.synth_config(SYNTH_RES, 6, 3)
  assert cfg.name == f"r{SYNTH_RES}_t6_e3"
  b = builders.build(builders.HrfaceSynth(config=cfg, data_dir=d, num_workers=1))
  train, test = _examples(b, "train"), _examples(b, "test")
  assert sorted(train) == [f"synth_{s}" for s in range(6)]
  assert sorted(test) == [f"synth_{builders.TEST_SEED_OFFSET + s}" for s in range(3)]
  face = fake_render_face(4, SYNTH_RES)
  np.testing.assert_array_equal(train["synth_4"]["landmarks"], face["landmarks"])
  np.testing.assert_array_equal(train["synth_4"]["image"], face["image"])
  # The same test seeds at another resolution (like-with-like sweeps).
  b2 = builders.build(
    builders.HrfaceSynth(
      config=builders.synth_config(2 * SYNTH_RES, 2, 3), data_dir=d, num_workers=1
    )
  )
  assert sorted(_examples(b2, "test")) == sorted(test)
  with pytest.raises(ValueError, match="needs explicit train/test sizes"):
    builders.synth_config(100)


def test_a_killed_build_is_cleared_away_by_the_next(tmp_path, fake_synth):
  """A build killed mid-way leaves TFDS's incomplete.* folder (gigabytes at
  4096^2); the next build of the dataset removes it."""
  del fake_synth
  config = builders.synth_config(SYNTH_RES, 3, 2)
  b = builders.HrfaceSynth(config=config, data_dir=str(tmp_path), num_workers=1)
  folder = os.path.dirname(os.fspath(b.data_path))
  stale = os.path.join(folder, f"incomplete.K1LLED_{b.version}")
  os.makedirs(stale)
  with open(os.path.join(stale, "frames-train.u8.tmp"), "wb") as f:
    f.write(b"\0" * 1000)
  builders.build(b)
  assert not os.path.exists(stale)
  assert sorted(os.listdir(folder)) == [".build.lock", str(b.version)]
  assert len(_examples(b, "train")) == 3


def test_synth_builder_with_real_renderer(tmp_path):
  synth = pytest.importorskip("hrface_jax.data.synth")
  b = builders.build(
    builders.HrfaceSynth(
      config=builders.synth_config(256, 2, 1), data_dir=str(tmp_path), num_workers=1
    )
  )
  ex = _examples(b, "test")[f"synth_{builders.TEST_SEED_OFFSET}"]
  face = synth.render_face(builders.TEST_SEED_OFFSET, 256)
  np.testing.assert_array_equal(ex["image"], face["image"])
  np.testing.assert_allclose(ex["landmarks"], face["landmarks"])
  assert ex["image_shape"].tolist() == [256, 256, 3]
  # The record holds no pixels: the frame is a read-only view of the split's
  # frame file, the only other file beside the records.
  assert ex["image_png"] == b""
  assert not ex["image"].flags.writeable
  assert isinstance(ex["image"].base, np.memmap)
  for split, n in (("train", 2), ("test", 1)):
    path = frames.frame_path(b.data_dir, split)
    assert os.path.getsize(path) == n * 256 * 256 * 3
  assert not [f for f in os.listdir(b.data_dir) if f.startswith(".tmp")]


def test_ensure_prepared_builds_synth_but_not_real_datasets(tmp_path, fake_synth):
  del fake_synth
  config = make_config(str(tmp_path), synth_train_size=3, synth_test_size=2)
  src = prepare.get_data_source(config, "train")
  assert len(src) == 3
  assert len(prepare.get_data_source(config, "test")) == 2
  with pytest.raises(ValueError, match="no split 'validation'"):
    prepare.get_data_source(config, "validation")
  config.dataset = "wflw"
  with pytest.raises(FileNotFoundError, match="python -m hrface_jax.data.prepare"):
    prepare.get_data_source(config, "train")
  config.dataset = "nope"
  with pytest.raises(ValueError, match="unknown dataset 'nope'"):
    prepare.get_data_source(config, "train")


def test_prepare_cli_builds_and_reports(ibug_tree, tmp_path):
  root, _ = ibug_tree
  _corrupt("nan", root)
  out = subprocess.run(
    [
      sys.executable,
      "-m",
      "hrface_jax.data.prepare",
      "--dataset=ibug_pts",
      f"--manual_dir={root}",
      f"--data_dir={tmp_path / 'd'}",
      "--config_name=w300",
      "--test_dirs=testset,afw",
      "--skip_bad",
    ],
    capture_output=True,
    text=True,
    timeout=120,
    check=True,
  )
  assert "train: 2 examples" in out.stdout, out.stdout
  assert "test: 2 examples" in out.stdout and "skipped 1" in out.stdout
  assert "NaN" in out.stdout
  config = make_config(str(tmp_path / "d"), dataset="ibug_pts/w300")
  assert len(prepare.get_data_source(config, "test")) == 2


def test_a_split_larger_than_the_shuffle_buffer_builds_without_tensorflow(
  tmp_path, monkeypatch
):
  """TFDS spills a split past its in-memory buffer (1 GB: 40 4096^2 PNGs) to
  bucket files through tf.io.gfile; without TensorFlow they are local files."""
  from tensorflow_datasets.core import shuffle

  monkeypatch.setattr(shuffle, "MAX_MEM_BUFFER_SIZE", 1000)  # spill at once
  builder = build_fake_synth(str(tmp_path), 32, 6, 3)
  assert builder.info.splits["train"].num_examples == 6
  source = builder.as_data_source("train")
  ids = sorted(source[i]["id"] for i in range(len(source)))
  assert ids == sorted(f"synth_{i}".encode() for i in range(6))
