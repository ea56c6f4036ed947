"""The random choices that make a face: identity, expression, pose, scene.

Everything is drawn from ``np.random.default_rng(seed)`` in one fixed order
(the order of the ``_sample_*`` calls below), independent of the resolution:
changing that order changes every face.
"""

from __future__ import annotations

import numpy as np

NUM_LANDMARKS = 68

# Landmark index groups (iBUG-68, 0-based).
JAW = tuple(range(0, 17))
RIGHT_BROW = tuple(range(17, 22))
LEFT_BROW = tuple(range(22, 27))
NOSE = tuple(range(27, 36))
RIGHT_EYE = tuple(range(36, 42))
LEFT_EYE = tuple(range(42, 48))
MOUTH = tuple(range(48, 68))

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


def _mix(c0, c1, t):
  return np.asarray(c0, np.float64) * (1 - t) + np.asarray(c1, np.float64) * t


def sample_params(seed: int) -> dict:
  """All random choices of face ``seed`` (resolution-independent)."""
  r = np.random.default_rng(seed)
  p: dict = {}
  _sample_identity(r, p)
  _sample_expression_and_pose(r, p)
  _sample_appearance(r, p)
  _sample_scene(r, p)
  return p


def _sample_identity(r: np.random.Generator, p: dict) -> None:
  """Head units: about 10 cm; eye level y = 0, y points down."""
  u = r.uniform
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


def _sample_expression_and_pose(r: np.random.Generator, p: dict) -> None:
  u = r.uniform
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


def _sample_appearance(r: np.random.Generator, p: dict) -> None:
  """Colours of skin, lips, hair, brows and irises; hair shape; lighting."""
  u = r.uniform
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


def _sample_scene(r: np.random.Generator, p: dict) -> None:
  """Background clutter, skin marks, the occluder and the camera."""
  u = r.uniform
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
