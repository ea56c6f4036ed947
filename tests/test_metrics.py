"""Metrics against hand-computed values on small, hand-built faces."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from hrface_jax.evaluation import metrics
from hrface_jax.markup import IBUG68, WFLW98, with_regions


def _face() -> np.ndarray:
  """68 points with known normalisers.

  Outer eye corners (0,0) and (100,0): inter-ocular 100. Right eye mean (20,0),
  left eye mean (80,0): inter-pupil 60. Bounding box x 0..100, y -5..70:
  100 x 75, diagonal 125.
  """
  f = np.full((68, 2), [50.0, 30.0])
  f[36], f[39] = (0, 0), (40, 0)
  f[37], f[38], f[40], f[41] = (20, -5), (20, -5), (20, 5), (20, 5)
  f[42], f[45] = (60, 0), (100, 0)
  f[43], f[44], f[46], f[47] = (80, -5), (80, -5), (80, 5), (80, 5)
  f[8] = (50, 70)
  return f


def _batch():
  """Three images with hand-computable errors.

  0: every point off by (3, 4): error 5 px, IO NME 0.05.
  1: the face scaled x2 and moved, every point off by (6, 8): error 10 px,
     normalisers doubled, so the same NMEs as image 0.
  2: only the 20 mouth points off by (0, 10): mean error 200/68 px.
  """
  f = _face()
  true = np.stack([f, 2 * f + [7, 11], f]).astype(np.float32)
  pred = true.copy()
  pred[0] += [3, 4]
  pred[1] += [6, 8]
  pred[2, 48:68] += [0, 10]
  return pred, true


def test_normalisers():
  _, true = _batch()
  np.testing.assert_allclose(metrics.inter_ocular(true, IBUG68), [100, 200, 100])
  np.testing.assert_allclose(metrics.inter_pupil(true, IBUG68), [60, 120, 60])
  np.testing.assert_allclose(metrics.box_diagonal(true), [125, 250, 125])


def test_point_errors_and_nme():
  pred, true = _batch()
  err = metrics.point_errors(pred, true)
  assert err.shape == (3, 68)
  np.testing.assert_allclose(err[0], 5, rtol=1e-6)
  np.testing.assert_allclose(err[1], 10, rtol=1e-6)
  np.testing.assert_allclose(err[2, :48], 0)
  np.testing.assert_allclose(err[2, 48:], 10, rtol=1e-6)
  m3 = 200 / 68
  for norm, d in [("inter_ocular", 100), ("inter_pupil", 60), ("box_diagonal", 125)]:
    np.testing.assert_allclose(
      metrics.nme(pred, true, IBUG68, norm), [5 / d, 5 / d, m3 / d], rtol=1e-5
    )


def test_unknown_normalisation_and_bad_shape():
  pred, true = _batch()
  with pytest.raises(ValueError, match="inter_eye"):
    metrics.nme(pred, true, IBUG68, "inter_eye")
  with pytest.raises(ValueError, match=r"\[B, L, 2\]"):
    metrics.nme(pred[0], true[0], IBUG68)


def test_group_and_region_nme():
  pred, true = _batch()
  groups = metrics.group_nme(pred, true, IBUG68)
  assert set(groups) == set(IBUG68.groups)
  np.testing.assert_allclose(groups["mouth"], [0.05, 0.05, 0.1], rtol=1e-5)
  np.testing.assert_allclose(groups["jaw"], [0.05, 0.05, 0.0], atol=1e-7)
  regions = metrics.region_nme(pred, true, IBUG68)
  assert set(regions) == set(IBUG68.regions)
  np.testing.assert_allclose(regions["mouth"][2], 0.1, rtol=1e-5)
  np.testing.assert_allclose(regions["nose"][2], 0.0, atol=1e-7)


def test_landmark_mask_ignores_points():
  pred, true = _batch()
  pred[0, 10] += 1000  # a wild point, masked out
  mask = np.ones((3, 68), bool)
  mask[0, 10] = False
  got = metrics.nme(pred, true, IBUG68, landmark_mask=mask)
  np.testing.assert_allclose(got[0], 0.05, rtol=1e-5)
  unmasked = metrics.nme(pred, true, IBUG68)
  assert unmasked[0] > 0.1
  # Box diagonal from visible points only: hiding the chin (8, y=70) leaves
  # y from -5 to 30 (the filler points): a 100 x 35 box.
  mask2 = np.ones((1, 68), bool)
  mask2[0, 8] = False
  np.testing.assert_allclose(
    metrics.box_diagonal(true[:1], landmark_mask=mask2), [np.hypot(100, 35)]
  )
  # No visible point at all: undefined, NaN.
  none_visible = np.zeros((3, 68), bool)
  assert np.isnan(metrics.nme(pred, true, IBUG68, landmark_mask=none_visible)).all()


def test_failure_rate_edge_cases():
  assert metrics.failure_rate(np.array([0.0, 0.01, 0.079]), 0.08) == 0
  # Exactly at the threshold is not a failure; just above is.
  assert metrics.failure_rate(np.array([0.08, 0.08]), 0.08) == 0
  assert metrics.failure_rate(np.array([0.08, 0.0800001]), 0.08) == 0.5
  assert metrics.failure_rate(np.array([0.5, 0.2]), 0.1) == 1
  # A NaN NME (diverged model) is a failure.
  assert metrics.failure_rate(np.array([0.01, np.nan]), 0.1) == 0.5
  # Masked images are ignored; no image at all gives NaN.
  assert metrics.failure_rate(np.array([0.01, 9.0]), 0.1, np.array([1, 0])) == 0
  assert np.isnan(metrics.failure_rate(np.zeros(0), 0.1))


def test_auc_edge_cases():
  assert metrics.auc(np.zeros(5), 0.08) == pytest.approx(1.0)
  assert metrics.auc(np.array([0.2, 0.5, np.nan]), 0.1) == 0.0
  # Error exactly at the threshold contributes nothing (CED reaches it at t).
  assert metrics.auc(np.array([0.1]), 0.1) == pytest.approx(0.0)
  # CED of [0, 0.05, 0.2] on [0, 0.1]: 1/3 on [0, .05), 2/3 on [.05, .1]:
  # area = .05/3 + .05*2/3 = .05; / 0.1 = 0.5.
  assert metrics.auc(np.array([0.0, 0.05, 0.2]), 0.1) == pytest.approx(0.5)
  # Half the threshold for everyone: CED is 0 then 1 from t/2: AUC 0.5.
  assert metrics.auc(np.full(4, 0.04), 0.08) == pytest.approx(0.5)


def test_auc_matches_numerical_integral_of_ced():
  nmes = np.random.default_rng(0).gamma(2.0, 0.02, size=500)
  for t in (0.08, 0.1):
    x, y = metrics.ced_curve(nmes, t, num_steps=20001)
    numeric = np.trapezoid(y, x) / t
    assert metrics.auc(nmes, t) == pytest.approx(numeric, abs=1e-3)


def test_ced_curve():
  x, y = metrics.ced_curve(np.array([0.0, 0.05, 0.2, 0.05]), 0.1, num_steps=11)
  np.testing.assert_allclose(x, np.linspace(0, 0.1, 11))
  # <= t: 0 counts at t=0; both 0.05s count from t=0.05; 0.2 never.
  expected = [0.25] * 5 + [0.75] * 6
  np.testing.assert_allclose(y, expected)
  _, y = metrics.ced_curve(np.array([0.0, 9.0]), 0.1, 3, image_mask=[True, False])
  np.testing.assert_allclose(y, [1, 1, 1])


def test_numpy_and_jit_agree():
  pred, true = _batch()
  rng = np.random.default_rng(1)
  pred = pred + rng.normal(0, 3, pred.shape).astype(np.float32)
  mask = rng.uniform(size=(3, 68)) > 0.2
  host = metrics.per_image_metrics(pred, true, IBUG68, mask)
  dev = jax.jit(lambda p, t, m: metrics.per_image_metrics(p, t, IBUG68, m))(
    jnp.asarray(pred), jnp.asarray(true), jnp.asarray(mask)
  )
  assert set(host) == set(dev)
  for k in host:
    assert isinstance(dev[k], jax.Array)
    np.testing.assert_allclose(np.asarray(dev[k]), host[k], rtol=1e-5, err_msg=k)

  nmes = np.array([0.0, 0.03, 0.08, 0.12, np.nan], np.float32)
  im = np.array([1, 1, 1, 1, 0], bool)

  @jax.jit
  def reduce(n, m):
    return (
      metrics.failure_rate(n, 0.08, m),
      metrics.auc(n, 0.1, m),
      metrics.ced_curve(n, 0.1, 11, m)[1],
      metrics.mean_over_images(n, m),
    )

  dev = reduce(jnp.asarray(nmes), jnp.asarray(im))
  host = (
    metrics.failure_rate(nmes, 0.08, im),
    metrics.auc(nmes, 0.1, im),
    metrics.ced_curve(nmes, 0.1, 11, im)[1],
    metrics.mean_over_images(nmes, im),
  )
  for d, h in zip(dev, host, strict=True):
    np.testing.assert_allclose(np.asarray(d), h, rtol=1e-6)
  assert float(host[0]) == 0.25  # 0.12 fails; the NaN one is masked
  assert float(host[3]) == pytest.approx(0.23 / 4)


def test_accumulator_hand_values_and_keys():
  pred, true = _batch()
  acc = metrics.LandmarkMetrics(IBUG68)
  acc.update(pred, true)
  r = acc.result()
  m3 = 200 / 68
  assert r["num_images"] == 3
  assert r["nme_inter_ocular"] == pytest.approx((0.05 + 0.05 + m3 / 100) / 3)
  assert r["nme_inter_pupil"] == pytest.approx((5 / 60 * 2 + m3 / 60) / 3)
  assert r["nme_box_diagonal"] == pytest.approx((0.04 * 2 + m3 / 125) / 3)
  assert r["error_pixels"] == pytest.approx((5 + 10 + m3) / 3, rel=1e-5)
  assert r["failure_rate_0.08"] == 0
  assert r["failure_rate_0.10"] == 0
  # IO NMEs 0.05, 0.05, 0.0294: AUC@0.1 = mean(1 - nme / 0.1).
  io = np.array([0.05, 0.05, m3 / 100])
  assert r["auc_0.10"] == pytest.approx(np.mean(1 - io / 0.1), rel=1e-5)
  assert r["auc_0.08"] == pytest.approx(np.mean(1 - io / 0.08), rel=1e-5)
  assert r["nme_inter_ocular/mouth"] == pytest.approx(0.2 / 3, rel=1e-5)
  assert r["nme_inter_ocular/jaw"] == pytest.approx(0.1 / 3, rel=1e-5)
  for name in list(IBUG68.groups) + list(IBUG68.regions):
    assert f"nme_inter_ocular/{name}" in r
  assert all(isinstance(v, float | int) for v in r.values())
  np.testing.assert_allclose(acc.per_image_nme(), io, rtol=1e-5)


def test_accumulator_masks_and_streaming():
  pred, true = _batch()
  whole = metrics.LandmarkMetrics(IBUG68)
  whole.update(pred, true)

  # The same three images split over two batches, the second padded with two
  # garbage images (zeros: undefined normalisers) and a wild masked point.
  acc = metrics.LandmarkMetrics(IBUG68)
  acc.update(pred[:1], true[:1])
  pad_pred = np.concatenate([pred[1:], np.zeros((2, 68, 2)) + 1e4])
  pad_true = np.concatenate([true[1:], np.zeros((2, 68, 2))])
  lm = np.ones((4, 68), bool)
  pad_pred[0, 3] += 500
  lm[0, 3] = False
  acc.update(pad_pred, pad_true, lm, image_mask=[1, 1, 0, 0])
  a, b = acc.result(), whole.result()
  assert a.keys() == b.keys()
  for k in a:
    assert a[k] == pytest.approx(b[k], rel=1e-6), k
  assert acc.num_images == 3

  # Images with no visible landmark are dropped as well.
  acc2 = metrics.LandmarkMetrics(IBUG68)
  lm = np.ones((3, 68), bool)
  lm[1] = False
  pred2 = pred.copy()
  pred2[1] += 100
  acc2.update(pred2, true, lm)
  assert acc2.result()["num_images"] == 2


def test_region_mean_skips_images_where_region_invisible():
  pred, true = _batch()
  lm = np.ones((3, 68), bool)
  lm[2, 48:68] = False  # the mouth of the one image with mouth errors
  acc = metrics.LandmarkMetrics(IBUG68)
  acc.update(pred, true, lm)
  r = acc.result()
  assert r["nme_inter_ocular/mouth"] == pytest.approx(0.05, rel=1e-5)
  assert r["num_images"] == 3


def test_nan_prediction_is_visible():
  pred, true = _batch()
  pred[1, 0] = np.nan
  acc = metrics.LandmarkMetrics(IBUG68)
  acc.update(pred, true)
  r = acc.result()
  assert np.isnan(r["nme_inter_ocular"])
  assert r["failure_rate_0.10"] == pytest.approx(1 / 3)


def test_prefix_thresholds_and_wflw():
  acc = metrics.LandmarkMetrics(WFLW98, thresholds=(0.08, 0.1, 0.125), prefix="c_")
  rng = np.random.default_rng(0)
  true = rng.uniform(0, 200, (2, 98, 2))
  acc.update(true + 1, true)
  r = acc.result()
  assert {"c_failure_rate_0.08", "c_failure_rate_0.10", "c_auc_0.125"} <= set(r)
  assert "c_nme_inter_ocular/contour" in r and "c_num_images" in r
  assert r["c_error_pixels"] == pytest.approx(np.sqrt(2))
  with pytest.raises(ValueError, match="98"):
    acc.update(np.zeros((1, 68, 2)), np.zeros((1, 68, 2)))


def test_region_name_clash_with_group():
  # A region called "mouth" with other points than the group: both reported.
  markup = with_regions(IBUG68, {"mouth": range(48, 60), "nose": range(27, 36)})
  keys = metrics.subset_keys(markup)
  assert keys["mouth"] == tuple(range(48, 68))
  assert keys["region_mouth"] == tuple(range(48, 60))
  assert "region_nose" not in keys  # same points as the group


def test_inner_points_leave_out_the_face_contour():
  # Only the jaw is off by 3 px: "inner" (the 51 other points) has no error,
  # the whole face's mean error is 17 / 68 of the jaw's.
  rng = np.random.default_rng(0)
  true = rng.uniform(0, 100, (2, 68, 2)).astype(np.float32)
  pred = true.copy()
  pred[:, list(IBUG68.groups["jaw"]), 0] += 3.0
  assert IBUG68.inner_indices() == tuple(range(17, 68))
  r = metrics.per_image_metrics(pred, true, IBUG68)
  np.testing.assert_allclose(r["nme_inter_ocular/inner"], 0.0, atol=1e-7)
  np.testing.assert_allclose(r["error_pixels"], 3.0 * 17 / 68, rtol=1e-5)
  assert (np.asarray(r["nme_inter_ocular/jaw"]) > 0).all()


def test_errors_split_along_and_across_the_curves():
  """Every curve laid on a horizontal line: a shift in x is all along the
  curves, one in y all across; points without a tangent are left out."""
  true = np.zeros((1, 68, 2), np.float32)
  for c, (points, _) in enumerate(IBUG68.curves):
    for k, i in enumerate(points):
      true[0, i] = (10.0 * i + k, 20.0 * c)
  io = float(np.linalg.norm(true[0, 45] - true[0, 36]))
  along_x = metrics.per_image_metrics(true + [3.0, 0.0], true, IBUG68)
  across_y = metrics.per_image_metrics(true + [0.0, 4.0], true, IBUG68)
  np.testing.assert_allclose(along_x["along_inter_ocular"], 3.0 / io, rtol=1e-5)
  np.testing.assert_allclose(along_x["across_inter_ocular"], 0.0, atol=1e-7)
  np.testing.assert_allclose(across_y["along_inter_ocular"], 0.0, atol=1e-7)
  np.testing.assert_allclose(across_y["across_inter_ocular"], 4.0 / io, rtol=1e-5)
  # A closed mouth: the inner lip corner's neighbours coincide, no tangent.
  closed = true.copy()
  closed[0, 67] = closed[0, 61]
  pred = closed.copy()
  pred[0, 60] += [0.0, 50.0]  # its error counts in neither part
  along, across, defined = metrics.along_across_errors(pred, closed, IBUG68)
  assert not defined[0, 60] and np.isnan(along[0, 60]) and np.isnan(across[0, 60])
  assert defined[0, :60].all() and defined[0, 61:].all()
  r = metrics.per_image_metrics(pred, closed, IBUG68)
  np.testing.assert_allclose(r["across_inter_ocular"], 0.0, atol=1e-7)
  # Hidden points are left out as well, and the accumulator reduces both.
  mask = np.ones((1, 68), bool)
  mask[0, :17] = False
  shifted = true + [0.0, 4.0]
  shifted[0, :17] += [0.0, 100.0]
  m = metrics.LandmarkMetrics(IBUG68)
  m.update(shifted, true, landmark_mask=mask)
  out = m.result()
  assert out["across_inter_ocular"] == pytest.approx(4.0 / io, rel=1e-5)
  assert out["along_inter_ocular"] == pytest.approx(0.0, abs=1e-7)
  # WFLW's pupils lie on no curve.
  prev, nxt = WFLW98.curve_neighbours()
  assert prev[96] == nxt[96] == 96 and prev[0] == 0 and nxt[0] == 1
  assert prev[60] == 67 and nxt[67] == 60  # the eye closes
