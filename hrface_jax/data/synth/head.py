"""The 3D head surface and the landmark template on it.

The head is made of horizontal elliptical slices (half width ``a(y)``, half
depth ``b(y)``, centre ``c(y)``) with a relief ``d(x, y)`` (nose, brow ridge,
eye sockets, cheeks, lips, chin). Landmarks 17..67 are points of a template
varied by identity and expression; the jaw points are found on the face
boundary in :mod:`geometry`.
"""

from __future__ import annotations

import numpy as np

from hrface_jax.data.synth.primitives import gauss, smoothstep

# Jaw edge of the face on each slice (radians from the front).
PHI_EDGE = 1.32


class Head:
  """The head surface and landmark template of one parameter set."""

  def __init__(self, p: dict):
    self.p = p
    self.y_top = -p["head_top"]
    self.y0 = 0.1  # widest row
    self.y_c = p["chin_y"]
    self.eye_cx = p["eye_ix"] + 0.5 * p["eye_w"]
    self.y_nose = p["nose_len"]  # nose tip row
    self.y_nb = self.y_nose + 0.12  # nose bottom (subnasale)
    self.y_mouth = self.y_nb + p["mouth_gap"]
    self.drop = p["mouth_open"] * 0.9

  # Slice profiles (neutral rows y).
  def a(self, y):
    p = self.p
    y = np.asarray(y, np.float64)
    up = np.clip((self.y0 - y) / (self.y0 - self.y_top), 0, 1)
    a_up = p["cheek_w"] * np.sqrt(np.maximum(1 - up**2, 0))
    t = np.clip((y - self.y0) / (self.y_c - self.y0), 0, 1)
    pp = p["jaw_p"]
    a_lo = (
      p["cheek_w"]
      * np.maximum(1 - t**pp, 0) ** (1 / pp)
      * (1 - (1 - p["jaw_w"]) * smoothstep(t))
    )
    return np.where(y <= self.y0, a_up, a_lo)

  def b(self, y):
    return 0.32 + 0.85 * self.a(y)

  def c(self, y):
    y = np.asarray(y, np.float64)
    front = -0.25 * smoothstep((-0.35 - y) / 0.8) - 0.04 * smoothstep(
      (y - self.y_mouth) / 0.4
    )
    return front - self.b(y)

  def relief(self, x, y):
    p = self.p
    ex = self.eye_cx
    d = np.zeros(np.broadcast(x, y).shape)
    # Nose: ridge from the nasion to the tip, then tip ball and wings.
    t = np.clip((y + 0.02) / (self.y_nose + 0.02), 0, 1)
    below = np.exp(-0.5 * (np.maximum(y - self.y_nose, 0) / 0.045) ** 2)
    w = 0.045 + 0.06 * t
    d += p["nose_h"] * t**0.8 * below * np.exp(-0.5 * (x / w) ** 2) * (y > -0.1)
    d += 0.05 * gauss(x, y, 0, self.y_nose, 0.06, 0.05)
    for s in (-1, 1):
      d += (
        p["nose_h"]
        * 0.3
        * gauss(x, y, s * p["nose_w"] * 0.75, self.y_nose + 0.05, 0.05, 0.045)
      )
      d += -0.05 * gauss(x, y, s * ex, 0.0, 0.13, 0.09)
      d += 0.035 * gauss(x, y, s * ex, 0.0, 0.09, 0.05)
      d += 0.03 * gauss(x, y, s * 0.3, -p["brow_h"] + 0.02, 0.2, 0.07)
      d += 0.04 * gauss(x, y, s * 0.42, 0.3, 0.14, 0.14)
    d += 0.04 * gauss(x, y, 0, self.y_mouth, 0.2, 0.07)
    d += 0.05 * gauss(x, y, 0, self.y_c - 0.12, 0.15, 0.1)
    return d

  def warp_y(self, y):
    """Jaw drop of an open mouth (rows below the lip line move down)."""
    return y + self.drop * smoothstep((y - self.y_mouth) / 0.1)

  def surface(self, phi, y, relief: bool = True):
    """Head-frame points of slice ``y`` (neutral) at angle ``phi`` [..., 3]."""
    phi, y = np.asarray(phi, np.float64), np.asarray(y, np.float64)
    a, b, c = self.a(y), self.b(y), self.c(y)  # per slice, before broadcasting
    x = a * np.sin(phi)
    z = c + b * np.cos(phi)
    if relief:
      z = z + np.clip(np.cos(phi) * 3, 0, 1) * self.relief(x, y)
    return np.stack(np.broadcast_arrays(x, self.warp_y(y), z), axis=-1)

  def convex(self, phi, y):
    """The slices without relief: convex, so each has one visible interval
    (the nose's underside facing away must not split a slice)."""
    return self.surface(phi, y, relief=False)

  def on_surface(self, xy):
    """3D points on the face surface for neutral head-frame (x, y) [N, 2]."""
    x, y = xy[:, 0], xy[:, 1]
    a = np.maximum(self.a(y), 1e-6)
    phi = np.arcsin(np.clip(x / a, -1, 1))
    z = self.c(y) + self.b(y) * np.cos(phi) + self.relief(x, y)
    return np.stack([x, y, z], axis=1)

  def template(self) -> tuple[np.ndarray, np.ndarray]:
    """Neutral (x, y) of landmarks 17..67 and their expression offsets.

    Returns (xy [68, 2], dxy [68, 2]); the jaw rows are filled in elsewhere.
    """
    xy = np.zeros((68, 2))
    dxy = np.zeros((68, 2))
    xy[17:27], dxy[17:27] = _brow_template(self.p)
    xy[36:48] = _eye_template(self.p)
    xy[27:36] = _nose_template(self.y_nose, self.y_nb, self.p["nose_w"])
    xy[48:68], dxy[48:68] = _mouth_template(self.p, self.y_mouth)
    return xy, dxy


