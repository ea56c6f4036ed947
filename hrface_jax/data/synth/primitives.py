"""Small numeric and 2D-curve helpers shared by the geometry and the drawing."""

from __future__ import annotations

import math

import numpy as np


def smoothstep(t):
  """0 below 0, 1 above 1, a smooth cubic ramp in between."""
  t = np.clip(t, 0.0, 1.0)
  return t * t * (3.0 - 2.0 * t)


def gauss(x, y, cx, cy, sx, sy):
  """Unnormalised axis-aligned 2D Gaussian bump (1 at its centre)."""
  return np.exp(-0.5 * (((x - cx) / sx) ** 2 + ((y - cy) / sy) ** 2))


def catmull_rom(points: np.ndarray, n: int = 12, closed: bool = False) -> np.ndarray:
  """Dense curve through ``points`` [K, 2] (passes through every point).

  Centripetal parameterisation (no cusps or overshoot); open curves extrapolate
  their end tangents. ``n`` samples per segment.
  """
  p = np.asarray(points, np.float64)
  if len(p) < 2:
    return p.copy()
  if closed:
    ext = np.concatenate([p[-1:], p, p[:2]])
  else:
    ext = np.concatenate([2 * p[:1] - p[1:2], p, 2 * p[-1:] - p[-2:-1]])
  out = []
  t = np.linspace(0.0, 1.0, n, endpoint=False)[:, None]
  nseg = len(p) if closed else len(p) - 1
  for i in range(nseg):
    p0, p1, p2, p3 = ext[i], ext[i + 1], ext[i + 2], ext[i + 3]
    d01 = max(np.linalg.norm(p1 - p0) ** 0.5, 1e-6)
    d12 = max(np.linalg.norm(p2 - p1) ** 0.5, 1e-6)
    d23 = max(np.linalg.norm(p3 - p2) ** 0.5, 1e-6)
    m1 = p2 - p1 + d12 * ((p1 - p0) / d01 - (p2 - p0) / (d01 + d12))
    m2 = p2 - p1 + d12 * ((p3 - p2) / d23 - (p3 - p1) / (d12 + d23))
    t2, t3 = t * t, t * t * t
    seg = (
      (2 * t3 - 3 * t2 + 1) * p1
      + (t3 - 2 * t2 + t) * m1
      + (-2 * t3 + 3 * t2) * p2
      + (t3 - t2) * m2
    )
    out.append(seg)
  if not closed:
    out.append(p[-1:])
  return np.concatenate(out)


def curve_normals(curve: np.ndarray) -> np.ndarray:
  """Unit normals (tangent rotated by +90 degrees: (tx, ty) -> (-ty, tx))."""
  t = np.gradient(curve, axis=0)
  t /= np.linalg.norm(t, axis=1, keepdims=True) + 1e-12
  return np.stack([-t[:, 1], t[:, 0]], axis=1)


def ellipse_points(cx, cy, rx, ry, angle=0.0, n=48) -> np.ndarray:
  """``n`` points [n, 2] on an ellipse rotated by ``angle`` radians."""
  th = np.linspace(0, 2 * np.pi, n, endpoint=False)
  c, s = math.cos(angle), math.sin(angle)
  x, y = rx * np.cos(th), ry * np.sin(th)
  return np.stack([cx + c * x - s * y, cy + s * x + c * y], axis=1)


def points_in_polygon(points: np.ndarray, polygon: np.ndarray) -> np.ndarray:
  """Even-odd point-in-polygon test, vectorised over ``points`` [N, 2]."""
  x, y = points[:, 0:1], points[:, 1:2]
  x0, y0 = polygon[:, 0][None], polygon[:, 1][None]
  x1, y1 = np.roll(x0, -1, axis=1), np.roll(y0, -1, axis=1)
  cond = (y0 > y) != (y1 > y)
  with np.errstate(divide="ignore", invalid="ignore"):
    xint = x0 + (y - y0) * (x1 - x0) / (y1 - y0)
  crossings = np.sum(cond & (x < xint), axis=1)
  return (crossings % 2) == 1
