"""experiments/resolution_sweep.py and experiments/benchmark.py on tiny settings."""

from __future__ import annotations

import importlib.util
import json
import math
import os
import subprocess
import sys
import time

import jax
import ml_collections
import numpy as np
import pytest

from hrface_jax import checkpointing
from hrface_jax import sweep as rs
from hrface_jax.evaluation import crop_oracle
from hrface_jax.sweep import benchmark
from hrface_jax.training import trainer

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def tiny_sweep(data_dir: str, **overrides) -> ml_collections.ConfigDict:
  """The small sweep config with nets and data small enough for seconds."""
  s = rs.load_config_file("configs/sweep_small.py")
  s.resolutions = (256,)
  s.infer_timing_iters = 1
  s.shared_train_size = 8
  s.coarse_steps = 4
  s.regional_steps = 4
  s.patch_train_size = 8
  # In this process, so tests can replace the trainer (one test runs a job in
  # its own process: test_a_job_trains_in_its_own_process).
  s.train_in_subprocess = False
  c = s.common
  c.data_dir = data_dir
  c.synth_train_size = 8
  c.synth_test_size = 4
  c.batch_size = 4
  c.log_every_steps = 2
  c.eval_every_steps = 4
  c.checkpoint_every_steps = 4
  c.optimizer.warmup_steps = 1
  c.augment = ml_collections.ConfigDict(dict(enabled=False))
  s.regional = ml_collections.ConfigDict(
    dict(
      coarse=dict(input_size=64, stem_width=8, widths=(8, 16), heatmap_level=0),
      regional=dict(crop_size=64, stem_stride=2, stem_widths=(8,), widths=(8, 16)),
      patches=dict(stem_widths=(8,), widths=(8, 16)),
    )
  )
  s.holistic = ml_collections.ConfigDict(
    dict(holistic=dict(stem_width=8, width=8, levels=2, stacks=1))
  )
  s.per_resolution.shape.update(dict(hidden=(16,), fit_steps=20, fit_batch_size=8))
  for k, v in overrides.items():
    s[k] = v
  return s


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> str:
  return str(tmp_path_factory.mktemp("data"))


def _no_training(*args, **kwargs):
  raise AssertionError("train_and_evaluate must not be called here")


