"""Crop and patch sizes from measured errors; the native-resolution patch stage."""

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from hrface_jax import config_lib, models
from hrface_jax import markup as markup_lib
from hrface_jax.models import config as model_config
from hrface_jax.models import heatmaps as hm
from hrface_jax.models import layers
from hrface_jax.models.patches import PatchRefiner
from hrface_jax.training import trainer


def _patch_config(resolution=256, **patches):
  cfg = config_lib.base_config()
  cfg.resolution = resolution
  cfg.patches.enabled = True
  for k, v in patches.items():
    cfg.patches[k] = v
  return cfg


# --- crop table: from the measured error, any resolution ---------------------


def test_crop_fraction_holds_the_region_wherever_the_attention_puts_it():
  assert model_config.crop_fraction_for(0.3, 0.05, margin=0.0) == pytest.approx(0.4)
  assert model_config.crop_fraction_for(0.44, 0.03) == pytest.approx(0.52)
  assert model_config.crop_fraction_for(0.6, 0.3) == 1.0  # never above the image
  with pytest.raises(ValueError, match="center_error"):
    model_config.crop_fraction_for(0.3, -0.1)


@pytest.mark.parametrize("resolution", [256, 300, 1024, 4096, 8192])
@pytest.mark.parametrize("fraction", [0.3, 0.5625, 0.8])
def test_crop_rule_gives_fixed_features_at_any_resolution(resolution, fraction):
  size, stride = model_config.crop_for_fraction(resolution, fraction, 36)
  assert size == 36 * stride  # every crop becomes 36 x 36 features
  # The crop is the wanted fraction, to within half a stride.
  assert abs(size - fraction * resolution) <= 18 * stride + 1e-9


def test_default_rule_reproduces_the_old_table_and_reaches_8192():
  cfg = config_lib.base_config()
  rows = model_config.crop_table(cfg, (256, 512, 1024, 2048, 4096, 8192))
  assert rows[:5] == list(model_config.CROP_TABLE)
  assert rows[5] == (8192, 4608, 128)


def test_explicit_crop_table_still_wins_and_names_missing_rows():
  cfg = config_lib.base_config()
  cfg.regional.crop_table = ((256, 96, 4),)
  assert models.regional_crop(cfg) == (96, 4)
  cfg.resolution = 512
  with pytest.raises(ValueError, match="not in config.regional.crop_table"):
    models.regional_crop(cfg)


# --- patch stages -------------------------------------------------------------


@pytest.mark.parametrize("resolution", [256, 512, 1024, 2048, 4096, 8192])
def test_patch_stages_shrink_to_a_fine_last_pixel(resolution):
  cfg = _patch_config(resolution)
  stages = models.patch_stages(cfg)
  p = cfg.patches
  first = stages[0]
  # The first window is at least what the regional error asks for (or the
  # smallest native patch), and the last heatmap pixel is stem_stride pixels.
  assert first.window >= min(p.first_window * resolution, first.window)
  assert first.window >= p.first_window * resolution or first.window == 32
  assert stages[-1].pixel == p.stem_stride and stages[-1].level == 0
  for a, b in zip(stages, stages[1:], strict=False):
    assert b.window < a.window and b.window * p.shrink >= a.window
  for s in stages:
    assert s.size % s.stride == 0 and s.size // s.stride == p.feature_size
    scale = resolution / s.level if s.level else 1
    assert s.window == s.size * scale and s.pixel == s.stride * scale
  # log_4 of the resolution: 1 stage at 256, 3 at 4096, 4 at 8192.
  assert len(stages) == {256: 1, 512: 2, 1024: 2, 2048: 3, 4096: 3, 8192: 4}[resolution]


def test_patch_config_errors_name_the_field():
  cfg = _patch_config(feature_size=10, widths=(16, 32, 48))
  with pytest.raises(ValueError, match="patches.widths"):
    models.build_model(cfg)
  cfg = _patch_config(first_window=0.0)
  with pytest.raises(ValueError, match="patches.first_window"):
    models.build_model(cfg)


def _stem_inputs(module, images, centers):
  """Runs ``module`` and records the patches its stem is given."""
  seen = []

  def record(next_fun, args, kwargs, context):
    if isinstance(context.module, layers.SpaceToDepthStem):
      seen.append(args[0])
    return next_fun(*args, **kwargs)

  variables = module.init(jax.random.PRNGKey(0), images, centers)
  with nn.intercept_methods(record):
    out = module.apply(variables, images, centers)
  return seen[0], out


