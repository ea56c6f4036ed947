"""Prediction: coordinates map back to original pixels, compile reuse, the CLI.

A model trained for 4 steps is inaccurate, so the coordinate mapping is
tested by construction: the same face padded, cropped, resized or framed
differently must give landmarks moved by exactly that transformation.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest
from conftest import run_cli, shared_checkpoint
from PIL import Image

from hrface_jax import Predictor, predict
from hrface_jax.data import formats, synth
from hrface_jax.inference import face_detect
from hrface_jax.inference import predictor as predictor_lib

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> str:
  return shared_checkpoint(tmp_path_factory)


@pytest.fixture(scope="module")
def predictor(workdir) -> Predictor:
  return Predictor.from_checkpoint(workdir)


@pytest.fixture(scope="module")
def face() -> dict:
  return synth.render_face(7, 256)


def _scene(face: dict, shape=(400, 560), at=(150, 70)) -> tuple[np.ndarray, np.ndarray]:
  """The face pasted into a larger grey image; (image, landmark box)."""
  image = np.full((*shape, 3), 90, np.uint8)
  x, y = at
  image[y : y + 256, x : x + 256] = face["image"]
  lm = face["landmarks"] + np.array([x, y], np.float32)
  return image, np.concatenate([lm.min(0), lm.max(0)])


def _one(predictor, image, box=None, **kw):
  faces = predictor(image, None if box is None else box[None], **kw)
  assert len(faces) == 1
  return faces[0].landmarks.astype(np.float64)


def test_padding_and_cropping_shift_landmarks_exactly(predictor, face):
  image, box = _scene(face)
  base = _one(predictor, image, box)
  assert base.shape == (68, 2) and np.isfinite(base).all()
  # Black padding is what the warp sees outside the image anyway.
  top, left = 37, 23
  padded = np.pad(image, ((top, 11), (left, 5), (0, 0)))
  moved = _one(predictor, padded, box + np.array([left, top, left, top]))
  np.testing.assert_allclose(moved, base + [left, top], atol=2e-3)
  # Cropping away columns/rows the face crop does not see.
  dy, dx = 20, 60
  cropped = image[dy:, dx:]
  moved = _one(predictor, cropped, box - np.array([dx, dy, dx, dy]))
  np.testing.assert_allclose(moved, base - [dx, dy], atol=2e-3)


@pytest.mark.parametrize("factor", [0.5, 3.0, 15.0])
def test_resized_image_gives_scaled_landmarks(predictor, face, factor):
  """From a 280 x 200 frame (128 px face) to an 8400 x 6000 one (3840 px face)."""
  image, box = _scene(face)
  base = _one(predictor, image, box)
  h, w = image.shape[:2]
  size = (round(w * factor), round(h * factor))
  interp = cv2.INTER_AREA if factor < 1 else cv2.INTER_LINEAR
  resized = cv2.resize(image, size, interpolation=interp)
  s = np.array([size[0] / w, size[1] / h])
  # Pixel centres at integers: x -> (x + 0.5) * s - 0.5.
  new_box = (box.reshape(2, 2) + 0.5) * s - 0.5
  got = _one(predictor, resized, new_box.reshape(-1))
  expected = (base + 0.5) * s - 0.5
  # Resampling changes the network input a little; the mapping must still
  # put the points within a fraction of a network pixel of the scaled ones.
  net_pixel = (box[2:] - box[:2]).max() * predictor.box_scale / predictor.resolution
  err = np.abs(got - expected).max() / (net_pixel * factor)
  assert err < 0.75, err


@pytest.mark.parametrize("shape", [(200, 360), (360, 128), (256, 256)])
def test_whole_image_on_any_aspect_ratio(predictor, face, shape):
  """A non-square frame is fitted centred; padding it square changes nothing."""
  h, w = shape
  rng = np.random.default_rng(0)
  image = cv2.resize(face["image"], (w, h), interpolation=cv2.INTER_AREA)
  image = np.clip(image + rng.integers(0, 8, image.shape), 0, 255).astype(np.uint8)
  base = _one(predictor, image, whole_image=True)
  side = max(h, w)
  top, left = (side - h) // 2, (side - w) // 2
  if (side - h) % 2 or (side - w) % 2:
    pytest.skip("needs an even padding")
  square = np.pad(image, ((top, side - h - top), (left, side - w - left), (0, 0)))
  moved = _one(predictor, square, whole_image=True)
  np.testing.assert_allclose(moved, base + [left, top], atol=2e-3)
  faces = predictor(image, whole_image=True)
  np.testing.assert_allclose(faces[0].box, [-0.5, -0.5, w - 0.5, h - 0.5])
  assert faces[0].confidence.shape == (68,)
  assert np.all((faces[0].confidence >= 0) & (faces[0].confidence <= 1))


def test_greyscale_input_equals_grey_rgb(predictor, face):
  image, box = _scene(face)
  grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
  a = _one(predictor, grey, box)
  b = _one(predictor, np.repeat(grey[..., None], 3, 2), box)
  np.testing.assert_allclose(a, b, atol=1e-4)


def test_compiled_once_per_batch_bucket(predictor, face):
  image, box = _scene(face)
  predictor(image, box[None])
  n1 = predictor.num_compilations
  predictor(image[10:, 5:], box[None] - [5, 10, 5, 10])  # another image size
  predictor(cv2.resize(image, (300, 900)), np.array([[10, 10, 200, 250]]))
  assert predictor.num_compilations == n1
  two = np.stack([box, box + [30, 20, 30, 20]])
  faces = predictor(image, two)
  assert len(faces) == 2
  n2 = predictor.num_compilations
  assert n2 == n1 + 1  # batch bucket 2
  predictor(image, two[::-1])
  assert predictor.num_compilations == n2
  # Every face is processed, each in its own place.
  single = [_one(predictor, image, b) for b in two]
  for f, s in zip(faces, single, strict=True):
    np.testing.assert_allclose(f.landmarks, s, atol=1e-3)


def test_batch_prediction_equals_one_by_one(predictor, face):
  """Faces of several images in one call, in chunks across images, give what
  each call on its own gives (and each image gets its own faces back)."""
  image, box = _scene(face)
  other = cv2.resize(image, (280, 200))
  boxes = [
    np.stack([box, box + [30, 20, 30, 20]]),
    (box * 0.5)[None],
    np.zeros((0, 4), np.float32),  # an image without a face
  ]
  images = [image, other, image]
  batched = predictor.predict_batch(images, boxes, batch_size=2)
  assert [len(f) for f in batched] == [2, 1, 0]
  for img, bxs, got in zip(images, boxes, batched, strict=True):
    for b, f in zip(bxs, got, strict=True):
      np.testing.assert_allclose(f.landmarks, _one(predictor, img, b), atol=1e-3)
      np.testing.assert_array_equal(f.box, b)
  with pytest.raises(ValueError, match="3 images but 2 box lists"):
    predictor.predict_batch(images, boxes[:2])


def test_bad_boxes_and_images_raise(predictor):
  image = np.zeros((100, 150, 3), np.uint8)
  with pytest.raises(ValueError, match="outside"):
    predictor(image, np.array([[200, 10, 300, 90]]))
  with pytest.raises(ValueError, match="x1 > x0"):
    predictor(image, np.array([[50, 10, 40, 90]]))
  with pytest.raises(ValueError, match="uint8"):
    predictor(image.astype(np.float32))
  assert predictor(image) == []  # the detector finds nothing on black
  with pytest.raises(ValueError, match="4 numbers per box"):
    predict.parse_bbox(["1", "2", "3"])
  with pytest.raises(ValueError, match="numbers"):
    predict.parse_bbox(["a", "2", "3", "4"])
  np.testing.assert_array_equal(
    predict.parse_bbox("1,2,3,4,5,6,7,8"), [[1, 2, 3, 4], [5, 6, 7, 8]]
  )


def _run_main(argv: list[str]) -> int:
  rest = predict._parse_flags(["predict", *argv])
  with pytest.raises(SystemExit) as e:
    predict.main(rest)
  return e.value.code


def test_detected_faces_all_written_and_pts_round_trips(
  workdir, predictor, face, tmp_path, monkeypatch, capsys
):
  image, box = _scene(face)
  second = box * 0.5  # a smaller second "detection"
  real_detect = face_detect.detect_faces

  def detect(img, *args, **kw):
    # Stand-in for the Haar cascade (it does not fire on synthetic faces);
    # uniform images go to the real one, which finds nothing.
    if img.std() == 0:
      return real_detect(img, *args, **kw)
    return np.stack([box, second]).astype(np.float32)

  monkeypatch.setattr(predictor_lib.face_detect, "detect_faces", detect)
  Image.fromarray(image).save(tmp_path / "scene.png")
  Image.fromarray(np.full((300, 200, 3), 128, np.uint8)).save(tmp_path / "blank.png")
  out = tmp_path / "out"
  code = _run_main(
    [
      f"--checkpoint={workdir}",
      f"--out={out}",
      str(tmp_path / "scene.png"),
      str(tmp_path / "blank.png"),
    ]
  )
  assert code == 1
  err = capsys.readouterr().err
  assert "blank.png: no face found" in err
  assert not (out / "blank.json").exists()
  result = json.loads((out / "scene.json").read_text())
  assert (result["width"], result["height"]) == (image.shape[1], image.shape[0])
  assert len(result["faces"]) == 2
  expected = predictor(image, np.stack([box, second]))
  for f, e in zip(result["faces"], expected, strict=True):
    np.testing.assert_allclose(f["landmarks"], e.landmarks, atol=1e-3)
    assert len(f["confidence"]) == 68
  pts = formats.read_pts(out / "scene.pts")  # 1-based, the larger face
  np.testing.assert_allclose(pts - 1.0, expected[0].landmarks, atol=1e-4)
  overlay = np.asarray(Image.open(out / "scene_landmarks.png"))
  assert overlay.shape == image.shape


def test_cli_bad_inputs_are_reported_and_skipped(workdir, face, tmp_path):
  image, box = _scene(face)
  good = tmp_path / "good.jpg"
  Image.fromarray(image).save(good, quality=95)
  grey = tmp_path / "grey.pgm"  # greyscale PPM-family file
  Image.fromarray(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)).save(grey)
  data = good.read_bytes()
  (tmp_path / "truncated.jpg").write_bytes(data[: len(data) // 2])
  (tmp_path / "text.jpg").write_text("not an image\n")
  Image.fromarray(image[:60, :60]).save(tmp_path / "small.png")  # box outside it
  files = [
    good,
    tmp_path / "missing.png",
    tmp_path / "text.jpg",
    tmp_path / "truncated.jpg",
    tmp_path / "small.png",
    grey,
  ]
  out = tmp_path / "out"
  bbox = ",".join(f"{v:.2f}" for v in box)
  r = subprocess.run(
    [
      sys.executable,
      "-m",
      "hrface_jax.predict",
      f"--checkpoint={workdir}",
      f"--out={out}",
      f"--bbox={bbox}",
      *map(str, files),
    ],
    cwd=REPO,
    capture_output=True,
    text=True,
    timeout=300,
  )
  assert r.returncode == 1, r.stderr[-3000:]
  for name, why in (
    ("missing.png", "no such file"),
    ("text.jpg", "not an image"),
    ("truncated.jpg", "truncated"),
    ("small.png", "outside"),
  ):
    line = [x for x in r.stderr.splitlines() if name in x and "FAILED" in x]
    assert line and why in line[0], (name, r.stderr[-2000:])
  assert "2 of 6 images done" in r.stdout
  produced = sorted(p.name for p in out.iterdir() if not p.name.startswith("."))
  assert produced == sorted(
    f"{stem}{ext}"
    for stem in ("good", "grey")
    for ext in (".json", ".pts", "_landmarks.png")
  )
  for stem in ("good", "grey"):
    result = json.loads((out / f"{stem}.json").read_text())
    np.testing.assert_allclose(result["faces"][0]["box"], box, atol=0.01)
    pts = formats.read_pts(out / f"{stem}.pts")
    np.testing.assert_allclose(pts - 1.0, result["faces"][0]["landmarks"], atol=2e-3)

  # A malformed --bbox is refused before anything runs.
  code, _, err = run_cli(
    predict,
    f"--checkpoint={workdir}",
    f"--out={tmp_path / 'o2'}",
    "--bbox=10,10,5",
    str(good),
  )
  assert code == 1 and "--bbox=10,10,5" in err
  assert not (tmp_path / "o2" / "good.json").exists()


def test_predict_path_decodes_a_large_jpeg_only_as_finely_as_needed(
  predictor, face, tmp_path, monkeypatch
):
  """A face 6x larger than the network input in a JPEG: decoded at 1/4 (the
  smallest scale keeping the network's pixels), the landmarks land where
  decoding every pixel puts them, in full-size pixels; PNGs decode whole."""
  image, box = _scene(face)
  factor = 6 * predictor.resolution / ((box[2:] - box[:2]).max() * predictor.box_scale)
  h, w = image.shape[:2]
  size = (round(w * factor), round(h * factor))
  big = cv2.resize(image, size, interpolation=cv2.INTER_LINEAR)
  s = np.array([size[0] / w, size[1] / h])
  big_box = ((box.reshape(2, 2) + 0.5) * s - 0.5).reshape(-1)
  jpeg = str(tmp_path / "big.jpg")
  Image.fromarray(big).save(jpeg, quality=95)
  used = []
  load = predictor_lib.image_io.load_image_reduced
  monkeypatch.setattr(
    predictor_lib.image_io,
    "load_image_reduced",
    lambda p, r: used.append(r) or load(p, r),
  )
  (fast,) = predictor.predict_path(jpeg, big_box[None])
  assert used == [4]
  full = _one(predictor, predictor_lib.image_io.load_image(jpeg), big_box)
  np.testing.assert_allclose(fast.box, big_box, rtol=1e-6)
  net_pixel = (big_box[2:] - big_box[:2]).max() * predictor.box_scale
  net_pixel /= predictor.resolution
  assert np.abs(fast.landmarks - full).max() < 0.75 * net_pixel
  png = str(tmp_path / "small.png")
  Image.fromarray(image).save(png)
  (whole,) = predictor.predict_path(png, box[None])
  assert used[-1] == 1
  np.testing.assert_allclose(whole.landmarks, _one(predictor, image, box), atol=1e-3)
  with pytest.raises(ValueError, match="outside"):
    predictor.predict_path(png, np.array([[5000, 5000, 5100, 5100]]))