@pytest.mark.slow
def test_sweep_writes_all_outputs_and_resumes(data_dir, tmp_path, monkeypatch):
  out, work = str(tmp_path / "out"), str(tmp_path / "runs")
  sweep = tiny_sweep(data_dir)
  records = rs.run_sweep(sweep, out, work, log=lambda s: None)

  with open(os.path.join(out, "resolution_sweep.json")) as f:
    saved = json.load(f)
  assert saved == records
  by_model = {r["model"]: r for r in saved if r["resolution"] == 256}
  assert set(by_model) == set(rs.MODELS)
  for r in by_model.values():
    assert set(rs.RECORD_FIELDS) <= set(r)
    # Every model's steps count the shared ones: 4 coarse + 4 regional.
    assert r["status"] == "ok" and r["steps"] == 8
    assert 0 < r["nme_inter_ocular"] < 10 and r["nme_pixels"] > 0
    # The whole face's mean is the points' mean: 51 inner and 17 jaw points.
    whole = (51 * r["nme_inner"] + 17 * r["nme_contour"]) / 68
    assert r["nme_inter_ocular"] == pytest.approx(whole, rel=1e-4)
    # Along / across the curves: each below the whole error, together above.
    assert 0 < r["nme_along"] < r["nme_inter_ocular"] * 1.05
    assert 0 < r["nme_across"] < r["nme_inter_ocular"] * 1.05
    assert r["nme_along"] + r["nme_across"] > r["nme_inter_ocular"] * 0.95
    assert 0 <= r["failure_rate_0.10"] <= 1
    assert r["train_temp_bytes"] > 0
    assert r["train_images_per_second"] > 0 and r["infer_ms_per_image"] > 0
  assert by_model["regional"]["input_resolution"] == 64  # the coarse input
  assert by_model["holistic_input256"]["input_resolution"] == 256
  # At 256 the full-resolution holistic run *is* the downsampled one.
  full = by_model["holistic_full"]
  assert full["same_as"] == "holistic_input256"
  assert full["nme_inter_ocular"] == by_model["holistic_input256"]["nme_inter_ocular"]
  # The two-stage model is the patch run without its patch stages.
  assert (
    by_model["regional_patches"]["config_fingerprint"]
    == (by_model["regional"]["config_fingerprint"])
  )
  assert "oracle_attention_center_error_fraction" in by_model["regional"]
  # One workdir per trained job, named by its config's fingerprint: the
  # coarse network once, whatever the resolutions.
  names = sorted(os.listdir(work))
  assert [n.rsplit("_", 1)[0] for n in names] == [
    "coarse_r256_s4",
    "holistic_input256_r256_s8",
    "regional_r256_s4",
  ]
  assert names[2].endswith(by_model["regional"]["config_fingerprint"])

  md = open(os.path.join(out, "resolution_sweep.md")).read()
  for m in rs.MODELS:
    assert f"| {m} | 256 |" in md
  assert "| contour | along | across | no prior |" in md
  row = next(x for x in md.splitlines() if x.startswith("| regional | 256 |"))
  assert f"| {by_model['regional']['nme_along']:.4f} |" in row
  assert "## Crop oracle" in md  # the regional record's oracle figures
  assert "## Where the time went" in md
  assert all(r["analysis_seconds"] >= 0 for r in saved if not r.get("same_as"))
  for png in (
    "nme_vs_resolution",
    "nme_inner_vs_resolution",
    "error_px_vs_resolution",
    "memory_vs_resolution",
    "throughput_vs_resolution",
  ):
    with open(os.path.join(out, f"{png}.png"), "rb") as f:
      assert f.read(8) == b"\x89PNG\r\n\x1a\n"

  # Second call: every run is already in the JSON, nothing trains again.
  monkeypatch.setattr(trainer, "train_and_evaluate", _no_training)
  lines = []
  again = rs.run_sweep(sweep, out, work, log=lines.append)
  assert again == records
  assert sum("skipping" in line for line in lines) == 4
  # Records lost, jobs finished: evaluated again without training, and each
  # record keeps its job's own training time.
  os.remove(os.path.join(out, "resolution_sweep.json"))
  lines = []
  redone = rs.run_sweep(sweep, out, work, log=lines.append)
  assert [r.get("wall_seconds") for r in redone] == [
    r.get("wall_seconds") for r in records
  ]
  assert sum("reusing" in line for line in lines) >= 3


