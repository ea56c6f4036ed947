"""Training: data-parallel equivalence, exact resume, learning, config errors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
from conftest import run_cli, tiny_config, train_command

from hrface_jax import checkpointing, config_lib, models
from hrface_jax import train as train_cli
from hrface_jax.training import optim, stages, trainer
from hrface_jax.training.state import create_train_state

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> str:
  return str(tmp_path_factory.mktemp("data"))


def test_config_validation_names_the_field(data_dir):
  bad = tiny_config(data_dir, batch_size=3)
  with pytest.raises(ValueError, match="batch_size=3"):
    config_lib.validate_config(bad, num_devices=2)
  bad = tiny_config(data_dir, **{"regional.crop_size": 512})
  with pytest.raises(ValueError, match="regional.crop_size"):
    config_lib.validate_config(bad, num_devices=1)
  bad = tiny_config(data_dir, stages=(("coarse", 0.5), ("warmup", 0.5)))
  with pytest.raises(ValueError, match="'warmup'"):
    config_lib.validate_config(bad, num_devices=1)
  bad = tiny_config(data_dir, total_steps=0)
  with pytest.raises(ValueError, match="total_steps"):
    config_lib.validate_config(bad, num_devices=1)
  config_lib.validate_config(tiny_config(data_dir), num_devices=2)


def test_cli_rejects_unknown_config_key_before_compiling(tmp_path):
  code, _, err = run_cli(
    train_cli,
    f"--config={os.path.join(REPO, 'configs', 'quickstart.py')}",
    f"--workdir={tmp_path / 'w'}",
    "--config.no_such_field=3",
  )
  assert code == 1
  assert "no_such_field" in err
  assert not (tmp_path / "w").exists()


def test_cli_rejects_batch_not_divisible_by_devices(tmp_path):
  env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2")
  r = subprocess.run(
    [
      sys.executable,
      "-m",
      "hrface_jax.train",
      "--config=configs/quickstart.py",
      f"--workdir={tmp_path / 'w'}",
      "--config.batch_size=5",
    ],
    cwd=REPO,
    capture_output=True,
    text=True,
    timeout=120,
    env=env,
  )
  assert r.returncode == 1, r.stderr
  assert "batch_size=5" in r.stderr and "2 local devices" in r.stderr


_TWO_DEVICE_SCRIPT = textwrap.dedent("""
    import json, sys
    import jax, jax.numpy as jnp, numpy as np
    from flax import jax_utils
    sys.path.insert(0, {tests!r})
    from conftest import tiny_config, train_command
    from hrface_jax import models
    from hrface_jax.training import optim
    from hrface_jax.training import stages
    from hrface_jax.training import trainer as train
    from hrface_jax.data import synth
    from hrface_jax.training.state import create_train_state

    config = tiny_config({data_dir!r}, batch_size=4)
    # Some gradients are exactly zero in exact arithmetic (a constant bias
    # before a softmax); Adam with a tiny eps turns their float noise into
    # +-lr steps. A larger eps keeps noise-sized gradients noise-sized.
    config.optimizer.eps = 1e-3
    assert jax.local_device_count() == 2
    model = models.build_model(config)
    tx = optim.make_optimizer(config)
    rng = jax.random.PRNGKey(0)
    state = create_train_state(train.init_params(config, model, rng), tx, rng)
    faces = [synth.render_face(s, 256) for s in range(4)]
    batch = {{"image": np.stack([f["image"] for f in faces]),
              "landmarks": np.stack([f["landmarks"] for f in faces])}}
    out = {{}}
    for stage in ("joint",):  # GT, predicted and mixed crop centres
      results = []
      for n in (1, 2):
        devices = jax.local_devices()[:n]
        step = train.make_p_train_step(config, model, tx, devices=devices)
        controls = stages.stage_controls(config, stage)
        p_state = jax_utils.replicate(state, devices)
        for _ in range(2):
          p_state, metrics = step(p_state, train.shard(batch, devices), controls)
        results.append(jax.device_get(jax_utils.unreplicate(p_state).params))
      diffs = jax.tree.leaves(jax.tree.map(lambda a, b: float(np.max(np.abs(a - b))),
                                           *results))
      moved = jax.tree.leaves(jax.tree.map(lambda a, b: float(np.max(np.abs(a - b))),
                                           results[0], jax.device_get(state.params)))
      out[stage] = {{"max_diff": max(diffs), "max_moved": max(moved)}}
    print(json.dumps(out))
