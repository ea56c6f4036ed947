"""Eyes drawn from their six landmarks: sclera, iris, lids, crease, lashes."""

from __future__ import annotations

import math

import numpy as np

from hrface_jax.data.synth.primitives import (
  catmull_rom,
  curve_normals,
  ellipse_points,
  smoothstep,
)
from hrface_jax.data.synth.raster import Canvas


def iris_pattern(seed: int, side: int) -> np.ndarray:
  """Radial fibre modulation of an iris as a function of angle (1024 samples)."""
  rng = np.random.default_rng([seed, 7, side])
  theta = np.linspace(-np.pi, np.pi, 1024, endpoint=False)
  fib = np.zeros_like(theta)
  for k in range(24):
    fib += rng.uniform(0.3, 1) * np.sin((k + 8) * 3 * theta + rng.uniform(0, 2 * np.pi))
  return (fib / 6).astype(np.float32)


def draw_eye(
  cv: Canvas,
  p: dict,
  pts: np.ndarray,
  iris: dict,
  outer_first: bool,
  seed: int,
  side: int,
) -> None:
  """One eye from its 6 landmarks (pixel coords, iBUG order)."""
  if not outer_first:  # left eye: 42 inner, 43, 44, 45 outer, 46, 47
    pts = pts[[3, 2, 1, 0, 5, 4]]
  # Now pts = outer, upper1, upper2, inner, lower2, lower1.
  upper = catmull_rom(pts[[0, 1, 2, 3]], 16)
  lower = catmull_rom(pts[[3, 4, 5, 0]], 16)
  opening = np.concatenate([upper[:-1], lower[:-1]])
  x, y = opening[:, 0], opening[:, 1]
  area = 0.5 * abs(np.dot(x, np.roll(y, 1)) - np.dot(y, np.roll(x, 1)))
  box = cv.bbox(opening, 2)
  if area > 0.5 and box is not None:
    _draw_eyeball(cv, p, pts, upper, opening, box, iris, seed, side)
  _draw_lids_and_lashes(cv, p, pts, upper, lower, seed, side)


def _draw_eyeball(cv, p, pts, upper, opening, box, iris, seed, side) -> None:
  """What the lid opening shows: sclera, iris and the caruncle."""
  x0, y0, x1, y1 = box
  ew = float(np.linalg.norm(pts[3] - pts[0]))
  m_open = cv.mask([opening], box)
  yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
  # Sclera: darker towards the corners and in the upper lid's shadow.
  cxy = 0.5 * (pts[0] + pts[3])
  dcorner = np.hypot(xx - cxy[0], yy - cxy[1]) / (0.5 * ew + 1e-6)
  order = np.argsort(upper[:, 0])
  uy = np.interp(xx, upper[order, 0], upper[order, 1]).astype(np.float32)
  below = np.exp(-np.clip((yy - uy) / (0.12 * ew + 1e-6), 0, 8))
  shade = (1 - 0.3 * np.minimum(dcorner, 1) ** 2) * (1 - 0.45 * below)
  rgb = np.array([0.93, 0.9, 0.87], np.float32) * shade[..., None]
  c = iris["c"] * cv.res - 0.5
  r_iris = 0.19 * p["eye_w"] * cv.unit
  ib = (
    max(int(c[0] - r_iris) - 2, x0),
    max(int(c[1] - r_iris) - 2, y0),
    min(int(c[0] + r_iris) + 3, x1),
    min(int(c[1] + r_iris) + 3, y1),
  )
  if ib[2] > ib[0] and ib[3] > ib[1]:
    sl = (slice(ib[1] - y0, ib[3] - y0), slice(ib[0] - x0, ib[2] - x0))
    _paint_iris(
      rgb[sl], xx[sl] - c[0], yy[sl] - c[1], below[sl], iris["n"], r_iris, p, seed, side
    )
  cv.over(box, m_open, rgb)
  # Caruncle at the inner corner.
  car = ellipse_points(
    pts[3][0] + (pts[0][0] - pts[3][0]) * 0.06, pts[3][1], 0.07 * ew, 0.05 * ew, 0, 20
  )
  cv.over(box, cv.mask([car], box) * m_open, np.asarray(p["lip_col"]) * 1.1, 0.8)


