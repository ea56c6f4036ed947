"""Landmark drawing, contact sheets and atomic PNG writing.

The one implementation shared by the synthetic-data preview, evaluation's
worst/median sheets and prediction. Images are uint8 RGB [H, W, 3];
landmarks are float (x, y) pixels with pixel centres at integer coordinates,
drawn with sub-pixel accuracy through OpenCV's fixed-point ``shift``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import cv2
import numpy as np

from hrface_jax.atomic import atomic_open

_SHIFT = 4  # fixed-point bits for sub-pixel drawing
_ONE = 1 << _SHIFT

PRED_COLOUR = (255, 64, 64)
TRUE_COLOUR = (0, 255, 0)
ERROR_COLOUR = (255, 255, 0)


def _as_rgb_uint8(image: np.ndarray, name: str = "image") -> np.ndarray:
  image = np.asarray(image)
  if image.ndim == 2:
    image = np.repeat(image[..., None], 3, axis=-1)
  if image.ndim != 3 or image.shape[-1] not in (1, 3, 4):
    raise ValueError(f"{name}: expected [H, W, 3] (or [H, W]), got shape {image.shape}")
  if image.shape[-1] == 1:
    image = np.repeat(image, 3, axis=-1)
  if image.shape[-1] == 4:
    image = image[..., :3]
  if image.dtype != np.uint8:
    if np.issubdtype(image.dtype, np.floating) and image.size and image.max() <= 1.0:
      image = image * 255.0
    image = np.clip(np.round(image), 0, 255).astype(np.uint8)
  return np.ascontiguousarray(image)


def _as_points(points: np.ndarray, name: str) -> np.ndarray:
  pts = np.asarray(points, np.float64)
  if pts.ndim != 2 or pts.shape[-1] != 2:
    raise ValueError(f"{name}: expected [N, 2] (x, y) points, got shape {pts.shape}")
  return pts


def _fixed(p) -> tuple[int, int]:
  return int(round(p[0] * _ONE)), int(round(p[1] * _ONE))


def default_radius(image_shape: Sequence[int]) -> float:
  """Marker radius in pixels that stays visible after downsizing to ~512 px."""
  return max(1.0, max(image_shape[:2]) / 300.0)


def draw_landmarks(
  image: np.ndarray,
  landmarks: np.ndarray,
  color: Sequence[int] = TRUE_COLOUR,
  radius: float | None = None,
  visible: np.ndarray | None = None,
) -> np.ndarray:
  """Returns a copy of ``image`` with filled dots at ``landmarks``.

  Args:
    image: uint8 RGB [H, W, 3] (grey or float in [0, 1] is converted).
    landmarks: [N, 2] (x, y) pixels; non-finite points are skipped.
    color: RGB colour of visible points.
    radius: dot radius in pixels (default scales with the image size).
    visible: optional bool [N]; invisible points are drawn as rings.
  """
  out = _as_rgb_uint8(image).copy()
  pts = _as_points(landmarks, "landmarks")
  if visible is not None:
    visible = np.asarray(visible, bool).reshape(-1)
    if visible.shape[0] != pts.shape[0]:
      raise ValueError(
        f"visible: expected {pts.shape[0]} flags (one per landmark), "
        f"got {visible.shape[0]}"
      )
  r = default_radius(out.shape) if radius is None else float(radius)
  if r <= 0:
    raise ValueError(f"radius must be positive, got {radius}")
  colour = tuple(int(c) for c in color)
  ring = max(1, int(round(r / 3)))
  for i, p in enumerate(pts):
    if not np.all(np.isfinite(p)):
      continue
    c = _fixed(p)
    if visible is None or visible[i]:
      cv2.circle(out, c, int(round(r * _ONE)), colour, -1, cv2.LINE_AA, _SHIFT)
    else:
      cv2.circle(out, c, int(round(r * _ONE)), colour, ring, cv2.LINE_AA, _SHIFT)
  return out


def draw_comparison(
  image: np.ndarray,
  pred: np.ndarray,
  true: np.ndarray,
  radius: float | None = None,
  pred_color: Sequence[int] = PRED_COLOUR,
  true_color: Sequence[int] = TRUE_COLOUR,
  line_color: Sequence[int] = ERROR_COLOUR,
) -> np.ndarray:
  """Predicted and true landmarks in two colours joined by error lines."""
  out = _as_rgb_uint8(image).copy()
  pred = _as_points(pred, "pred")
  true = _as_points(true, "true")
  if pred.shape != true.shape:
    raise ValueError(
      f"pred {pred.shape} and true {true.shape} must have the same shape"
    )
  r = default_radius(out.shape) if radius is None else float(radius)
  thick = max(1, int(round(r / 2)))
  lc = tuple(int(c) for c in line_color)
  for p, t in zip(pred, true, strict=True):
    if np.all(np.isfinite(p)) and np.all(np.isfinite(t)):
      cv2.line(out, _fixed(p), _fixed(t), lc, thick, cv2.LINE_AA, _SHIFT)
  out = draw_landmarks(out, true, true_color, r)
  return draw_landmarks(out, pred, pred_color, r * 0.8)


def contact_sheet(
  images: Sequence[np.ndarray],
  ncols: int,
  tile_size: int,
  labels: Sequence[str] | None = None,
  background: int = 32,
) -> np.ndarray:
  """Tiles ``images`` (each fitted into tile_size x tile_size) in a grid."""
  if not len(images):
    raise ValueError("contact_sheet: no images given")
  if ncols < 1 or tile_size < 8:
    raise ValueError(
      f"contact_sheet: need ncols >= 1 and tile_size >= 8, got {ncols}, {tile_size}"
    )
  if labels is not None and len(labels) != len(images):
    raise ValueError(f"contact_sheet: {len(labels)} labels for {len(images)} images")
  n = len(images)
  ncols = min(ncols, n)
  nrows = -(-n // ncols)
  sheet = np.full((nrows * tile_size, ncols * tile_size, 3), background, np.uint8)
  for i, img in enumerate(images):
    img = _as_rgb_uint8(img, f"images[{i}]")
    h, w = img.shape[:2]
    s = tile_size / max(h, w)
    nw, nh = max(1, round(w * s)), max(1, round(h * s))
    interp = cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR
    tile = cv2.resize(img, (nw, nh), interpolation=interp)
    r, c = divmod(i, ncols)
    y0 = r * tile_size + (tile_size - nh) // 2
    x0 = c * tile_size + (tile_size - nw) // 2
    sheet[y0 : y0 + nh, x0 : x0 + nw] = tile
    if labels is not None and labels[i]:
      scale = max(0.35, tile_size / 700)
      org = (c * tile_size + 4, r * tile_size + int(18 * scale / 0.5))
      for colour, th in (((0, 0, 0), 3), ((255, 255, 255), 1)):
        cv2.putText(
          sheet,
          str(labels[i]),
          org,
          cv2.FONT_HERSHEY_SIMPLEX,
          scale,
          colour,
          th,
          cv2.LINE_AA,
        )
  return sheet


def save_png(path: str | os.PathLike, image: np.ndarray) -> str:
  """Writes an RGB image as PNG atomically (temp file + rename); makes dirs."""
  path = os.fspath(path)
  img = _as_rgb_uint8(image)
  parent = os.path.dirname(os.path.abspath(path))
  os.makedirs(parent, exist_ok=True)
  ok, buf = cv2.imencode(".png", cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
  if not ok:
    raise OSError(f"save_png: could not encode image of shape {img.shape} for {path}")
  with atomic_open(path, "wb") as f:
    f.write(buf.tobytes())
  return path
