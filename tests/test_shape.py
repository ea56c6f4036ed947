"""The shape prior: its frame, its fit after training, and its place in the
models, the optimizer, the trainer and the sweep."""

from __future__ import annotations

import os

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
from conftest import tiny_config

from hrface_jax import checkpointing, config_lib, evaluation, models, sweep
from hrface_jax.evaluation import crop_oracle
from hrface_jax.markup import IBUG68
from hrface_jax.models.shape import ShapePrior, face_frame, from_frame, to_frame
from hrface_jax.training import optim, shape_fit, trainer

L = 68
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> str:
  return str(tmp_path_factory.mktemp("data"))


def _faces(n: int, seed: int) -> np.ndarray:
  """[n, L, 2] point sets: a template moved, turned and scaled at random."""
  rng = np.random.default_rng(seed)
  template = np.random.default_rng(99).uniform(-1, 1, (L, 2))
  template[36], template[45] = (-0.5, 0.0), (0.5, 0.0)
  angle = rng.uniform(-0.5, 0.5, n)
  rot = np.stack(
    [
      np.stack([np.cos(angle), -np.sin(angle)], -1),
      np.stack([np.sin(angle), np.cos(angle)], -1),
    ],
    -2,
  )
  scale = rng.uniform(50, 150, n)[:, None, None]
  shift = rng.uniform(100, 300, (n, 1, 2))
  wobble = 0.05 * rng.normal(size=(n, L, 2))
  return np.einsum("nij,nlj->nli", rot, template + wobble) * scale + shift


def _nonzero_params(prior: ShapePrior, points) -> dict:
  params = prior.init(jax.random.PRNGKey(0), points)["params"]
  return jax.tree.map(lambda x: x + 0.01 * jnp.ones_like(x), params)


def test_face_frame_round_trip_and_units():
  points = jnp.asarray(_faces(3, 0), jnp.float32)
  frame = face_frame(points, (36, 45))
  local = to_frame(points, *frame)
  np.testing.assert_allclose(local[:, 36], [[-0.5, 0.0]] * 3, atol=1e-5)
  np.testing.assert_allclose(local[:, 45], [[0.5, 0.0]] * 3, atol=1e-5)
  np.testing.assert_allclose(from_frame(local, *frame), points, rtol=1e-5, atol=1e-3)
  # Collapsed corners (an untrained network) cannot divide by zero.
  flat = points.at[:, 45].set(points[:, 36])
  assert np.all(np.isfinite(np.asarray(to_frame(flat, *face_frame(flat, (36, 45))))))


def test_unfitted_prior_changes_nothing_and_a_fitted_one_is_similarity_equivariant():
  points = jnp.asarray(_faces(4, 1), jnp.float32)
  prior = ShapePrior(num_landmarks=L, hidden=(16,))
  params = prior.init(jax.random.PRNGKey(0), points)["params"]
  np.testing.assert_allclose(prior.apply({"params": params}, points), points, atol=1e-3)
  params = _nonzero_params(prior, points)
  moved = prior.apply({"params": params}, points)
  assert float(jnp.max(jnp.abs(moved - points))) > 0.1
  # Turning, scaling and shifting the input does the same to the output.
  c, s = np.cos(0.3), np.sin(0.3)
  rot = jnp.asarray([[c, -s], [s, c]], jnp.float32)
  warp = lambda p: 1.7 * p @ rot.T + jnp.asarray([40.0, -25.0])
  np.testing.assert_allclose(
    prior.apply({"params": params}, warp(points)), warp(moved), rtol=1e-4, atol=2e-2
  )


def _fit_settings(**kw) -> ml_collections.ConfigDict:
  fit = config_lib.base_config().shape
  fit.update(dict(fit_steps=300, fit_batch_size=32, fit_learning_rate=3e-3, **kw))
  return fit