def _paint_iris(sub, dx, dy, below, n, r_iris, p, seed, side) -> None:
  """Paints the iris into ``sub`` (RGB, in place) at offsets (dx, dy) from
  its centre: pupil, collarette, limbal ring, radial fibres, catchlight; ``n``
  is the gaze direction, which foreshortens the disc."""
  nxy = math.hypot(n[0], n[1])
  ux, uy_ = (n[0] / nxy, n[1] / nxy) if nxy > 1e-6 else (1.0, 0.0)
  along = dx * ux + dy * uy_
  perp = dy * ux - dx * uy_
  rr = np.hypot(along / max(abs(n[2]), 0.2), perp) / max(r_iris, 1e-6)
  theta = np.arctan2(perp, along)
  fib = iris_pattern(seed, side)[
    ((theta + np.pi) * (1024 / (2 * np.pi))).astype(np.int32) % 1024
  ]
  col = np.asarray(p["iris_col"], np.float32)
  gain = 1 + 0.35 * fib * (rr > 0.35)
  gain *= 1 + 0.35 * np.exp(-(((rr - 0.55) / 0.08) ** 2))
  gain *= 1 - 0.6 * smoothstep((rr - 0.8) / 0.2)
  irisc = col * gain[..., None]
  pupil = np.clip(0.5 - (rr - 0.38) * r_iris, 0, 1)[..., None]
  irisc = irisc * (1 - pupil) + 0.02 * pupil
  cover = np.clip(0.5 - (rr - 1.0) * r_iris, 0, 1)[..., None]
  sub += (irisc * (1 - 0.45 * below)[..., None] - sub) * cover
  glint = np.hypot(dx + 0.3 * r_iris, dy + 0.35 * r_iris)
  hl = np.clip(0.5 - (glint - 0.12 * r_iris), 0, 1)[..., None]
  sub += (1 - sub) * hl * 0.85


def _draw_lids_and_lashes(cv, p, pts, upper, lower, seed, side) -> None:
  """Crease above the upper lid, lid lines, and lashes along the upper lid."""
  ew = float(np.linalg.norm(pts[3] - pts[0]))
  skin_dark = np.asarray(p["skin"]) * 0.55
  nrm = curve_normals(upper)
  if np.mean(nrm[:, 1]) > 0:
    nrm = -nrm  # pointing up (negative y)
  t = np.linspace(0, 1, len(upper))
  crease = upper + nrm * (0.22 + 0.1 * np.sin(np.pi * t))[:, None] * ew * 0.55
  cv.stroke([crease[3:-2]], skin_dark, 0.018 * ew, 0.35, soft=0.012 * ew)
  # Lid lines: upper thick and dark, tapered at the ends; lower thinner.
  lash = np.asarray(p["brow_col"]) * 0.4
  nseg = 6
  idx = np.linspace(0, len(upper) - 1, nseg + 1).astype(int)
  for k in range(nseg):
    tt = (k + 0.5) / nseg
    wdt = ew * (0.02 + 0.035 * math.sin(math.pi * tt) ** 0.7)
    cv.stroke([upper[idx[k] : idx[k + 1] + 1]], lash, wdt, 0.9)
  cv.stroke([lower], skin_dark * 0.8, 0.018 * ew, 0.6)
  # Lashes: short curved strokes along the upper lid.
  rng = np.random.default_rng([seed, 8, side])
  ts = np.sort(rng.uniform(0.06, 0.95, 28))
  outer_dir = (pts[0] - pts[3]) / (np.linalg.norm(pts[0] - pts[3]) + 1e-9)
  sign = 1.0 if p["eye_open"] > 0.3 else -1.0
  strokes = []
  for tl in ts:
    i = int(tl * (len(upper) - 1))
    base, nn = upper[i], nrm[i] * sign
    length = ew * rng.uniform(0.1, 0.17) * (0.6 + 0.6 * math.sin(math.pi * tl) ** 0.5)
    d1 = nn + outer_dir * (1 - tl) * 0.9
    d1 /= np.linalg.norm(d1)
    mid = base + d1 * length * 0.5
    d2 = d1 + nn * 0.6
    strokes.append(np.stack([base, mid, mid + d2 / np.linalg.norm(d2) * length * 0.5]))
  cv.stroke(strokes, lash, 0.012 * ew, 0.85)
