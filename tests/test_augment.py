"""Affine warp + landmark consistency, flips, photometric jitter."""

import cv2
import numpy as np
import pytest

from hrface_jax import markup as markup_lib
from hrface_jax.data import augment

GEOMETRIC = dict(
  scale_min=0.8,
  scale_max=1.25,
  rotation_deg=30.0,
  translation=0.1,
  flip_prob=0.5,
  brightness=0.0,
  contrast=0.0,
  saturation=0.0,
  noise_std=0.0,
  noise_prob=0.0,
)


def _blob_image(h, w, points, sigma, background=None):
  """Channel 0: gaussian dots at ``points``; other channels: ``background``."""
  yy, xx = np.mgrid[:h, :w].astype(np.float32)
  acc = np.zeros((h, w), np.float32)
  for x, y in points:
    acc = np.maximum(acc, np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * sigma**2)))
  image = np.zeros((h, w, 3), np.uint8) if background is None else background.copy()
  image[..., 0] = np.round(acc * 255)
  return image


def _centroid(channel, point, r=4):
  """Intensity centroid of ``channel`` in a window around ``point``."""
  x0, y0 = (int(round(v)) for v in point)
  h, w = channel.shape
  if not (r <= x0 < w - r and r <= y0 < h - r):
    return None
  win = channel[y0 - r : y0 + r + 1, x0 - r : x0 + r + 1].astype(np.float64)
  win = np.maximum(win - 8, 0)  # ignore faint tails of neighbouring dots
  dy, dx = np.mgrid[-r : r + 1, -r : r + 1]
  return np.array(
    [(win * dx).sum() / win.sum() + x0, (win * dy).sum() / win.sum() + y0]
  )


def _grid_points(h, w, rng, n=(3, 3)):
  gx, gy = np.meshgrid(np.linspace(0.3, 0.7, n[0]), np.linspace(0.3, 0.7, n[1]))
  pts = np.stack([gx.ravel() * w, gy.ravel() * h], 1)
  return pts + rng.uniform(-0.02, 0.02, pts.shape) * [w, h]


@pytest.mark.parametrize(
  "h, w, res",
  [
    (300, 240, 64),  # shrink < 2x...
    (1800, 1500, 96),  # ...and > 2x (area pre-shrink path)
    (90, 110, 128),  # enlarge
  ],
)
def test_random_warp_keeps_landmarks_on_their_dots(h, w, res):
  rng = np.random.default_rng(h)
  face_box_scale = 1.5
  checked = 0
  for _ in range(6):
    pts = _grid_points(h, w, rng)
    box = np.array([0.3 * w, 0.3 * h, 0.7 * w, 0.7 * h])
    # Dots ~1 output pixel wide whatever the zoom.
    sigma = 0.4 * max(h, w) * face_box_scale / res
    image = _blob_image(h, w, pts, sigma)
    out = augment.preprocess(
      image,
      pts,
      box,
      resolution=res,
      crop_to_face=True,
      face_box_scale=face_box_scale,
      aug=GEOMETRIC,
      rng=rng,
      flip_permutation=np.arange(len(pts)),
    )
    assert out["image"].shape == (res, res, 3) and out["image"].dtype == np.uint8
    np.testing.assert_allclose(
      out["landmarks"], augment.transform_points(out["transform"], pts), atol=1e-3
    )
    for q in out["landmarks"]:
      c = _centroid(out["image"][..., 0], q)
      if c is not None:
        assert np.abs(c - q).max() < 0.35, (c, q)
        checked += 1
  assert checked >= 30


def test_identity_for_full_frame_at_dataset_resolution():
  rng = np.random.default_rng(0)
  image = rng.integers(0, 256, (48, 48, 3), dtype=np.uint8)
  pts = rng.uniform(0, 47, (68, 2))
  np.testing.assert_array_equal(augment.frame_transform(48, 48, 48), np.eye(3))
  out = augment.preprocess(
    image,
    pts,
    np.array([10, 10, 30, 30]),
    resolution=48,
    crop_to_face=False,
    face_box_scale=1.3,
  )
  np.testing.assert_array_equal(out["image"], image)
  np.testing.assert_allclose(out["landmarks"], pts, atol=1e-5)
  np.testing.assert_allclose(out["transform"], np.eye(2, 3))


