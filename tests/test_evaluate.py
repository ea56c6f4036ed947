"""Evaluation: the CLI's files, metric consistency, several checkpoints."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import run_cli, shared_checkpoint, tiny_config

from hrface_jax import evaluate as evaluate_cli
from hrface_jax import markup
from hrface_jax.evaluation import checkpoints, plots

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> str:
  return shared_checkpoint(tmp_path_factory)


def _io_nme(pred: np.ndarray, true: np.ndarray) -> float:
  """300-W NME of one face, written independently of hrface_jax.evaluation.metrics."""
  d = np.linalg.norm(true[36] - true[45])
  return float(np.mean(np.linalg.norm(pred - true, axis=1)) / d)


def test_cli_writes_every_file(workdir, tmp_path):
  out = tmp_path / "eval"
  r = subprocess.run(
    [
      sys.executable,
      "-m",
      "hrface_jax.evaluate",
      f"--workdir={workdir}",
      f"--out={out}",
      "--noprogress",
    ],
    cwd=REPO,
    capture_output=True,
    text=True,
    timeout=300,
  )
  assert r.returncode == 0, r.stderr[-3000:]
  m = json.loads((out / "metrics.json").read_text())
  regions = markup.get_markup("ibug68").regions
  expected = {
    "nme_inter_ocular",
    "nme_inter_pupil",
    "nme_box_diagonal",
    "failure_rate_0.08",
    "failure_rate_0.10",
    "auc_0.08",
    "auc_0.10",
    "error_pixels",
    "coarse_nme_inter_ocular",  # the regional model's coarse stage
    "along_inter_ocular",  # the error along / across the markup's curves
    "across_inter_ocular",
    "num_images",
    "step",
  } | {f"nme_inter_ocular/{name}" for name in regions}
  assert expected <= set(m), expected - set(m)
  assert all(not isinstance(v, dict | list) for v in m.values())  # flat
  assert m["num_images"] == 4 and m["step"] == 4
  assert f"along / across the curves {m['along_inter_ocular']:.4f}" in r.stdout

  lines = (out / "predictions.jsonl").read_text().splitlines()
  assert len(lines) == 4
  records = [json.loads(x) for x in lines]
  assert sorted(rec["index"] for rec in records) == [0, 1, 2, 3]
  pred = np.array([rec["pred"] for rec in records])
  true = np.array([rec["true"] for rec in records])
  assert pred.shape == true.shape == (4, 68, 2)
  # The metrics describe these predictions (in original-image pixels).
  nmes = [_io_nme(p, t) for p, t in zip(pred, true, strict=True)]
  np.testing.assert_allclose([rec["nme_inter_ocular"] for rec in records], nmes, 1e-3)
  np.testing.assert_allclose(m["nme_inter_ocular"], np.mean(nmes), rtol=1e-3)
  err = np.mean(np.linalg.norm(pred - true, axis=-1))
  np.testing.assert_allclose(m["error_pixels"], err, rtol=1e-3)
  assert m["failure_rate_0.10"] == np.mean(np.array(nmes) > 0.10)

  # Same numbers as training's validation of the same checkpoint.
  logged = [json.loads(x) for x in open(os.path.join(workdir, "metrics.jsonl"))]
  val = [x for x in logged if "nme_inter_ocular" in x][-1]
  np.testing.assert_allclose(m["nme_inter_ocular"], val["nme_inter_ocular"], 1e-5)

  for png in ("ced.png", "examples.png"):
    assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", png


def test_several_checkpoints_give_one_ced_plot(workdir, tmp_path, monkeypatch):
  curves = []
  real_plot = plots.plot_ced

  def spy(c, path, **kw):
    curves.append(dict(c))
    return real_plot(c, path, **kw)

  monkeypatch.setattr(plots, "plot_ced", spy)
  step_dir = os.path.join(workdir, "checkpoints", "4")
  out, results = checkpoints.evaluate(
    [step_dir, workdir],
    str(tmp_path / "eval"),
    max_examples=3,
    num_examples_shown=2,
    progress=False,
  )
  assert len(curves) == 1 and len(curves[0]) == 2, curves
  names = list(curves[0])
  assert names[0] != names[1]
  for name, nmes in curves[0].items():
    assert len(nmes) == 3
    per_run = json.load(open(os.path.join(out, name, "metrics.json")))
    assert per_run["num_images"] == 3
  # The same weights through two paths: the same curve and metrics.
  np.testing.assert_allclose(*curves[0].values())
  assert results[0]["nme_inter_ocular"] == pytest.approx(results[1]["nme_inter_ocular"])
  assert os.path.exists(os.path.join(out, "ced.png"))
  assert len(open(os.path.join(out, "predictions.jsonl")).readlines()) == 3


def test_default_output_folder_and_bad_paths(workdir, tmp_path):
  code, _, err = run_cli(evaluate_cli, f"--checkpoint={tmp_path / 'nope'}")
  assert code == 1
  assert "nope" in err and "no such checkpoint" in err
  code, _, err = run_cli(evaluate_cli)  # nothing to evaluate: a usage error
  assert code == 1 and "give --workdir" in err
  assert checkpoints._workdir_of(os.path.join(workdir, "checkpoints", "4")) == (
    os.path.abspath(workdir),
    True,
  )
  assert checkpoints._workdir_of(workdir) == (os.path.abspath(workdir), False)


def test_eval_config_overrides(tmp_path):
  config = tiny_config(str(tmp_path), batch_size=4)
  c = checkpoints.eval_config(config, resolution=512, split="train", batch_size=3)
  assert c.resolution == 512 and c.synth_resolution == 512
  assert c.eval_split == "train" and c.batch_size >= 3
  assert config.resolution == 256  # the original is untouched
  with pytest.raises(ValueError, match="resolution=-1"):
    checkpoints.eval_config(config, resolution=-1)