def test_fit_learns_an_error_the_other_points_predict():
  """Points 0..16 slide along x by an amount the other points fix (their
  spread): the prior learns to undo it on faces it was not fitted on."""
  true = _faces(600, 2)
  frame = face_frame(jnp.asarray(true), (36, 45))
  local = np.array(to_frame(jnp.asarray(true), *frame))
  spread = local[:, 17:, 1].std(axis=1)
  local[:, :17, 0] += 3.0 * (spread - spread.mean())[:, None]
  points = np.asarray(from_frame(jnp.asarray(local), *frame))
  prior = ShapePrior(num_landmarks=L, hidden=(64,))
  init = prior.init(jax.random.PRNGKey(0), points[:2])["params"]
  fit = _fit_settings(fit_noise=0.0)
  params, before, after = shape_fit.fit_shape_prior(
    prior, init, points[:500], true[:500], fit
  )
  assert after < 0.7 * before
  held_before = float(shape_fit.frame_error(prior, init, points[500:], true[500:]))
  held_after = float(shape_fit.frame_error(prior, params, points[500:], true[500:]))
  assert held_after < 0.8 * held_before
  # Deterministic for a seed (every host fits the same prior).
  again, _, _ = shape_fit.fit_shape_prior(prior, init, points[:500], true[:500], fit)
  jax.tree.map(np.testing.assert_array_equal, params, again)
  with pytest.raises(ValueError, match=r"\[N > 0, L, 2\]"):
    shape_fit.fit_shape_prior(prior, init, points[:0], true[:0], fit)


def test_mirrored_faces_are_faces_with_mirrored_errors():
  """Each face's mirror image: left and right swapped, the same errors in
  inter-ocular units; mirroring twice gives the faces back."""
  flip = IBUG68.flip_permutation
  true = _faces(6, 4)
  points = true + np.random.default_rng(5).normal(0, 0.02, true.shape)
  both, both_true = shape_fit.with_mirrored_faces(points, true, flip)
  assert both.shape == both_true.shape == (12, L, 2)
  np.testing.assert_array_equal(both[:6], points)
  # The mirror's left outer eye corner (36) is the face's right one (45), x negated.
  np.testing.assert_allclose(both_true[6:, 36, 0], -true[:, 45, 0])
  np.testing.assert_allclose(both_true[6:, 36, 1], true[:, 45, 1])

  # In the face frame (origin between the outer eye corners, x along them) a
  # mirrored face is the face with its local x negated: a valid face.
  def frame(p):
    p = jnp.asarray(p)
    return np.asarray(to_frame(p, *face_frame(p, (36, 45))))

  local, mirrored = frame(true), frame(both_true[6:])
  np.testing.assert_allclose(mirrored[:, flip, 0], -local[:, :, 0], atol=1e-5)
  np.testing.assert_allclose(mirrored[:, flip, 1], local[:, :, 1], atol=1e-5)
  prior = ShapePrior(num_landmarks=L, hidden=(8,))
  init = prior.init(jax.random.PRNGKey(0), jnp.asarray(points[:1]))["params"]
  error = lambda p, t: float(shape_fit.frame_error(prior, init, p, t))
  assert error(both[6:], both_true[6:]) == pytest.approx(error(points, true), rel=1e-5)
  again, again_true = shape_fit.with_mirrored_faces(both[6:], both_true[6:], flip)
  np.testing.assert_allclose(again[6:], points)
  np.testing.assert_allclose(again_true[6:], true)


@pytest.mark.parametrize("model_name", ["regional", "holistic"])
def test_models_keep_the_points_before_the_prior_and_the_step_never_trains_it(
  model_name, tmp_path
):
  cfg = tiny_config(
    str(tmp_path),
    model_name=model_name,
    **{"shape.enabled": True, "optimizer.warmup_steps": 0},
  )
  if model_name == "holistic":
    cfg.update_from_flattened_dict(
      {"input_resolution": 64, "holistic.width": 8, "holistic.stem_width": 8}
    )
  model = models.build_model(cfg)
  images = jnp.zeros((2, 256, 256, 3), jnp.uint8)
  params = trainer.init_params(cfg, model, jax.random.PRNGKey(0))
  assert "shape" in params
  out = model.apply({"params": params}, images)
  np.testing.assert_allclose(out["landmarks"], out["unrefined_landmarks"], atol=1e-3)
  # No gradient reaches it and the optimizer leaves it as it is, while the
  # rest trains.
  true = jnp.full((2, L, 2), 128.0)

  def loss(p):
    return models.loss_fn(cfg, model.apply({"params": p}, images), true)[0]

  def final_points(p):
    return jnp.sum(model.apply({"params": p}, images)["landmarks"])

  zero = lambda tree: all(
    float(jnp.max(jnp.abs(g))) == 0 for g in jax.tree.leaves(tree)
  )
  assert zero(jax.grad(loss)(params)["shape"])
  below = {k: v for k, v in jax.grad(final_points)(params).items() if k != "shape"}
  assert zero(below)
  tx = optim.make_optimizer(cfg)
  grads = jax.tree.map(jnp.ones_like, params)
  updates, _ = tx.update(grads, tx.init(params), params)
  assert all(float(jnp.max(jnp.abs(u))) == 0 for u in jax.tree.leaves(updates["shape"]))
  assert any(float(jnp.max(jnp.abs(u))) > 0 for u in jax.tree.leaves(updates))


