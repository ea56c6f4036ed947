"""Smooth multiplicative fields over the face: light shading and skin texture.

Both are smooth at the scale of a few pixels, so they are computed on small
grids and upsampled with ``cv2.resize``.
"""

from __future__ import annotations

import cv2
import numpy as np


def skin_texture(seed: int, res: int, max_cells: int, amp: float) -> np.ndarray:
  """Multi-octave skin texture (multiplicative, around 0) sampled at ``res``.

  Octave k is a grid of 8 * 2**k cells over the whole image, the same values
  at every resolution; only octaves with at most ``max_cells`` cells (cells of
  two or more output pixels) are drawn, so the fine octaves (grain, pores)
  exist only at high resolution.
  """
  amps = np.array([0.02, 0.018, 0.015, 0.012, 0.012, 0.015, 0.02, 0.024, 0.028, 0.03])
  acc = None
  n, k = 8, 0
  while n <= max(max_cells, 8) and k < len(amps):
    rng = np.random.default_rng([seed, 1, k])
    octave = rng.standard_normal((n, n), dtype=np.float32)
    if n >= 512:  # pores: sparse dark dots on top of the fine grain
      octave -= 1.5 * np.maximum(octave - 1.3, 0)
    octave *= np.float32(amps[k] * amp)
    if acc is None:
      acc = octave
    else:
      acc = cv2.resize(acc, (n, n), interpolation=cv2.INTER_CUBIC)
      acc += octave
    n *= 2
    k += 1
  if acc.shape[0] == res:
    return acc
  interp = cv2.INTER_AREA if acc.shape[0] > res else cv2.INTER_LINEAR
  return cv2.resize(acc, (res, res), interpolation=interp)


def shading(g: dict) -> tuple[np.ndarray, np.ndarray]:
  """Diffuse and specular terms on the z-buffer grid from its normals."""
  p = g["params"]
  ok = g["zbuf_ok"]
  n = cv2.GaussianBlur(g["normals"], (0, 0), 0.7)
  n /= np.linalg.norm(n, axis=-1, keepdims=True) + 1e-6
  light = np.asarray(p["light"], np.float32)
  light /= np.linalg.norm(light)
  ndl = np.clip(n @ light, 0, 1)
  diffuse = p["ambient"] + (1 - p["ambient"]) * ndl
  half = light + np.array([0, 0, 1], np.float32)
  half /= np.linalg.norm(half)
  spec = p["specular"] * np.clip(n @ half, 0, 1) ** 24
  diffuse, spec = _extend_outside(
    [diffuse.astype(np.float32), spec.astype(np.float32)], ok
  )
  return diffuse, spec


def _extend_outside(arrays: list[np.ndarray], ok: np.ndarray) -> list[np.ndarray]:
  """Each array where the head is (``ok``), extended smoothly outside it
  (neck, hair, ears), with a soft transition so the grid's staircase never
  shows when upsampled."""
  w = ok.astype(np.float32)
  soft = cv2.GaussianBlur(w, (0, 0), 1.2) * w
  dens = {s: cv2.GaussianBlur(w, (0, 0), s) for s in (6, 24)}
  out = []
  for arr in arrays:
    mean = float(arr[ok].mean()) if ok.any() else 1.0
    # Push-pull fill: fine scale near the head, coarser further out, then the
    # mean; each blended in by its weight so the result stays smooth.
    fill = np.float32(mean)
    for sigma in (24, 6):
      num = cv2.GaussianBlur(arr * w, (0, 0), sigma)
      fill = (num + 1e-3 * fill) / (dens[sigma] + 1e-3)
    out.append((fill + (arr - fill) * soft).astype(np.float32))
  return out
