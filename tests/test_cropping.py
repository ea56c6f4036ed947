"""Attention-driven cropping: the one crop op, origins, centres, jitter, coverage."""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from hrface_jax import config_lib
from hrface_jax import markup as markup_lib
from hrface_jax.models import config as model_config
from hrface_jax.models import cropping


def _random_centers(rng, b, r, h, w):
  # Include exact corners and points just inside the border.
  c = np.stack([rng.uniform(0, w - 1, (b, r)), rng.uniform(0, h - 1, (b, r))], -1)
  c[0, 0] = (0, 0)
  c[0, 1] = (w - 1, h - 1)
  c[-1, -1] = (w - 1, 0.3)
  return c.astype(np.float32)


@pytest.mark.parametrize("size", [16, 17, 45])  # 45 > H: padded path
def test_crop_equals_numpy_slice_of_padded_image(size):
  rng = np.random.default_rng(size)
  b, r, h, w = 3, 5, 40, 52  # non-square
  img = rng.integers(0, 256, (b, h, w, 3), dtype=np.uint8)
  centers = _random_centers(rng, b, r, h, w)
  crops, origins = jax.jit(
    lambda im, c: cropping.crop_windows(im, c, size, pad_value=7)
  )(jnp.asarray(img), jnp.asarray(centers))
  crops, origins = np.asarray(crops), np.asarray(origins)
  assert crops.shape == (b, r, size, size, 3) and crops.dtype == np.uint8
  p = cropping.crop_padding(size)
  padded = np.pad(img, ((0, 0), (p, p), (p, p), (0, 0)), constant_values=7)
  for i in range(b):
    for j in range(r):
      x0, y0 = origins[i, j].astype(int)
      # Centred (the middle within half a pixel of the centre), except where
      # that would cross the border of an image the window fits: moved in.
      mid = origins[i, j] + (size - 1) / 2
      for axis, side in ((0, w), (1, h)):
        if size <= side:
          assert 0 <= origins[i, j, axis] <= side - size
          centred = (
            (size - 1) / 2 - 0.5 <= centers[i, j, axis] <= side - (size + 1) / 2 + 0.5
          )
          if centred:
            assert abs(mid[axis] - centers[i, j, axis]) <= 0.5 + 1e-4
        else:
          assert abs(mid[axis] - centers[i, j, axis]) <= 0.5 + 1e-4
      want = padded[i, y0 + p : y0 + p + size, x0 + p : x0 + p + size]
      np.testing.assert_array_equal(crops[i, j], want)


def test_far_off_centres_are_clipped_to_a_valid_window():
  img = jnp.zeros((1, 20, 20, 3), jnp.uint8)
  centers = jnp.array([[[-500.0, 3.0], [1e6, 1e6]]])
  crops, origins = cropping.crop_windows(img, centers, 8)
  p = cropping.crop_padding(8)
  assert crops.shape == (1, 2, 8, 8, 3)
  o = np.asarray(origins)
  assert (o >= -p).all() and (o + 8 <= 20 + p).all()


def test_subpixel_crop_is_bilinear_and_differentiable():
  rng = np.random.default_rng(3)
  img = rng.integers(0, 256, (1, 30, 30, 1), dtype=np.uint8)
  size = 8
  # Integer-aligned origin: the sub-pixel crop equals the hard crop.
  c = jnp.array([[[14.5, 12.5]]])  # origin (11, 9) exactly
  hard, o_h = cropping.crop_windows(jnp.asarray(img), c, size)
  soft, o_s = cropping.crop_windows(jnp.asarray(img), c, size, subpixel=True)
  np.testing.assert_allclose(np.asarray(o_h), np.asarray(o_s))
  np.testing.assert_allclose(np.asarray(soft), np.asarray(hard).astype(np.float32))
  # Fractional origin: bilinear interpolation between the four neighbours.
  c = jnp.array([[[14.75, 12.25]]])  # origin (11.25, 8.75)
  soft, o = cropping.crop_windows(jnp.asarray(img), c, size, subpixel=True)
  f = img[0, :, :, 0].astype(np.float64)
  ys, xs = np.mgrid[0:size, 0:size] + np.array([8.75, 11.25])[:, None, None]
  x0, y0 = np.floor(xs).astype(int), np.floor(ys).astype(int)
  fx, fy = xs - x0, ys - y0
  ref = (
    f[y0, x0] * (1 - fx) * (1 - fy)
    + f[y0, x0 + 1] * fx * (1 - fy)
    + f[y0 + 1, x0] * (1 - fx) * fy
    + f[y0 + 1, x0 + 1] * fx * fy
  )
  np.testing.assert_allclose(np.asarray(soft)[0, 0, :, :, 0], ref, rtol=1e-5)
  g = jax.grad(
    lambda c: cropping.crop_windows(jnp.asarray(img), c, size, subpixel=True)[0].sum()
  )(c)
  assert np.abs(np.asarray(g)).sum() > 0


