"""Occluders: an object (blob, bar, rounded rectangle) in front of the face."""

from __future__ import annotations

import math

import numpy as np

from hrface_jax.data.synth.raster import Canvas, coverage


def occluder_polygon(g: dict, occ: dict) -> np.ndarray:
  """Occluder outline (normalised coords) near a target landmark."""
  lm = g["landmarks"]
  lo, hi = lm.min(0), lm.max(0)
  side = float(max(hi - lo))
  c = lm[occ["target"]] + np.asarray(occ["offset"]) * side * 0.3
  r = occ["size"] * side
  kind = occ["kind"]
  th = np.linspace(0, 2 * np.pi, 72, endpoint=False)
  if kind == 0:  # blob
    rad = np.interp(
      th, np.linspace(0, 2 * np.pi, 10), np.append(occ["shape"], occ["shape"][0])
    )
    pts = np.stack([np.cos(th) * rad * r, np.sin(th) * rad * r * occ["aspect"]], 1)
  elif kind == 1:  # bar (hand-held object, strand of hair)
    w = r * 0.25 * occ["aspect"]
    pts = np.array([[-2 * r, -w], [2 * r, -w], [2 * r, w], [-2 * r, w]])
  else:  # rounded rectangle
    sq = (
      np.sign(np.cos(th)) * np.abs(np.cos(th)) ** 0.4,
      np.sign(np.sin(th)) * np.abs(np.sin(th)) ** 0.4,
    )
    pts = np.stack([sq[0] * r, sq[1] * r * occ["aspect"]], 1)
  ca, sa = math.cos(occ["angle"]), math.sin(occ["angle"])
  pts = pts @ np.array([[ca, sa], [-sa, ca]])
  return pts + c


def draw_occluder(img: np.ndarray, cv: Canvas, q: np.ndarray, col) -> None:
  """Composites the occluder polygon ``q`` (pixels) over the uint8 RGB
  ``img`` in place, in colour ``col`` lit from above (darker at its bottom)."""
  ob = cv.bbox(q, 2)
  if ob is None:
    return
  om = coverage([q], ob)[..., None]
  ox0, oy0, ox1, oy1 = ob
  yy = np.linspace(0, 1, oy1 - oy0, dtype=np.float32)[:, None, None]
  col = np.asarray(col, np.float32) * 255 * (1.1 - 0.4 * yy)
  sub = img[oy0:oy1, ox0:ox1].astype(np.float32)
  sub += (col - sub) * om
  img[oy0:oy1, ox0:ox1] = np.clip(sub + 0.5, 0, 255).astype(np.uint8)