def test_box_transform_maps_the_square_onto_the_image_extent():
  m = augment.box_transform(np.array([100, 50, 300, 150]), 64, scale=1.5)
  # Square side 300 around centre (200, 100): extent [50, 350] x [-50, 250].
  corners = augment.transform_points(m, np.array([[50, -50], [350, 250]]))
  np.testing.assert_allclose(corners, [[-0.5, -0.5], [63.5, 63.5]], atol=1e-9)


def test_downscale_by_a_power_of_two_is_area_averaging():
  rng = np.random.default_rng(1)
  image = rng.integers(0, 256, (256, 256, 3), dtype=np.uint8)
  pts = np.array([[0.0, 0.0], [255.0, 255.0], [3.5, 7.5]])
  out = augment.preprocess(
    image, pts, None, resolution=64, crop_to_face=False, face_box_scale=1.0
  )
  expected = image.reshape(64, 4, 64, 4, 3).mean((1, 3))
  assert np.abs(out["image"] - expected).max() <= 1.0
  # Pixel-centre convention: source pixels 0..3 -> output pixel 0 (centre 1.5).
  np.testing.assert_allclose(out["landmarks"], (pts + 0.5) / 4 - 0.5, atol=1e-6)


def test_large_shrink_does_not_alias():
  # A 1-pixel checkerboard shrunk 12x is mid-grey with area averaging; plain
  # bilinear sampling would return a moire of near-black/near-white pixels.
  board = ((np.indices((1536, 1536)).sum(0) % 2) * 255).astype(np.uint8)
  image = np.repeat(board[..., None], 3, -1)
  m = augment.sample_augmentation(np.random.default_rng(0), 128, GEOMETRIC)[0]
  m = m @ augment.frame_transform(1536, 1536, 128)
  out = augment.warp_image(image, m, 128)
  inner = out[32:96, 32:96].astype(float)
  assert abs(inner.mean() - 127.5) < 3 and inner.std() < 4


def test_flip_uses_the_markup_permutation():
  mk = markup_lib.get_markup("ibug68")
  h = w = 200
  rng = np.random.default_rng(2)
  pts = rng.uniform(60, 140, (68, 2))
  pts[36] = [70, 90]  # right eye outer corner: on the image left
  pts[45] = [130, 92]  # left eye outer corner: on the image right
  image = np.zeros((h, w, 3), np.uint8)
  cv2.circle(image, (70, 90), 3, (255, 0, 0), -1)  # red dot on point 36
  cv2.circle(image, (130, 92), 3, (0, 255, 0), -1)  # green dot on point 45
  aug = dict(GEOMETRIC, flip_prob=1.0, rotation_deg=0.0, translation=0.0)
  out = augment.preprocess(
    image,
    pts,
    np.array([50, 50, 150, 150]),
    resolution=100,
    crop_to_face=True,
    face_box_scale=1.2,
    aug=aug,
    rng=rng,
    flip_permutation=mk.flip_permutation,
  )
  lm = out["landmarks"]
  # The point labelled "right eye outer corner" is on the image left again...
  assert lm[36, 0] < lm[45, 0]
  # ...and sits on what was the left eye's corner (the green dot) mirrored.
  x, y = np.round(lm[36]).astype(int)
  assert out["image"][y, x, 1] > 200 and out["image"][y, x, 0] < 50
  x, y = np.round(lm[45]).astype(int)
  assert out["image"][y, x, 0] > 200 and out["image"][y, x, 1] < 50


