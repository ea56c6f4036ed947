"""Synthetic high-resolution faces with exact iBUG-68 landmarks.

A face is a pure function of ``(seed, resolution)``. Every geometric and
appearance parameter is drawn from ``np.random.default_rng(seed)`` in a
resolution-independent frame, so the same seed at 256 and 4096 pixels is the
same face: the landmarks agree exactly once scaled, and the image differs only
in detail. Noise fields (skin texture, sensor noise) come from generators
seeded with ``[seed, stream]``; a texture octave is the same grid of values in
normalised image coordinates at every resolution, and octaves finer than about
two pixels are only drawn where the image has the pixels for them.

Model. The head is a 3D surface made of horizontal elliptical slices (half
width ``a(y)``, half depth ``b(y)``, centre ``c(y)``) with a relief ``d(x, y)``
(nose, brow ridge, eye sockets, cheeks, lips, chin). Landmarks are points on
that surface (a 3D template varied by identity and expression), rotated by
yaw/pitch/roll and projected orthographically. Jaw landmarks lie on the face
boundary: the jaw edge of the face where it faces the camera, the silhouette
where it has turned away (landmark marching). The image is layered:
background clutter, clothes, neck, hair, ears, head, face, features (brows,
eyes with lids/lashes/iris, nose, lips), shaded by a directional light from a
z-buffer of the surface, textured, then optional occluder, blur and noise.

Speed. Smooth fields (background, shading, low texture octaves) are rendered
on small grids and upsampled with ``cv2.resize``; edges are drawn at full
resolution, each primitive only inside its bounding box, as supersampled masks
(exact sub-pixel coverage, unlike OpenCV's LINE_AA which fattens shapes by
about half a pixel).

Coordinates: a point at normalised position ``u`` in [0, 1] is at pixel
``u * R - 0.5`` (pixel centres at integer coordinates).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import cv2
import numpy as np

NUM_LANDMARKS = 68
# Grid of the resolution-independent buffers (z-buffer, shading), covering the
# whole image in normalised coordinates.
_G = 256
# Jaw edge of the face on each slice (radians from the front).
_PHI_EDGE = 1.32

# Landmark index groups (iBUG-68, 0-based).
JAW = tuple(range(0, 17))
RIGHT_BROW = tuple(range(17, 22))
LEFT_BROW = tuple(range(22, 27))
NOSE = tuple(range(27, 36))
RIGHT_EYE = tuple(range(36, 42))
LEFT_EYE = tuple(range(42, 48))
MOUTH = tuple(range(48, 68))


# ---------------------------------------------------------------------------
# Small helpers.


def _smoothstep(t):
  t = np.clip(t, 0.0, 1.0)
  return t * t * (3.0 - 2.0 * t)


def _gauss(x, y, cx, cy, sx, sy):
  return np.exp(-0.5 * (((x - cx) / sx) ** 2 + ((y - cy) / sy) ** 2))


def _catmull_rom(points: np.ndarray, n: int = 12, closed: bool = False) -> np.ndarray:
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
    m1 = (p2 - p1 + d12 * ((p1 - p0) / d01 - (p2 - p0) / (d01 + d12))) * 1.0
    m2 = (p2 - p1 + d12 * ((p3 - p2) / d23 - (p3 - p1) / (d12 + d23))) * 1.0
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


def _normals(curve: np.ndarray) -> np.ndarray:
  """Unit normals (tangent rotated by +90 degrees: (tx, ty) -> (-ty, tx))."""
  t = np.gradient(curve, axis=0)
  t /= np.linalg.norm(t, axis=1, keepdims=True) + 1e-12
  return np.stack([-t[:, 1], t[:, 0]], axis=1)


def _ellipse_pts(cx, cy, rx, ry, angle=0.0, n=48) -> np.ndarray:
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


# ---------------------------------------------------------------------------
# Parameters.


def _mix(c0, c1, t):
  return np.asarray(c0, np.float64) * (1 - t) + np.asarray(c1, np.float64) * t


_HAIR_COLOURS = np.array(
  [
    [0.05, 0.04, 0.035],
    [0.16, 0.10, 0.06],
    [0.32, 0.20, 0.11],
    [0.55, 0.40, 0.22],
    [0.78, 0.64, 0.40],
    [0.50, 0.22, 0.10],
    [0.62, 0.60, 0.58],
  ]
)
_SKIN_TONES = np.array(
  [
    [0.97, 0.82, 0.72],
    [0.92, 0.73, 0.61],
    [0.82, 0.60, 0.47],
    [0.68, 0.47, 0.34],
    [0.50, 0.33, 0.23],
    [0.33, 0.21, 0.15],
  ]
)
_IRIS_COLOURS = np.array(
  [
    [0.25, 0.14, 0.07],
    [0.40, 0.25, 0.10],
    [0.30, 0.45, 0.60],
    [0.35, 0.45, 0.30],
    [0.45, 0.48, 0.50],
    [0.15, 0.09, 0.05],
  ]
)


def sample_params(seed: int) -> dict:
  """All random choices of face ``seed`` (resolution-independent)."""
  r = np.random.default_rng(seed)
  u = r.uniform
  p: dict = {}
  # Identity (head units: about 10 cm; eye level y = 0, y points down).
  p["head_top"] = u(1.05, 1.2)
  p["cheek_w"] = u(0.66, 0.77)
  p["chin_y"] = u(1.08, 1.24)
  p["jaw_p"] = u(2.5, 3.6)
  p["jaw_w"] = u(0.85, 1.0)
  p["jaw_top"] = u(0.06, 0.16)
  p["eye_ix"] = u(0.14, 0.18)
  p["eye_w"] = u(0.25, 0.32)
  p["eye_tilt"] = u(-0.05, 0.15)
  p["eye_hu"] = u(0.27, 0.38)
  p["eye_hl"] = u(0.13, 0.2)
  p["eye_skew"] = u(-0.1, 0.1)
  p["brow_h"] = u(0.2, 0.3)
  p["brow_len"] = u(0.9, 1.08)
  p["brow_arch"] = u(0.02, 0.08)
  p["brow_thick"] = u(0.04, 0.08)
  p["nose_len"] = u(0.38, 0.5)
  p["nose_w"] = u(0.13, 0.19)
  p["nose_h"] = u(0.18, 0.3)
  p["mouth_gap"] = u(0.22, 0.34)  # nose bottom to lip line
  p["mouth_w"] = u(0.2, 0.27)
  p["lip_u"] = u(0.045, 0.08)
  p["lip_l"] = u(0.055, 0.1)
  p["bow"] = u(0.0, 0.02)
  p["neck_w"] = u(0.42, 0.52)
  p["ear_s"] = u(0.85, 1.1)
  # Expression.
  p["mouth_open"] = 0.0 if u() < 0.55 else u(0.03, 0.2)
  p["smile"] = u(-0.4, 1.0)
  p["brow_raise"] = float(np.clip(r.normal(0, 0.5), -1, 1))
  p["brow_frown"] = max(0.0, u(-0.5, 1.0))
  e = u()
  p["eye_open"] = (
    u(0.8, 1.1) if e < 0.8 else (u(0.25, 0.75) if e < 0.94 else u(0, 0.08))
  )
  p["gaze"] = (u(-0.22, 0.22), u(-0.1, 0.1))
  # Pose (degrees).
  p["yaw"] = float(np.clip(r.normal(0, 18), -42, 42))
  p["pitch"] = float(np.clip(r.normal(0, 9), -22, 22))
  p["roll"] = float(np.clip(r.normal(0, 10), -30, 30))
  # Placement: landmark box side as a fraction of the image, and position.
  p["box_frac"] = u(0.45, 0.8)
  p["pos"] = (u(), u())
  # Appearance.
  tone = u() * (len(_SKIN_TONES) - 1)
  i = min(int(tone), len(_SKIN_TONES) - 2)
  p["skin"] = _mix(_SKIN_TONES[i], _SKIN_TONES[i + 1], tone - i) * (
    1 + r.normal(0, 0.03, 3)
  )
  p["lip_col"] = p["skin"] * np.array([0.86, 0.55, 0.55]) * u(0.8, 1.0)
  p["hair_col"] = _HAIR_COLOURS[r.integers(len(_HAIR_COLOURS))] * u(0.8, 1.2)
  p["brow_col"] = _mix(p["hair_col"], [0.08, 0.06, 0.05], u(0.2, 0.7))
  p["iris_col"] = _IRIS_COLOURS[r.integers(len(_IRIS_COLOURS))] * u(0.8, 1.2)
  p["hair_vol"] = u(0.05, 0.2)
  p["hair_len"] = u(-0.2, 1.8)
  p["hairline"] = u(-0.78, -0.55)
  p["sideburn"] = u(-0.15, 0.15)
  p["clothes"] = r.uniform(0.05, 0.9, 3)
  p["light"] = (u(-0.9, 0.9), u(-0.9, 0.2), 1.0)
  p["ambient"] = u(0.25, 0.55)
  p["specular"] = u(0.0, 0.25)
  p["bg_cols"] = r.uniform(0.05, 0.95, (4, 3))
  p["bg_blobs"] = r.uniform(0, 1, (6, 6))
  n_clutter = int(r.integers(3, 22))
  p["clutter"] = [
    (int(r.integers(4)), r.uniform(0, 1, 8), r.uniform(0.05, 0.95, 3))
    for _ in range(n_clutter)
  ]
  p["bg_blur"] = u(0.0, 3.0)
  p["tex_amp"] = u(0.5, 1.5)
  p["moles"] = r.uniform(0, 1, (int(r.integers(0, 6)), 3))
  p["occluder"] = None
  if u() < 0.3:
    p["occluder"] = {
      "kind": int(r.integers(3)),
      "target": int(r.integers(NUM_LANDMARKS)),
      "offset": r.uniform(-0.5, 0.5, 2),
      "size": u(0.12, 0.35),
      "aspect": u(0.4, 1.0),
      "angle": u(0, np.pi),
      "shape": r.uniform(0.7, 1.3, 9),
      "col": r.uniform(0.05, 0.95, 3),
    }
  p["cam_blur"] = u(0, 1.2) if u() < 0.5 else 0.0
  p["noise"] = u(0.0, 6.0)
  p["wb"] = 1 + r.normal(0, 0.06, 3)
  p["gamma"] = u(0.85, 1.15)
  return p


# ---------------------------------------------------------------------------
# 3D head.


class _Head:
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
      * (1 - (1 - p["jaw_w"]) * _smoothstep(t))
    )
    return np.where(y <= self.y0, a_up, a_lo)

  def b(self, y):
    return 0.32 + 0.85 * self.a(y)

  def c(self, y):
    y = np.asarray(y, np.float64)
    front = -0.25 * _smoothstep((-0.35 - y) / 0.8) - 0.04 * _smoothstep(
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
    d += 0.05 * _gauss(x, y, 0, self.y_nose, 0.06, 0.05)
    for s in (-1, 1):
      d += (
        p["nose_h"]
        * 0.3
        * _gauss(x, y, s * p["nose_w"] * 0.75, self.y_nose + 0.05, 0.05, 0.045)
      )
      d += -0.05 * _gauss(x, y, s * ex, 0.0, 0.13, 0.09)
      d += 0.035 * _gauss(x, y, s * ex, 0.0, 0.09, 0.05)
      d += 0.03 * _gauss(x, y, s * 0.3, -p["brow_h"] + 0.02, 0.2, 0.07)
      d += 0.04 * _gauss(x, y, s * 0.42, 0.3, 0.14, 0.14)
    d += 0.04 * _gauss(x, y, 0, self.y_mouth, 0.2, 0.07)
    d += 0.05 * _gauss(x, y, 0, self.y_c - 0.12, 0.15, 0.1)
    return d

  def warp_y(self, y):
    """Jaw drop of an open mouth (rows below the lip line move down)."""
    return y + self.drop * _smoothstep((y - self.y_mouth) / 0.1)

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
    p = self.p
    xy = np.zeros((68, 2))
    dxy = np.zeros((68, 2))
    # Brows (top edge), right brow outer -> inner at image left.
    bl = p["brow_len"]
    bx = np.array([0.55, 0.46, 0.35, 0.24, 0.12]) * np.array([bl, bl, bl, 1, 1])
    by = -p["brow_h"] - p["brow_arch"] * np.array([-0.6, 0.4, 1.0, 0.8, 0.0])
    xy[17:22] = np.stack([-bx, by], 1)
    xy[22:27] = np.stack([bx[::-1], by[::-1]], 1)
    raise_ = -0.05 * p["brow_raise"]
    frown = p["brow_frown"] * np.array([0.0, 0.005, 0.012, 0.02, 0.03])
    dxy[17:22, 1] = raise_ + frown
    dxy[17:22, 0] = frown * 0.5
    dxy[22:27, 1] = raise_ + frown[::-1]
    dxy[22:27, 0] = -frown[::-1] * 0.5
    # Eyes. Right eye: 36 outer, 37/38 upper, 39 inner, 40/41 lower.
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
    xy[36:42] = right
    # Left eye mirrors: 42 inner, 43/44 upper, 45 outer, 46/47 lower.
    mirror = right * np.array([-1, 1])
    xy[42:48] = mirror[[3, 2, 1, 0, 5, 4]]
    # Nose.
    yn, yb, nw = self.y_nose, self.y_nb, p["nose_w"]
    xy[27] = (0, -0.03)
    xy[28] = (0, -0.03 + (yn + 0.03) / 3)
    xy[29] = (0, -0.03 + 2 * (yn + 0.03) / 3)
    xy[30] = (0, yn)
    xy[31:36] = [
      (-nw, yb - 0.045),
      (-nw * 0.5, yb - 0.012),
      (0, yb),
      (nw * 0.5, yb - 0.012),
      (nw, yb - 0.045),
    ]
    # Mouth.
    ym, mw, tu, tl = self.y_mouth, p["mouth_w"], p["lip_u"], p["lip_l"]
    xy[48] = (-mw, ym)
    xy[49] = (-0.6 * mw, ym - 0.8 * tu)
    xy[50] = (-0.2 * mw, ym - tu - 0.3 * p["bow"])
    xy[51] = (0, ym - tu + p["bow"])
    xy[52] = (0.2 * mw, ym - tu - 0.3 * p["bow"])
    xy[53] = (0.6 * mw, ym - 0.8 * tu)
    xy[54] = (mw, ym)
    xy[55] = (0.6 * mw, ym + 0.8 * tl)
    xy[56] = (0.25 * mw, ym + tl)
    xy[57] = (0, ym + tl)
    xy[58] = (-0.25 * mw, ym + tl)
    xy[59] = (-0.6 * mw, ym + 0.8 * tl)
    xy[60] = (-0.88 * mw, ym)
    xy[61] = (-0.35 * mw, ym - 0.1 * tu)
    xy[62] = (0, ym - 0.05 * tu)
    xy[63] = (0.35 * mw, ym - 0.1 * tu)
    xy[64] = (0.88 * mw, ym)
    xy[65] = (0.35 * mw, ym - 0.1 * tu)
    xy[66] = (0, ym - 0.05 * tu)
    xy[67] = (-0.35 * mw, ym - 0.1 * tu)
    sm, op_m = p["smile"], p["mouth_open"]
    for i, s in ((48, -1), (54, 1), (60, -1), (64, 1)):
      dxy[i] = (s * 0.04 * sm * mw / 0.24, -0.05 * sm)
    for i in (49, 53, 59, 55, 61, 63, 65, 67):
      s = np.sign(xy[i, 0])
      dxy[i] = (s * 0.015 * sm, -0.02 * sm)
    for i in (55, 56, 57, 58, 59, 65, 66, 67):
      dxy[i, 1] += op_m * (1 - 0.45 * (abs(xy[i, 0]) / mw) ** 2)
    for i in (61, 62, 63):
      dxy[i, 1] -= 0.08 * op_m
    return xy, dxy


def _rotation(yaw: float, pitch: float, roll: float) -> np.ndarray:
  """Head -> camera rotation (x right, y down, z towards the camera).

  Positive yaw turns the nose towards image right, positive pitch turns it
  up, positive roll turns the face clockwise in the image.
  """
  y, p, r = np.deg2rad([yaw, pitch, roll])
  ry = np.array([[np.cos(y), 0, np.sin(y)], [0, 1, 0], [-np.sin(y), 0, np.cos(y)]])
  rp = np.array([[1, 0, 0], [0, np.cos(p), -np.sin(p)], [0, np.sin(p), np.cos(p)]])
  rr = np.array([[np.cos(r), -np.sin(r), 0], [np.sin(r), np.cos(r), 0], [0, 0, 1]])
  return rr @ rp @ ry


def _rotate(pts, rot: np.ndarray) -> np.ndarray:
  """``pts @ rot.T`` for [..., 3] points (numpy's matmul is slow for K=3)."""
  pts = np.asarray(pts, np.float64)
  return (
    pts[..., 0:1] * rot[:, 0] + pts[..., 1:2] * rot[:, 1] + pts[..., 2:3] * rot[:, 2]
  )


def _row_bounds(surface_fn, rows: np.ndarray, rot: np.ndarray, m: int = 721):
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
  rr = np.arange(len(rows))

  def cross(a, b):
    za, zb = nz[rr, a], nz[rr, b]
    f = np.clip(-za / np.where(zb - za == 0, 1e-12, zb - za), 0, 1)
    return phi[a] + (phi[b] - phi[a]) * f

  lc, rc = np.clip(left, 0, m - 2), np.clip(right, 1, m - 1)
  phi_l = np.where(left < 0, -np.pi, cross(lc, lc + 1))
  phi_r = np.where(right >= m, np.pi, cross(rc - 1, rc))
  return phi_l, phi_r


def _arc_rows(fn_x, y0, y1, n):
  """``n`` rows between y0 and y1 equally spaced along the curve (fn_x(y), y)."""
  ys = np.linspace(y0, y1, 400)
  xs = fn_x(ys)
  s = np.concatenate([[0], np.cumsum(np.hypot(np.diff(xs), np.diff(ys)))])
  return np.interp(np.linspace(0, s[-1], n), s, ys)


# ---------------------------------------------------------------------------
# Geometry (everything in normalised image coordinates).


def face_geometry(seed: int) -> dict:
  """Landmarks, outlines and feature shapes of face ``seed``, normalised.

  Resolution independent: 2D points are in [0, 1] image units.
  """
  p = sample_params(seed)
  head = _Head(p)
  rot = _rotation(p["yaw"], p["pitch"], p["roll"])

  def cam(pts3):
    return _rotate(pts3, rot)

  # Landmarks 17..67 on the surface, expression applied in the image plane of
  # the head frame (offsets are small, so depth is taken at the neutral point).
  xy, dxy = head.template()
  l3 = head.on_surface(xy)
  l3[:, :2] += dxy
  # Jaw: rows equally spaced along the frontal jaw contour; each point is on
  # the face boundary of its row (jaw edge, or silhouette once hidden).
  y_end = head.y_c - 0.004
  jrows = _arc_rows(lambda y: head.a(y) * math.sin(_PHI_EDGE), p["jaw_top"], y_end, 9)
  orows = _arc_rows(
    lambda y: head.a(y) * math.sin(_PHI_EDGE), head.y_top + 0.004, y_end, 200
  )
  rows = np.unique(np.concatenate([orows, jrows]))
  phl, phr = _row_bounds(head.convex, rows, rot, 241)
  fl, fr = np.maximum(phl, -_PHI_EDGE), np.minimum(phr, _PHI_EDGE)
  valid = fl < fr - 1e-3
  last = int(np.nonzero(valid)[0].max())
  valid[last + 1 :] = False
  valid &= np.cumsum(valid) > 0
  face_l = cam(head.surface(fl, rows))
  face_r = cam(head.surface(fr, rows))
  # The side of the head (behind the jaw edge) narrows to the face below the
  # jaw angle, so no band of it shows under the chin.
  w_side = _smoothstep((rows - 0.3) / 0.45)
  head_l = cam(head.surface(phl + (fl - phl) * w_side, rows))
  head_r = cam(head.surface(phr + (fr - phr) * w_side, rows))
  jidx = np.searchsorted(rows, jrows)
  jidx = np.minimum(jidx, last)
  jaw = np.zeros((17, 3))
  jaw[:8] = face_l[jidx[:8]]
  jaw[9:] = face_r[jidx[:8]][::-1]
  jaw[8] = 0.5 * (face_l[last] + face_r[last])
  lm3 = np.concatenate([jaw, cam(l3[17:])])
  face_outline = np.concatenate([face_l[valid], face_r[valid][::-1]])
  low = valid & (rows > 0.4)
  jaw_contour = np.concatenate([face_l[low], face_r[low][::-1]])
  head_outline = np.concatenate([head_l[: last + 1], head_r[: last + 1][::-1]])

  # Hair: an inflated copy of the upper head, possibly long.
  vol = p["hair_vol"]
  y_len = max(p["hair_len"], 0.6)

  def hair_surface(phi, y):
    phi, y = np.broadcast_arrays(np.asarray(phi, np.float64), np.asarray(y, np.float64))
    yy = np.minimum(y, head.y0)
    top = head.y_top - vol
    up = np.clip((head.y0 - y) / (head.y0 - top), 0, 1)
    a = (p["cheek_w"] + vol) * np.sqrt(np.maximum(1 - up**2, 0))
    a = a * (1 - 0.08 * np.maximum(y - head.y0, 0))
    r_end = 0.35  # rounded ends
    a = a * np.sqrt(
      np.clip(1 - ((y - (y_len - r_end)) / r_end) ** 2, 0, 1) * (y > y_len - r_end)
      + (y <= y_len - r_end)
    )
    b = head.b(yy) + vol
    z = head.c(yy) + b * np.cos(phi)
    return np.stack([a * np.sin(phi), y, z], axis=-1)

  hrows = np.linspace(head.y_top - vol + 0.004, y_len - 0.004, 120)
  hl, hr = _row_bounds(hair_surface, hrows, rot, 181)
  hair_back = cam(
    np.concatenate([hair_surface(hl, hrows), hair_surface(hr, hrows)[::-1]])
  )
  # Hair front: above the hairline on the face, bounded by the hair silhouette.
  t = np.linspace(-1, 1, 61)
  hphi = t * _PHI_EDGE
  y_temple = p["sideburn"]
  hy = p["hairline"] + (y_temple - p["hairline"]) * np.abs(t) ** 2.2
  bl_, br_ = _row_bounds(head.convex, hy, rot, 181)
  hphi = np.clip(hphi, bl_ + 1e-3, br_ - 1e-3)
  hairline = cam(head.surface(hphi, hy))
  top_rows = hrows[hrows <= y_temple]
  hair_front = np.concatenate(
    [
      hairline,
      cam(hair_surface(hr[: len(top_rows)], top_rows))[::-1],
      cam(hair_surface(hl[: len(top_rows)], top_rows)),
    ]
  )

  # Neck and clothes (elliptical cylinders behind the head).
  nw = p["neck_w"]

  neck_surface = _neck_surface(nw)

  def clothes_surface(phi, y):
    phi, y = np.broadcast_arrays(np.asarray(phi, np.float64), np.asarray(y, np.float64))
    a = nw + 0.1 + 1.3 * _smoothstep((y - 1.75) / 0.7)
    b = 0.5 + 0.3 * _smoothstep((y - 1.75) / 0.7)
    return np.stack([a * np.sin(phi), y, -0.3 + b * np.cos(phi)], axis=-1)

  nrows = np.linspace(0.5, 4.0, 60)
  nl, nr = _row_bounds(neck_surface, nrows, rot, 181)
  neck = cam(np.concatenate([neck_surface(nl, nrows), neck_surface(nr, nrows)[::-1]]))
  crows = np.linspace(1.75, 5.0, 60)
  cl, cr = _row_bounds(clothes_surface, crows, rot, 181)
  clothes = cam(
    np.concatenate([clothes_surface(cl, crows), clothes_surface(cr, crows)[::-1]])
  )
  # Collar: a V on the front of the clothes.
  collar = cam(
    clothes_surface(
      np.array([-0.35, 0.0, 0.35]), np.array([1.78, 2.2 + 0.2 * p["neck_w"], 1.78])
    )
  )

  # Ears on the sides of the head.
  ears = []
  for s in (-1, 1):
    ey = 0.15
    c3 = head.surface(np.array(s * 1.62), np.array(ey))
    nrm = cam(np.array([s * 1.0, 0.0, 0.25]) / np.hypot(1, 0.25))
    up = cam(np.array([0.0, -1.0, 0.0]))
    out = cam(np.array([s * 1.0, 0.0, 0.0]))
    ears.append({"c": cam(c3), "nz": float(nrm[2]), "up": up, "out": out})

  # Eye centres / irises on the eyeballs.
  irises = []
  for eye in (RIGHT_EYE, LEFT_EYE):
    cx = xy[[eye[0], eye[3]], 0].mean()
    cy = xy[[eye[0], eye[3]], 1].mean()
    gx, gy = p["gaze"]
    cpt = head.on_surface(np.array([[cx + gx * p["eye_w"], cy + gy * p["eye_w"]]]))[0]
    cpt[2] += 0.01
    gaze = np.array([gx * 1.2, gy * 1.2, 1.0])
    irises.append({"c": cam(cpt), "n": cam(gaze / np.linalg.norm(gaze))})

  # Auxiliary feature shapes defined on the surface in the head frame.
  def proj_xy(xy2):
    q = head.on_surface(np.asarray(xy2, np.float64))
    return cam(q)

  nose_w = p["nose_w"]
  yb = head.y_nb
  nostrils = [
    proj_xy(
      _ellipse_pts(
        s * nose_w * 0.5, yb - 0.03, 0.042 * nose_w / 0.16, 0.018, s * 0.25, 24
      )
    )
    for s in (-1, 1)
  ]
  alar = []
  for s in (-1, 1):
    th = np.linspace(0.15 * np.pi, 1.1 * np.pi, 16)
    cx, cy, rr = s * nose_w * 0.72, head.y_nose + 0.05, 0.055
    alar.append(
      proj_xy(
        np.stack(
          [
            cx - s * rr * np.cos(th) * 0.9,
            cy + rr * np.sin(-th + np.pi * 0.5) * 0.0 - rr * np.sin(th) * 0.9 + 0.05,
          ],
          1,
        )
      )
    )
  # Nasolabial folds: from above the nose wings towards the mouth corners.
  folds = []
  for s, corner in ((-1, 48), (1, 54)):
    c = xy[corner] + dxy[corner]
    f = np.array(
      [
        [s * (nose_w + 0.03), head.y_nose + 0.02],
        [s * (nose_w + 0.07), yb + 0.05],
        [c[0] + s * 0.05, c[1] - 0.01],
      ]
    )
    folds.append(proj_xy(_catmull_rom(f, 6)))
  # Moles.
  moles = []
  for mx, my, ms in p["moles"]:
    q = np.array([[(mx - 0.5) * 1.1, -0.4 + my * 1.3]])
    if abs(q[0, 0]) < head.a(q[0, 1]) * 0.8:
      moles.append((proj_xy(q)[0], 0.006 + 0.01 * ms))

  # Visibility by a z-buffer of the head (resolution independent grid).
  # Place the face: the landmark box's longer side is box_frac of the image.
  lm2 = lm3[:, :2]
  lo, hi = lm2.min(0), lm2.max(0)
  scale = p["box_frac"] / max(hi[0] - lo[0], hi[1] - lo[1])
  margin = 0.02
  ext = (hi - lo) * scale
  free = np.maximum(1 - 2 * margin - ext, 0)
  origin = margin + free * np.asarray(p["pos"]) - lo * scale

  def to_img(pts3):
    return np.asarray(pts3)[..., :2] * scale + origin

  g = {
    "params": p,
    "head": head,
    "rot": rot,
    "scale": scale,
    "origin": origin,
    "landmarks3": lm3,
    "landmarks": to_img(lm3),
    "face_outline": to_img(face_outline),
    "jaw_contour": to_img(jaw_contour),
    "head_outline": to_img(head_outline),
    "hair_back": to_img(hair_back),
    "hair_front": to_img(hair_front),
    "hairline": to_img(hairline),
    "neck": to_img(neck),
    "clothes": to_img(clothes),
    "collar": to_img(collar),
    "ears": [
      {
        "c": to_img(e["c"]),
        "nz": e["nz"],
        "up": e["up"][:2],
        "out": e["out"][:2],
      }
      for e in ears
    ],
    "irises": [{"c": to_img(i["c"]), "n": i["n"]} for i in irises],
    "nostrils": [to_img(n) for n in nostrils],
    "alar": [to_img(a) for a in alar],
    "folds": [to_img(f) for f in folds],
    "moles": [(to_img(m), r * scale) for m, r in moles],
  }
  g["zbuf"], g["normals"], g["zbuf_ok"] = _zbuffer(head, rot, scale, origin)
  g["visible"] = _visibility(g)
  return g


def _neck_surface(neck_w):
  def surf(phi, y):
    phi, y = np.broadcast_arrays(np.asarray(phi, np.float64), np.asarray(y, np.float64))
    a = neck_w + 0.05 * _smoothstep((y - 1.4) / 0.5)
    return np.stack([a * np.sin(phi), y, -0.55 + 0.38 * np.cos(phi)], axis=-1)

  return surf


def _grid_normals(pts: np.ndarray) -> np.ndarray:
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


def _zbuffer(head: _Head, rot, scale, origin):
  """Nearest-surface splat of head surface samples on the _G grid.

  Returns depth [G, G], camera-space normals [G, G, 3] and a coverage mask.
  The neck is left out: its shading is the head's extended past the chin,
  which darkens it under the jaw like a shadow.
  """
  px_per_unit = scale * _G
  dens = 1.05  # samples per grid pixel along each parameter direction
  ny = int(np.clip((head.y_c - head.y_top) * px_per_unit * dens, 64, 800))
  nphi = int(np.clip(4.8 * 1.0 * px_per_unit * dens, 64, 1200))
  phi = np.linspace(-2.4, 2.4, nphi)[None]
  # Rows uniform in the warped (open-mouth) coordinate, so stretched skin is
  # sampled as densely as the rest.
  yd = np.linspace(head.y_top, head.y_c, 4 * ny)
  ys = np.interp(
    np.linspace(head.warp_y(yd[0]), head.warp_y(yd[-1]), ny), head.warp_y(yd), yd
  )
  ny = len(ys)
  ys = ys[:, None]
  grid = head.surface(phi, ys)
  pts = _rotate(grid.reshape(-1, 3), rot)
  nrm = _rotate(_grid_normals(grid).reshape(-1, 3), rot)
  uv = (pts[:, :2] * scale + origin) * _G - 0.5
  ij = np.round(uv).astype(np.int64)
  ok = (ij[:, 0] >= 0) & (ij[:, 0] < _G) & (ij[:, 1] >= 0) & (ij[:, 1] < _G)
  ok &= np.isfinite(nrm).all(1)
  # Below the jaw angle only the face itself (the rest of those slices is
  # the jaw's underside, which the neck and its shadow cover).
  phi_max = 2.4 + (_PHI_EDGE + 0.05 - 2.4) * _smoothstep((ys - 0.3) / 0.45)
  ok &= (np.abs(phi) <= phi_max).reshape(-1)
  pix = ij[ok, 1] * _G + ij[ok, 0]
  z = np.full(_G * _G, -np.inf)
  np.maximum.at(z, pix, pts[ok, 2])
  win = pts[ok, 2] == z[pix]
  normals = np.zeros((_G * _G, 3))
  normals[:, 2] = 1
  normals[pix[win]] = nrm[ok][win]
  z = z.reshape(_G, _G)
  normals = normals.reshape(_G, _G, 3)
  filled = np.isfinite(z)
  # Fill one-pixel holes with the nearest neighbouring surface.
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
  z = np.where(filled, z, zd)
  covered = z > -1e5
  return z.astype(np.float32), normals.astype(np.float32), covered


def _visibility(g: dict) -> np.ndarray:
  """Landmarks not hidden by the head itself (z-buffer test)."""
  lm = g["landmarks"]
  lm3 = g["landmarks3"]
  ij = np.clip(np.round(lm * _G - 0.5).astype(int), 0, _G - 1)
  zb = g["zbuf"]
  # Nearest surface in a 3x3 neighbourhood: tolerant to the splat's sampling.
  zmin = cv2.erode(zb, np.ones((3, 3), np.uint8))
  zref = zmin[ij[:, 1], ij[:, 0]]
  vis = lm3[:, 2] >= zref - 0.04
  vis[list(JAW)] = True  # on the face boundary by construction
  return vis


# ---------------------------------------------------------------------------
# Raster helpers (pixel coordinates, float32 RGB canvas in [0, 1]).


def _coverage(polys, box, size=None, fill=True, closed=True, thickness=1.0):
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


class _Canvas:
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
      m = _coverage(polys, box, None, fill, closed, thickness)
      return cv2.GaussianBlur(m, (0, 0), soft) if soft > 0.25 else m
    # Wide blur: render and blur at a lower sampling, then upsample.
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    f = 2.0 / soft
    size = (max(2, math.ceil(w * f)), max(2, math.ceil(h * f)))
    m = _coverage(polys, box, size, fill, closed, thickness)
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


def _raster_layers(res: int, layers) -> np.ndarray:
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


# ---------------------------------------------------------------------------
# Smooth fields.


def _skin_texture(seed: int, res: int, max_cells: int, amp: float) -> np.ndarray:
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


def _shading(g: dict) -> tuple[np.ndarray, np.ndarray]:
  """Diffuse and specular terms on the _G grid from the splatted normals."""
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
  # Outside the head: extend the shading smoothly (neck, hair, ears), with a
  # soft transition so the grid's staircase never shows when upsampled.
  w = ok.astype(np.float32)
  soft = cv2.GaussianBlur(w, (0, 0), 1.2) * w
  dens = [cv2.GaussianBlur(w, (0, 0), s) for s in (6, 24)]
  out = []
  for arr in (diffuse.astype(np.float32), spec.astype(np.float32)):
    mean = float(arr[ok].mean()) if ok.any() else 1.0
    # Push-pull fill: fine scale near the head, coarser further out, then the
    # mean; each blended in by its weight so the result stays smooth.
    fill = np.float32(mean)
    for sigma, den in zip((24, 6), dens[::-1], strict=True):
      num = cv2.GaussianBlur(arr * w, (0, 0), sigma)
      fill = (num + 1e-3 * fill) / (den + 1e-3)
    out.append((fill + (arr - fill) * soft).astype(np.float32))
  return out[0], out[1]


def _background(p: dict, res: int) -> np.ndarray:
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
    colour = tuple(float(x) for x in col)
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
  img = cv2.GaussianBlur(img, (0, 0), 0.5 + p["bg_blur"])
  img = cv2.convertScaleAbs(img, alpha=255.0)
  interp = cv2.INTER_AREA if res < n else cv2.INTER_LINEAR
  return cv2.resize(img, (res, res), interpolation=interp)


# ---------------------------------------------------------------------------
# Feature drawing.


def _iris_pattern(seed: int, side: int) -> np.ndarray:
  """Radial fibre modulation of an iris as a function of angle (1024 samples)."""
  rng = np.random.default_rng([seed, 7, side])
  theta = np.linspace(-np.pi, np.pi, 1024, endpoint=False)
  fib = np.zeros_like(theta)
  for k in range(24):
    fib += rng.uniform(0.3, 1) * np.sin((k + 8) * 3 * theta + rng.uniform(0, 2 * np.pi))
  return (fib / 6).astype(np.float32)


def _eye(
  cv: _Canvas,
  p: dict,
  pts: np.ndarray,
  iris: dict,
  outer_first: bool,
  seed: int,
  side: int,
):
  """One eye from its 6 landmarks (pixel coords, iBUG order)."""
  if not outer_first:  # left eye: 42 inner, 43, 44, 45 outer, 46, 47
    pts = pts[[3, 2, 1, 0, 5, 4]]
  # Now pts = outer, upper1, upper2, inner, lower2, lower1.
  upper = _catmull_rom(pts[[0, 1, 2, 3]], 16)
  lower = _catmull_rom(pts[[3, 4, 5, 0]], 16)
  opening = np.concatenate([upper[:-1], lower[:-1]])
  ew = float(np.linalg.norm(pts[3] - pts[0]))
  skin_dark = np.asarray(p["skin"]) * 0.55
  x, y = opening[:, 0], opening[:, 1]
  area = 0.5 * abs(np.dot(x, np.roll(y, 1)) - np.dot(y, np.roll(x, 1)))
  box = cv.bbox(opening, 2)
  if area > 0.5 and box is not None:
    x0, y0, x1, y1 = box
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
    # Iris: pupil, collarette, limbal ring, radial fibres, catchlight.
    c = iris["c"] * cv.res - 0.5
    n = iris["n"]
    r_iris = 0.19 * p["eye_w"] * cv.unit
    ib = (
      max(int(c[0] - r_iris) - 2, x0),
      max(int(c[1] - r_iris) - 2, y0),
      min(int(c[0] + r_iris) + 3, x1),
      min(int(c[1] + r_iris) + 3, y1),
    )
    if ib[2] > ib[0] and ib[3] > ib[1]:
      sl = (slice(ib[1] - y0, ib[3] - y0), slice(ib[0] - x0, ib[2] - x0))
      dx, dy = xx[sl] - c[0], yy[sl] - c[1]
      nxy = math.hypot(n[0], n[1])
      ux, uy_ = (n[0] / nxy, n[1] / nxy) if nxy > 1e-6 else (1.0, 0.0)
      along = dx * ux + dy * uy_
      perp = dy * ux - dx * uy_
      rr = np.hypot(along / max(abs(n[2]), 0.2), perp) / max(r_iris, 1e-6)
      theta = np.arctan2(perp, along)
      fib = _iris_pattern(seed, side)[
        ((theta + np.pi) * (1024 / (2 * np.pi))).astype(np.int32) % 1024
      ]
      col = np.asarray(p["iris_col"], np.float32)
      gain = 1 + 0.35 * fib * (rr > 0.35)
      gain *= 1 + 0.35 * np.exp(-(((rr - 0.55) / 0.08) ** 2))
      gain *= 1 - 0.6 * _smoothstep((rr - 0.8) / 0.2)
      irisc = col * gain[..., None]
      pupil = np.clip(0.5 - (rr - 0.38) * r_iris, 0, 1)[..., None]
      irisc = irisc * (1 - pupil) + 0.02 * pupil
      cover = np.clip(0.5 - (rr - 1.0) * r_iris, 0, 1)[..., None]
      sub = rgb[sl]
      sub += (irisc * (1 - 0.45 * below[sl])[..., None] - sub) * cover
      glint = np.hypot(dx + 0.3 * r_iris, dy + 0.35 * r_iris)
      hl = np.clip(0.5 - (glint - 0.12 * r_iris), 0, 1)[..., None]
      sub += (1 - sub) * hl * 0.85
    cv.over(box, m_open, rgb)
    # Caruncle at the inner corner.
    car = _ellipse_pts(
      pts[3][0] + (pts[0][0] - pts[3][0]) * 0.06, pts[3][1], 0.07 * ew, 0.05 * ew, 0, 20
    )
    cv.over(box, cv.mask([car], box) * m_open, np.asarray(p["lip_col"]) * 1.1, 0.8)
  # Crease above the upper lid.
  nrm = _normals(upper)
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


def _brow(
  cv: _Canvas, p: dict, pts: np.ndarray, outer_first: bool, seed: int, side: int
):
  if not outer_first:
    pts = pts[::-1]
  top = _catmull_rom(pts, 10)
  t = np.linspace(0, 1, len(top))
  nrm = _normals(top)
  if np.mean(nrm[:, 1]) < 0:
    nrm = -nrm  # pointing down
  thick = p["brow_thick"] * cv.unit * (0.25 + 0.75 * t**0.6)
  bottom = top + nrm * thick[:, None]
  poly = np.concatenate([top, bottom[::-1]])
  cv.fill([poly], p["brow_col"], 0.75, soft=0.004 * cv.unit)
  # Hair strokes.
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


def _mouth(cv: _Canvas, p: dict, lm: np.ndarray, seed: int):
  outer_up = _catmull_rom(lm[[48, 49, 50, 51, 52, 53, 54]], 10)
  outer_lo = _catmull_rom(lm[[54, 55, 56, 57, 58, 59, 48]], 10)
  inner_up = _catmull_rom(lm[[48, 60, 61, 62, 63, 64, 54]], 10)
  inner_lo = _catmull_rom(lm[[54, 64, 65, 66, 67, 60, 48]], 10)
  mw = np.linalg.norm(lm[54] - lm[48])
  lip = np.asarray(p["lip_col"])
  # Lips: upper slightly darker (faces down), lower with a highlight.
  box, _ = cv.fill(
    [np.concatenate([outer_up[:-1], inner_up[::-1][:-1]])],
    lip * 0.88,
    1.0,
    soft=0.006 * mw,
  )
  cv.fill([np.concatenate([inner_lo[:-1], outer_lo[:-1]])], lip, 1.0, soft=0.006 * mw)
  hlc = 0.5 * (lm[57] + lm[66])
  cv.fill(
    [_ellipse_pts(hlc[0], hlc[1] - 0.05 * mw, 0.18 * mw, 0.035 * mw)],
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
  # Mouth opening: dark interior and upper teeth.
  inner = np.concatenate([inner_up[:-1], inner_lo[1:-1][::-1][::-1]])
  inner = np.concatenate(
    [
      _catmull_rom(lm[[60, 61, 62, 63, 64]], 10),
      _catmull_rom(lm[[64, 65, 66, 67, 60]], 10),
    ]
  )
  gap = np.linalg.norm(lm[66] - lm[62])
  if gap > 0.02 * mw:
    ib = cv.bbox(inner, 3)
    if ib is not None:
      mi = cv.mask([inner], ib)
      cv.over(ib, mi, (0.18, 0.05, 0.05))
      tu = _catmull_rom(lm[[60, 61, 62, 63, 64]], 10)
      tn = _normals(tu)
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
  # Lip line from corner to corner, darkest at the corners.
  cv.stroke([inner_up], lip * 0.35, 0.012 * mw, 0.85)
  if gap > 0.02 * mw:
    cv.stroke([_catmull_rom(lm[[64, 65, 66, 67, 60]], 10)], lip * 0.4, 0.008 * mw, 0.6)
  for i in (48, 54):
    cv.fill(
      [_ellipse_pts(lm[i][0], lm[i][1], 0.03 * mw, 0.018 * mw)],
      lip * 0.3,
      0.45,
      soft=0.02 * mw,
    )


def _nose(cv: _Canvas, p: dict, g: dict, lm: np.ndarray):
  R = cv.res
  skin = np.asarray(p["skin"])
  nw = np.linalg.norm(lm[35] - lm[31])
  bottom = _catmull_rom(lm[31:36], 10)
  cv.stroke([bottom], skin * 0.45, 0.05 * nw, 0.35, soft=0.04 * nw)
  for a in g["alar"]:
    cv.stroke([a * R - 0.5], skin * 0.5, 0.04 * nw, 0.45, soft=0.03 * nw)
  for n in g["nostrils"]:
    cv.fill([n * R - 0.5], skin * 0.18, 0.9, soft=0.008 * nw)
  cv.fill(
    [_ellipse_pts(lm[30][0], lm[30][1] - 0.05 * nw, 0.12 * nw, 0.08 * nw)],
    np.minimum(skin * 1.25 + 0.05, 1),
    0.35,
    soft=0.06 * nw,
  )
  for f in g["folds"]:
    cv.stroke([f * R - 0.5], skin * 0.6, 0.04 * nw, 0.25, soft=0.06 * nw)


# ---------------------------------------------------------------------------
# Rendering.


def render_face(seed: int, resolution: int) -> dict:
  """Renders face ``seed`` at ``resolution`` x ``resolution`` pixels.

  Returns a dict with ``image`` (uint8 [R, R, 3] RGB), ``landmarks``
  (float32 [68, 2] x, y pixels, iBUG-68 order), ``visible`` (bool [68]),
  ``face_box`` (float32 [4] x0, y0, x1, y1: tight box of the landmarks),
  ``pose`` (float32 [3] yaw, pitch, roll degrees), ``pupils`` (float32
  [2, 2] right, left iris centres), ``mouth_open`` and ``eye_open`` (float
  expression parameters), ``occluded`` (bool: an occluder is drawn).
  """
  if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
    raise ValueError(f"render_face: seed must be a non-negative int, got {seed!r}")
  if (
    isinstance(resolution, bool)
    or not isinstance(resolution, (int, np.integer))
    or not 32 <= resolution <= 16384
  ):
    raise ValueError(
      f"render_face: resolution must be an int in [32, 16384], got {resolution!r}"
    )
  seed, R = int(seed), int(resolution)
  g = face_geometry(seed)
  p = g["params"]
  unit = g["scale"] * R  # pixels per head unit

  def px(q):
    return np.asarray(q) * R - 0.5

  lm = px(g["landmarks"])
  skin = np.asarray(p["skin"], np.float32)

  # Opaque base layers, back to front.
  layers = [
    ([px(g["hair_back"])], p["hair_col"]),
    ([px(g["clothes"])], p["clothes"]),
    ([px(g["neck"])], skin * 0.72),
  ]
  ears = []
  for e in g["ears"]:
    c = px(e["c"])
    up, out = np.asarray(e["up"]), np.asarray(e["out"])
    on = np.linalg.norm(out)
    c = c + out / (on + 1e-9) * 0.03 * unit
    ang = math.atan2(up[1], up[0])
    ry = 0.27 * p["ear_s"] * unit * max(np.linalg.norm(up), 0.3)
    rx = 0.14 * p["ear_s"] * unit * max(0.25, e["nz"])
    poly = _ellipse_pts(c[0], c[1], ry, rx, ang, 40)
    inner = poly.mean(0) + (poly - poly.mean(0)) * 0.6
    ears.append((e["nz"], [([poly], skin * 0.9), ([inner], skin * 0.68)]))
  for nz, ear in ears:
    if nz < 0.15:
      layers += ear
  layers.append(([px(g["head_outline"])], skin * 0.8))
  for nz, ear in ears:
    if nz >= 0.15:
      layers += ear
  layers.append(([px(g["face_outline"])], skin))
  layers.append(([px(g["hair_front"])], p["hair_col"]))
  cv = _Canvas(_raster_layers(R, layers), unit)

  # Moles, hair strands, facial features.
  for mpt, mr in g["moles"]:
    q = px(mpt)
    cv.fill(
      [_ellipse_pts(q[0], q[1], mr * R, mr * R * 0.9)],
      skin * 0.45,
      0.7,
      soft=0.2 * mr * R,
    )
  # Shadow cast by the jaw on the neck, just outside the contour.
  jc = px(g["jaw_contour"])
  if len(jc) > 2:
    out = jc - lm.mean(0)
    out /= np.linalg.norm(out, axis=1, keepdims=True) + 1e-9
    shadow = jc + out * 0.03 * unit
    cv.stroke([shadow], skin * 0.25, 0.04 * unit, 0.5, soft=0.015 * unit)
  _hair_strands(cv, p, px(g["hair_front"]), px(g["hairline"]), seed)
  _brow(cv, p, lm[17:22], True, seed, 0)
  _brow(cv, p, lm[22:27], False, seed, 1)
  _nose(cv, p, g, lm)
  _eye(cv, p, lm[36:42], g["irises"][0], True, seed, 0)
  _eye(cv, p, lm[42:48], g["irises"][1], False, seed, 1)
  _mouth(cv, p, lm, seed)

  # Shading (from the resolution-independent normal buffer) times skin
  # texture, computed at half resolution (both are smooth at the 2-pixel
  # scale) as 8-bit fixed point (128 = 1), then composited over the
  # background in 8 bits.
  rgba = cv.rgba
  step = max(R // 128, 1)
  ys, xs = np.nonzero(rgba[::step, ::step, 3] > 0)
  x0, y0 = max(int(xs.min()) * step - step, 0), max(int(ys.min()) * step - step, 0)
  x1 = min(int(xs.max()) * step + 2 * step, R)
  y1 = min(int(ys.max()) * step + 2 * step, R)
  half = R // 2 if R >= 512 else R
  diffuse, spec = _shading(g)
  shade = cv2.resize(
    np.stack([diffuse, spec], -1), (half, half), interpolation=cv2.INTER_LINEAR
  )
  mult = _skin_texture(seed, half, R // 2, p["tex_amp"])
  mult += 1
  mult *= shade[..., 0]
  gain = np.stack([mult * 128, shade[..., 1] * 255], -1)
  gain = cv2.convertScaleAbs(gain)  # saturating round to uint8
  if half != R:
    gain = cv2.resize(gain, (R, R), interpolation=cv2.INTER_LINEAR)
  gain = gain[y0:y1, x0:x1]
  fg = rgba[y0:y1, x0:x1]
  alpha = cv2.extractChannel(fg, 3)
  fg3 = cv2.multiply(
    cv2.cvtColor(fg, cv2.COLOR_RGBA2RGB),
    cv2.cvtColor(cv2.extractChannel(gain, 0), cv2.COLOR_GRAY2RGB),
    scale=1 / 128,
  )
  spec3 = cv2.multiply(cv2.extractChannel(gain, 1), alpha, scale=1 / 255)
  fg3 = cv2.add(fg3, cv2.cvtColor(spec3, cv2.COLOR_GRAY2RGB))
  img = _background(p, R)
  bg = cv2.multiply(
    img[y0:y1, x0:x1], cv2.cvtColor(255 - alpha, cv2.COLOR_GRAY2RGB), scale=1 / 255
  )
  img[y0:y1, x0:x1] = cv2.add(bg, fg3)
  del fg3, bg, gain, shade, mult, alpha

  # Occluder.
  visible = g["visible"].copy()
  occ = p["occluder"]
  if occ is not None:
    poly = _occluder_polygon(g, occ)
    visible &= ~points_in_polygon(g["landmarks"], poly)
    q = px(poly)
    ob = cv.bbox(q, 2)
    if ob is not None:
      om = _coverage([q], ob)[..., None]
      ox0, oy0, ox1, oy1 = ob
      yy = np.linspace(0, 1, oy1 - oy0, dtype=np.float32)[:, None, None]
      col = np.asarray(occ["col"], np.float32) * 255 * (1.1 - 0.4 * yy)
      sub = img[oy0:oy1, ox0:ox1].astype(np.float32)
      sub += (col - sub) * om
      img[oy0:oy1, ox0:ox1] = np.clip(sub + 0.5, 0, 255).astype(np.uint8)

  # Camera: white balance and gamma (one lookup table), blur, sensor noise.
  lut = np.arange(256, dtype=np.float64)[:, None] / 255
  lut = np.clip(lut ** p["gamma"] * np.asarray(p["wb"])[None] * 255 + 0.5, 0, 255)
  out = cv2.LUT(img, lut.astype(np.uint8).reshape(256, 1, 3))
  del img
  if p["cam_blur"] > 0.25:
    out = cv2.GaussianBlur(out, (0, 0), p["cam_blur"])
  amp = int(round(p["noise"] * math.sqrt(3)))
  if amp > 0:
    rng = np.random.default_rng([seed, 3, R])
    nz = rng.integers(0, 2 * amp + 1, out.shape, dtype=np.uint8)
    out = cv2.addWeighted(out, 1.0, nz, 1.0, -float(amp))

  landmarks = lm.astype(np.float32)
  box = np.concatenate([landmarks.min(0), landmarks.max(0)]).astype(np.float32)
  pupils = np.stack([px(i["c"]) for i in g["irises"]]).astype(np.float32)
  return {
    "image": out,
    "landmarks": landmarks,
    "visible": visible,
    "face_box": box,
    "pose": np.array([p["yaw"], p["pitch"], p["roll"]], np.float32),
    "pupils": pupils,
    "mouth_open": np.float32(p["mouth_open"]),
    "eye_open": np.float32(p["eye_open"]),
    "occluded": bool(occ is not None),
  }


def _hair_strands(
  cv: _Canvas, p: dict, front: np.ndarray, hairline: np.ndarray, seed: int
):
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
  m = _coverage(strands, box, fill=False, closed=False, thickness=0.004 * unit)
  m *= _coverage([front], box)
  shade = np.clip(np.asarray(p["hair_col"]) * rng.uniform(0.5, 1.6) + 0.03, 0, 1)
  cv.over(box, m, shade, 0.5)


def _occluder_polygon(g: dict, occ: dict) -> np.ndarray:
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


def landmark_groups() -> dict[str, Sequence[int]]:
  """iBUG-68 index groups used by the renderer."""
  return {
    "jaw": JAW,
    "right_brow": RIGHT_BROW,
    "left_brow": LEFT_BROW,
    "nose": NOSE,
    "right_eye": RIGHT_EYE,
    "left_eye": LEFT_EYE,
    "mouth": MOUTH,
  }