@pytest.mark.slow
def test_regional_networks_are_trained_once_and_shared_upwards(data_dir, tmp_path):
  """With regional_shared_from=256, the 512^2 job starts from the 256^2
  job's networks, keeps them frozen and trains only its patch stages (the
  tiny config's crops are 64 px at both sizes: the same parameter shapes)."""
  out, work = str(tmp_path / "out"), str(tmp_path / "runs")
  sweep = tiny_sweep(
    data_dir,
    models=("regional", "regional_patches"),
    resolutions=(256, 512),
    regional_shared_from=256,
  )
  records = rs.run_sweep(sweep, out, work, log=lambda s: None)
  names = sorted(n.rsplit("_", 1)[0] for n in os.listdir(work))
  assert names == ["coarse_r256_s4", "regional_r256_s4", "regional_r512_s4"]
  shared = _run_dir(work, "regional_r256_s4_")
  own = _run_dir(work, "regional_r512_s4_")
  config = json.load(open(os.path.join(own, "config.json")))
  assert config["init_from"] == shared
  assert config["frozen_modules"] == ["coarse", "regional"]
  assert config["stages"] == [["joint", 1.0]]
  _, shared_params, _ = checkpointing.load_for_inference(shared)
  _, own_params, _ = checkpointing.load_for_inference(own)
  for module in ("coarse", "regional"):  # copied, then never updated
    for a, b in zip(
      jax.tree.leaves(shared_params[module]),
      jax.tree.leaves(own_params[module]),
      strict=True,
    ):
      np.testing.assert_array_equal(a, b)
  assert any(k.startswith("patches_") for k in own_params)  # what it trained
  by = {(r["model"], r["resolution"]): r for r in records}
  # Steps count what each model's networks had: 4 coarse + 4 regional, and
  # the patch stages' own 4 at 512.
  assert by["regional", 512]["steps"] == 8
  assert by["regional_patches", 512]["steps"] == 12
  assert by["regional_patches", 512]["regional_workdir"] == os.path.basename(shared)
  assert "regional_workdir" not in by["regional", 256]
  # The shared job's time is counted once in the time table.
  table = rs.time_table(records)
  assert sum("regional_r256" in line for line in table.splitlines()) == 1
  # Without patch stages a larger resolution has nothing of its own to train:
  # its record is the shared job's networks evaluated on 512^2 faces.
  plain = tiny_sweep(
    data_dir, models=("regional",), resolutions=(256, 512), regional_shared_from=256
  )
  again = rs.run_sweep(plain, str(tmp_path / "out2"), work, log=lambda s: None)
  assert again[0]["job"] == again[1]["job"] and again[1]["resolution"] == 512
  assert again[1]["job"].startswith("regional_r256_s4_")
  assert not [n for n in os.listdir(work) if n.startswith("regional_r512")][1:]
  # A change of the shared networks' job reaches the job that starts from it.
  jobs = rs.Jobs(sweep, work, lambda s: None)
  before = jobs.fingerprint("regional", 512)
  sweep.regional.regional.widths = (8, 24)
  assert jobs.fingerprint("regional", 512) != before


@pytest.mark.slow
def test_a_job_trains_in_its_own_process(data_dir, tmp_path, monkeypatch):
  # This process's trainer must not be the one that runs.
  monkeypatch.setattr(trainer, "train_and_evaluate", _no_training)
  sweep = tiny_sweep(data_dir, models=("holistic_input256",), train_in_subprocess=True)
  (rec,) = rs.run_sweep(
    sweep, str(tmp_path / "out"), str(tmp_path / "runs"), log=lambda s: None
  )
  assert rec["status"] == "ok" and rec["nme_inter_ocular"] > 0
  job = _run_dir(str(tmp_path / "runs"), "holistic")
  assert os.path.exists(os.path.join(job, "checkpoints", "8"))
  # A job that fails in its process: the error comes back with its text.
  bad = rs.model_config(sweep, "holistic_input256", 256)
  bad.total_steps = 0
  with pytest.raises(RuntimeError, match="total_steps=0: must be a positive integer"):
    rs.train_in_subprocess(bad, str(tmp_path / "bad"))


def _script(name: str):
  """An ``experiments/NAME.py`` script as a module (its ``main`` not run)."""
  spec = importlib.util.spec_from_file_location(
    name, os.path.join(REPO, "experiments", f"{name}.py")
  )
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def _state_and_parent(pid: int) -> tuple[str, int] | None:
  """(state letter, parent pid) of a process from /proc, None once it is gone."""
  try:
    with open(f"/proc/{pid}/stat") as f:
      fields = f.read().rsplit(")", 1)[1].split()
  except (OSError, IndexError):
    return None
  return fields[0], int(fields[1])


def _alive(pid: int) -> bool:
  stat = _state_and_parent(pid)
  return stat is not None and stat[0] != "Z"  # a zombie has ended


