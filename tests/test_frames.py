"""Frame files: raw frames beside the records, read back as memory-mapped views."""

import os
import pickle

import numpy as np
import pytest

from hrface_jax.data import frames


def _frames(n, shape=(5, 7, 3)):
  rng = np.random.default_rng(0)
  return [rng.integers(0, 256, shape, np.uint8) for _ in range(n)]


def test_frames_read_back_where_they_were_written(tmp_path):
  path = frames.frame_path(tmp_path, "train")
  assert os.path.basename(path) == "frames-train.u8"
  images = _frames(3) + [np.zeros((2, 3, 3), np.uint8)]  # sizes may differ
  with frames.FrameWriter(path) as writer:
    offsets = [writer.append(im) for im in images]
  assert offsets == [0, 105, 210, 315]
  assert os.path.getsize(path) == 315 + 18
  file = frames.FrameFile(path)
  for offset, image in zip(offsets, images, strict=True):
    view = file.read(offset, image.shape)
    np.testing.assert_array_equal(view, image)
    assert not view.flags.writeable  # shared by every reader: never written
  # A frame written from a non-contiguous view is stored as its pixels.
  with frames.FrameWriter(path) as writer:
    writer.append(images[0][:, ::-1])
  np.testing.assert_array_equal(
    frames.FrameFile(path).read(0, (5, 7, 3)), images[0][:, ::-1]
  )


def test_a_failed_write_leaves_no_file(tmp_path):
  path = frames.frame_path(tmp_path, "test")
  with pytest.raises(RuntimeError, match="render failed"):
    with frames.FrameWriter(path) as writer:
      writer.append(_frames(1)[0])
      raise RuntimeError("render failed")
  assert os.listdir(tmp_path) == []
  with pytest.raises(ValueError, match="frames-test.u8: frames must be uint8"):
    with frames.FrameWriter(path) as writer:
      writer.append(np.zeros((2, 2, 3), np.float32))
  assert os.listdir(tmp_path) == []


def test_bad_frame_files_are_named(tmp_path):
  path = frames.frame_path(tmp_path, "train")
  with pytest.raises(FileNotFoundError, match="frames-train.u8: the dataset's frame"):
    frames.FrameFile(path)
  with frames.FrameWriter(path) as writer:
    writer.append(_frames(1)[0])
  file = frames.FrameFile(path)
  with pytest.raises(
    ValueError,
    match=r"frames-train.u8: a frame of shape \(5, 7, 3\) "
    r"at byte 1 lies outside the file \(105 bytes\)",
  ):
    file.read(1, (5, 7, 3))
  with pytest.raises(ValueError, match="outside the file"):
    file.read(-1, (1, 1, 3))


def test_frame_files_pickle_as_their_path(tmp_path):
  """Worker processes get the path and map the file themselves: a pickle
  never carries the pixels."""
  path = frames.frame_path(tmp_path, "train")
  big = np.full((256, 256, 3), 7, np.uint8)
  with frames.FrameWriter(path) as writer:
    writer.append(big)
  file = frames.FrameFile(path)
  file.read(0, big.shape)  # mapped
  data = pickle.dumps(file)
  assert len(data) < 1000
  np.testing.assert_array_equal(pickle.loads(data).read(0, big.shape), big)


def test_framed_source_adds_each_record_frame(tmp_path):
  path = frames.frame_path(tmp_path, "train")
  images = _frames(2)
  with frames.FrameWriter(path) as writer:
    records = [
      {
        "id": b"a%d" % i,
        "image_shape": np.array(im.shape),
        "frame_offset": writer.append(im),
      }
      for i, im in enumerate(images)
    ]
  source = frames.FramedSource(records, frames.FrameFile(path))
  assert len(source) == 2
  got = [source[i] for i in range(len(source))]
  for record, image in zip(got, images, strict=True):
    np.testing.assert_array_equal(record["image"], image)
  assert "image" not in records[0]  # the source's records are not changed