@pytest.mark.parametrize("level", [0, 64])
def test_patch_is_cut_at_the_right_place_and_maps_back(level):
  rng = np.random.default_rng(0)
  image = rng.integers(0, 256, (1, 256, 256, 3), dtype=np.uint8)
  centers = jnp.asarray([[[100.0, 60.0], [3.0, 250.0]]])  # one near a corner
  module = PatchRefiner(num_landmarks=2, size=16, stride=2, level=level, widths=(8,))
  patches, out = _stem_inputs(module, jnp.asarray(image), centers)
  scale = 1 if level == 0 else 256 // level
  if level == 0:
    source = image[0].astype(np.float32)
  else:  # the area-downsampled, normalised image
    source = np.asarray(layers.prepare_input(jnp.asarray(image), level)[0][0])
  origins = np.asarray(out["offsets"][0]) / scale  # level pixels
  for i in range(2):
    ox, oy = origins[i].astype(int)
    pad, value = 32, (0 if level == 0 else -1)  # uint8 0, normalised
    padded = np.pad(source, ((pad, pad), (pad, pad), (0, 0)), constant_values=value)
    want = padded[oy + pad : oy + pad + 16, ox + pad : ox + pad + 16]
    np.testing.assert_allclose(np.asarray(patches[0, i], np.float32), want, atol=1e-5)
  # The patch's centre heatmap pixel maps back onto the centre it was cut at.
  f = 16 // 2
  mid = hm.heatmap_to_image(
    jnp.full((1, 2, 2), (f - 1) / 2.0), out["heatmap_scale"], out["offsets"]
  )
  np.testing.assert_allclose(mid[0, 0], centers[0, 0], atol=scale)


@pytest.mark.slow
def test_patch_stage_trains_and_gradients_flow():
  cfg = _patch_config(256)
  cfg.coarse.widths = (8, 16)
  cfg.coarse.input_size = 64
  cfg.regional.widths = (8, 16)
  cfg.patches.widths = (8, 16)
  model = models.build_model(cfg)
  rng = np.random.default_rng(0)
  images = jnp.asarray(rng.integers(0, 256, (2, 256, 256, 3), dtype=np.uint8))
  landmarks = jnp.asarray(rng.uniform(60, 200, (2, 68, 2)), jnp.float32)
  params = model.init(jax.random.PRNGKey(0), images[:1])["params"]
  keys = jax.random.split(jax.random.PRNGKey(1), 2)
  markup = markup_lib.get_markup(cfg.markup)
  kwargs = trainer.train_crop_centers(cfg, markup, landmarks, keys, jnp.int32(0))
  assert kwargs["patch_centers"].shape == (1, 2, 68, 2)
  # Ground-truth centres jittered by at most train_jitter of the window.
  window = models.patch_stages(cfg)[0].window
  off = np.abs(np.asarray(kwargs["patch_centers"][0] - landmarks))
  assert off.max() <= cfg.patches.train_jitter * window + 1e-4

  def loss(p):
    out = model.apply({"params": p}, images, **kwargs)
    return models.loss_fn(cfg, out, landmarks)

  (value, metrics), grads = jax.jit(jax.value_and_grad(loss, has_aux=True))(params)
  assert np.isfinite(value)
  # Jittered ground truth stays inside its patch, so every point counts.
  assert float(metrics["patch0_inside_fraction"]) == 1.0
  norm = lambda t: float(jnp.sqrt(sum(jnp.sum(x**2) for x in jax.tree.leaves(t))))
  assert norm(grads["patches_0"]) > 0
  # The patches answer last: the model's landmarks are the patch stage's.
  out = model.apply({"params": params}, images)
  np.testing.assert_array_equal(out["landmarks"], out["patch0_landmarks"])


def _patch_train_temp_bytes(resolution: int) -> int:
  module = PatchRefiner(num_landmarks=68, size=32, stride=2, widths=(16, 32))
  images = jax.ShapeDtypeStruct((2, resolution, resolution, 3), jnp.uint8)
  centers = jax.ShapeDtypeStruct((2, 68, 2), jnp.float32)
  params = jax.eval_shape(
    functools.partial(module.init, jax.random.PRNGKey(0)), images, centers
  )

  def step(p, x, c):
    return jax.grad(lambda q: jnp.sum(module.apply(q, x, c)["landmarks"]))(p)

  compiled = jax.jit(step).lower(params, images, centers).compile()
  return compiled.memory_analysis().temp_size_in_bytes


def test_patch_stage_memory_is_flat_in_the_resolution():
  small, large = _patch_train_temp_bytes(1024), _patch_train_temp_bytes(4096)
  assert large <= 1.1 * small, (small, large)


def test_area_pool_is_the_exact_block_mean():
  rng = np.random.default_rng(0)
  x = rng.integers(0, 256, (2, 12, 8, 3), dtype=np.uint8)
  want = x.reshape(2, 3, 4, 2, 4, 3).astype(np.float64).mean((2, 4))
  np.testing.assert_allclose(layers.area_pool(jnp.asarray(x), 4), want, rtol=1e-6)
  f = x.astype(np.float32)
  np.testing.assert_allclose(layers.area_pool(jnp.asarray(f), 4), want, rtol=1e-6)