def _children_of(pid: int) -> list[int]:
  """Live child processes of ``pid`` (Linux /proc)."""
  children = []
  for entry in filter(str.isdigit, os.listdir("/proc")):
    stat = _state_and_parent(int(entry))  # read once: it may end meanwhile
    if stat is not None and stat[0] != "Z" and stat[1] == pid:
      children.append(int(entry))
  return children


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="reads /proc")
def test_a_job_process_ends_when_the_sweep_is_killed():
  """A killed sweep (SIGKILL: no cleanup runs) leaves no job running on."""
  parent = subprocess.Popen(
    [
      sys.executable,
      "-c",
      "import time; from hrface_jax.sweep import jobs; "
      "jobs.run_in_subprocess(time.sleep, 120, what='sleeping')",
    ]
  )
  try:
    deadline = time.monotonic() + 60
    while not (children := _children_of(parent.pid)):
      assert time.monotonic() < deadline, "the job process never started"
      time.sleep(0.2)
    # The spawned job, not multiprocessing's resource tracker: wait until it
    # has imported the sweep and started watching.
    time.sleep(8)
    parent.kill()
    parent.wait()
    deadline = time.monotonic() + 30
    while any(_alive(c) for c in children):
      assert time.monotonic() < deadline, f"job process(es) {children} outlived it"
      time.sleep(0.2)
  finally:
    parent.kill()


def test_time_table_counts_each_job_and_rendering_once():
  coarse = dict(coarse_workdir="coarse_a", coarse_wall_seconds=120.0)
  coarse["coarse_render_seconds"] = 60.0
  records = [
    dict(job="regional_a", wall_seconds=60.0, train_render_seconds=0.0, **coarse)
    | dict(render_seconds=30.0, analysis_seconds=6.0),
    # The same job evaluated with its patch stages: no new training.
    dict(job="regional_a", wall_seconds=60.0, train_render_seconds=0.0, **coarse)
    | dict(render_seconds=0.0, analysis_seconds=6.0),
    dict(job="holistic_a", wall_seconds=180.0, train_render_seconds=0.0)
    | dict(render_seconds=0.0, analysis_seconds=12.0),
    # A copy of another record (same_as): no time of its own.
    dict(job="holistic_a", wall_seconds=180.0, same_as="holistic_input256")
    | dict(render_seconds=0.0, analysis_seconds=12.0),
    dict(model="holistic_full", status="does_not_fit"),
  ]
  table = rs.time_table(records)
  rows = dict(
    (cells[1].strip(), cells[2].strip())
    for line in table.splitlines()[2:]
    for cells in [line.split("|")]
  )
  assert rows["rendering the faces"] == "1.5"  # 30 s + the coarse job's 60 s
  assert rows["training coarse_a"] == "2.0"
  assert rows["training regional_a"] == "1.0"
  assert rows["training holistic_a"] == "3.0"
  assert rows["memory compiles, evaluation, timing, crop oracle"] == "0.4"
  assert rows["**total**"] == "**7.9**"
  assert rs.time_table([dict(model="holistic_full")]) == ""


def _run_dir(work: str, prefix: str) -> str:
  (name,) = [n for n in os.listdir(work) if n.startswith(prefix)]
  return os.path.join(work, name)


