"""Depth and normals of the head on a resolution-independent grid.

The grid (``GRID`` x ``GRID`` over the whole image in normalised coordinates)
serves both the landmarks' self-occlusion test and the shading, so both are
the same at every output resolution.
"""

from __future__ import annotations

import cv2
import numpy as np

from hrface_jax.data.synth.head import PHI_EDGE, Head
from hrface_jax.data.synth.params import JAW
from hrface_jax.data.synth.primitives import smoothstep
from hrface_jax.data.synth.projection import rotate

GRID = 256


def grid_normals(pts: np.ndarray) -> np.ndarray:
  """Outward unit normals of a (rows, phi, 3) surface grid."""
  a = np.gradient(pts, axis=1)
  b = np.gradient(pts, axis=0)
  n = np.stack(
    [
      a[..., 1] * b[..., 2] - a[..., 2] * b[..., 1],
      a[..., 2] * b[..., 0] - a[..., 0] * b[..., 2],
      a[..., 0] * b[..., 1] - a[..., 1] * b[..., 0],
    ],
    -1,
  )
  return n / (np.sqrt((n * n).sum(-1, keepdims=True)) + 1e-12)


def _surface_samples(head: Head, px_per_unit: float) -> tuple[np.ndarray, np.ndarray]:
  """Angles [1, nphi] and rows [ny, 1] that sample the head about once per
  grid pixel; rows uniform in the warped (open-mouth) coordinate, so
  stretched skin is sampled as densely as the rest."""
  dens = 1.05  # samples per grid pixel along each parameter direction
  ny = int(np.clip((head.y_c - head.y_top) * px_per_unit * dens, 64, 800))
  nphi = int(np.clip(4.8 * px_per_unit * dens, 64, 1200))
  phi = np.linspace(-2.4, 2.4, nphi)[None]
  yd = np.linspace(head.y_top, head.y_c, 4 * ny)
  ys = np.interp(
    np.linspace(head.warp_y(yd[0]), head.warp_y(yd[-1]), ny), head.warp_y(yd), yd
  )
  return phi, ys[:, None]


def zbuffer(
  head: Head, rot: np.ndarray, scale: float, origin: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """Nearest-surface splat of head surface samples on the GRID grid.

  Returns depth [G, G], camera-space normals [G, G, 3] and a coverage mask.
  The neck is left out: its shading is the head's extended past the chin,
  which darkens it under the jaw like a shadow.
  """
  g = GRID
  phi, ys = _surface_samples(head, scale * g)
  grid = head.surface(phi, ys)
  pts = rotate(grid.reshape(-1, 3), rot)
  nrm = rotate(grid_normals(grid).reshape(-1, 3), rot)
  uv = (pts[:, :2] * scale + origin) * g - 0.5
  ij = np.round(uv).astype(np.int64)
  ok = (ij[:, 0] >= 0) & (ij[:, 0] < g) & (ij[:, 1] >= 0) & (ij[:, 1] < g)
  ok &= np.isfinite(nrm).all(1)
  # Below the jaw angle only the face itself (the rest of those slices is
  # the jaw's underside, which the neck and its shadow cover).
  phi_max = 2.4 + (PHI_EDGE + 0.05 - 2.4) * smoothstep((ys - 0.3) / 0.45)
  ok &= (np.abs(phi) <= phi_max).reshape(-1)
  pix = ij[ok, 1] * g + ij[ok, 0]
  z = np.full(g * g, -np.inf)
  np.maximum.at(z, pix, pts[ok, 2])
  win = pts[ok, 2] == z[pix]
  normals = np.zeros((g * g, 3))
  normals[:, 2] = 1
  normals[pix[win]] = nrm[ok][win]
  z, normals = _fill_holes(z.reshape(g, g), normals.reshape(g, g, 3))
  covered = z > -1e5
  return z.astype(np.float32), normals.astype(np.float32), covered


def _fill_holes(z: np.ndarray, normals: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """Fills one-pixel holes of the splat with the nearest neighbouring surface;
  pixels no sample reached stay below -1e5."""
  filled = np.isfinite(z)
  zd = cv2.dilate(
    np.where(filled, z, -1e6).astype(np.float32), np.ones((3, 3), np.uint8)
  )
  holes = ~filled & (zd > -1e5)
  if holes.any():
    nd = np.stack(
      [
        cv2.blur(np.where(filled, normals[..., k], 0).astype(np.float32), (3, 3))
        for k in range(3)
      ],
      -1,
    )
    normals[holes] = nd[holes] / (
      np.linalg.norm(nd[holes], axis=-1, keepdims=True) + 1e-12
    )
  return np.where(filled, z, zd), normals


def visibility(g: dict) -> np.ndarray:
  """Landmarks not hidden by the head itself (z-buffer test)."""
  lm = g["landmarks"]
  lm3 = g["landmarks3"]
  ij = np.clip(np.round(lm * GRID - 0.5).astype(int), 0, GRID - 1)
  zb = g["zbuf"]
  # Nearest surface in a 3x3 neighbourhood: tolerant to the splat's sampling.
  zmin = cv2.erode(zb, np.ones((3, 3), np.uint8))
  zref = zmin[ij[:, 1], ij[:, 0]]
  vis = lm3[:, 2] >= zref - 0.04
  vis[list(JAW)] = True  # on the face boundary by construction
  return vis