def test_stem_max_stride_pools_large_crops_before_the_learned_stem():
  """At 4096^2 a 2304 px crop (stride 64) is averaged over 4 x 4 pixels, then
  a stride-16 stem learns the rest: the same 36 x 36 features."""
  cfg = config_lib.base_config()
  cfg.resolution = 4096
  cfg.regional.stem_max_stride = 16
  model = models.build_model(cfg)
  assert model.regional.crop_pool == 4
  assert layers.stem_factors(model.regional.stem_stride // 4) == (4, 4)
  cfg.resolution = 1024  # stride 16: no pooling
  assert models.build_model(cfg).regional.crop_pool == 1
  cfg.resolution, cfg.regional.stem_max_stride = 4096, 24
  with pytest.raises(ValueError, match="regional.stem_max_stride"):
    models.build_model(cfg)


def _tiny_patch_model(fusion: str, seed: int):
  """(config, a 256^2 uint8 image batch of 1) for a small 256^2 patch model."""
  cfg = _patch_config(256)
  cfg.regional.fusion = fusion
  cfg.coarse.widths = (8, 16)
  cfg.coarse.input_size = 64
  cfg.regional.widths = (8, 16)
  cfg.patches.widths = (8, 16)
  images = jnp.asarray(
    np.random.default_rng(seed).integers(0, 256, (1, 256, 256, 3), dtype=np.uint8)
  )
  return cfg, images


def _along_segment(out, prior_key: str) -> np.ndarray:
  """Where the final points lie from ``out[prior_key]`` (0) to the patch's
  points (1); asserts they are on that segment."""
  prior = np.asarray(out[prior_key])
  patch = np.asarray(out["patch0_landmarks"])
  final = np.asarray(out["landmarks"])
  t = np.sum((final - prior) * (patch - prior), -1) / np.maximum(
    np.sum((patch - prior) ** 2, -1), 1e-12
  )
  np.testing.assert_allclose(final, prior + t[..., None] * (patch - prior), atol=1e-3)
  return t


def test_precision_fusion_weighs_the_patch_point_against_the_one_it_refines():
  cfg, images = _tiny_patch_model("precision", seed=0)
  model = models.build_model(cfg)
  variables = model.init(jax.random.PRNGKey(0), images)
  out = model.apply(variables, images)
  # On the segment from the prior point to the patch's, strictly inside.
  t = _along_segment(out, "regional_fused_landmarks")
  assert ((t > 0) & (t < 1)).all()
  cfg.regional.fusion = "confidence"  # the patch's point replaces it
  out = models.build_model(cfg).apply(variables, images)
  np.testing.assert_array_equal(out["landmarks"], out["patch0_landmarks"])


@pytest.mark.parametrize("fusion", ["precision", "confidence"])
def test_patches_can_start_from_the_coarse_landmarks(fusion):
  """``patches.start_from="coarse"``: the first stage is centred on the coarse
  network's points, not on the two-stage estimate (still returned)."""
  cfg, images = _tiny_patch_model(fusion, seed=1)
  fused_model = models.build_model(cfg)
  variables = fused_model.init(jax.random.PRNGKey(0), images)
  # Untrained regional networks answer near their crop centres; random ones
  # put the two-stage estimate pixels away from the coarse one.
  noise = np.random.default_rng(2)
  params = dict(variables["params"])
  params["regional"] = jax.tree.map(
    lambda x: x + noise.normal(0, 0.5, x.shape).astype(x.dtype), params["regional"]
  )
  variables = {"params": params}
  cfg.patches.start_from = "coarse"
  coarse_model = models.build_model(cfg)
  assert coarse_model.patches_from == "coarse"
  fused = fused_model.apply(variables, images)
  out = coarse_model.apply(variables, images)
  np.testing.assert_array_equal(
    out["regional_fused_landmarks"], fused["regional_fused_landmarks"]
  )
  # The first patch is cut around the coarse points (its origin half a
  # patch up and left, to the pixel), not around the fused ones.
  half = coarse_model.patches[0].size / 2
  for result, centers in (
    (out, "coarse_landmarks"),
    (fused, "regional_fused_landmarks"),
  ):
    origin = np.asarray(result["patch0_offsets"])
    np.testing.assert_allclose(origin + half, np.asarray(result[centers]), atol=1.0)
  assert np.abs(out["coarse_landmarks"] - fused["regional_fused_landmarks"]).max() > 2
  if fusion == "confidence":
    np.testing.assert_array_equal(out["landmarks"], out["patch0_landmarks"])
  else:  # between the coarse point and the patch's
    _along_segment(out, "coarse_landmarks")
  cfg.patches.start_from = "regional"
  with pytest.raises(ValueError, match="patches.start_from"):
    models.build_model(cfg)