def test_sweep_reruns_only_runs_whose_config_changed(tmp_path, monkeypatch):
  ran = []

  def fake_run_one(sweep, model, res, jobs, budget, log):
    ran.append(os.path.basename(jobs.path(model, res)))
    config = rs.model_config(sweep, model, res)
    (_, _, dataset, steps), fingerprint = rs.todo_key(jobs, model, res)
    record = {k: None for k in rs.RECORD_FIELDS}
    record.update(
      model=model,
      resolution=res,
      input_resolution=rs.input_resolution_of(config),
      dataset=dataset,
      steps=steps,
      status="ok",
      nme_inter_ocular=0.5,
      config_fingerprint=fingerprint,
    )
    return record

  monkeypatch.setattr(rs, "run_one", fake_run_one)
  sweep = tiny_sweep(str(tmp_path / "data"), models=("regional", "holistic_input256"))
  out, work = str(tmp_path / "out"), str(tmp_path / "runs")
  first = rs.run_sweep(sweep, out, work, log=lambda s: None)
  assert len(ran) == 2 and len({r["config_fingerprint"] for r in first}) == 2
  # Where the data lives does not change a result: nothing runs again.
  sweep.common.data_dir = str(tmp_path / "elsewhere")
  assert rs.run_sweep(sweep, out, work, log=lambda s: None) == first
  assert len(ran) == 2
  # A holistic-only change reruns holistic and replaces its record.
  sweep.holistic.holistic.width = 16
  lines = []
  again = rs.run_sweep(sweep, out, work, log=lines.append)
  assert len(ran) == 3 and ran[-1].startswith("holistic_input256_r256_s8_")
  assert ran[-1] != ran[1]  # a fresh workdir: the old run is not resumed
  assert any("another config" in line for line in lines)
  assert [r["model"] for r in again] == ["regional", "holistic_input256"]
  assert again[0] == first[0] and again[1] != first[1]
  # A change of the shared coarse network reruns the regional model that
  # starts from it.
  sweep.coarse.coarse = ml_collections.ConfigDict(dict(center_source="landmarks"))
  rs.run_sweep(sweep, out, work, log=lambda s: None)
  assert len(ran) == 4 and ran[-1].startswith("regional_r256_s4_")


def test_run_that_does_not_fit_records_needed_memory(data_dir, tmp_path, monkeypatch):
  monkeypatch.setattr(trainer, "train_and_evaluate", _no_training)
  sweep = tiny_sweep(data_dir, models=("holistic_full",), resolutions=(512,))
  out, work = str(tmp_path / "out"), str(tmp_path / "runs")
  (rec,) = rs.run_sweep(sweep, out, work, memory_budget_gb=1e-4, log=lambda s: None)
  assert rec["status"] == "does_not_fit"
  assert rec["input_resolution"] == 512
  assert rec["required_bytes"] > rec["memory_budget_bytes"] == int(1e-4 * 2**30)
  assert rec["required_bytes"] >= rec["train_temp_bytes"] > 0
  assert rec["nme_inter_ocular"] is None and rec["train_images_per_second"] is None
  assert not os.path.exists(work)
  saved = json.load(open(os.path.join(out, "resolution_sweep.json")))
  assert saved == [rec]


def test_run_over_the_compute_budget_is_recorded_not_trained(
  data_dir, tmp_path, monkeypatch
):
  monkeypatch.setattr(trainer, "train_and_evaluate", _no_training)
  sweep = tiny_sweep(
    data_dir,
    models=("holistic_full",),
    resolutions=(512,),
    max_train_gflops_per_step=1e-6,
  )
  out, work = str(tmp_path / "out"), str(tmp_path / "runs")
  (rec,) = rs.run_sweep(sweep, out, work, log=lambda s: None)
  assert rec["status"] == "over_compute_budget"
  assert rec["train_flops"] > 1e3 and rec["required_bytes"] > 0
  assert rec["nme_inter_ocular"] is None and not os.path.exists(work)
  assert "over_compute_budget" in open(os.path.join(out, "resolution_sweep.md")).read()


def test_out_of_memory_during_training_is_recorded(data_dir, tmp_path, monkeypatch):
  def oom(*args, **kwargs):
    raise RuntimeError("RESOURCE_EXHAUSTED: Out of memory allocating 99 bytes")

  monkeypatch.setattr(trainer, "train_and_evaluate", oom)
  sweep = tiny_sweep(data_dir, models=("holistic_input256",))
  (rec,) = rs.run_sweep(
    sweep, str(tmp_path / "out"), str(tmp_path / "runs"), log=lambda s: None
  )
  assert rec["status"] == "oom" and "RESOURCE_EXHAUSTED" in rec["error"]
  assert rec["nme_inter_ocular"] is None


