"""face_detect: box scaling/sorting (with a stand-in detector), crop boxes,
calibration, and the real Haar cascade where OpenCV ships one."""

import importlib

import numpy as np
import pytest

from hrface_jax.inference import face_detect


class FakeDetector:
  """Returns fixed (x, y, w, h) boxes and records what it was given."""

  def __init__(self, boxes):
    self.boxes = boxes
    self.calls = []

  def detectMultiScale(self, image, **kwargs):  # noqa: N802
    self.calls.append((image.shape, image.dtype, kwargs))
    return self.boxes


def test_boxes_scaled_back_and_sorted_largest_first():
  image = np.zeros((1280, 1920, 3), np.uint8)  # downscaled x1/3 to 427 x 640
  det = FakeDetector(np.array([[10, 20, 30, 30], [100, 50, 90, 90]], np.int32))
  boxes = face_detect.detect_faces(image, min_size_fraction=0.2, detector=det)
  ((shape, dtype, kwargs),) = det.calls
  assert shape == (427, 640) and dtype == np.uint8
  assert kwargs["minSize"] == (85, 85)  # 0.2 * 427
  assert boxes.dtype == np.float32 and boxes.shape == (2, 4)
  sx, sy = 1920 / 640, 1280 / 427
  np.testing.assert_allclose(
    boxes,
    [[100 * sx, 50 * sy, 190 * sx, 140 * sy], [10 * sx, 20 * sy, 40 * sx, 50 * sy]],
    rtol=1e-6,
  )


def test_small_image_not_resized_and_boxes_clipped():
  image = np.zeros((200, 300), np.uint8)  # grey input is accepted
  det = FakeDetector(np.array([[250, 150, 100, 100]]))
  boxes = face_detect.detect_faces(image, detector=det)
  assert det.calls[0][0] == (200, 300)
  np.testing.assert_array_equal(boxes, [[250, 150, 300, 200]])


def test_nothing_found_and_empty_image():
  image = np.zeros((64, 64, 3), np.uint8)
  got = face_detect.detect_faces(image, detector=FakeDetector(()))
  assert got.shape == (0, 4) and got.dtype == np.float32
  # A zero-sized image needs no detector at all.
  det = FakeDetector(np.array([[0, 0, 5, 5]]))
  for shape in [(0, 10, 3), (10, 0, 3)]:
    got = face_detect.detect_faces(np.zeros(shape, np.uint8), detector=det)
    assert got.shape == (0, 4)
  assert not det.calls


def test_bad_input():
  det = FakeDetector(())
  with pytest.raises(ValueError, match="uint8"):
    face_detect.detect_faces(np.zeros((10, 10, 3), np.float32), detector=det)
  with pytest.raises(ValueError, match="uint8"):
    face_detect.detect_faces(np.zeros((10, 10, 2), np.uint8), detector=det)
  with pytest.raises(ValueError, match="min_size_fraction"):
    face_detect.detect_faces(np.zeros((10, 10, 3), np.uint8), 0.0, detector=det)


def test_unavailable_cascade_is_explained(tmp_path):
  with pytest.raises(face_detect.FaceDetectorUnavailableError):
    face_detect.load_cascade(str(tmp_path / "missing.xml"))
  if not face_detect.detector_available():
    with pytest.raises(face_detect.FaceDetectorUnavailableError, match="OpenCV"):
      face_detect.detect_faces(np.zeros((64, 64, 3), np.uint8))


def test_square_face_box_hand_values():
  sq = face_detect.square_face_box([0, 0, 100, 80], scale=1.3, shift=(0, 0.12), size=1)
  # side 100; centre (50, 40 + 12); half side 65.
  np.testing.assert_allclose(sq, [-15, -13, 115, 117])
  many = face_detect.square_face_box(np.array([[0, 0, 100, 80], [10, 10, 20, 30]]))
  assert many.shape == (2, 4)
  w, h = many[:, 2] - many[:, 0], many[:, 3] - many[:, 1]
  np.testing.assert_allclose(w, h)  # squares
  with pytest.raises(ValueError, match="empty"):
    face_detect.square_face_box([5, 5, 5, 5])


def test_calibration_recovers_known_mapping():
  rng = np.random.default_rng(0)
  lm = rng.uniform(0, 1, (20, 68, 2)) * rng.uniform(50, 300, (20, 1, 1))
  lm += rng.uniform(0, 500, (20, 1, 2))
  lo, hi = lm.min(1), lm.max(1)
  side = (hi - lo).max(1)
  # Detector boxes: square, 0.9x the landmark box side, centred 0.1 side higher.
  det_side = side / 0.9
  c = (lo + hi) / 2 - np.stack([np.zeros(20), 0.1 * det_side], 1)
  det = np.concatenate([c - det_side[:, None] / 2, c + det_side[:, None] / 2], 1)
  shift, size = face_detect.calibrate_landmark_box(det, lm)
  assert shift == pytest.approx((0.0, 0.1), abs=1e-9)
  assert size == pytest.approx(0.9)
  # With the fitted values, square_face_box(scale=1) is the landmark box's
  # centred square.
  sq = face_detect.square_face_box(det[0], scale=1.0, shift=shift, size=size)
  np.testing.assert_allclose((sq[:2] + sq[2:]) / 2, (lo[0] + hi[0]) / 2, rtol=1e-5)
  np.testing.assert_allclose(sq[2] - sq[0], side[0], rtol=1e-5)


def test_iou():
  assert face_detect.iou([0, 0, 10, 10], [0, 0, 10, 10]) == 1
  assert face_detect.iou([0, 0, 10, 10], [5, 0, 15, 10]) == pytest.approx(50 / 150)
  assert face_detect.iou([0, 0, 1, 1], [2, 2, 3, 3]) == 0


def _render_face():
  try:
    synth = importlib.import_module("hrface_jax.data.synth")
  except ImportError:
    return None
  return getattr(synth, "render_face", None)


@pytest.mark.skipif(
  not face_detect.detector_available(),
  reason="no Haar cascade in this OpenCV (5.x moved it to contrib and ships "
  "no cascade files)",
)
def test_haar_on_synthetic_face_and_blank_image():
  assert face_detect.detect_faces(np.full((480, 640, 3), 127, np.uint8)).shape == (0, 4)
  render_face = _render_face()
  if render_face is None:
    pytest.skip("hrface_jax.data.synth.render_face does not exist yet")
  face = render_face(0, 512)
  boxes = face_detect.detect_faces(face["image"])
  assert len(boxes) >= 1, "Haar found no face on a synthetic face"
  lm = np.asarray(face["landmarks"])
  true_box = np.concatenate([lm.min(0), lm.max(0)])
  assert face_detect.iou(boxes[0], true_box) > 0.3
