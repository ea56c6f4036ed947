"""Face boxes for images that are not face crops: OpenCV's Haar cascade.

The frontal-face Haar cascade needs no download: OpenCV 4.x wheels ship both
``cv2.CascadeClassifier`` and the model files (``cv2.data.haarcascades``).
OpenCV 5 moved the class to the contrib module ``xobjdetect`` and its
5.0.0.93 wheels ship an empty ``cv2/data``; there, point ``cascade_path`` (or
the ``HRFACE_HAAR_CASCADE`` environment variable) at a
``haarcascade_frontalface_default.xml`` and install opencv-contrib. Without
either, :func:`detect_faces` raises :class:`FaceDetectorUnavailableError`
(callers can fall back to the whole image: :func:`whole_image_box`).

Boxes are float32 ``(x0, y0, x1, y1)`` in pixels of the given image.
"""

from __future__ import annotations

import functools
import os
from typing import Any, Protocol

import cv2
import numpy as np

CASCADE_FILE = "haarcascade_frontalface_default.xml"
CASCADE_ENV = "HRFACE_HAAR_CASCADE"

# Detector box -> landmark bounding box (the ``face_box`` convention of the
# training data: the 68 points' box). The Haar box sits high on the face (it
# reaches above the brows and stops near the chin), so the landmark box is
# moved down by LANDMARK_BOX_SHIFT of the box side and scaled by
# LANDMARK_BOX_SIZE. Literature-typical values, NOT calibrated here (see
# calibrate_landmark_box to fit them on data with ground truth).
LANDMARK_BOX_SHIFT = (0.0, 0.12)
LANDMARK_BOX_SIZE = 1.0


class FaceDetectorUnavailableError(RuntimeError):
  """OpenCV's Haar cascade (class or model file) is not installed."""


class Detector(Protocol):
  """What detect_faces needs from a detector (cv2.CascadeClassifier's API)."""

  def detectMultiScale(self, image: np.ndarray, **kwargs: Any) -> Any:  # noqa: N802
    ...


def _cascade_class():
  cls = getattr(cv2, "CascadeClassifier", None)
  if cls is None:  # OpenCV 5 + contrib.
    cls = getattr(getattr(cv2, "xobjdetect", None), "CascadeClassifier", None)
  return cls


def cascade_path(path: str | None = None) -> str | None:
  """The cascade XML to use: ``path``, $HRFACE_HAAR_CASCADE, or OpenCV's own."""
  if path:
    return path
  if os.environ.get(CASCADE_ENV):
    return os.environ[CASCADE_ENV]
  data = getattr(getattr(cv2, "data", None), "haarcascades", None)
  if data and os.path.isfile(os.path.join(data, CASCADE_FILE)):
    return os.path.join(data, CASCADE_FILE)
  return None


@functools.lru_cache(maxsize=4)
def load_cascade(path: str | None = None) -> Detector:
  """Loads (once per path) the frontal-face cascade, or says what is missing."""
  cls = _cascade_class()
  if cls is None:
    raise FaceDetectorUnavailableError(
      f"OpenCV {cv2.__version__} has no CascadeClassifier (OpenCV 5 moved it "
      "to opencv-contrib's xobjdetect). Install opencv-python-headless<5, "
      "or pass face boxes / use the whole image."
    )
  resolved = cascade_path(path)
  if resolved is None:
    raise FaceDetectorUnavailableError(
      f"no {CASCADE_FILE}: OpenCV {cv2.__version__}'s cv2.data.haarcascades "
      f"does not have it; set ${CASCADE_ENV} or pass cascade_path."
    )
  if not os.path.isfile(resolved):
    raise FaceDetectorUnavailableError(f"{resolved}: cascade file not found")
  cascade = cls(resolved)
  if cascade.empty():
    raise FaceDetectorUnavailableError(f"{resolved}: not a valid cascade file")
  return cascade


def detector_available(path: str | None = None) -> bool:
  """Whether :func:`detect_faces` can run without an explicit detector."""
  try:
    load_cascade(path)
  except FaceDetectorUnavailableError:
    return False
  return True