def test_other_training_errors_are_not_swallowed(data_dir, tmp_path, monkeypatch):
  def broken(*args, **kwargs):
    raise ValueError("config.foo=1: bad")

  monkeypatch.setattr(trainer, "train_and_evaluate", broken)
  sweep = tiny_sweep(data_dir, models=("holistic_input256",))
  with pytest.raises(ValueError, match="config.foo"):
    rs.run_sweep(sweep, str(tmp_path / "o"), str(tmp_path / "r"), log=lambda s: None)


def test_unknown_override_field_is_named():
  sweep = rs.load_config_file("configs/sweep_small.py")
  sweep.common.no_such_field = 1
  with pytest.raises(KeyError, match="common.no_such_field"):
    rs.model_config(sweep, "regional", 256)


@pytest.mark.slow
def test_benchmark_reports_every_field(data_dir):
  sweep = tiny_sweep(data_dir, models=("regional", "holistic_full"))
  written = []
  records = benchmark.run_benchmark(
    sweep,
    iters=1,
    pipeline_batches=1,
    log=lambda s: None,
    on_record=lambda rs_: written.append([dict(r) for r in rs_]),
  )
  assert [r["model"] for r in records] == ["regional", "holistic_full"]
  # Handed over after every record: a killed run keeps what it measured.
  assert [len(w) for w in written] == [1, 2] and written[-1] == records
  for r in records:
    assert set(r) >= set(benchmark.FIELDS)
    assert r["status"] == "ok" and r["resolution"] == 256
    for k in (
      "train_step_ms",
      "train_images_per_second",
      "infer_step_ms",
      "infer_ms_per_image",
      "pipeline_images_per_second",
      "required_bytes",
      "train_gflops_per_step",
      "train_achieved_gflops",
      "matmul_gflops",
      "fraction_of_matmul",
      "train_gbytes_per_step",
      "stream_gbps",
      "roofline_gflops",
      "fraction_of_roofline",
    ):
      assert math.isfinite(r[k]) and r[k] > 0, k
    assert r["train_page_faults_per_step"] >= 0
    # The roofline: the lower of the matmul rate and the step's FLOPs per
    # byte at the measured copy bandwidth.
    intensity = r["train_gflops_per_step"] / r["train_gbytes_per_step"]
    assert r["roofline_gflops"] == pytest.approx(
      min(r["matmul_gflops"], intensity * r["stream_gbps"])
    )
    assert r["fraction_of_roofline"] == pytest.approx(
      r["train_achieved_gflops"] / r["roofline_gflops"]
    )
    # Achieved rate: the compiled step's FLOPs over its measured time, and
    # its share of the matmul rate measured in the same run.
    assert r["train_achieved_gflops"] == pytest.approx(
      r["train_gflops_per_step"] / (r["train_step_ms"] / 1000)
    )
    assert r["fraction_of_matmul"] == pytest.approx(
      r["train_achieved_gflops"] / r["matmul_gflops"]
    )
    # images/s and ms/step describe the same measurement.
    assert r["train_images_per_second"] == pytest.approx(
      4 / (r["train_step_ms"] / 1000)
    )
    want = (
      "pipeline"
      if r["pipeline_images_per_second"] < r["train_images_per_second"]
      else "device"
    )
    assert r["bottleneck"] == want
  # Too small a budget: reported, not run.
  (tight,) = benchmark.run_benchmark(
    tiny_sweep(data_dir, models=("holistic_full",)),
    iters=1,
    pipeline_batches=1,
    memory_budget_gb=1e-4,
    log=lambda s: None,
  )
  assert tight["status"] == "does_not_fit" and tight["train_step_ms"] is None


