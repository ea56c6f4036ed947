"""Soft-argmax, Gaussian targets, coordinate mappings, on-device input prep."""

import jax.numpy as jnp
import numpy as np
import pytest

from hrface_jax.models import heatmaps as hm
from hrface_jax.models import layers


def _render(centers, h, w, sigma):
  """Reference Gaussians in numpy: [K, 2] -> [h, w, K]."""
  ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
  out = [
    np.exp(-((xs - cx) ** 2 + (ys - cy) ** 2) / (2 * sigma**2)) for cx, cy in centers
  ]
  return np.stack(out, -1)


@pytest.mark.parametrize("temperature", [1.0, 0.1])
def test_soft_argmax_recovers_subpixel_peaks(temperature):
  rng = np.random.default_rng(0)
  h, w, sigma = 40, 56, 1.5
  centers = np.stack([rng.uniform(8, w - 8, 6), rng.uniform(8, h - 8, 6)], -1)
  # Logits whose softmax (at this temperature) is exactly the Gaussian.
  logits = temperature * np.log(_render(centers, h, w, sigma) + 1e-30)
  coords, probs, var = hm.soft_argmax(jnp.asarray(logits, jnp.float32), temperature)
  np.testing.assert_allclose(np.asarray(coords), centers, atol=2e-3)
  np.testing.assert_allclose(np.asarray(probs).sum((0, 1)), 1.0, rtol=1e-5)
  np.testing.assert_allclose(np.asarray(var), sigma**2, rtol=2e-2)


def test_soft_argmax_batched_and_differentiable():
  import jax

  logits = jnp.zeros((2, 3, 8, 8, 4))
  coords, _, _ = hm.soft_argmax(logits)
  assert coords.shape == (2, 3, 4, 2)
  np.testing.assert_allclose(np.asarray(coords), 3.5, atol=1e-5)  # uniform: centre
  g = jax.grad(lambda x: hm.soft_argmax(x)[0][..., 0].sum())(logits)
  assert np.abs(np.asarray(g)).sum() > 0


def test_confidence_prefers_sharp_heatmaps():
  sharp = jnp.log(jnp.asarray(_render([(10, 10)], 24, 24, 1.0), jnp.float32) + 1e-30)
  wide = jnp.log(jnp.asarray(_render([(10, 10)], 24, 24, 5.0), jnp.float32) + 1e-30)
  _, _, v_sharp = hm.soft_argmax(sharp)
  _, _, v_wide = hm.soft_argmax(wide)
  c_sharp = hm.confidence_from_variance(v_sharp, 1.5)
  c_wide = hm.confidence_from_variance(v_wide, 1.5)
  assert float(c_sharp[0]) == pytest.approx(1.0)
  assert float(c_wide[0]) < 0.2


def test_gaussian_heatmaps_match_reference():
  centers = np.array([[3.25, 7.5], [10.0, 2.0]], np.float32)
  got = hm.gaussian_heatmaps(jnp.asarray(centers), (12, 16), 2.0)
  np.testing.assert_allclose(np.asarray(got), _render(centers, 12, 16, 2.0), atol=1e-6)
  # Sum of a peak-1 Gaussian is its mass (away from the border).
  g = hm.gaussian_heatmaps(jnp.array([[20.0, 20.0]]), (41, 41), 1.5)
  assert float(g.sum()) == pytest.approx(hm.gaussian_mass(1.5), rel=1e-3)


def test_heatmap_image_mapping():
  # A heatmap pixel of scale 4 covers image pixels 0..3: its centre is 1.5.
  assert float(hm.heatmap_to_image(jnp.float32(0.0), 4.0)) == pytest.approx(1.5)
  assert float(hm.heatmap_to_image(jnp.float32(2.0), 4.0, 10.0)) == pytest.approx(19.5)
  pts = jnp.asarray(np.random.default_rng(1).uniform(-5, 300, (5, 2)), jnp.float32)
  back = hm.heatmap_to_image(hm.image_to_heatmap(pts, 8.0, 17.0), 8.0, 17.0)
  np.testing.assert_allclose(np.asarray(back), np.asarray(pts), rtol=1e-5, atol=1e-4)


def test_prepare_input_area_downsample_and_padding():
  rng = np.random.default_rng(0)
  img = rng.integers(0, 256, (1, 64, 64, 3), dtype=np.uint8)
  x, scale = layers.prepare_input(jnp.asarray(img), 16)
  ref = img.astype(np.float64).reshape(1, 16, 4, 16, 4, 3).mean((2, 4)) / 127.5 - 1
  assert scale == 4.0
  np.testing.assert_allclose(np.asarray(x), ref, atol=1e-5)
  # Non-square: padded bottom/right to the longer side with mid-grey (0).
  img = rng.integers(0, 256, (1, 32, 64, 3), dtype=np.uint8)
  x, scale = layers.prepare_input(jnp.asarray(img), 16)
  assert x.shape == (1, 16, 16, 3) and scale == 4.0
  assert np.allclose(np.asarray(x)[0, 8:], 0.0)
  # Not divisible: antialiased resize; full resolution: pad to the divisor.
  x, scale = layers.prepare_input(jnp.asarray(img), 24)
  assert x.shape == (1, 24, 24, 3) and scale == pytest.approx(64 / 24)
  x, scale = layers.prepare_input(jnp.asarray(img[:, :30, :60]), 0, divisor=16)
  assert x.shape == (1, 32, 64, 3) and scale == 1.0


def test_space_to_depth_keeps_every_pixel():
  x = jnp.arange(2 * 8 * 8 * 3).reshape(2, 8, 8, 3)
  y = layers.space_to_depth(x, 4)
  assert y.shape == (2, 2, 2, 48)
  np.testing.assert_array_equal(
    np.sort(np.asarray(y).ravel()), np.sort(np.asarray(x).ravel())
  )
  np.testing.assert_array_equal(
    np.asarray(y)[0, 1, 0].reshape(4, 4, 3), np.asarray(x)[0, 4:8, 0:4]
  )
