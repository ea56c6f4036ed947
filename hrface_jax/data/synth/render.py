"""Rendering a face: flat layers, features, shading and texture, camera.

The image is layered: background clutter, clothes, neck, hair, ears, head,
face, features (brows, eyes with lids/lashes/iris, nose, lips), shaded by a
directional light from a z-buffer of the surface, textured, then optional
occluder, blur and noise.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from hrface_jax.data.synth.background import background
from hrface_jax.data.synth.eyes import draw_eye
from hrface_jax.data.synth.features import (
  draw_brow,
  draw_hair_strands,
  draw_mouth,
  draw_nose,
)
from hrface_jax.data.synth.geometry import face_geometry
from hrface_jax.data.synth.occluders import draw_occluder, occluder_polygon
from hrface_jax.data.synth.primitives import ellipse_points, points_in_polygon
from hrface_jax.data.synth.raster import Canvas, raster_layers
from hrface_jax.data.synth.shading import shading, skin_texture


def render_face(seed: int, resolution: int) -> dict:
  """Renders face ``seed`` at ``resolution`` x ``resolution`` pixels.

  Returns a dict with ``image`` (uint8 [R, R, 3] RGB), ``landmarks``
  (float32 [68, 2] x, y pixels, iBUG-68 order), ``visible`` (bool [68]),
  ``face_box`` (float32 [4] x0, y0, x1, y1: tight box of the landmarks),
  ``pose`` (float32 [3] yaw, pitch, roll degrees), ``pupils`` (float32
  [2, 2] right, left iris centres), ``mouth_open`` and ``eye_open`` (float
  expression parameters), ``occluded`` (bool: an occluder is drawn).
  """
  _check_arguments(seed, resolution)
  seed, R = int(seed), int(resolution)
  g = face_geometry(seed)
  p = g["params"]
  unit = g["scale"] * R  # pixels per head unit
  lm = _to_pixels(g["landmarks"], R)
  cv = Canvas(raster_layers(R, _base_layers(g, R, unit)), unit)
  _draw_details(cv, g, lm, seed)
  img = _shade_over_background(cv.rgba, g, seed)
  visible = g["visible"].copy()
  occ = p["occluder"]
  if occ is not None:
    poly = occluder_polygon(g, occ)
    visible &= ~points_in_polygon(g["landmarks"], poly)
    draw_occluder(img, cv, _to_pixels(poly, R), occ["col"])
  out = _camera(img, p, seed)
  landmarks = lm.astype(np.float32)
  box = np.concatenate([landmarks.min(0), landmarks.max(0)]).astype(np.float32)
  pupils = np.stack([_to_pixels(i["c"], R) for i in g["irises"]]).astype(np.float32)
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


def _check_arguments(seed, resolution) -> None:
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


def _to_pixels(q, res: int) -> np.ndarray:
  """Normalised image coordinates -> pixels (pixel centres at integers)."""
  return np.asarray(q) * res - 0.5


def _base_layers(g: dict, R: int, unit: float) -> list:
  """Opaque (polygons, colour) layers, back to front: hair behind the head,
  clothes, neck, the far ears, head, the near ears, face, hair in front."""
  p = g["params"]
  skin = np.asarray(p["skin"], np.float32)
  layers = [
    ([_to_pixels(g["hair_back"], R)], p["hair_col"]),
    ([_to_pixels(g["clothes"], R)], p["clothes"]),
    ([_to_pixels(g["neck"], R)], skin * 0.72),
  ]
  ears = [(e["nz"], _ear_layers(e, p, skin, R, unit)) for e in g["ears"]]
  for nz, ear in ears:
    if nz < 0.15:
      layers += ear
  layers.append(([_to_pixels(g["head_outline"], R)], skin * 0.8))
  for nz, ear in ears:
    if nz >= 0.15:
      layers += ear
  layers.append(([_to_pixels(g["face_outline"], R)], skin))
  layers.append(([_to_pixels(g["hair_front"], R)], p["hair_col"]))
  return layers


def _ear_layers(e: dict, p: dict, skin: np.ndarray, R: int, unit: float) -> list:
  """An ear as two ellipses (outer, darker inner) foreshortened by its facing."""
  c = _to_pixels(e["c"], R)
  up, out = np.asarray(e["up"]), np.asarray(e["out"])
  on = np.linalg.norm(out)
  c = c + out / (on + 1e-9) * 0.03 * unit
  ang = math.atan2(up[1], up[0])
  ry = 0.27 * p["ear_s"] * unit * max(np.linalg.norm(up), 0.3)
  rx = 0.14 * p["ear_s"] * unit * max(0.25, e["nz"])
  poly = ellipse_points(c[0], c[1], ry, rx, ang, 40)
  inner = poly.mean(0) + (poly - poly.mean(0)) * 0.6
  return [([poly], skin * 0.9), ([inner], skin * 0.68)]


def _draw_details(cv: Canvas, g: dict, lm: np.ndarray, seed: int) -> None:
  """Moles, the jaw's shadow, hair strands and the facial features."""
  p, R, unit = g["params"], cv.res, cv.unit
  skin = np.asarray(p["skin"], np.float32)
  for mpt, mr in g["moles"]:
    q = _to_pixels(mpt, R)
    cv.fill(
      [ellipse_points(q[0], q[1], mr * R, mr * R * 0.9)],
      skin * 0.45,
      0.7,
      soft=0.2 * mr * R,
    )
  # Shadow cast by the jaw on the neck, just outside the contour.
  jc = _to_pixels(g["jaw_contour"], R)
  if len(jc) > 2:
    out = jc - lm.mean(0)
    out /= np.linalg.norm(out, axis=1, keepdims=True) + 1e-9
    shadow = jc + out * 0.03 * unit
    cv.stroke([shadow], skin * 0.25, 0.04 * unit, 0.5, soft=0.015 * unit)
  front, hairline = _to_pixels(g["hair_front"], R), _to_pixels(g["hairline"], R)
  draw_hair_strands(cv, p, front, hairline, seed)
  draw_brow(cv, p, lm[17:22], True, seed, 0)
  draw_brow(cv, p, lm[22:27], False, seed, 1)
  draw_nose(cv, p, g, lm)
  draw_eye(cv, p, lm[36:42], g["irises"][0], True, seed, 0)
  draw_eye(cv, p, lm[42:48], g["irises"][1], False, seed, 1)
  draw_mouth(cv, p, lm, seed)