def detect_faces(
  image: np.ndarray,
  min_size_fraction: float = 0.1,
  *,
  max_side: int = 640,
  scale_factor: float = 1.1,
  min_neighbors: int = 5,
  cascade_path: str | None = None,
  detector: Detector | None = None,
) -> np.ndarray:
  """Face boxes in ``image``, largest first, ``float32 [K, 4]`` (x0, y0, x1, y1).

  Args:
    image: uint8 ``[H, W, 3]`` RGB (or ``[H, W]`` grey), any size.
    min_size_fraction: smallest face side, as a fraction of the image's
      shorter side.
    max_side: detection runs on a copy whose longer side is at most this
      (Haar cascades work on ~24 px windows; 8K input only costs time).
    scale_factor, min_neighbors: cv2.CascadeClassifier.detectMultiScale's.
    cascade_path: a cascade XML instead of OpenCV's (see the module doc).
    detector: anything with cv2.CascadeClassifier's ``detectMultiScale``
      (tests, other cascades); default: the cached frontal-face cascade.

  Raises:
    ValueError: the image is not uint8 [H, W] / [H, W, 1|3|4].
    FaceDetectorUnavailableError: no cascade (see the module doc).
  """
  image = np.asarray(image)
  if image.dtype != np.uint8 or not (
    image.ndim == 2 or (image.ndim == 3 and image.shape[2] in (1, 3, 4))
  ):
    raise ValueError(
      f"detect_faces: expected a uint8 [H, W, 3] image; got {image.dtype} "
      f"{list(image.shape)}"
    )
  if not 0 < min_size_fraction <= 1:
    raise ValueError(f"min_size_fraction must be in (0, 1]; got {min_size_fraction}")
  h, w = image.shape[:2]
  if h == 0 or w == 0:
    return np.zeros((0, 4), np.float32)
  if detector is None:
    detector = load_cascade(cascade_path)

  if image.ndim == 2:
    grey = image
  elif image.shape[2] == 1:
    grey = image[..., 0]
  else:
    grey = cv2.cvtColor(np.ascontiguousarray(image[..., :3]), cv2.COLOR_RGB2GRAY)
  scale = min(1.0, max_side / max(h, w))
  if scale < 1.0:
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    grey = cv2.resize(grey, size, interpolation=cv2.INTER_AREA)
    # Scale back by the per-axis ratio actually used (rounding).
    sx, sy = w / size[0], h / size[1]
  else:
    sx = sy = 1.0
  grey = cv2.equalizeHist(np.ascontiguousarray(grey))
  min_side = max(1, round(min_size_fraction * min(grey.shape[:2])))
  found = detector.detectMultiScale(
    grey,
    scaleFactor=scale_factor,
    minNeighbors=min_neighbors,
    minSize=(min_side, min_side),
  )
  found = np.asarray(found, np.float64).reshape(-1, 4)  # () when nothing found
  if len(found) == 0:
    return np.zeros((0, 4), np.float32)
  x, y, bw, bh = found.T
  boxes = np.stack([x * sx, y * sy, (x + bw) * sx, (y + bh) * sy], axis=1)
  boxes[:, 0::2] = boxes[:, 0::2].clip(0, w)
  boxes[:, 1::2] = boxes[:, 1::2].clip(0, h)
  area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
  return boxes[np.argsort(-area, kind="stable")].astype(np.float32)


def whole_image_box(shape: tuple[int, ...]) -> np.ndarray:
  """The box of the whole image ``[H, W, ...]`` (pixel-extent convention)."""
  h, w = shape[:2]
  return np.array([-0.5, -0.5, w - 0.5, h - 0.5], np.float32)


def square_face_box(
  box: np.ndarray,
  scale: float = 1.3,
  shift: tuple[float, float] = LANDMARK_BOX_SHIFT,
  size: float = LANDMARK_BOX_SIZE,
) -> np.ndarray:
  """A detector box -> the square crop box the landmark model expects.

  The crop the model is trained on (``data.augment.box_transform``) is a
  square of side ``face_box_scale * max(w, h)`` of the landmarks' bounding
  box, centred on it. From a detector box: the landmark box's centre is the
  detector box's centre + ``shift * side`` and its side ``size * side``; the
  returned square is that times ``scale`` (use the config's face_box_scale;
  then pass the square to box_transform with scale 1).

  Args:
    box: ``[4]`` or ``[K, 4]`` (x0, y0, x1, y1).

  Returns:
    float32 square box(es), same leading shape.
  """
  box = np.asarray(box, np.float64)
  if box.shape[-1] != 4:
    raise ValueError(f"box must have 4 values (x0, y0, x1, y1); got {box.shape}")
  side = np.maximum(box[..., 2] - box[..., 0], box[..., 3] - box[..., 1])
  if np.any(~(side > 0)):
    raise ValueError(f"empty face box: {box.tolist()}")
  cx = (box[..., 0] + box[..., 2]) / 2 + shift[0] * side
  cy = (box[..., 1] + box[..., 3]) / 2 + shift[1] * side
  half = scale * size * side / 2
  return np.stack([cx - half, cy - half, cx + half, cy + half], -1).astype(np.float32)


def calibrate_landmark_box(
  detections: np.ndarray, landmarks: np.ndarray
) -> tuple[tuple[float, float], float]:
  """Fits square_face_box's ``shift`` and ``size`` from matched pairs.

  Args:
    detections: ``[N, 4]`` detector boxes.
    landmarks: ``[N, L, 2]`` ground-truth points of the same faces.

  Returns:
    ``(shift, size)``: medians over faces of the landmark box's centre offset
    and of its longer side, in units of the detector box's longer side.
  """
  d = np.asarray(detections, np.float64).reshape(-1, 4)
  lm = np.asarray(landmarks, np.float64)
  if len(d) == 0 or lm.shape[0] != len(d):
    raise ValueError(
      f"need matched, non-empty detections and landmarks; got {len(d)} and "
      f"{lm.shape[0]}"
    )
  side = np.maximum(d[:, 2] - d[:, 0], d[:, 3] - d[:, 1])
  lo, hi = lm.min(axis=1), lm.max(axis=1)
  offset = ((lo + hi) / 2 - (d[:, :2] + d[:, 2:]) / 2) / side[:, None]
  lm_side = (hi - lo).max(axis=1) / side
  med = np.median(offset, axis=0)
  return (float(med[0]), float(med[1])), float(np.median(lm_side))


def iou(a: np.ndarray, b: np.ndarray) -> float:
  """Intersection over union of two (x0, y0, x1, y1) boxes."""
  a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
  iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
  ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
  inter = iw * ih
  union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
  return inter / union if union > 0 else 0.0