def test_photometric_jitter():
  rng = np.random.default_rng(3)
  image = rng.integers(40, 200, (64, 64, 3), dtype=np.uint8)
  none = dict(
    brightness=0.0, contrast=0.0, saturation=0.0, noise_std=0.0, noise_prob=0.0
  )
  np.testing.assert_array_equal(augment.photometric(image, rng, none), image)

  bright = augment.photometric(image, rng, dict(none, brightness=0.2))
  delta = bright.astype(float) - image
  assert np.ptp(delta) <= 1 and abs(delta.mean()) > 0  # one uniform offset

  noisy = augment.photometric(image, rng, dict(none, noise_std=10.0, noise_prob=1.0))
  diff = noisy.astype(float) - image
  assert abs(diff.mean()) < 1 and 0 < diff.std() < 10.5

  desat = augment.photometric(
    image, np.random.default_rng(0), dict(none, saturation=1.0)
  )
  # saturation factor in [0, 2]: channel spread changes, grey level (mostly) not.
  grey = lambda im: cv2.cvtColor(im, cv2.COLOR_RGB2GRAY).astype(float)  # noqa: E731
  assert np.abs(grey(desat) - grey(image)).mean() < 3
  assert not np.array_equal(desat, image)

  a = augment.photometric(image, np.random.default_rng(5), augment_defaults())
  b = augment.photometric(image, np.random.default_rng(5), augment_defaults())
  np.testing.assert_array_equal(a, b)


def test_photometric_in_place_equals_a_copy():
  image = np.random.default_rng(1).integers(0, 256, (32, 48, 3), dtype=np.uint8)
  aug = dict(augment_defaults(), noise_prob=1.0, saturation=0.3)
  ref = augment.photometric(image, np.random.default_rng(2), aug)
  mine = image.copy()
  out = augment.photometric(mine, np.random.default_rng(2), aug, overwrite=True)
  np.testing.assert_array_equal(out, ref)
  # Without overwrite the caller's pixels are left alone.
  before = image.copy()
  augment.photometric(image, np.random.default_rng(2), aug)
  np.testing.assert_array_equal(image, before)


@pytest.mark.parametrize("tx, ty", [(3, -2), (-5, 4), (0, 0), (40, 1)])
def test_whole_pixel_mirror_shift_equals_the_bilinear_warp(tx, ty):
  # The copy fast path (mirrored straight into the output) must give the
  # pixels cv2's bilinear warp gives for the same matrix.
  image = np.random.default_rng(tx + 7).integers(0, 256, (24, 30, 3), np.uint8)
  image.setflags(write=False)  # cached frames are read-only
  res = 28
  m = np.array([[-1.0, 0, res - 1 + tx], [0, 1, ty], [0, 0, 1]])
  fast = augment.warp_image(image, m, res)
  slow = cv2.warpAffine(image, m[:2], (res, res), flags=cv2.INTER_LINEAR)
  np.testing.assert_array_equal(fast, slow)


def augment_defaults():
  from hrface_jax import config_lib

  return config_lib.base_config().augment.to_dict()


def test_rendered_face_geometry_is_consistent_across_resolutions():
  synth = pytest.importorskip("hrface_jax.data.synth")
  big, small = synth.render_face(7, 512), synth.render_face(7, 128)
  out = augment.preprocess(
    big["image"],
    big["landmarks"],
    big["face_box"],
    resolution=128,
    crop_to_face=False,
    face_box_scale=1.0,
  )
  # Same face, pixel-centre convention: 512 -> 128 maps x to (x + 0.5)/4 - 0.5.
  np.testing.assert_allclose(out["landmarks"], small["landmarks"], atol=0.05)
  a = out["image"].astype(float).ravel()
  b = small["image"].astype(float).ravel()
  assert np.corrcoef(a, b)[0, 1] > 0.9


def test_rendered_face_dots_follow_random_augmentation():
  synth = pytest.importorskip("hrface_jax.data.synth")
  face = synth.render_face(11, 256)
  rng = np.random.default_rng(4)
  lm = face["landmarks"]
  keep = [36, 45, 30, 48, 54, 8]  # well-separated points
  image = _blob_image(256, 256, lm[keep], sigma=1.0, background=face["image"])
  out = augment.preprocess(
    image,
    lm,
    face["face_box"],
    resolution=128,
    crop_to_face=True,
    face_box_scale=1.3,
    aug=dict(GEOMETRIC, flip_prob=0.0),
    rng=rng,
    flip_permutation=np.arange(68),
  )
  for i in keep:
    c = _centroid(out["image"][..., 0], out["landmarks"][i], r=3)
    if c is not None:
      assert np.abs(c - out["landmarks"][i]).max() < 0.5
