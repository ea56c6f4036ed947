"""Drawing in pixel coordinates: exact sub-pixel coverage, patch compositing.

Edges are drawn at full resolution, each primitive only inside its bounding
box, as supersampled masks (exact sub-pixel coverage, unlike OpenCV's LINE_AA
which fattens shapes by about half a pixel).
"""

from __future__ import annotations

import math

import cv2
import numpy as np


def coverage(polys, box, size=None, fill=True, closed=True, thickness=1.0):
  """Supersampled coverage in [0, 1] of polygons (or polylines) in ``box``.

  ``size`` (w, h) renders the box at another sampling (for soft masks).
  """
  x0, y0, x1, y1 = box
  w, h = x1 - x0, y1 - y0
  wo, ho = size or (w, h)
  sx, sy = wo / w, ho / h
  k = 4 if wo * ho <= 400_000 else 2
  m = np.zeros((ho * k, wo * k), np.uint8)
  pts = [
    np.round(
      ((np.asarray(q, np.float64) - (x0, y0) + 0.5) * (sx, sy) * k - 0.5) * 16
    ).astype(np.int32)
    for q in polys
  ]
  t = thickness * math.sqrt(sx * sy) * k
  if fill:
    cv2.fillPoly(m, pts, 255, cv2.LINE_8, 4)
  else:
    cv2.polylines(m, pts, closed, 255, max(1, int(round(t))), cv2.LINE_8, 4)
  out = cv2.resize(m, (wo, ho), interpolation=cv2.INTER_AREA).astype(np.float32)
  out *= np.float32(1 / 255 * (min(t, 1.0) if not fill else 1.0))
  return out


class Canvas:
  """Full-resolution premultiplied RGBA (uint8) with patch-wise compositing."""

  def __init__(self, rgba: np.ndarray, unit_px: float):
    self.res = rgba.shape[0]
    self.unit = unit_px  # pixels per head unit
    self.rgba = rgba

  def bbox(self, pts, pad):
    lo = np.floor(pts.min(0) - pad).astype(int)
    hi = np.ceil(pts.max(0) + pad).astype(int) + 1
    x0, y0 = np.maximum(lo, 0)
    x1, y1 = np.minimum(hi, self.res)
    if x1 <= x0 or y1 <= y0:
      return None
    return int(x0), int(y0), int(x1), int(y1)

  def mask(self, polys, box, closed=True, fill=True, thickness=1.0, soft=0.0):
    """Coverage of ``polys`` in ``box``, blurred by ``soft`` pixels."""
    if soft <= 3:
      m = coverage(polys, box, None, fill, closed, thickness)
      return cv2.GaussianBlur(m, (0, 0), soft) if soft > 0.25 else m
    # Wide blur: render and blur at a lower sampling, then upsample.
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    f = 2.0 / soft
    size = (max(2, math.ceil(w * f)), max(2, math.ceil(h * f)))
    m = coverage(polys, box, size, fill, closed, thickness)
    m = cv2.GaussianBlur(m, (0, 0), soft * size[0] / w)
    return cv2.resize(m, (w, h), interpolation=cv2.INTER_LINEAR)

  def over(self, box, m, colour, alpha=1.0):
    """Composites ``colour`` (RGB or [h, w, 3]) with coverage ``m`` * alpha."""
    x0, y0, x1, y1 = box
    a = (m if alpha == 1.0 else m * np.float32(alpha))[..., None]
    patch = self.rgba[y0:y1, x0:x1].astype(np.float32)
    if np.ndim(colour) == 1:
      col = np.append(np.asarray(colour, np.float32) * 255, np.float32(255))
    else:
      col = np.concatenate(
        [
          np.asarray(colour, np.float32) * 255,
          np.full(m.shape + (1,), 255, np.float32),
        ],
        -1,
      )
    patch += (col - patch) * a
    self.rgba[y0:y1, x0:x1] = np.clip(patch + 0.5, 0, 255).astype(np.uint8)

  # Convenience drawing in pixel coordinates.
  def fill(self, polys, colour, alpha=1.0, soft=0.0):
    polys = [np.asarray(q) for q in polys]
    box = self.bbox(np.concatenate(polys), 2 + 3 * soft)
    if box is None:
      return None, None
    m = self.mask(polys, box, soft=soft)
    self.over(box, m, colour, alpha)
    return box, m

  def stroke(self, lines, colour, width, alpha=1.0, soft=0.0, closed=False):
    lines = [np.asarray(q) for q in lines]
    box = self.bbox(np.concatenate(lines), 2 + width + 3 * soft)
    if box is None:
      return
    m = self.mask(lines, box, closed, False, width, soft)
    self.over(box, m, colour, alpha)


def raster_layers(res: int, layers) -> np.ndarray:
  """Opaque flat-colour polygon layers, back to front, as premultiplied RGBA.

  Drawn without anti-aliasing at k x the resolution and area-averaged, which
  gives exact coverage at every edge in one pass.
  """
  k = 4 if res <= 1024 else 2
  hi = np.zeros((res * k, res * k, 4), np.uint8)
  for polys, col in layers:
    pts = [
      np.round(((np.asarray(q, np.float64) + 0.5) * k - 0.5) * 16).astype(np.int32)
      for q in polys
    ]
    c = tuple(float(v) for v in np.clip(np.asarray(col) * 255, 0, 255)) + (255.0,)
    cv2.fillPoly(hi, pts, c, cv2.LINE_8, 4)
  return cv2.resize(hi, (res, res), interpolation=cv2.INTER_AREA)
