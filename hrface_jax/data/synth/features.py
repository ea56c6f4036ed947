"""Brows, nose, mouth and hair strands drawn over the flat face layers."""

from __future__ import annotations

import numpy as np

from hrface_jax.data.synth.primitives import catmull_rom, curve_normals, ellipse_points
from hrface_jax.data.synth.raster import Canvas, coverage


def draw_brow(
  cv: Canvas, p: dict, pts: np.ndarray, outer_first: bool, seed: int, side: int
) -> None:
  """A brow below its 5 top-edge landmarks: a soft band, then hair strokes."""
  if not outer_first:
    pts = pts[::-1]
  top = catmull_rom(pts, 10)
  t = np.linspace(0, 1, len(top))
  nrm = curve_normals(top)
  if np.mean(nrm[:, 1]) < 0:
    nrm = -nrm  # pointing down
  thick = p["brow_thick"] * cv.unit * (0.25 + 0.75 * t**0.6)
  bottom = top + nrm * thick[:, None]
  poly = np.concatenate([top, bottom[::-1]])
  cv.fill([poly], p["brow_col"], 0.75, soft=0.004 * cv.unit)
  rng = np.random.default_rng([seed, 9, side])
  strokes = []
  along = np.gradient(top, axis=0)
  along /= np.linalg.norm(along, axis=1, keepdims=True)
  for _ in range(90):
    tt = rng.uniform(0.08, 0.97)
    i = int(tt * (len(top) - 1))
    v = rng.uniform(0.1, 0.9)
    base = top[i] + nrm[i] * thick[i] * v
    dirv = -along[i] * (0.8 if tt < 0.8 else 0.2) - nrm[i] * (0.3 + (tt > 0.8) * 0.8)
    dirv /= np.linalg.norm(dirv)
    L = cv.unit * rng.uniform(0.025, 0.045)
    strokes.append(np.stack([base, base + dirv * L]))
  cv.stroke(strokes, np.asarray(p["brow_col"]) * 0.7, 0.004 * cv.unit, 0.5)


def draw_mouth(cv: Canvas, p: dict, lm: np.ndarray, seed: int) -> None:
  """Lips with wrinkles, the open mouth's interior and teeth, the lip line."""
  outer_up = catmull_rom(lm[[48, 49, 50, 51, 52, 53, 54]], 10)
  outer_lo = catmull_rom(lm[[54, 55, 56, 57, 58, 59, 48]], 10)
  inner_up = catmull_rom(lm[[48, 60, 61, 62, 63, 64, 54]], 10)
  inner_lo = catmull_rom(lm[[54, 64, 65, 66, 67, 60, 48]], 10)
  mw = np.linalg.norm(lm[54] - lm[48])
  lip = np.asarray(p["lip_col"])
  # Lips: upper slightly darker (faces down), lower with a highlight.
  cv.fill(
    [np.concatenate([outer_up[:-1], inner_up[::-1][:-1]])],
    lip * 0.88,
    1.0,
    soft=0.006 * mw,
  )
  cv.fill([np.concatenate([inner_lo[:-1], outer_lo[:-1]])], lip, 1.0, soft=0.006 * mw)
  hlc = 0.5 * (lm[57] + lm[66])
  cv.fill(
    [ellipse_points(hlc[0], hlc[1] - 0.05 * mw, 0.18 * mw, 0.035 * mw)],
    lip * 1.25 + 0.05,
    0.35,
    soft=0.03 * mw,
  )
  # Lip wrinkles: fine vertical strokes (detail at high resolution).
  rng = np.random.default_rng([seed, 10])
  strokes = []
  for _ in range(60):
    tt = rng.uniform(0.12, 0.88)
    upper = rng.uniform() < 0.45
    a_, b_ = (outer_up, inner_up) if upper else (outer_lo[::-1], inner_lo[::-1])
    i = int(tt * (len(a_) - 1))
    f0, f1 = rng.uniform(0.15, 0.45), rng.uniform(0.55, 0.9)
    strokes.append(
      np.stack([a_[i] + (b_[i] - a_[i]) * f0, a_[i] + (b_[i] - a_[i]) * f1])
    )
  cv.stroke(strokes, lip * 0.6, 0.004 * mw, 0.35)
  gap = np.linalg.norm(lm[66] - lm[62])
  if gap > 0.02 * mw:
    _draw_mouth_interior(cv, lm, mw, gap)
  # Lip line from corner to corner, darkest at the corners.
  cv.stroke([inner_up], lip * 0.35, 0.012 * mw, 0.85)
  if gap > 0.02 * mw:
    cv.stroke([catmull_rom(lm[[64, 65, 66, 67, 60]], 10)], lip * 0.4, 0.008 * mw, 0.6)
  for i in (48, 54):
    cv.fill(
      [ellipse_points(lm[i][0], lm[i][1], 0.03 * mw, 0.018 * mw)],
      lip * 0.3,
      0.45,
      soft=0.02 * mw,
    )