@pytest.mark.slow
def test_crop_oracle_separates_crop_placement_from_the_networks(data_dir, tmp_path):

  sweep = tiny_sweep(data_dir, models=("regional",))
  work = str(tmp_path / "runs")
  rs.run_sweep(sweep, str(tmp_path / "out"), work, log=lambda s: None)
  result = crop_oracle.crop_oracle(_run_dir(work, "regional_r256_s4_"))
  assert result["num_images"] == 4 and result["resolution"] == 256
  configured = rs.model_config(sweep, "regional", 256).regional.fusion
  assert result["fusion"] == configured
  (other,) = [f for f in ("confidence", "precision") if f != configured]
  for k in (
    "nme_coarse",
    "nme_predicted_crops",
    "nme_oracle_crops",
    "nme_shifted_crops",
    f"nme_predicted_crops_{other}_fusion",
    f"nme_oracle_crops_{other}_fusion",
  ):
    assert 0 < result[k] < 10
  # Oracle crops move the windows, so the refined landmarks change.
  assert result["nme_oracle_crops"] != result["nme_predicted_crops"]
  assert result["nme_shifted_crops"] != result["nme_oracle_crops"]
  assert 0 <= result["inside_predicted_crop_fraction"] <= 1
  assert result["attention_center_error_px"] > 0


def test_shifted_crops_keep_the_attention_error_size_not_its_direction():

  error = np.random.default_rng(1).normal(size=(3, 7, 2))
  angles = np.random.default_rng(2).uniform(0, 2 * np.pi, (3, 7))
  out = crop_oracle.turned(error, angles)
  np.testing.assert_allclose(
    np.linalg.norm(out, axis=-1), np.linalg.norm(error, axis=-1)
  )
  cos = np.sum(out * error, -1) / np.linalg.norm(error, axis=-1) ** 2
  np.testing.assert_allclose(cos, np.cos(angles), atol=1e-9)
  np.testing.assert_allclose(crop_oracle.turned(error, np.zeros((3, 7))), error)


def test_crop_oracle_refuses_a_holistic_checkpoint(data_dir, tmp_path):

  sweep = tiny_sweep(data_dir, models=("holistic_input256",))
  work = str(tmp_path / "runs")
  rs.run_sweep(sweep, str(tmp_path / "out"), work, log=lambda s: None)
  with pytest.raises(ValueError, match="needs a regional one"):
    crop_oracle.crop_oracle(_run_dir(work, "holistic_input256_r256_s8_"))


def test_regional_only_changes_keep_the_shared_coarse_network(tmp_path):
  sweep = tiny_sweep(str(tmp_path / "data"))
  jobs = rs.Jobs(sweep, str(tmp_path / "runs"), lambda s: None)
  coarse, regional = jobs.fingerprint("coarse", 256), jobs.fingerprint("regional", 256)
  sweep.regional.regional.fusion = "confidence"
  sweep.regional.patches.train_jitter = 0.1
  assert jobs.fingerprint("coarse", 256) == coarse
  assert jobs.fingerprint("regional", 256) != regional
  sweep.regional.coarse.blocks = 2  # the coarse network itself: both change
  assert jobs.fingerprint("coarse", 256) != coarse
  # The shared jobs train at the shared resolution, whatever the record's.
  assert jobs.path("coarse", 4096) == jobs.path("coarse", 256)
  assert jobs.path("holistic_input256", 1024) == jobs.path("holistic_input256", 256)
  assert jobs.path("regional", 1024) != jobs.path("regional", 256)


@pytest.mark.slow
def test_device_run_dry_run_writes_every_measurement(tmp_path):
  device_run = _script("device_run")

  out = str(tmp_path / "device")
  records = device_run.device_run(out, dry_run=True, iters=1, log=lambda s: None)
  kinds = [(r["what"], r["model"], r["resolution"]) for r in records]
  assert kinds[:3] == [
    ("train", "regional_patches", 64),
    ("train", "regional_patches", 128),
    ("infer", "regional_patches", 128),
  ]
  assert kinds[3][:2] == ("train", "holistic_full")
  for r in records:
    assert set(device_run.FIELDS) <= set(r)
    if r["status"] == "ok":
      assert r["per_second"] > 0
  saved = json.load(open(os.path.join(out, "device_run.json")))
  assert saved == records
  assert (
    "| infer | regional_patches | 128 |"
    in open(os.path.join(out, "device_run.md")).read()
  )
