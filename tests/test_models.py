"""Models build, run (square, non-square, bf16), pass gradients; config checks."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import with_overrides

from hrface_jax import config_lib, models
from hrface_jax import markup as markup_lib
from hrface_jax.models import config as model_config
from hrface_jax.models import regional as regional_lib
from hrface_jax.training import trainer

NUM_REGIONS = markup_lib.IBUG68.num_regions


def _tiny(model_name="regional", **overrides):
  """A small config (fast on CPU) of ``model_name``."""
  cfg = config_lib.base_config()
  cfg.model_name = model_name
  cfg.coarse.input_size = 64
  cfg.coarse.stem_width = 8
  cfg.coarse.widths = (8, 16, 16)
  cfg.regional.stem_widths = (8,)
  cfg.regional.widths = (8, 16)
  cfg.holistic.stem_width = 8
  cfg.holistic.width = 16
  cfg.holistic.levels = 3
  cfg.holistic.stacks = 2
  return with_overrides(cfg, overrides)


def _small(**overrides):
  """_tiny at 64 px with 48 px crops (stride 4): cheap gradients."""
  base = {"resolution": 64, "regional.crop_size": 48, "regional.stem_stride": 4}
  return _tiny(**{**base, **overrides})


def _images(shape, seed=0):
  return jnp.asarray(np.random.default_rng(seed).integers(0, 256, shape, np.uint8))


def _run(cfg, images, variables=None, **kw):
  model = models.build_model(cfg)
  if variables is None:
    variables = jax.jit(model.init)(jax.random.PRNGKey(0), images[:1, :64, :64])
  out = jax.jit(functools.partial(model.apply, **kw))(variables, images)
  return model, variables, out


def _check_common(out, b, h, w, num):
  assert out["landmarks"].shape == (b, num, 2)
  assert out["landmarks"].dtype == jnp.float32
  assert out["confidence"].shape == (b, num)
  lm = np.asarray(out["landmarks"])
  assert np.isfinite(lm).all()
  # Untrained nets predict near the centre of what they see, in image pixels.
  assert (lm[..., 0] > -1).all() and (lm[..., 0] < max(h, w)).all()
  c = np.asarray(out["confidence"])
  assert ((c > 0) & (c <= 1)).all()


@pytest.fixture(scope="module")
def regional_variables():
  return _run(_tiny(), _images((1, 64, 64, 3)))[1]


@pytest.mark.parametrize("shape", [(2, 256, 256, 3), (1, 200, 312, 3)])
def test_regional_model_runs(shape, regional_variables):
  cfg = _tiny(resolution=256)
  b, h, w, _ = shape
  _, _, out = _run(cfg, _images(shape), regional_variables)
  _check_common(out, b, h, w, 68)
  r = NUM_REGIONS
  assert out["coarse_landmarks"].shape == (b, 68, 2)
  assert out["region_centers"].shape == (b, r, 2)
  boxes = np.asarray(out["crop_boxes"])
  size = models.regional_crop(cfg)[0]
  assert boxes.shape == (b, r, 4)
  np.testing.assert_allclose(boxes[..., 2] - boxes[..., 0], size)
  # Predicted crop centres sit in the middle of their boxes, unless that
  # would cross the image border (then the box is moved inside).
  mid = (boxes[..., :2] + boxes[..., 2:] - 1) / 2
  centers = np.asarray(out["region_centers"])
  assert (boxes[..., :2] >= 0).all() and (boxes[..., 2] <= w).all()
  assert (boxes[..., 3] <= h).all()
  room = np.array([w, h]) - size
  centred = (mid >= size / 2) & (mid <= room + size / 2 - 1)
  inside = np.abs(mid - centers) <= 0.5 + 1e-3
  assert (inside | ~centred).all()
  assert out["regional_heatmaps"].shape[:2] == (b, r)


def test_holistic_model_runs():
  # Full resolution on a square image; the usual downsampling on a
  # non-square one (the params don't depend on either).
  _, variables, out = _run(
    _tiny("holistic", input_resolution=0), _images((2, 256, 256, 3))
  )
  _check_common(out, 2, 256, 256, 68)
  shape = (1, 200, 312, 3)
  _, _, out = _run(_tiny("holistic", input_resolution=64), _images(shape), variables)
  _check_common(out, 1, 200, 312, 68)


@pytest.mark.slow
def test_regional_variants_and_wflw_markup():
  cfg = _small(
    **{
      "regional.share_trunk": True,
      "markup": "wflw98",
      "coarse.center_source": "landmarks",
    }
  )
  _, variables, out = _run(cfg, _images((1, 64, 64, 3)))
  _check_common(out, 1, 64, 64, 98)
  # Shared trunk: one set of trunk params; heads stacked per region.
  p = variables["params"]["regional"]
  assert "trunk" in p
  head_kernel = jax.tree.leaves(p["heads"])[0]
  assert head_kernel.shape[0] == markup_lib.WFLW98.num_regions


@pytest.mark.slow
def test_bf16_compute_is_finite_with_float32_params():
  cfg = _small(compute_dtype="bfloat16")
  _, variables, out = _run(cfg, _images((1, 64, 64, 3)))
  assert all(x.dtype == jnp.float32 for x in jax.tree.leaves(variables))
  for k in ("landmarks", "confidence", "coarse_landmarks", "regional_heatmaps"):
    assert np.isfinite(np.asarray(out[k], np.float32)).all(), k
  loss, _ = models.loss_fn(cfg, out, jnp.full((1, 68, 2), 100.0))
  assert np.isfinite(float(loss))


def test_crop_centers_override_and_nan_means_predicted(regional_variables):
  cfg = _tiny()
  images = _images((2, 256, 256, 3))
  model = models.build_model(cfg)
  variables = regional_variables
  centers = np.full((2, NUM_REGIONS, 2), 100.0, np.float32)
  centers[1, 3] = np.nan
  out = jax.jit(lambda v, c: model.apply(v, images, crop_centers=c))(
    variables, jnp.asarray(centers)
  )
  used = np.asarray(out["crop_centers"])
  np.testing.assert_allclose(used[0], 100.0)
  np.testing.assert_allclose(used[1, 3], np.asarray(out["region_centers"])[1, 3])
  size = models.regional_crop(cfg)[0]
  # Window [x0, x0 + size) centred on 100: x0 = round(100 - (size - 1) / 2).
  np.testing.assert_allclose(
    np.asarray(out["crop_origins"])[0], np.floor(100 - (size - 1) / 2 + 0.5)
  )


def test_crop_center_weights_move_crops_from_predicted_towards_given(
  regional_variables,
):
  cfg = _tiny()
  images = _images((2, 256, 256, 3))
  model = models.build_model(cfg)
  given = jnp.full((2, NUM_REGIONS, 2), 100.0)
  weights = jnp.asarray(
    np.linspace(0.0, 1.0, 2 * NUM_REGIONS, dtype=np.float32).reshape(2, NUM_REGIONS)
  )
  out = jax.jit(
    lambda v: model.apply(v, images, crop_centers=given, crop_center_weights=weights)
  )(regional_variables)
  pred = np.asarray(out["region_centers"])
  expected = pred + np.asarray(weights)[..., None] * (100.0 - pred)
  np.testing.assert_allclose(np.asarray(out["crop_centers"]), expected, rtol=1e-5)
  np.testing.assert_allclose(np.asarray(out["crop_centers"])[0, 0], pred[0, 0])
  np.testing.assert_allclose(np.asarray(out["crop_centers"])[1, -1], 100.0)


def _train_crop_kwargs(cfg, mode: str, n: int = 4):
  markup = markup_lib.get_markup(cfg.markup)
  landmarks = jnp.asarray(np.random.default_rng(0).uniform(50, 200, (n, 68, 2)))
  keys = jax.random.split(jax.random.PRNGKey(0), n)
  crop_mode = jnp.int32(model_config.CENTER_MODES.index(mode))
  kwargs = trainer.train_crop_centers(cfg, markup, landmarks, keys, crop_mode)
  gt = np.asarray(models.region_centers_from_landmarks(landmarks, markup))
  return kwargs, gt


def test_between_crop_centers_are_per_region_weights_in_0_1():
  cfg = _tiny()
  kwargs, gt = _train_crop_kwargs(cfg, "between")
  w = np.asarray(kwargs["crop_center_weights"])
  assert w.shape == (4, NUM_REGIONS) and (w >= 0).all() and (w <= 1).all()
  assert np.unique(w).size == w.size  # independent per example and region
  jitter = cfg.train_crop_jitter * cfg.resolution
  assert np.abs(np.asarray(kwargs["crop_centers"]) - gt).max() <= jitter + 1e-4
  again, _ = _train_crop_kwargs(cfg, "between")
  np.testing.assert_array_equal(np.asarray(again["crop_center_weights"]), w)


def test_every_crop_mode_is_a_weight_of_ground_truth_against_predicted():
  cfg = _tiny()
  cfg.train_crop_mix_gt_fraction = 0.5
  weights = {
    m: np.asarray(_train_crop_kwargs(cfg, m, n=64)[0]["crop_center_weights"])
    for m in model_config.CENTER_MODES
  }
  assert (weights["gt_jitter"] == 1).all()
  assert (weights["predicted"] == 0).all()
  mix = weights["mix"]
  assert set(np.unique(mix)) == {0.0, 1.0}  # both kinds occur in 64 examples
  assert (mix == mix[:, :1]).all()  # one choice per example, all its regions
  assert 0 < weights["between"].min() and weights["between"].max() < 1
  holistic = _tiny()
  holistic.model_name = "holistic"
  assert _train_crop_kwargs(holistic, "gt_jitter")[0] == {}


def _grads(cfg, crop_centers):
  images = _images((1, 64, 64, 3))
  lm = jnp.asarray(np.random.default_rng(1).uniform(15, 48, (1, 68, 2)), jnp.float32)
  model = models.build_model(cfg)
  params = jax.jit(model.init)(jax.random.PRNGKey(0), images)["params"]

  def loss(p):
    out = model.apply({"params": p}, images, crop_centers=crop_centers, train=True)
    return models.loss_fn(cfg, out, lm)[0]

  return jax.jit(jax.grad(loss))(params)


def _norm(tree):
  return float(sum(jnp.abs(x).sum() for x in jax.tree.leaves(tree)))


def _regional_only(cfg):
  for k in ("coarse_heatmap", "coarse_coord", "attention_heatmap", "attention_coord"):
    cfg.loss[f"{k}_weight"] = 0.0
  return cfg


@pytest.mark.slow
def test_gradients_reach_every_regional_network():
  cfg = _regional_only(_small())
  g = _grads(cfg, jnp.full((1, NUM_REGIONS, 2), 32.0))
  trunks = g["regional"]["trunks"]
  # Per-region stacked params: every region's slice gets a gradient.
  for leaf in (jax.tree.leaves(trunks)[0], jax.tree.leaves(g["regional"]["stem"])[0]):
    per_region = np.abs(np.asarray(leaf)).reshape(NUM_REGIONS, -1).sum(1)
    assert (per_region > 0).all()
  # Hard crops: no gradient reaches the coarse net from the regional loss.
  assert _norm(g["coarse"]) == 0.0


@pytest.mark.slow
def test_differentiable_crop_passes_gradients_into_attention_maps():
  cfg = _regional_only(_small(**{"regional.differentiable_crop": True}))
  g = _grads(cfg, None)  # predicted centres
  assert _norm(g["coarse"]["attention"]) > 0


def test_fuse_regions_is_confidence_weighted():
  regions = ((0, 1), (1, 2))  # landmark 1 in both; landmark 3 in none
  coords = jnp.array([[[[0.0, 0.0], [10.0, 0.0]], [[20.0, 0.0], [30.0, 4.0]]]])
  conf = jnp.array([[[1.0, 0.25], [0.75, 1.0]]])
  fallback = jnp.full((1, 4, 2), -7.0)
  lm = np.asarray(regional_lib.fuse_regions(coords, conf, regions, fallback))[0]
  np.testing.assert_allclose(lm[0], [0, 0], atol=1e-4)
  np.testing.assert_allclose(lm[1], [(0.25 * 10 + 0.75 * 20) / 1.0, 0], atol=1e-4)
  np.testing.assert_allclose(lm[2], [30, 4], atol=1e-4)
  np.testing.assert_allclose(lm[3], [-7, -7])


def test_fuse_regions_with_fallback_weights_joins_the_fallback_everywhere():
  regions = ((0, 1), (1, 2))
  coords = jnp.array([[[[0.0, 0.0], [10.0, 0.0]], [[20.0, 0.0], [30.0, 4.0]]]])
  weights = jnp.array([[[1.0, 1.0], [3.0, 1.0]]])
  fallback = jnp.array([[[4.0, 0.0], [0.0, 0.0], [30.0, 0.0], [-7.0, 1.0]]])
  fallback_weights = jnp.array([[1.0, 4.0, 1.0, 2.0]])
  lm = regional_lib.fuse_regions(coords, weights, regions, fallback, fallback_weights)
  lm = np.asarray(lm)[0]
  np.testing.assert_allclose(lm[0], [2, 0], atol=1e-4)  # (0 + 4) / 2
  np.testing.assert_allclose(lm[1], [(10 + 3 * 20 + 0) / 8, 0], atol=1e-4)
  np.testing.assert_allclose(lm[2], [30, 2], atol=1e-4)
  np.testing.assert_allclose(lm[3], [-7, 1], atol=1e-5)  # in no region


def test_a_crop_answers_only_for_the_landmarks_it_holds(regional_variables):
  """Move the mouth's crop (region 3) far from the face: the mouth landmarks
  then come from the coarse network, the others from their crops."""
  # Crops of a quarter of the side (same stem stride, so the same params): a
  # corner crop then misses the middle of the image.
  cfg = _tiny(**{"regional.crop_size": 64, "regional.stem_stride": 4})
  images = _images((1, 256, 256, 3))
  model = models.build_model(cfg)
  apply = jax.jit(lambda v, c: model.apply(v, images, crop_centers=c))
  out = apply(regional_variables, None)
  centers = np.asarray(out["region_centers"]).copy()
  coarse = np.asarray(out["coarse_landmarks"])
  mouth = list(markup_lib.IBUG68.regions["mouth"])
  # The image corner farthest from the coarse mouth: a crop there (moved
  # inside the image) holds none of its points.
  centers[0, 3] = np.where(coarse[0, mouth].mean(0) < 128, 255.0, 0.0)
  moved = apply(regional_variables, jnp.asarray(centers))
  box = np.asarray(moved["crop_boxes"])[0, 3] - 0.5
  inside = np.all((coarse[0, mouth] >= box[:2]) & (coarse[0, mouth] <= box[2:]), -1)
  assert not inside.any()
  np.testing.assert_allclose(moved["landmarks"][0, mouth], coarse[0, mouth], atol=1e-4)
  others = [i for i in range(68) if i not in mouth]
  np.testing.assert_allclose(
    moved["landmarks"][0, others], out["landmarks"][0, others], atol=1e-3
  )


def test_precision_fusion_is_the_inverse_variance_mean_with_the_coarse_point():
  images = _images((2, 64, 64, 3))
  _, variables, out = _run(_small(**{"regional.fusion": "precision"}), images)
  index, mask = regional_lib.region_slots(markup_lib.IBUG68.region_indices())
  reg = np.asarray(out["regional_landmarks"], np.float64)  # [B, R, K, 2]
  coarse = np.asarray(out["coarse_landmarks"], np.float64)
  boxes = np.asarray(out["crop_boxes"], np.float64)[:, :, None] - 0.5
  held = np.all(
    (coarse[:, index] >= boxes[..., :2]) & (coarse[:, index] <= boxes[..., 2:]), -1
  )
  reg_w = held / np.asarray(out["regional_variance_px"], np.float64)
  coarse_w = 1.0 / np.asarray(out["coarse_variance_px"], np.float64)
  num = coarse * coarse_w[..., None]
  den = coarse_w.copy()
  for r, k in zip(*np.nonzero(mask), strict=True):
    num[:, index[r, k]] += reg_w[:, r, k, None] * reg[:, r, k]
    den[:, index[r, k]] += reg_w[:, r, k]
  np.testing.assert_allclose(out["landmarks"], num / den[..., None], rtol=1e-4)
  conf = np.asarray(out["confidence"])
  assert ((conf > 0) & (conf <= 1)).all()
  # The default fusion ignores the coarse point wherever a region covers it.
  _, _, plain = _run(_small(), images, variables)
  assert not np.allclose(plain["landmarks"], out["landmarks"])


@pytest.mark.parametrize(
  "field,value,match",
  [
    ("model_name", "transformer", "model_name"),
    ("regional.crop_size", 512, "crop_size"),
    ("regional.stem_stride", 5, "stem_stride"),
    ("coarse.input_size", 100, "coarse.input_size"),
    ("regional.crop_fraction", 1.5, "regional.crop_fraction"),
    ("train_crop_centers", "oracle", "train_crop_centers"),
    ("loss.coord", "l2", "loss.coord"),
    ("compute_dtype", "float16", "compute_dtype"),
    ("regional.widths", (8,) * 7, "regional.widths"),
    ("regional.fusion", "mean", "regional.fusion"),
  ],
)
def test_validate_model_config_names_the_field(field, value, match):
  cfg = _tiny(**{field: value})
  with pytest.raises(ValueError, match=match):
    models.validate_model_config(cfg)


def test_validate_holistic_input_resolution():
  cfg = _tiny("holistic", input_resolution=100)
  with pytest.raises(ValueError, match="input_resolution"):
    models.validate_model_config(cfg)
  models.validate_model_config(_tiny("holistic", input_resolution=0))


def test_every_resolution_validates():
  for res in (256, 300, 512, 1024, 2048, 4096, 8192):
    cfg = config_lib.base_config()
    cfg.resolution = res
    models.validate_model_config(cfg)
    size, stride = models.regional_crop(cfg)
    assert size <= res and size % stride == 0
  assert markup_lib.get_markup("ibug68").num_regions == 8


def test_coarse_model_is_the_regional_models_coarse_network():
  """model_name="coarse" trains the attention network alone; its parameters
  have the layout of the regional model's "coarse" subtree, so one coarse run
  initialises regional models of any resolution."""
  images = _images((2, 64, 64, 3))
  _, coarse_vars, out = _run(_tiny("coarse", resolution=64), images)
  _, regional_vars, _ = _run(_small(), images)
  shapes = lambda t: jax.tree.map(lambda x: x.shape, t)
  assert set(coarse_vars["params"]) == {"coarse"}
  assert shapes(coarse_vars["params"]["coarse"]) == shapes(
    regional_vars["params"]["coarse"]
  )
  np.testing.assert_array_equal(out["landmarks"], out["coarse_landmarks"])
  landmarks = jnp.asarray(np.random.default_rng(0).uniform(10, 50, (2, 68, 2)))
  _, metrics = models.loss_fn(_tiny("coarse", resolution=64), out, landmarks)
  terms = {k for k in metrics if k.startswith("loss_")}
  assert terms == {
    "loss_coarse_heatmap",
    "loss_coarse_coord",
    "loss_attention_heatmap",
    "loss_attention_coord",
  }


SECTIONS = (
  ("coarse", models.CoarseNet),
  ("regional", models.RegionalNet),
  ("patches", models.PatchRefiner),
  ("holistic", models.HolisticModel),
)


@pytest.mark.parametrize("section,module", SECTIONS)
def test_config_defaults_are_the_module_fields(section, module):
  """One default per hyperparameter: a module field with a default is in its
  config section (or in config.heatmap / compute_dtype / input_resolution /
  the level and pad_value the build derives), with that default."""
  config = config_lib.base_config()
  # shape: a module of its own, built from config.shape.
  derived = {"dtype", "level", "input_resolution", "shape"}
  if section == "patches":
    derived.add("pad_value")  # config.regional's
  for name, default in model_config.module_fields(module).items():
    if name in derived:
      continue
    where = config.heatmap if name in config.heatmap else config[section]
    assert name in where, f"{module.__name__}.{name} has no config field"
    assert where[name] == default, (section, name)


def test_build_module_takes_its_fields_by_name_lists_as_tuples():
  section = {"widths": [8, [16]], "blocks": 2, "crop_fraction": 0.5}
  net = model_config.build_module(
    models.PatchRefiner, section, {"blocks": 3}, num_landmarks=2, size=8, stride=2
  )
  assert net.widths == (8, (16,))  # a config read back from JSON has lists
  assert net.blocks == 3  # later sections win
  assert net.stem_widths == models.PatchRefiner.stem_widths  # the module's default
  assert net.size == 8 and net.num_landmarks == 2


def test_a_config_read_back_from_json_builds_the_same_model():
  import json  # noqa: PLC0415

  config = config_lib.load_config_file("configs/regional_patches.py", "gpu,1024")
  saved = config_lib.with_defaults(json.loads(json.dumps(config.to_dict())))
  assert repr(models.build_model(saved)) == repr(models.build_model(config))
  config.coarse.blocks = 3
  assert models.build_model(config).coarse.blocks == 3
