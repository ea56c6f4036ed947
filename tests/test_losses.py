"""Wing / L1 / heatmap losses and loss_fn over model outputs."""

import math

import jax.numpy as jnp
import numpy as np
import pytest

from hrface_jax import config_lib
from hrface_jax.models import heatmaps as hm
from hrface_jax.models import losses
from hrface_jax.models.config import CENTER_MODES
from hrface_jax.training import stages


def test_wing_matches_formula_on_hand_computed_values():
  w, eps = 10.0, 2.0
  c = w - w * math.log(1 + w / eps)  # 10 - 10 ln 6 = -7.9175946923
  x = jnp.array([0.0, 1.0, -3.0, 9.999, 12.0, -20.0])
  want = [
    0.0,
    10 * math.log(1.5),  # 4.0546510811
    10 * math.log(2.5),  # 9.1629073187
    10 * math.log(1 + 9.999 / 2),
    12.0 - c,  # 19.9175946923
    20.0 - c,
  ]
  np.testing.assert_allclose(np.asarray(losses.wing_loss(x, w, eps)), want, rtol=1e-5)
  assert float(losses.wing_loss(jnp.float32(12.0), w, eps)) == pytest.approx(19.9175947)
  # Continuous at |x| = w.
  a = float(losses.wing_loss(jnp.float32(w - 1e-4), w, eps))
  b = float(losses.wing_loss(jnp.float32(w + 1e-4), w, eps))
  assert a == pytest.approx(b, abs=1e-3)


def test_coordinate_loss_scales_to_coord_scale_pixels():
  cfg = config_lib.base_config()
  cfg.resolution = 1024
  cfg.loss.coord = "l1"
  pred = jnp.zeros((1, 3, 2))
  true = jnp.array([[[4.0, 0.0], [0.0, -8.0], [4.0, 4.0]]])
  # Errors in pixels of a 256-px image: / 4. Sum over (x, y), mean over points.
  assert float(losses.coordinate_loss(pred, true, cfg)) == pytest.approx(
    (1 + 2 + 2) / 3
  )
  # Masked: the masked-in terms summed over ALL slots (so per-device shares of a
  # batch average to the global value).
  mask = jnp.array([[True, False, False]])
  assert float(losses.coordinate_loss(pred, true, cfg, mask)) == pytest.approx(1 / 3)


@pytest.mark.parametrize("kind", ["mse", "ce"])
def test_heatmap_loss_is_smallest_for_the_target(kind):
  sigma = 1.5
  centers = jnp.array([[[10.3, 12.7], [20.0, 5.5]]])
  targets = hm.gaussian_heatmaps(centers, (32, 32), sigma)
  perfect = targets / targets.sum((1, 2), keepdims=True)
  shifted = hm.gaussian_heatmaps(centers + 0.7, (32, 32), sigma)
  shifted = shifted / shifted.sum((1, 2), keepdims=True)
  flat = jnp.full_like(perfect, 1.0 / (32 * 32))
  lp, ls, lf = (
    float(losses.heatmap_loss(p, targets, sigma, kind=kind))
    for p in (perfect, shifted, flat)
  )
  assert lp < 1e-3 and lp < ls < lf


def _fake_outputs(cfg, true, error):
  """Holistic-style outputs whose landmarks and heatmaps are off by ``error``."""
  scale = 4.0
  pts = hm.image_to_heatmap(true + error, scale)
  g = hm.gaussian_heatmaps(pts, (64, 64), cfg.heatmap.sigma)
  probs = (g / g.sum((1, 2), keepdims=True))[:, None]
  return {
    "landmarks": true + error,
    "stack_landmarks": (true + error)[:, None],
    "heatmaps": probs,
    "heatmap_scale": jnp.float32(scale),
  }


def test_loss_fn_decreases_for_a_better_prediction():
  cfg = config_lib.base_config()
  cfg.model_name = "holistic"
  rng = np.random.default_rng(0)
  true = jnp.asarray(rng.uniform(40, 210, (2, 68, 2)), jnp.float32)
  direction = jnp.asarray(rng.normal(size=(2, 68, 2)), jnp.float32)
  values = []
  for scale in (12.0, 4.0, 1.0, 0.0):
    loss, metrics = losses.loss_fn(
      cfg, _fake_outputs(cfg, true, scale * direction), true
    )
    values.append(float(loss))
    assert set(metrics) >= {"loss_holistic_heatmap", "loss_holistic_coord", "error_px"}
  assert values == sorted(values, reverse=True) and values[-1] < 1e-3
  # Weights select the terms: with the coordinate weight 0, only heatmaps count.
  cfg.loss.holistic_coord_weight = 0.0
  loss, m = losses.loss_fn(cfg, _fake_outputs(cfg, true, 4 * direction), true)
  assert float(loss) == pytest.approx(float(m["loss_holistic_heatmap"]))
  # Stage switches (traced scales) multiply a term's weight: 0 drops it.
  loss, m = losses.loss_fn(
    cfg,
    _fake_outputs(cfg, true, 4 * direction),
    true,
    {"holistic_heatmap": jnp.float32(0.5)},
  )
  assert float(loss) == pytest.approx(0.5 * float(m["loss_holistic_heatmap"]))


def test_coarse_stage_controls_drop_only_the_regional_and_patch_terms():
  cfg = config_lib.base_config()
  coarse = stages.stage_controls(cfg, "coarse")
  assert set(coarse["loss_scales"]) == {
    "regional_heatmap",
    "regional_coord",
    "patch_heatmap",
    "patch_coord",
  }
  assert all(float(v) == 0.0 for v in coarse["loss_scales"].values())
  for name in ("regional", "joint"):
    controls = stages.stage_controls(cfg, name)
    assert all(float(v) == 1.0 for v in controls["loss_scales"].values())
  # Every stage has the same structure: one compiled step takes them all.
  assert {type(v) for v in coarse.values()} == {
    type(v) for v in stages.stage_controls(cfg, "joint").values()
  }
  assert int(stages.stage_controls(cfg, "regional")["crop_mode"]) == 0  # gt_jitter
  cfg.train_crop_centers = "between"
  joint = stages.stage_controls(cfg, "joint")
  assert CENTER_MODES[int(joint["crop_mode"])] == "between"
