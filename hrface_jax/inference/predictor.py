"""Landmarks for faces in arbitrary images, from Python.

    from hrface_jax import Predictor
    predictor = Predictor.from_checkpoint("runs/quickstart")
    faces = predictor(image_uint8)            # list of Face, largest first
    faces[0].landmarks                        # [68, 2] in the image's pixels

Each face is cut out of the full-resolution image around its box (detected,
given, or the whole image), warped to the model's resolution, and the model's
landmarks are mapped back to the original pixels. The jitted model is
compiled once per input size bucket (batch of faces), then reused.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import jax
import ml_collections
import numpy as np

from hrface_jax import checkpointing, image_io, models
from hrface_jax.data import augment
from hrface_jax.inference import face_detect

SYNTH_FRAME_PER_FACE_BOX = 1.6


@dataclasses.dataclass
class Face:
  box: np.ndarray  # [4] x0, y0, x1, y1 in image pixels (detector or given box)
  landmarks: np.ndarray  # [L, 2] x, y in image pixels
  confidence: np.ndarray  # [L] in [0, 1]


def check_boxes(boxes: np.ndarray, width: int, height: int) -> None:
  """Raises ValueError unless every box is finite, non-empty and overlaps the image."""
  for b in np.asarray(boxes, np.float64).reshape(-1, 4):
    text = ",".join(f"{v:g}" for v in b)
    if not np.isfinite(b).all() or not (b[2] > b[0] and b[3] > b[1]):
      raise ValueError(f"box {text}: expected x0,y0,x1,y1 with x1 > x0 and y1 > y0")
    if b[2] <= -0.5 or b[3] <= -0.5 or b[0] >= width - 0.5 or b[1] >= height - 0.5:
      raise ValueError(f"box {text} lies outside the {width} x {height} image")


def _bucket(n: int) -> int:
  """Batch-size bucket: next power of two, so few shapes get compiled."""
  return 1 << max(n - 1, 0).bit_length()


class Predictor:
  """A trained model plus the pre- and post-processing around it."""

  def __init__(self, config: ml_collections.ConfigDict, params: Any):
    self.config = config
    self.params = jax.device_put(params)
    self.resolution = int(config.resolution)
    model = models.build_model(config)

    def apply(params, images):
      out = model.apply({"params": params}, images, train=False)
      return out["landmarks"], out["confidence"]

    self._apply = jax.jit(apply)

  @classmethod
  def from_checkpoint(cls, path: str) -> Predictor:
    """From a workdir (best, else latest checkpoint) or a checkpoint step folder."""
    config, params, _ = checkpointing.load_for_inference(path)
    return cls(config, params)

  @property
  def num_compilations(self) -> int:
    """How many input shapes (batch buckets) the model has been compiled for."""
    return self._apply._cache_size()  # pylint: disable=protected-access

  @property
  def crop_to_face(self) -> bool:
    """Whether the model was trained on face-box crops (else whole frames)."""
    # As data.pipeline.crop_to_face, without importing the data stack:
    # None means True for real datasets, False for hrface_synth.
    value = self.config.get("crop_to_face", None)
    if value is None:
      return str(self.config.get("dataset", "")).partition("/")[0] != "hrface_synth"
    return bool(value)

  @property
  def box_scale(self) -> float:
    """How much larger than the face box the network's square input is."""
    if self.crop_to_face:
      return float(self.config.face_box_scale)
    # Trained on whole synthetic frames, where the face box spans 45-80% of
    # the side: give it faces framed the same way.
    return SYNTH_FRAME_PER_FACE_BOX

  def face_crop(
    self, image: np.ndarray, box: np.ndarray | None
  ) -> tuple[np.ndarray, np.ndarray]:
    """(network image [R, R, 3], affine [2, 3] image -> network pixels).

    ``box=None`` fits the whole frame (centred, aspect kept).
    """
    if box is None:
      h, w = image.shape[:2]
      matrix = augment.frame_transform(h, w, self.resolution)[:2]
    else:
      # A detector-style box -> the square around where the landmarks' box
      # would be, framed as in training.
      square = face_detect.square_face_box(box, scale=self.box_scale)
      matrix = augment.box_transform(square, self.resolution, 1.0)[:2]
    return augment.warp_image(image, matrix, self.resolution), matrix

  def __call__(
    self,
    image: np.ndarray,
    boxes: np.ndarray | None = None,
    *,
    whole_image: bool = False,
  ) -> list[Face]:
    """Landmarks of every face in ``image`` (uint8 [H, W, 3]).

    Args:
      image: the full-resolution image.
      boxes: [K, 4] face boxes (x0, y0, x1, y1) as a face detector gives them;
        default: detect faces.
      whole_image: treat the whole image as one face (no detection).
    """
    return self.predict_batch([image], [boxes], whole_image=whole_image)[0]

  def predict_path(
    self,
    path: str,
    boxes: np.ndarray | None = None,
  ) -> list[Face]:
    """Landmarks of the faces in the image file at ``path``, as :meth:`__call__`.

    With ``boxes`` given, a JPEG is decoded only as finely as the model needs:
    at 1/2, 1/4 or 1/8 of its size (DCT scaling, an area average) while the
    smallest face's network input still gets at least the model's resolution
    in pixels. Decoding every pixel of a 4K frame takes longer than the
    prediction itself. Without boxes, faces are detected on every pixel.
    Landmarks and boxes are in the full-size image's pixels either way.
    """
    if boxes is None:
      return self(image_io.load_image(path))
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    # The network input is a square of box side x box_scale (face_crop).
    sides = (boxes[:, 2:] - boxes[:, :2]).max(1) * self.box_scale
    side = float(sides.min()) if len(sides) else 0.0
    reduce = 1
    while reduce < 8 and side / (2 * reduce) >= self.resolution:
      reduce *= 2
    image, f = image_io.load_image_reduced(path, reduce)
    check_boxes(boxes, image.shape[1] * f, image.shape[0] * f)  # full-size pixels
    faces = self(image, (boxes + 0.5) / f - 0.5)
    for face, box in zip(faces, boxes, strict=True):
      face.landmarks = ((face.landmarks + 0.5) * f - 0.5).astype(np.float32)
      face.box = box
    return faces

  def predict_batch(
    self,
    images: Sequence[np.ndarray],
    boxes: Sequence[np.ndarray | None] | None = None,
    *,
    whole_image: bool = False,
    batch_size: int | None = None,
  ) -> list[list[Face]]:
    """Landmarks of every face in every image, batched across images.

    ``boxes[i]`` are image i's face boxes (None: detect). The faces of all
    images go through the model ``batch_size`` at a time (padded to a power of
    two, so few shapes compile; default :attr:`default_batch_size`), and the
    next batch is cut out and warped on the host while the model runs on the
    last one. Returns one list per image, as :meth:`__call__` would.
    """
    batch_size = self.default_batch_size if batch_size is None else batch_size
    if batch_size < 1:
      raise ValueError(f"batch_size={batch_size}: must be >= 1")
    if boxes is not None and len(boxes) != len(images):
      raise ValueError(f"{len(images)} images but {len(boxes)} box lists")
    images = [_as_rgb(image) for image in images]
    # (image index, box) of every face, boxes checked before any work.
    todo = [
      (i, b)
      for i, image in enumerate(images)
      for b in self._face_boxes(image, None if boxes is None else boxes[i], whole_image)
    ]
    faces: list[list[Face]] = [[] for _ in images]
    running = None  # ((image index, box) pairs, matrices, result) in flight
    for start in range(0, len(todo), batch_size):
      chunk = todo[start : start + batch_size]
      cut = [self.face_crop(images[i], None if whole_image else b) for i, b in chunk]
      batch = np.zeros((_bucket(len(cut)), *cut[0][0].shape), np.uint8)
      batch[: len(cut)] = np.stack([crop for crop, _ in cut])
      # Dispatch is asynchronous: the host goes on to the next batch's warps.
      result = self._apply(self.params, batch)
      if running is not None:
        self._collect(*running, faces)
      running = (chunk, [m for _, m in cut], result)
    if running is not None:
      self._collect(*running, faces)
    return faces

  @property
  def default_batch_size(self) -> int:
    """Faces per model call: 64 on accelerators; 4 on CPU, where batching
    buys nothing and large batches outgrow the caches (quickstart model on 2
    cores, model alone: 22.8 ms a face at batch 1, 23.1 at 4, 36.8 at 64;
    2026-12-01)."""
    return 4 if jax.default_backend() == "cpu" else 64

  @staticmethod
  def _collect(chunk, matrices, result, faces: list[list[Face]]) -> None:
    """Maps one batch's network points back to image pixels, into ``faces``."""
    landmarks, confidence = jax.device_get(result)
    for j, ((owner, box), m) in enumerate(zip(chunk, matrices, strict=True)):
      points = (landmarks[j].astype(np.float64) - m[:, 2]) @ np.linalg.inv(m[:, :2]).T
      faces[owner].append(
        Face(
          box=box,
          landmarks=points.astype(np.float32),
          confidence=np.asarray(confidence[j], np.float32),
        )
      )

  def _face_boxes(
    self, image: np.ndarray, boxes: np.ndarray | None, whole_image: bool
  ) -> np.ndarray:
    """[K, 4] checked face boxes of ``image`` (given, detected or the frame)."""
    h, w = image.shape[:2]
    if whole_image:
      boxes = face_detect.whole_image_box(image.shape)[None]
    elif boxes is None:
      boxes = face_detect.detect_faces(image)
    boxes = np.asarray(boxes, np.float32)
    if boxes.size % 4 or (boxes.ndim > 1 and boxes.shape[-1] != 4):
      raise ValueError(f"boxes must be [K, 4] (x0, y0, x1, y1); got {boxes.shape}")
    boxes = boxes.reshape(-1, 4)
    if len(boxes):
      check_boxes(boxes, w, h)
    return boxes


def _as_rgb(image: np.ndarray) -> np.ndarray:
  """uint8 [H, W, 3] (greyscale repeated), or a ValueError saying what it is."""
  image = np.asarray(image)
  if image.ndim == 3 and image.shape[2] == 1:
    image = image[..., 0]
  if image.dtype == np.uint8 and image.ndim == 2:  # greyscale
    image = np.repeat(image[..., None], 3, axis=2)
  if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
    raise ValueError(
      f"expected a uint8 [H, W, 3] image, got {image.dtype} {list(image.shape)}"
    )
  h, w = image.shape[:2]
  if h < 2 or w < 2:
    raise ValueError(f"image of {w} x {h} pixels is too small")
  return image
