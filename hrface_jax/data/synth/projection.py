"""Head pose and orthographic projection: rotation, silhouettes of slices."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

# (phi, y) -> head-frame points [..., 3] of a surface made of slices y.
SurfaceFn = Callable[[np.ndarray, np.ndarray], np.ndarray]


def rotation(yaw: float, pitch: float, roll: float) -> np.ndarray:
  """Head -> camera rotation (x right, y down, z towards the camera).

  Positive yaw turns the nose towards image right, positive pitch turns it
  up, positive roll turns the face clockwise in the image.
  """
  y, p, r = np.deg2rad([yaw, pitch, roll])
  ry = np.array([[np.cos(y), 0, np.sin(y)], [0, 1, 0], [-np.sin(y), 0, np.cos(y)]])
  rp = np.array([[1, 0, 0], [0, np.cos(p), -np.sin(p)], [0, np.sin(p), np.cos(p)]])
  rr = np.array([[np.cos(r), -np.sin(r), 0], [np.sin(r), np.cos(r), 0], [0, 0, 1]])
  return rr @ rp @ ry


def rotate(pts, rot: np.ndarray) -> np.ndarray:
  """``pts @ rot.T`` for [..., 3] points (numpy's matmul is slow for K=3)."""
  pts = np.asarray(pts, np.float64)
  return (
    pts[..., 0:1] * rot[:, 0] + pts[..., 1:2] * rot[:, 1] + pts[..., 2:3] * rot[:, 2]
  )


def row_bounds(
  surface_fn: SurfaceFn, rows: np.ndarray, rot: np.ndarray, m: int = 721
) -> tuple[np.ndarray, np.ndarray]:
  """Visible angle interval [phi_l, phi_r] of each slice (silhouette points).

  The interval around the most frontal point of the slice where the surface
  normal faces the camera; ends are interpolated zero crossings.
  """
  phi = np.linspace(-np.pi, np.pi, m)
  e = 1e-4
  pp = surface_fn(phi[None] + e, rows[:, None])
  pm = surface_fn(phi[None] - e, rows[:, None])
  yp = surface_fn(phi[None], rows[:, None] + e)
  ym = surface_fn(phi[None], rows[:, None] - e)
  n = np.cross(pp - pm, yp - ym)
  nz = n[..., 0] * rot[2, 0] + n[..., 1] * rot[2, 1] + n[..., 2] * rot[2, 2]
  nz /= np.linalg.norm(n, axis=-1) + 1e-12
  i0 = np.argmax(nz, axis=1)
  j = np.arange(m)[None]
  inv = nz <= 0
  left = np.where(inv & (j < i0[:, None]), j, -1).max(1)
  right = np.where(inv & (j > i0[:, None]), j, m).min(1)
  lc, rc = np.clip(left, 0, m - 2), np.clip(right, 1, m - 1)
  phi_l = np.where(left < 0, -np.pi, _zero_crossing(phi, nz, lc, lc + 1))
  phi_r = np.where(right >= m, np.pi, _zero_crossing(phi, nz, rc - 1, rc))
  return phi_l, phi_r


def _zero_crossing(phi, nz, a, b):
  """Angle where row r's ``nz`` crosses zero between samples a[r] and b[r]."""
  rr = np.arange(len(nz))
  za, zb = nz[rr, a], nz[rr, b]
  f = np.clip(-za / np.where(zb - za == 0, 1e-12, zb - za), 0, 1)
  return phi[a] + (phi[b] - phi[a]) * f


def arc_rows(fn_x, y0, y1, n):
  """``n`` rows between y0 and y1 equally spaced along the curve (fn_x(y), y)."""
  ys = np.linspace(y0, y1, 400)
  xs = fn_x(ys)
  s = np.concatenate([[0], np.cumsum(np.hypot(np.diff(xs), np.diff(ys)))])
  return np.interp(np.linspace(0, s[-1], n), s, ys)