def _shade_over_background(rgba: np.ndarray, g: dict, seed: int) -> np.ndarray:
  """The foreground ``rgba`` times shading and skin texture, over the
  background (uint8 RGB).

  Shading (from the resolution-independent normal buffer) times skin texture
  is computed at half resolution (both are smooth at the 2-pixel scale) as
  8-bit fixed point (128 = 1), then composited in 8 bits, only inside the
  foreground's bounding box.
  """
  p, R = g["params"], rgba.shape[0]
  step = max(R // 128, 1)
  ys, xs = np.nonzero(rgba[::step, ::step, 3] > 0)
  x0, y0 = max(int(xs.min()) * step - step, 0), max(int(ys.min()) * step - step, 0)
  x1 = min(int(xs.max()) * step + 2 * step, R)
  y1 = min(int(ys.max()) * step + 2 * step, R)
  half = R // 2 if R >= 512 else R
  diffuse, spec = shading(g)
  shade = cv2.resize(
    np.stack([diffuse, spec], -1), (half, half), interpolation=cv2.INTER_LINEAR
  )
  mult = skin_texture(seed, half, R // 2, p["tex_amp"])
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
  img = background(p, R)
  bg = cv2.multiply(
    img[y0:y1, x0:x1], cv2.cvtColor(255 - alpha, cv2.COLOR_GRAY2RGB), scale=1 / 255
  )
  img[y0:y1, x0:x1] = cv2.add(bg, fg3)
  return img


def _camera(img: np.ndarray, p: dict, seed: int) -> np.ndarray:
  """White balance and gamma (one lookup table), blur, sensor noise."""
  lut = np.arange(256, dtype=np.float64)[:, None] / 255
  lut = np.clip(lut ** p["gamma"] * np.asarray(p["wb"])[None] * 255 + 0.5, 0, 255)
  # In place: at 16384^2 every full-size copy is 800 MB.
  out = cv2.LUT(img, lut.astype(np.uint8).reshape(256, 1, 3), dst=img)
  if p["cam_blur"] > 0.25:
    out = cv2.GaussianBlur(out, (0, 0), p["cam_blur"])
  amp = int(round(p["noise"] * math.sqrt(3)))
  if amp > 0:
    rng = np.random.default_rng([seed, 3, img.shape[0]])
    nz = rng.integers(0, 2 * amp + 1, out.shape, dtype=np.uint8)
    out = cv2.addWeighted(out, 1.0, nz, 1.0, -float(amp))
  return out