def test_bad_shape_settings_are_named(tmp_path):
  for key, value in (("shape.hidden", ()), ("shape.fit_batch_size", 0)):
    bad = tiny_config(str(tmp_path), **{"shape.enabled": True, key: value})
    with pytest.raises(ValueError, match=key.replace(".", r"\.")):
      config_lib.validate_config(bad, num_devices=1)


def _train_with_prior(data_dir: str, workdir: str):
  """A 4-step tiny regional run that ends by fitting its shape prior: (config,
  its final validation metrics)."""
  cfg = tiny_config(
    data_dir,
    total_steps=4,
    checkpoint_every_steps=4,
    eval_every_steps=4,
    **{"shape.enabled": True, "shape.fit_steps": 50, "shape.fit_batch_size": 8},
  )
  return cfg, trainer.train_and_evaluate(cfg, workdir)


def test_training_ends_by_fitting_the_prior_and_reports_both(data_dir, tmp_path):
  workdir = str(tmp_path / "run")
  cfg, metrics = _train_with_prior(data_dir, workdir)
  assert "unrefined_nme_inter_ocular" in metrics
  assert metrics["nme_inter_ocular"] != metrics["unrefined_nme_inter_ocular"]
  _, params, _ = checkpointing.load_for_inference(workdir)
  assert float(np.abs(params["shape"]["offsets"]["kernel"]).max()) > 0
  # Evaluating the checkpoint gives the fitted prior's points.
  model = models.build_model(cfg)
  p_predict = evaluation.make_p_predict(model)
  preds = evaluation.predict_split(
    cfg, p_predict, jax.tree.map(lambda x: x[None], params), "test"
  )
  assert not np.allclose(preds["pred"], preds["unrefined"])


def test_sweep_shares_the_prior_with_the_patch_only_jobs_and_not_the_two_stage_model():
  sw = sweep.load_config_file(os.path.join(REPO, "configs", "sweep_small.py"))
  assert sw.per_resolution.shape.enabled and sw.holistic.shape.enabled
  own = sweep.model_config(sw, "regional", 1024)
  assert own.shape.enabled and own.shape.fit_steps > 0
  shared = sweep.model_config(sw, "regional", 4096)
  assert "shape" in shared.init_modules and shared.shape.fit_steps == 0
  two_stage = sweep.eval_config_at(sw, "regional", 1024)
  assert not two_stage.shape.enabled
  params = {"coarse": 1, "regional": 2, "patches_0": 3, "shape": 4}
  assert models.params_for_model(params, two_stage) == {"coarse": 1, "regional": 2}
  with_patches = sweep.eval_config_at(sw, "regional_patches", 1024)
  assert models.params_for_model(params, with_patches) == params
  # The coarse job does not read the prior's settings: its fingerprint (and
  # so a finished coarse run) does not change with them.
  jobs = sweep.Jobs(sw, "/nonexistent", print)
  before = jobs.fingerprint("coarse", 256)
  sw.per_resolution.shape.hidden = (64,)
  sw.regional.shape = dict(fit_steps=7)
  assert sweep.Jobs(sw, "/nonexistent", print).fingerprint("coarse", 256) == before


def test_the_crop_oracle_scores_the_two_stage_model_without_the_prior(
  data_dir, tmp_path
):
  """The prior was fitted to the points after the patch stages: the oracle's
  two-stage model (patches=False) leaves it out, so its predicted-crop NME
  is the points before the prior."""
  workdir = str(tmp_path / "run")
  _, metrics = _train_with_prior(data_dir, workdir)
  result = crop_oracle.crop_oracle(workdir, patches=False, other_fusion=False)
  assert result["nme_predicted_crops"] == pytest.approx(
    metrics["unrefined_nme_inter_ocular"], rel=1e-4
  )
