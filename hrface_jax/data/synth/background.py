"""Out-of-focus background clutter behind the head."""

from __future__ import annotations

import cv2
import numpy as np


def background(p: dict, res: int) -> np.ndarray:
  """Out-of-focus clutter on a fixed 256 grid, upsampled (uint8 RGB)."""
  n = 256
  yy, xx = np.mgrid[0:n, 0:n].astype(np.float32) / n
  c = p["bg_cols"].astype(np.float32)
  img = (
    c[0] * ((1 - xx) * (1 - yy))[..., None]
    + c[1] * (xx * (1 - yy))[..., None]
    + c[2] * ((1 - xx) * yy)[..., None]
    + c[3] * (xx * yy)[..., None]
  )
  for bx, by, br, cr, cg, cb in p["bg_blobs"]:
    gblob = np.exp(-((xx - bx) ** 2 + (yy - by) ** 2) / (2 * (0.05 + 0.2 * br) ** 2))
    img += (
      (np.array([cr, cg, cb], np.float32) - 0.5)[None, None] * 0.4 * gblob[..., None]
    )
  img = np.ascontiguousarray(img)
  for kind, v, col in p["clutter"]:
    _draw_clutter(img, kind, v, tuple(float(x) for x in col))
  img = cv2.GaussianBlur(img, (0, 0), 0.5 + p["bg_blur"])
  img = cv2.convertScaleAbs(img, alpha=255.0)
  interp = cv2.INTER_AREA if res < n else cv2.INTER_LINEAR
  return cv2.resize(img, (res, res), interpolation=interp)


def _draw_clutter(img: np.ndarray, kind: int, v: np.ndarray, colour: tuple) -> None:
  """One object of kind 0 rectangle, 1 ellipse, 2 quad, 3 line; ``v`` holds
  its 8 shape values in [0, 1]."""
  n = img.shape[0]
  pts = v.reshape(4, 2) * n
  if kind == 0:
    cv2.rectangle(
      img,
      tuple(int(x) for x in pts[0]),
      tuple(int(x) for x in pts[1]),
      colour,
      -1,
      cv2.LINE_AA,
    )
  elif kind == 1:
    cv2.ellipse(
      img,
      (int(pts[0, 0]), int(pts[0, 1])),
      (int(5 + v[2] * 40), int(5 + v[3] * 40)),
      v[4] * 180,
      0,
      360,
      colour,
      -1,
      cv2.LINE_AA,
    )
  elif kind == 2:
    cv2.fillPoly(img, [pts.astype(np.int32)], colour, cv2.LINE_AA)
  else:
    cv2.line(
      img,
      tuple(int(x) for x in pts[0]),
      tuple(int(x) for x in pts[1]),
      colour,
      int(1 + v[5] * 8),
      cv2.LINE_AA,
    )