def test_full_image_coordinates_round_trip_through_crop_local():
  # A single marked pixel is found in the crop at (x - x0, y - y0).
  rng = np.random.default_rng(5)
  h, w, size = 48, 64, 20
  for _ in range(10):
    x, y = int(rng.integers(0, w)), int(rng.integers(0, h))
    img = np.zeros((1, h, w, 1), np.uint8)
    img[0, y, x] = 255
    centre = jnp.array([[[x + rng.uniform(-5, 5), y + rng.uniform(-5, 5)]]])
    crops, origins = cropping.crop_windows(jnp.asarray(img), centre, size)
    ly, lx = np.argwhere(np.asarray(crops)[0, 0, :, :, 0] == 255)[0]
    o = np.asarray(origins)[0, 0]
    assert (lx + o[0], ly + o[1]) == (x, y)
  boxes = cropping.crop_boxes(origins, size)
  np.testing.assert_allclose(
    np.asarray(boxes)[0, 0], [o[0], o[1], o[0] + 20, o[1] + 20]
  )


def test_region_centers_and_jitter():
  mk = markup_lib.get_markup("ibug68")
  lm = np.random.default_rng(0).uniform(0, 100, (2, 68, 2)).astype(np.float32)
  got = np.asarray(cropping.region_centers_from_landmarks(jnp.asarray(lm), mk))
  assert got.shape == (2, mk.num_regions, 2)
  for r, idx in enumerate(mk.regions.values()):
    pts = lm[:, list(idx)]
    box_centre = (pts.min(1) + pts.max(1)) / 2
    np.testing.assert_allclose(got[:, r], box_centre, rtol=1e-5)
  cfg = ml_collections.ConfigDict(dict(train_crop_jitter=0.05, resolution=200))
  key = jax.random.PRNGKey(0)
  j = np.asarray(cropping.crop_center_jitter(key, cfg, (1000, 2)))
  assert np.abs(j).max() <= 10.0 and np.abs(j).max() > 9.0
  np.testing.assert_array_equal(j, cropping.crop_center_jitter(key, cfg, (1000, 2)))
  c = cropping.jitter_centers(key, jnp.zeros((4, 2)), 3.0)
  assert np.abs(np.asarray(c)).max() <= 3.0


def test_table_crops_cover_every_region_of_synthetic_faces():
  """Crops centred on jittered GT centres (worst-case corners of the jitter)
  contain every landmark of their region, for synthetic faces whose box is
  45-80% of the side, at every resolution of the table."""
  synth = pytest.importorskip("hrface_jax.data.synth")
  cfg = config_lib.base_config()
  mk = markup_lib.get_markup("ibug68")
  jit = cfg.train_crop_jitter
  corners = np.array([[-1, -1], [-1, 1], [1, -1], [1, 1]], np.float32) * jit
  for seed in range(5):
    lm = np.asarray(synth.face_geometry(seed)["landmarks"], np.float32)  # [0, 1]
    for res, size, _ in model_config.crop_table(cfg, (256, 1024, 4096, 8192)):
      pts = lm * res
      centres = np.asarray(cropping.region_centers_from_landmarks(pts, mk))
      for corner in corners:
        c = centres + corner * res
        o = np.asarray(
          cropping.crop_origins(jnp.asarray(c), size, (res, res), subpixel=False)
        )
        for r, idx in enumerate(mk.regions.values()):
          p = pts[list(idx)]
          inside = (p >= o[r]) & (p <= o[r] + size - 1)
          assert inside.all(), (seed, res, list(mk.regions)[r])