""")


@pytest.mark.slow
def test_one_and_two_devices_give_the_same_update(tmp_path, data_dir):
  script = tmp_path / "two_devices.py"
  script.write_text(
    _TWO_DEVICE_SCRIPT.format(tests=os.path.join(REPO, "tests"), data_dir=data_dir)
  )
  env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2")
  r = subprocess.run(
    [sys.executable, str(script)],
    cwd=REPO,
    capture_output=True,
    text=True,
    timeout=600,
    env=env,
  )
  assert r.returncode == 0, r.stderr[-3000:]
  result = json.loads(r.stdout.strip().splitlines()[-1])
  for stage, d in result.items():
    assert d["max_moved"] > 1e-4, (stage, d)  # the update did something
    assert d["max_diff"] < 1e-5 * max(1.0, d["max_moved"]) + 2e-6, (stage, d)


@pytest.mark.slow
def test_loss_decreases_on_a_tiny_synthetic_set(tmp_path, data_dir):
  config = tiny_config(
    data_dir,
    total_steps=40,
    log_every_steps=5,
    eval_every_steps=40,
    checkpoint_every_steps=40,
    stages=(("regional", 1.0),),
    learning_rate=3e-3,
  )
  config.augment.enabled = False
  result = trainer.train_and_evaluate(config, str(tmp_path / "w"))
  records = [json.loads(x) for x in open(tmp_path / "w" / "metrics.jsonl")]
  losses = [r["loss"] for r in records if "loss" in r]
  assert len(losses) == 8
  assert np.mean(losses[-2:]) < 0.9 * np.mean(losses[:2]), losses
  # The regional heatmaps themselves sharpen (with coordinate terms that
  # outweigh them they stayed uniform: the model echoed its crop centres).
  regional = [r["loss_regional_heatmap"] for r in records if "loss" in r]
  assert np.mean(regional[-2:]) < 0.9 * np.mean(regional[:2]), regional
  assert {"step", "loss", "learning_rate", "images_per_second"} <= set(records[0])
  assert "nme_inter_ocular" in result and np.isfinite(result["nme_inter_ocular"])
  assert any("nme_inter_ocular" in r for r in records)
  saved = json.load(open(tmp_path / "w" / "config.json"))
  assert saved["total_steps"] == 40


@pytest.mark.slow
def test_non_finite_loss_stops_with_the_step(tmp_path, data_dir, monkeypatch):
  real_loss = models.loss_fn

  def poisoned(*args):
    loss, metrics = real_loss(*args)
    return loss * jnp.nan, metrics

  monkeypatch.setattr(models, "loss_fn", poisoned)
  config = tiny_config(data_dir, total_steps=6, log_every_steps=3)
  with pytest.raises(trainer.NonFiniteLossError, match="non-finite at step 0"):
    trainer.train_and_evaluate(config, str(tmp_path / "w"))
  assert checkpointing.Checkpointer(str(tmp_path / "w")).latest_step() is None


# kill -9 and resume: tests/test_faults.py (ten kills at random moments).


@pytest.mark.slow
def test_sigterm_saves_a_checkpoint_and_exits(tmp_path, data_dir):
  env = dict(os.environ, PYTHONUNBUFFERED="1")
  cmd = train_command(
    tmp_path,
    tmp_path / "w",
    data_dir,
    total_steps=100000,
    checkpoint_every_steps=100000,
  )
  proc = subprocess.Popen(
    cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
  )
  for line in proc.stdout:  # wait until training is under way
    if line.startswith("step "):
      break
  proc.send_signal(signal.SIGTERM)
  out = proc.stdout.read()
  assert proc.wait(timeout=300) == 143
  assert "SIGTERM: saved a checkpoint" in out
  step = checkpointing.Checkpointer(str(tmp_path / "w")).latest_step()
  assert step is not None and step >= 2


def test_checkpoints_in_a_relative_workdir(tmp_path, monkeypatch, caplog):
  # The README passes --workdir=runs/quickstart: orbax's async save needs an
  # absolute path, so a relative one must be resolved before it gets there.
  monkeypatch.chdir(tmp_path)
  config = ml_collections.ConfigDict({"a": 1})
  ckpt = checkpointing.Checkpointer("runs/relative", keep_last=2, keep_best=1)
  state = {
    "step": np.asarray(3, np.int32),
    "params": {"w": np.ones(2, np.float32)},
    "ema_params": {"w": np.full(2, 2.0, np.float32)},
  }
  for step in (1, 2, 3):
    ckpt.save(step, state, {"next_index": step}, config)
  ckpt.close()
  # Saves without metrics (between evaluations) are expected: no warning each.
  assert "tracked_metric" not in caplog.text
  assert sorted(
    p.name
    for p in (tmp_path / "runs/relative/checkpoints").iterdir()
    if p.name.isdigit()
  ) == ["2", "3"]
  caplog.clear()
  _, params, step = checkpointing.load_for_inference("runs/relative")
  assert step == 3 and np.allclose(params["w"], 2.0)
  # Reading a finished checkpoint is quiet (orbax's read-only notices).
  assert "read only" not in caplog.text and "read_only" not in caplog.text


def test_checkpoint_from_older_code_loads_with_new_fields_defaulted(tmp_path):
  # A config saved before a field existed (here regional.fusion) loads with
  # that field's current default; what it did save is kept.
  saved = config_lib.base_config()
  saved.resolution = 512
  del saved.regional["fusion"]
  ckpt = checkpointing.Checkpointer(str(tmp_path / "old"), keep_last=1, keep_best=0)
  state = {
    "step": np.asarray(1, np.int32),
    "params": {"w": np.ones(2, np.float32)},
    "ema_params": {"w": np.ones(2, np.float32)},
  }
  ckpt.save(1, state, {"next_index": 1}, saved)
  ckpt.close()
  config, _, _ = checkpointing.load_for_inference(str(tmp_path / "old"))
  assert config.resolution == 512
  assert config.regional.fusion == config_lib.base_config().regional.fusion
  models.validate_model_config(config)


def test_train_step_compiles_once_for_the_state_it_returns(data_dir):
  """The replicated state carries pmap's own output sharding: feeding the
  step its output again must not compile a second executable. Stages are
  step inputs: all three run the one executable."""
  from hrface_jax.training import (
    optim,  # noqa: PLC0415
    stages,  # noqa: PLC0415
  )
  from hrface_jax.training.state import create_train_state  # noqa: PLC0415

  config = tiny_config(data_dir)
  devices = jax.local_devices()
  model = models.build_model(config)
  tx = optim.make_optimizer(config)
  rng = jax.random.PRNGKey(0)
  state = create_train_state(trainer.init_params(config, model, rng), tx, rng)
  r = config.resolution
  batch = trainer.shard(
    {
      "image": np.zeros((4, r, r, 3), np.uint8),
      "landmarks": np.full((4, 68, 2), r / 2, np.float32),
    },
    devices,
  )
  p_train = trainer.make_p_train_step(config, model, tx)
  p_state = trainer.replicate(state, devices)
  assert int(p_state.step[0]) == 0 and p_state.step.shape == (len(devices),)
  compiles = []

  def listen(name, secs, **kw):
    if name == "/jax/core/compile/backend_compile_duration":
      compiles.append(name)

  jax.monitoring.register_event_duration_secs_listener(listen)
  try:
    for stage in ("coarse", "regional", "joint"):
      p_state, _ = p_train(p_state, batch, stages.stage_controls(config, stage))
    jax.block_until_ready(p_state)
  finally:
    jax.monitoring.unregister_event_duration_listener(listen)
  assert int(p_state.step[0]) == 3
  assert len(compiles) == 1


def test_config_differences_name_the_changed_fields():
  old = config_lib.base_config()
  new = config_lib.base_config()
  # A JSON round trip (tuples -> lists) is not a change.
  assert config_lib.config_differences(json.loads(json.dumps(old.to_dict())), new) == []
  new.loss.regional_coord_weight = 1.0
  new.stages = (("coarse", 1.0),)
  diffs = config_lib.config_differences(old.to_dict(), new.to_dict())
  assert len(diffs) == 2
  assert diffs[0] == "loss.regional_coord_weight: 0.05 -> 1.0"
  assert diffs[1].startswith("stages: ")


@pytest.mark.slow
def test_resuming_with_another_config_says_what_changed(tmp_path, data_dir, capsys):
  workdir = str(tmp_path / "w")
  config = tiny_config(data_dir, total_steps=2, checkpoint_every_steps=2)
  trainer.train_and_evaluate(config, workdir)
  capsys.readouterr()
  config.total_steps = 4
  config.learning_rate = 5e-3
  trainer.train_and_evaluate(config, workdir)
  out = capsys.readouterr().out
  assert "resuming at step 2" in out
  assert "was started with another config" in out
  assert "learning_rate: 0.001 -> 0.005" in out and "total_steps: 2 -> 4" in out


@pytest.mark.slow
def test_regional_run_reuses_a_frozen_coarse_network(data_dir, tmp_path):
  """A coarse network trained once initialises a regional run and stays as
  it was (frozen: no update), while the regional networks train."""
  short = dict(total_steps=4, checkpoint_every_steps=4, eval_every_steps=4)
  coarse_dir = str(tmp_path / "coarse")
  trainer.train_and_evaluate(
    tiny_config(data_dir, model_name="coarse", stages=(("coarse", 1.0),), **short),
    coarse_dir,
  )
  _, coarse, _ = checkpointing.load_for_inference(coarse_dir)
  cfg = tiny_config(
    data_dir,
    init_from=coarse_dir,
    frozen_modules=("coarse",),
    stages=(("regional", 0.5), ("joint", 0.5)),
    **short,
  )
  workdir = str(tmp_path / "regional")
  trainer.train_and_evaluate(cfg, workdir)
  _, params, _ = checkpointing.load_for_inference(workdir)
  jax.tree.map(np.testing.assert_array_equal, params["coarse"], coarse["coarse"])
  fresh = trainer.init_params(
    tiny_config(data_dir), models.build_model(cfg), jax.random.PRNGKey(cfg.seed)
  )
  changed = jax.tree.map(
    lambda a, b: not np.allclose(a, b), params["regional"], fresh["regional"]
  )
  assert any(jax.tree.leaves(changed))
  # A coarse network of another shape is refused, naming the module.
  other = tiny_config(data_dir, init_from=coarse_dir, **{"coarse.widths": (8, 8)})
  with pytest.raises(ValueError, match="'coarse' parameters have other shapes"):
    trainer.init_params(other, models.build_model(other), jax.random.PRNGKey(0))


@pytest.mark.slow
def test_coarse_stage_step_skips_the_regional_networks_with_the_same_update(
  data_dir,
):
  """In the coarse stage the regional and patch terms weigh 0: its step runs
  the coarse network alone, and its update is the full step's."""
  cfg = tiny_config(data_dir, **{"patches.enabled": True, "patches.widths": (8,)})
  cfg.patches.feature_size = 8
  model = models.build_model(cfg)
  tx = optim.make_optimizer(cfg)
  rng = jax.random.PRNGKey(0)
  state = create_train_state(trainer.init_params(cfg, model, rng), tx, rng)
  devices = jax.local_devices()[:1]
  full = trainer.make_p_train_step(cfg, model, tx, devices=devices)
  alone = trainer.make_p_train_step(cfg, model, tx, devices=devices, coarse_only=True)
  images = np.random.default_rng(0).integers(0, 256, (4, 256, 256, 3), np.uint8)
  landmarks = np.random.default_rng(1).uniform(60, 200, (4, 68, 2))
  batch = trainer.shard(
    {"image": images, "landmarks": landmarks.astype(np.float32)}, devices
  )
  coarse = stages.stage_controls(cfg, "coarse")
  new_a, met_a = alone(trainer.replicate(state, devices), batch, coarse)
  new_b, met_b = full(trainer.replicate(state, devices), batch, coarse)
  jax.tree.map(
    lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6),
    new_a.params,
    new_b.params,
  )
  assert float(met_a["loss"][0]) == pytest.approx(float(met_b["loss"][0]), rel=1e-5)
  assert "loss_regional_heatmap" not in met_a  # not computed
  assert float(met_b["loss_regional_heatmap"][0]) > 0.0


def _memory_mappings() -> int:
  with open("/proc/self/maps") as f:
    return sum(1 for _ in f)


@pytest.mark.slow
@pytest.mark.skipif(not os.path.exists("/proc/self/maps"), reason="Linux only")
def test_training_repeatedly_in_one_process_does_not_keep_compiled_programs(
  tmp_path, data_dir
):
  """Each run's compiled programs are released when it returns: XLA:CPU maps
  memory for every program's code, and a process that kept them all (the
  test suite, a notebook) hit vm.max_map_count and crashed inside XLA."""
  counts = []
  for run in range(3):
    config = tiny_config(data_dir, total_steps=2, checkpoint_every_steps=2)
    trainer.train_and_evaluate(config, str(tmp_path / f"w{run}"))
    counts.append(_memory_mappings())
  # Without the release each short run added ~3,000-4,000 mappings.
  assert counts[2] - counts[0] < 500, counts
