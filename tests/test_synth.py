"""Synthetic face renderer: contract, determinism, cross-resolution geometry,
variation, resolution-dependent detail and landmark/feature consistency."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from hrface_jax.data import synth


def _find_seed(pred, start=0, limit=400) -> int:
  """First seed whose sampled parameters satisfy ``pred`` (cheap: no render)."""
  for s in range(start, start + limit):
    if pred(synth.sample_params(s)):
      return s
  raise AssertionError("no seed found")


def _clean(p) -> bool:
  """Near-frontal, eyes open, no occluder, sharp, low noise."""
  return (
    abs(p["yaw"]) < 15
    and abs(p["pitch"]) < 12
    and p["occluder"] is None
    and p["eye_open"] > 0.8
    and p["cam_blur"] == 0
    and p["noise"] < 3
  )


CLEAN = _find_seed(_clean)


@pytest.fixture(scope="module")
def clean_1024():
  return synth.render_face(CLEAN, 1024)


@pytest.fixture(scope="module")
def clean_256():
  return synth.render_face(CLEAN, 256)


def _to(lm, src, dst):
  """Pixel coordinates at resolution ``src`` -> resolution ``dst``."""
  return (lm + 0.5) * (dst / src) - 0.5


def test_contract_shapes_and_dtypes(clean_256):
  f = clean_256
  assert f["image"].shape == (256, 256, 3) and f["image"].dtype == np.uint8
  assert f["landmarks"].shape == (68, 2) and f["landmarks"].dtype == np.float32
  assert f["visible"].shape == (68,) and f["visible"].dtype == np.bool_
  assert f["face_box"].shape == (4,) and f["face_box"].dtype == np.float32
  assert f["pose"].shape == (3,) and f["pose"].dtype == np.float32
  assert f["pupils"].shape == (2, 2)
  np.testing.assert_allclose(
    f["face_box"], np.concatenate([f["landmarks"].min(0), f["landmarks"].max(0)])
  )


def test_deterministic():
  a = synth.render_face(7, 128)
  b = synth.render_face(7, 128)
  for k in ("image", "landmarks", "visible", "face_box", "pose"):
    np.testing.assert_array_equal(a[k], b[k])
  c = synth.render_face(8, 128)
  assert not np.array_equal(a["landmarks"], c["landmarks"])


def test_geometry_agrees_across_resolutions(clean_256, clean_1024):
  lo, hi = clean_256, clean_1024
  np.testing.assert_allclose(
    _to(hi["landmarks"], 1024, 256), lo["landmarks"], atol=0.02
  )
  np.testing.assert_allclose(_to(hi["pupils"], 1024, 256), lo["pupils"], atol=0.02)
  np.testing.assert_array_equal(hi["visible"], lo["visible"])
  np.testing.assert_array_equal(hi["pose"], lo["pose"])
  # Same picture: the 1024 render area-downsampled is close to the 256 render,
  # much closer than another face is.
  down = cv2.resize(hi["image"], (256, 256), interpolation=cv2.INTER_AREA)
  same = np.abs(down.astype(int) - lo["image"].astype(int)).mean()
  other = synth.render_face(CLEAN + 1, 256)["image"]
  diff = np.abs(other.astype(int) - lo["image"].astype(int)).mean()
  assert same < 0.3 * diff, (same, diff)


@pytest.mark.slow
def test_geometry_agrees_at_4096():
  s = _find_seed(lambda p: p["occluder"] is not None, start=50)
  lo, hi = synth.render_face(s, 256), synth.render_face(s, 4096)
  np.testing.assert_allclose(
    _to(hi["landmarks"], 4096, 256), lo["landmarks"], atol=0.02
  )
  np.testing.assert_array_equal(hi["visible"], lo["visible"])


def test_landmarks_inside_image_and_box_and_face_size():
  for seed in range(6):
    f = synth.render_face(seed, 64)
    lm, (x0, y0, x1, y1) = f["landmarks"], f["face_box"]
    assert np.isfinite(lm).all()
    assert (lm >= 0).all() and (lm <= 63).all(), seed
    assert (lm[:, 0] >= x0).all() and (lm[:, 0] <= x1).all()
    assert (lm[:, 1] >= y0).all() and (lm[:, 1] <= y1).all()
    side = max(x1 - x0, y1 - y0) / 64
    assert 0.44 <= side <= 0.81, (seed, side)


def test_variation_across_seeds():
  geos = [synth.face_geometry(s) for s in range(40)]
  poses = np.array([[g["params"][k] for k in ("yaw", "pitch", "roll")] for g in geos])
  assert poses.std(0).min() > 4 and np.abs(poses[:, 0]).max() > 25
  lm = np.stack([g["landmarks"] for g in geos])
  # Mouth open: inner lips apart (62 vs 66) relative to the mouth width.
  mw = np.linalg.norm(lm[:, 54] - lm[:, 48], axis=-1)
  gap = np.linalg.norm(lm[:, 66] - lm[:, 62], axis=-1) / mw
  assert (gap > 0.15).sum() >= 4 and (gap < 0.02).sum() >= 10
  # Eyes: openness varies; brows move relative to the eyes.
  ew = np.linalg.norm(lm[:, 39] - lm[:, 36], axis=-1)
  eye = np.linalg.norm(lm[:, 37] - lm[:, 41], axis=-1) / ew
  assert eye.max() > 2 * eye.min()
  brow = np.linalg.norm(lm[:, 19] - lm[:, 37], axis=-1) / ew
  assert brow.std() > 0.05
  # Identity: normalised shape differs beyond pose (jaw width vs eye distance).
  iod = np.linalg.norm(lm[:, 45] - lm[:, 36], axis=-1)
  jaw = np.linalg.norm(lm[:, 16] - lm[:, 0], axis=-1)
  assert (jaw / iod).std() > 0.05
  # Occluders hide some points of some faces; self-occlusion under yaw.
  vis = np.stack([g["visible"] for g in geos])
  occ = np.array([g["params"]["occluder"] is not None for g in geos])
  assert occ.any() and (~occ).any()
  placement = np.stack([g["landmarks"].mean(0) for g in geos])
  assert placement.std(0).min() > 0.03  # position in frame varies
  assert vis.all(1).sum() >= 10  # fully visible faces are common
  assert (~vis[occ]).any()
  turned = np.abs(poses[:, 0]) > 25
  assert (~vis[~occ & turned]).any()  # self-occlusion of far-side points


def test_occluder_hides_points_under_it():
  s = _find_seed(lambda p: p["occluder"] is not None and p["occluder"]["kind"] == 0)
  f = synth.render_face(s, 256)
  g = synth.face_geometry(s)
  poly = synth._occluder_polygon(g, g["params"]["occluder"])
  inside = synth.points_in_polygon(g["landmarks"], poly)
  assert inside.any()
  assert not f["visible"][inside].any()


def test_yaw_hides_far_side_points_and_keeps_jaw_on_silhouette():
  s = _find_seed(lambda p: abs(p["yaw"]) > 35 and p["occluder"] is None)
  g = synth.face_geometry(s)
  lm = g["landmarks"]
  far = slice(9, 17) if g["params"]["yaw"] > 0 else slice(0, 8)
  # The far-side jaw points lie on the face outline polygon.
  outline = g["face_outline"]
  d = np.min(np.linalg.norm(lm[far][:, None] - outline[None], axis=-1), axis=1)
  assert d.max() < 0.01
  assert g["visible"][list(synth.JAW)].all()


def _residual_energy(img, box, small=256):
  """Energy of what a down-to-``small``-and-back round trip removes, in box."""
  n = img.shape[0]
  g = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY).astype(np.float32)
  back = cv2.resize(
    cv2.resize(g, (small, small), interpolation=cv2.INTER_AREA),
    (n, n),
    interpolation=cv2.INTER_CUBIC,
  )
  x0, y0, x1, y1 = box
  r = (g - back)[y0:y1, x0:x1]
  return float((r**2).mean())


def _box(c, half):
  c = np.round(c).astype(int)
  return c[0] - half, c[1] - half, c[0] + half, c[1] + half


def test_high_resolution_has_detail_that_downsampling_loses(clean_1024, clean_256):
  f, lm = clean_1024, clean_1024["landmarks"]
  ew = np.linalg.norm(lm[39] - lm[36])
  eye = _residual_energy(f["image"], _box(lm[36:42].mean(0), int(0.8 * ew)))
  # A smooth skin region: the cheek between the eye and the jaw.
  cheek_c = 0.5 * lm[41] + 0.25 * lm[2] + 0.25 * lm[31]
  cheek = _residual_energy(f["image"], _box(cheek_c, int(0.4 * ew)))
  assert eye > 5 * cheek, (eye, cheek)
  # The 1024 render holds much more of that detail than a 256 render, whose
  # own round trip (256 -> 64 -> 256, same relative scale) loses less.
  lm256 = clean_256["landmarks"]
  eye256 = _residual_energy(
    cv2.resize(clean_256["image"], (1024, 1024), interpolation=cv2.INTER_CUBIC),
    _box(_to(lm256[36:42].mean(0), 256, 1024), int(0.8 * ew)),
  )
  assert eye > 2 * eye256, (eye, eye256)


def test_landmarks_sit_on_image_features(clean_1024):
  f = clean_1024
  img = cv2.cvtColor(f["image"], cv2.COLOR_RGB2GRAY).astype(np.float32)
  # Colour edge strength (strongest channel) above the pixel noise, the
  # strongest within 3 pixels of a point.
  rgb = cv2.GaussianBlur(f["image"].astype(np.float32), (0, 0), 1.5)
  gx = cv2.Sobel(rgb, cv2.CV_32F, 1, 0, ksize=3)
  gy = cv2.Sobel(rgb, cv2.CV_32F, 0, 1, ksize=3)
  grad = cv2.dilate(np.hypot(gx, gy).max(-1), np.ones((7, 7), np.uint8))
  lm = f["landmarks"]
  ew = np.linalg.norm(lm[39] - lm[36])

  def at(p):
    x, y = np.round(p).astype(int)
    return float(grad[y, x])

  def mean_int(p, r):
    x, y = np.round(p).astype(int)
    return float(img[y - r : y + r + 1, x - r : x + r + 1].mean())

  # Reference: the same statistic on smooth skin (the cheek).
  cheek_c = 0.5 * lm[41] + 0.25 * lm[2] + 0.25 * lm[31]
  x0, y0, x1, y1 = _box(cheek_c, int(0.3 * ew))
  cheek_grad = float(np.median(grad[y0:y1, x0:x1]))
  # Eye corners and lip corners: strong edges, darker than the skin around.
  for i in (36, 39, 42, 45, 48, 54):
    assert at(lm[i]) > 3 * cheek_grad, (i, at(lm[i]), cheek_grad)
    assert mean_int(lm[i], 2) < mean_int(cheek_c, 6) - 10, i
  # Jaw points lie on the face contour: edge stronger than the cheek's.
  jaw = [at(lm[i]) for i in range(1, 16)]
  assert np.median(jaw) > 2 * cheek_grad, (jaw, cheek_grad)
  # Points just off the contour (towards the face centre) are smooth skin.
  centre = lm[27:36].mean(0)
  inward = [at(lm[i] + (centre - lm[i]) * 0.15) for i in range(3, 14)]
  assert np.median(jaw) > 2 * np.median(inward)
  # Pupils are dark, the sclera next to them bright.
  for p in f["pupils"]:
    assert mean_int(p, 1) < 60


def test_bad_arguments_raise():
  with pytest.raises(ValueError, match="seed"):
    synth.render_face(-1, 64)
  with pytest.raises(ValueError, match="seed"):
    synth.render_face(1.5, 64)
  with pytest.raises(ValueError, match="resolution"):
    synth.render_face(0, 8)
  with pytest.raises(ValueError, match="resolution"):
    synth.render_face(0, 100.0)
