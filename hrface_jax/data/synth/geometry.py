"""Landmarks, outlines and feature shapes of a face, in normalised image units.

Landmarks are points on the head surface (:mod:`head`), rotated by
yaw/pitch/roll and projected orthographically. Jaw landmarks lie on the face
boundary: the jaw edge of the face where it faces the camera, the silhouette
where it has turned away (landmark marching). Hair, neck, clothes and ears are
further surfaces around the head, each outlined by its silhouette.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from hrface_jax.data.synth.head import PHI_EDGE, Head
from hrface_jax.data.synth.params import LEFT_EYE, RIGHT_EYE, sample_params
from hrface_jax.data.synth.primitives import catmull_rom, ellipse_points, smoothstep
from hrface_jax.data.synth.projection import arc_rows, rotate, rotation, row_bounds
from hrface_jax.data.synth.zbuffer import visibility, zbuffer


def face_geometry(seed: int) -> dict:
  """Landmarks, outlines and feature shapes of face ``seed``, normalised.

  Resolution independent: 2D points are in [0, 1] image units.
  """
  p = sample_params(seed)
  head = Head(p)
  rot = rotation(p["yaw"], p["pitch"], p["roll"])
  # Landmarks 17..67 on the surface, expression applied in the image plane of
  # the head frame (offsets are small, so depth is taken at the neutral point).
  xy, dxy = head.template()
  l3 = head.on_surface(xy)
  l3[:, :2] += dxy
  jaw, outlines = _jaw_and_outlines(head, rot)
  lm3 = np.concatenate([jaw, rotate(l3[17:], rot)])
  outlines.update(_hair(head, rot))
  outlines.update(_neck_and_clothes(p["neck_w"], rot))
  scale, origin = _placement(lm3[:, :2], p["box_frac"], p["pos"])
  g = {
    "params": p,
    "head": head,
    "rot": rot,
    "scale": scale,
    "origin": origin,
    "landmarks3": lm3,
    "landmarks": _to_image(lm3, scale, origin),
    **{k: _to_image(v, scale, origin) for k, v in outlines.items()},
    "ears": [
      {
        "c": _to_image(e["c"], scale, origin),
        "nz": e["nz"],
        "up": e["up"][:2],
        "out": e["out"][:2],
      }
      for e in _ears(head, rot)
    ],
    "irises": [
      {"c": _to_image(i["c"], scale, origin), "n": i["n"]}
      for i in _irises(head, rot, xy)
    ],
    **{
      k: [_to_image(q, scale, origin) for q in curves]
      for k, curves in _nose_shapes(head, rot, xy, dxy).items()
    },
    "moles": [
      (_to_image(m, scale, origin), r * scale) for m, r in _moles(head, rot, p["moles"])
    ],
  }
  g["zbuf"], g["normals"], g["zbuf_ok"] = zbuffer(head, rot, scale, origin)
  g["visible"] = visibility(g)
  return g


def _to_image(pts3, scale: float, origin: np.ndarray) -> np.ndarray:
  """Camera-frame points [..., 3] -> normalised image (x, y) [..., 2]."""
  return np.asarray(pts3)[..., :2] * scale + origin


def _placement(lm2: np.ndarray, box_frac: float, pos) -> tuple[float, np.ndarray]:
  """Scale and origin that make the landmark box's longer side ``box_frac``
  of the image, placed at ``pos`` within the free margin."""
  lo, hi = lm2.min(0), lm2.max(0)
  scale = box_frac / max(hi[0] - lo[0], hi[1] - lo[1])
  margin = 0.02
  ext = (hi - lo) * scale
  free = np.maximum(1 - 2 * margin - ext, 0)
  origin = margin + free * np.asarray(pos) - lo * scale
  return scale, origin


def _jaw_edge_x(head: Head, y):
  return head.a(y) * math.sin(PHI_EDGE)


def _jaw_and_outlines(head: Head, rot: np.ndarray) -> tuple[np.ndarray, dict]:
  """Jaw landmarks 0..16 (camera frame) and the face, jaw and head outlines.

  Jaw rows are equally spaced along the frontal jaw contour; each point is on
  the face boundary of its row (jaw edge, or silhouette once hidden).
  """
  y_end = head.y_c - 0.004
  edge_x = functools.partial(_jaw_edge_x, head)
  jrows = arc_rows(edge_x, head.p["jaw_top"], y_end, 9)
  orows = arc_rows(edge_x, head.y_top + 0.004, y_end, 200)
  rows = np.unique(np.concatenate([orows, jrows]))
  phl, phr = row_bounds(head.convex, rows, rot, 241)
  fl, fr = np.maximum(phl, -PHI_EDGE), np.minimum(phr, PHI_EDGE)
  valid = fl < fr - 1e-3
  last = int(np.nonzero(valid)[0].max())
  valid[last + 1 :] = False
  valid &= np.cumsum(valid) > 0
  face_l = rotate(head.surface(fl, rows), rot)
  face_r = rotate(head.surface(fr, rows), rot)
  # The side of the head (behind the jaw edge) narrows to the face below the
  # jaw angle, so no band of it shows under the chin.
  w_side = smoothstep((rows - 0.3) / 0.45)
  head_l = rotate(head.surface(phl + (fl - phl) * w_side, rows), rot)
  head_r = rotate(head.surface(phr + (fr - phr) * w_side, rows), rot)
  jidx = np.searchsorted(rows, jrows)
  jidx = np.minimum(jidx, last)
  jaw = np.zeros((17, 3))
  jaw[:8] = face_l[jidx[:8]]
  jaw[9:] = face_r[jidx[:8]][::-1]
  jaw[8] = 0.5 * (face_l[last] + face_r[last])
  low = valid & (rows > 0.4)
  return jaw, {
    "face_outline": np.concatenate([face_l[valid], face_r[valid][::-1]]),
    "jaw_contour": np.concatenate([face_l[low], face_r[low][::-1]]),
    "head_outline": np.concatenate([head_l[: last + 1], head_r[: last + 1][::-1]]),
  }


def _hair_surface(head: Head, vol: float, y_len: float, phi, y) -> np.ndarray:
  """An inflated copy of the upper head by ``vol``, down to row ``y_len``."""
  phi, y = np.broadcast_arrays(np.asarray(phi, np.float64), np.asarray(y, np.float64))
  yy = np.minimum(y, head.y0)
  top = head.y_top - vol
  up = np.clip((head.y0 - y) / (head.y0 - top), 0, 1)
  a = (head.p["cheek_w"] + vol) * np.sqrt(np.maximum(1 - up**2, 0))
  a = a * (1 - 0.08 * np.maximum(y - head.y0, 0))
  r_end = 0.35  # rounded ends
  a = a * np.sqrt(
    np.clip(1 - ((y - (y_len - r_end)) / r_end) ** 2, 0, 1) * (y > y_len - r_end)
    + (y <= y_len - r_end)
  )
  b = head.b(yy) + vol
  z = head.c(yy) + b * np.cos(phi)
  return np.stack([a * np.sin(phi), y, z], axis=-1)


def _hair(head: Head, rot: np.ndarray) -> dict:
  """Hair outlines (camera frame): the whole hair behind the head, the part
  in front of it (above the hairline, bounded by the hair silhouette) and the
  hairline on the face."""
  p = head.p
  vol = p["hair_vol"]
  y_len = max(p["hair_len"], 0.6)
  hair_surface = functools.partial(_hair_surface, head, vol, y_len)
  hrows = np.linspace(head.y_top - vol + 0.004, y_len - 0.004, 120)
  hl, hr = row_bounds(hair_surface, hrows, rot, 181)
  hair_back = rotate(
    np.concatenate([hair_surface(hl, hrows), hair_surface(hr, hrows)[::-1]]), rot
  )
  t = np.linspace(-1, 1, 61)
  hphi = t * PHI_EDGE
  y_temple = p["sideburn"]
  hy = p["hairline"] + (y_temple - p["hairline"]) * np.abs(t) ** 2.2
  bl_, br_ = row_bounds(head.convex, hy, rot, 181)
  hphi = np.clip(hphi, bl_ + 1e-3, br_ - 1e-3)
  hairline = rotate(head.surface(hphi, hy), rot)
  top_rows = hrows[hrows <= y_temple]
  hair_front = np.concatenate(
    [
      hairline,
      rotate(hair_surface(hr[: len(top_rows)], top_rows), rot)[::-1],
      rotate(hair_surface(hl[: len(top_rows)], top_rows), rot),
    ]
  )
  return {"hair_back": hair_back, "hair_front": hair_front, "hairline": hairline}


def _neck_surface(neck_w: float, phi, y) -> np.ndarray:
  """Elliptical cylinder behind the head, widening a little at the base."""
  phi, y = np.broadcast_arrays(np.asarray(phi, np.float64), np.asarray(y, np.float64))
  a = neck_w + 0.05 * smoothstep((y - 1.4) / 0.5)
  return np.stack([a * np.sin(phi), y, -0.55 + 0.38 * np.cos(phi)], axis=-1)


def _clothes_surface(neck_w: float, phi, y) -> np.ndarray:
  """Elliptical cylinder around the neck that widens into the shoulders."""
  phi, y = np.broadcast_arrays(np.asarray(phi, np.float64), np.asarray(y, np.float64))
  a = neck_w + 0.1 + 1.3 * smoothstep((y - 1.75) / 0.7)
  b = 0.5 + 0.3 * smoothstep((y - 1.75) / 0.7)
  return np.stack([a * np.sin(phi), y, -0.3 + b * np.cos(phi)], axis=-1)


def _silhouette(surface_fn, rows: np.ndarray, rot: np.ndarray) -> np.ndarray:
  """Closed outline (camera frame) of a surface of slices ``rows``."""
  left, right = row_bounds(surface_fn, rows, rot, 181)
  return rotate(
    np.concatenate([surface_fn(left, rows), surface_fn(right, rows)[::-1]]), rot
  )


def _neck_and_clothes(neck_w: float, rot: np.ndarray) -> dict:
  """Neck and clothes outlines, and a V collar on the front of the clothes."""
  neck_surface = functools.partial(_neck_surface, neck_w)
  clothes_surface = functools.partial(_clothes_surface, neck_w)
  collar = rotate(
    clothes_surface(
      np.array([-0.35, 0.0, 0.35]), np.array([1.78, 2.2 + 0.2 * neck_w, 1.78])
    ),
    rot,
  )
  return {
    "neck": _silhouette(neck_surface, np.linspace(0.5, 4.0, 60), rot),
    "clothes": _silhouette(clothes_surface, np.linspace(1.75, 5.0, 60), rot),
    "collar": collar,
  }


def _ears(head: Head, rot: np.ndarray) -> list[dict]:
  """Per side: centre, facing (z of the ear's normal) and its up/out axes."""
  ears = []
  for s in (-1, 1):
    ey = 0.15
    c3 = head.surface(np.array(s * 1.62), np.array(ey))
    nrm = rotate(np.array([s * 1.0, 0.0, 0.25]) / np.hypot(1, 0.25), rot)
    up = rotate(np.array([0.0, -1.0, 0.0]), rot)
    out = rotate(np.array([s * 1.0, 0.0, 0.0]), rot)
    ears.append({"c": rotate(c3, rot), "nz": float(nrm[2]), "up": up, "out": out})
  return ears


def _irises(head: Head, rot: np.ndarray, xy: np.ndarray) -> list[dict]:
  """Iris centres and gaze directions (camera frame) on the eyeballs."""
  p = head.p
  irises = []
  for eye in (RIGHT_EYE, LEFT_EYE):
    cx = xy[[eye[0], eye[3]], 0].mean()
    cy = xy[[eye[0], eye[3]], 1].mean()
    gx, gy = p["gaze"]
    cpt = head.on_surface(np.array([[cx + gx * p["eye_w"], cy + gy * p["eye_w"]]]))[0]
    cpt[2] += 0.01
    gaze = np.array([gx * 1.2, gy * 1.2, 1.0])
    irises.append(
      {"c": rotate(cpt, rot), "n": rotate(gaze / np.linalg.norm(gaze), rot)}
    )
  return irises


def _on_face(head: Head, rot: np.ndarray, xy2) -> np.ndarray:
  """Neutral head-frame (x, y) points -> camera-frame points on the face."""
  return rotate(head.on_surface(np.asarray(xy2, np.float64)), rot)


def _nose_shapes(head: Head, rot: np.ndarray, xy: np.ndarray, dxy: np.ndarray) -> dict:
  """Nostrils, alar creases and nasolabial folds (camera frame)."""
  nose_w = head.p["nose_w"]
  yb = head.y_nb
  nostrils = [
    _on_face(
      head,
      rot,
      ellipse_points(
        s * nose_w * 0.5, yb - 0.03, 0.042 * nose_w / 0.16, 0.018, s * 0.25, 24
      ),
    )
    for s in (-1, 1)
  ]
  alar = []
  th = np.linspace(0.15 * np.pi, 1.1 * np.pi, 16)
  for s in (-1, 1):
    cx, cy, rr = s * nose_w * 0.72, head.y_nose + 0.05, 0.055
    arc = np.stack(
      [cx - s * rr * np.cos(th) * 0.9, cy - rr * np.sin(th) * 0.9 + 0.05], 1
    )
    alar.append(_on_face(head, rot, arc))
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
    folds.append(_on_face(head, rot, catmull_rom(f, 6)))
  return {"nostrils": nostrils, "alar": alar, "folds": folds}


def _moles(head: Head, rot: np.ndarray, moles: np.ndarray) -> list[tuple]:
  """(camera-frame centre, radius in head units) of the moles on the face."""
  out = []
  for mx, my, ms in moles:
    q = np.array([[(mx - 0.5) * 1.1, -0.4 + my * 1.3]])
    if abs(q[0, 0]) < head.a(q[0, 1]) * 0.8:
      out.append((_on_face(head, rot, q)[0], 0.006 + 0.01 * ms))
  return out