def _brow_template(p: dict) -> tuple[np.ndarray, np.ndarray]:
  """Landmarks 17..26 (top edge; right brow outer -> inner at image left)."""
  xy = np.zeros((10, 2))
  dxy = np.zeros((10, 2))
  bl = p["brow_len"]
  bx = np.array([0.55, 0.46, 0.35, 0.24, 0.12]) * np.array([bl, bl, bl, 1, 1])
  by = -p["brow_h"] - p["brow_arch"] * np.array([-0.6, 0.4, 1.0, 0.8, 0.0])
  xy[:5] = np.stack([-bx, by], 1)
  xy[5:] = np.stack([bx[::-1], by[::-1]], 1)
  raise_ = -0.05 * p["brow_raise"]
  frown = p["brow_frown"] * np.array([0.0, 0.005, 0.012, 0.02, 0.03])
  dxy[:5, 1] = raise_ + frown
  dxy[:5, 0] = frown * 0.5
  dxy[5:, 1] = raise_ + frown[::-1]
  dxy[5:, 0] = -frown[::-1] * 0.5
  return xy, dxy


def _eye_template(p: dict) -> np.ndarray:
  """Landmarks 36..47. Right eye: 36 outer, 37/38 upper, 39 inner, 40/41
  lower; the left eye mirrors it: 42 inner, 43/44 upper, 45 outer, 46/47."""
  ew, ix = p["eye_w"], p["eye_ix"]
  op = p["eye_open"]
  y_out = -p["eye_tilt"] * ew * 0.5
  y_in = p["eye_tilt"] * ew * 0.5
  closed = p["eye_hl"] * ew * 0.55
  hu = closed + (-p["eye_hu"] * ew - closed) * op
  hl = closed + (p["eye_hl"] * ew - closed) * min(op, 1.0) ** 0.5
  hl -= 0.02 * max(p["smile"], 0) * ew  # cheeks push the lower lid up
  sk = p["eye_skew"]
  right = np.zeros((6, 2))
  xo, xi = -(ix + ew), -ix
  for k, (f, h, g) in enumerate(
    [
      (0, 0, 0),
      (1 / 3 - sk * 0.3, hu, 1.0 + sk),
      (2 / 3 - sk * 0.3, hu, 1.0 - sk),
      (1, 0, 0),
    ]
  ):
    x = xo + (xi - xo) * f
    right[k] = (x, y_out + (y_in - y_out) * f + h * g)
  for k, f in ((4, 2 / 3), (5, 1 / 3)):
    x = xo + (xi - xo) * f
    right[k] = (x, y_out + (y_in - y_out) * f + hl)
  mirror = right * np.array([-1, 1])
  return np.concatenate([right, mirror[[3, 2, 1, 0, 5, 4]]])


def _nose_template(yn: float, yb: float, nw: float) -> np.ndarray:
  """Landmarks 27..35: the bridge down to the tip row ``yn``, then the base
  (nostril wings at ``yb``) of half width ``nw``."""
  return np.array(
    [
      (0, -0.03),
      (0, -0.03 + (yn + 0.03) / 3),
      (0, -0.03 + 2 * (yn + 0.03) / 3),
      (0, yn),
      (-nw, yb - 0.045),
      (-nw * 0.5, yb - 0.012),
      (0, yb),
      (nw * 0.5, yb - 0.012),
      (nw, yb - 0.045),
    ]
  )


def _mouth_template(p: dict, ym: float) -> tuple[np.ndarray, np.ndarray]:
  """Landmarks 48..67 (outer lip 48..59, inner 60..67) and the offsets of a
  smile and an open mouth."""
  mw, tu, tl, bow = p["mouth_w"], p["lip_u"], p["lip_l"], p["bow"]
  xy = np.array(
    [
      (-mw, ym),
      (-0.6 * mw, ym - 0.8 * tu),
      (-0.2 * mw, ym - tu - 0.3 * bow),
      (0, ym - tu + bow),
      (0.2 * mw, ym - tu - 0.3 * bow),
      (0.6 * mw, ym - 0.8 * tu),
      (mw, ym),
      (0.6 * mw, ym + 0.8 * tl),
      (0.25 * mw, ym + tl),
      (0, ym + tl),
      (-0.25 * mw, ym + tl),
      (-0.6 * mw, ym + 0.8 * tl),
      (-0.88 * mw, ym),
      (-0.35 * mw, ym - 0.1 * tu),
      (0, ym - 0.05 * tu),
      (0.35 * mw, ym - 0.1 * tu),
      (0.88 * mw, ym),
      (0.35 * mw, ym - 0.1 * tu),
      (0, ym - 0.05 * tu),
      (-0.35 * mw, ym - 0.1 * tu),
    ]
  )
  dxy = np.zeros((20, 2))
  sm, op_m = p["smile"], p["mouth_open"]
  for i, s in ((0, -1), (6, 1), (12, -1), (16, 1)):  # corners 48, 54, 60, 64
    dxy[i] = (s * 0.04 * sm * mw / 0.24, -0.05 * sm)
  for i in (1, 5, 11, 7, 13, 15, 17, 19):  # 49, 53, 59, 55, 61, 63, 65, 67
    s = np.sign(xy[i, 0])
    dxy[i] = (s * 0.015 * sm, -0.02 * sm)
  for i in (7, 8, 9, 10, 11, 17, 18, 19):  # lower lip: 55..59, 65..67
    dxy[i, 1] += op_m * (1 - 0.45 * (abs(xy[i, 0]) / mw) ** 2)
  for i in (13, 14, 15):  # upper inner lip: 61..63
    dxy[i, 1] -= 0.08 * op_m
  return xy, dxy