def _draw_mouth_interior(cv: Canvas, lm: np.ndarray, mw: float, gap: float) -> None:
  """Dark interior of an open mouth (inner lip 60..67) and the upper teeth."""
  tu = catmull_rom(lm[[60, 61, 62, 63, 64]], 10)
  inner = np.concatenate([tu, catmull_rom(lm[[64, 65, 66, 67, 60]], 10)])
  ib = cv.bbox(inner, 3)
  if ib is None:
    return
  mi = cv.mask([inner], ib)
  cv.over(ib, mi, (0.18, 0.05, 0.05))
  tn = curve_normals(tu)
  if np.mean(tn[:, 1]) < 0:
    tn = -tn
  teeth_h = min(0.12 * mw, 0.8 * gap)
  teeth = np.concatenate([tu, (tu + tn * teeth_h)[::-1]])
  mt = cv.mask([teeth], ib) * mi
  cv.over(ib, mt, (0.88, 0.85, 0.78))
  seps = []
  for f in (0.3, 0.42, 0.5, 0.58, 0.7):
    i = int(f * (len(tu) - 1))
    seps.append(np.stack([tu[i], tu[i] + tn[i] * teeth_h]))
  ms = cv.mask(seps, ib, closed=False, fill=False, thickness=0.008 * mw) * mi
  cv.over(ib, ms, (0.45, 0.4, 0.35), 0.6)


def draw_nose(cv: Canvas, p: dict, g: dict, lm: np.ndarray) -> None:
  """Nose base, alar creases, nostrils, tip highlight and nasolabial folds."""
  R = cv.res
  skin = np.asarray(p["skin"])
  nw = np.linalg.norm(lm[35] - lm[31])
  bottom = catmull_rom(lm[31:36], 10)
  cv.stroke([bottom], skin * 0.45, 0.05 * nw, 0.35, soft=0.04 * nw)
  for a in g["alar"]:
    cv.stroke([a * R - 0.5], skin * 0.5, 0.04 * nw, 0.45, soft=0.03 * nw)
  for n in g["nostrils"]:
    cv.fill([n * R - 0.5], skin * 0.18, 0.9, soft=0.008 * nw)
  cv.fill(
    [ellipse_points(lm[30][0], lm[30][1] - 0.05 * nw, 0.12 * nw, 0.08 * nw)],
    np.minimum(skin * 1.25 + 0.05, 1),
    0.35,
    soft=0.06 * nw,
  )
  for f in g["folds"]:
    cv.stroke([f * R - 0.5], skin * 0.6, 0.04 * nw, 0.25, soft=0.06 * nw)


def draw_hair_strands(
  cv: Canvas, p: dict, front: np.ndarray, hairline: np.ndarray, seed: int
) -> None:
  """Fine strands combed back from the hairline, clipped to the hair."""
  box = cv.bbox(front, 2)
  if box is None:
    return
  rng = np.random.default_rng([seed, 11])
  unit = cv.unit
  target = np.array([front[:, 0].mean(), front[:, 1].min()])
  strands = []
  for _ in range(160):
    base = hairline[rng.integers(len(hairline))] + rng.uniform(-0.05, 0.05, 2) * unit
    toward = target - base
    toward /= np.linalg.norm(toward) + 1e-9
    length = rng.uniform(0.15, 0.5) * unit
    mid = base + toward * length * 0.5 + rng.normal(0, 0.03, 2) * unit
    strands.append(np.stack([base, mid, base + toward * length]))
  m = coverage(strands, box, fill=False, closed=False, thickness=0.004 * unit)
  m *= coverage([front], box)
  shade = np.clip(np.asarray(p["hair_col"]) * rng.uniform(0.5, 1.6) + 0.03, 0, 1)
  cv.over(box, m, shade, 0.5)
