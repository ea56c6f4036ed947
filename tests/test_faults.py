"""Faults: a full disk while saving, damaged checkpoints, hostile data,
preemption at random moments, and quiet CLIs on a finished checkpoint."""

from __future__ import annotations

import contextlib
import json
import os
import resource
import shutil
import subprocess
import sys
import textwrap
import time

import cv2
import ml_collections
import numpy as np
import pytest
from conftest import (
  SYNTH_RES,
  build_fake_synth,
  fake_render_face,
  make_config,
  train_command,
  write_ibug_pair,
)

from hrface_jax import checkpointing
from hrface_jax.data import builders, formats, pipeline, prepare

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TESTS = os.path.join(REPO, "tests")


def _state(step: int, size: int = 1000) -> dict:
  rng = np.random.default_rng(step)
  return {
    "step": np.asarray(step, np.int32),
    "params": {"w": rng.random(size).astype(np.float32)},
    "ema_params": {"w": rng.random(size).astype(np.float32)},
  }


def _save_steps(workdir, steps, size: int = 1000) -> None:
  ckpt = checkpointing.Checkpointer(str(workdir), keep_last=5, keep_best=0)
  for step in steps:
    ckpt.save(step, _state(step, size), {"next": step}, ml_collections.ConfigDict())
  ckpt.close()


def _largest_file(folder) -> str:
  files = [os.path.join(r, f) for r, _, fs in os.walk(folder) for f in fs]
  return max(files, key=os.path.getsize)


# ----------------------------------------------------------------------------
# A full disk while a checkpoint is written.
# ----------------------------------------------------------------------------


def test_save_past_a_file_size_limit_fails_naming_the_file(tmp_path):
  """The fault: RLIMIT_FSIZE in a subprocess (SIGXFSZ ignored), so that the
  array file of the second save fails with EFBIG, as on a full disk; works
  without root, unlike mounting a small filesystem."""
  script = textwrap.dedent(f"""
    import resource, signal
    import ml_collections, numpy as np
    from hrface_jax import checkpointing

    def state(step, size):  # random: compressed, a constant array is tiny
      w = np.random.default_rng(step).random(size).astype(np.float32)
      return {{"step": np.asarray(step, np.int32),
               "params": {{"w": w}}, "ema_params": {{"w": w}}}}

    ckpt = checkpointing.Checkpointer({str(tmp_path)!r}, keep_best=0)
    ckpt.save(1, state(1, 100), {{"next": 1}}, ml_collections.ConfigDict())
    ckpt.wait()
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, resource.RLIM_INFINITY))
    try:
      ckpt.save(2, state(2, 100_000), {{"next": 2}}, ml_collections.ConfigDict())
      ckpt.wait()
    except checkpointing.CheckpointWriteError as e:
      print("ERROR", e)
    ckpt.close()
  """)
  r = subprocess.run(
    [sys.executable, "-c", script], capture_output=True, text=True, timeout=300
  )
  assert r.returncode == 0, r.stderr[-3000:]
  (line,) = [x for x in r.stdout.splitlines() if x.startswith("ERROR")]
  assert "the disk is full (File too large)" in line
  assert f"writing {tmp_path}/checkpoints/2.orbax-checkpoint-tmp" in line
  assert "last complete checkpoint is step 1" in line
  assert "Traceback" not in r.stderr  # orbax's thread tracebacks are dropped
  # The previous checkpoint is intact, and the half-written one is neither
  # taken for a checkpoint nor in the way of saving step 2 again.
  ckpt = checkpointing.Checkpointer(str(tmp_path), keep_best=0)
  step, state, data = ckpt.restore_latest(_state(1, 100))
  assert step == 1 and data == {"next": 1}
  expected = np.random.default_rng(1).random(100).astype(np.float32)
  np.testing.assert_array_equal(state["params"]["w"], expected)
  ckpt.save(2, _state(2, 100), {"next": 2}, ml_collections.ConfigDict())
  ckpt.close()
  assert sorted(os.listdir(tmp_path / "checkpoints")) == ["1", "2"]


@contextlib.contextmanager
def _small_tmpfs(path):
  os.makedirs(path)
  r = subprocess.run(
    ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(path)],
    capture_output=True,
    timeout=30,
  )
  if r.returncode:
    pytest.skip("cannot mount a tmpfs here (needs root)")
  try:
    yield
  finally:
    subprocess.run(["umount", str(path)], check=True, timeout=30)


def test_save_on_a_full_filesystem_fails_and_the_previous_step_restores(tmp_path):
  """The fault: a real 1 MB tmpfs filled by a file (skipped without root)."""
  disk = tmp_path / "disk"
  with _small_tmpfs(disk):
    ckpt = checkpointing.Checkpointer(str(disk), keep_best=0)
    ckpt.save(1, _state(1), {"next": 1}, ml_collections.ConfigDict())
    ckpt.wait()
    with contextlib.suppress(OSError), open(disk / "filler", "wb") as f:
      while True:
        f.write(b"\0" * 65536)
        f.flush()
    with pytest.raises(checkpointing.CheckpointWriteError) as e:
      ckpt.save(2, _state(2, 50_000), {"next": 2}, ml_collections.ConfigDict())
      ckpt.wait()
    assert "the disk is full (No space left on device)" in str(e.value)
    assert str(disk) in str(e.value) and "\n" not in str(e.value)
    os.remove(disk / "filler")
    ckpt.close()
    step, state, _ = checkpointing.Checkpointer(str(disk)).restore_latest(_state(1))
    assert step == 1
    np.testing.assert_array_equal(state["params"]["w"], _state(1)["params"]["w"])


# ----------------------------------------------------------------------------
# Checkpoints damaged after they were written.
# ----------------------------------------------------------------------------


def _truncate_largest_array_file(step_dir) -> str:
  path = _largest_file(os.path.join(step_dir, "state"))
  os.truncate(path, 100)
  return path


def _garbage_in(relative: str):
  def damage(step_dir) -> str:
    path = os.path.join(step_dir, relative)
    with open(path, "wb") as f:
      f.write(b"\x00garbage{")
    return path

  return damage


DAMAGES = {
  "truncated array file": _truncate_largest_array_file,
  "garbage array metadata": _garbage_in("state/_METADATA"),
  "garbage iterator state": _garbage_in("data/process_0-of-1.json"),
}


@pytest.mark.parametrize("damage", DAMAGES.values(), ids=DAMAGES.keys())
def test_resume_skips_a_damaged_checkpoint_for_the_newest_good_one(
  tmp_path, damage, capsys
):
  _save_steps(tmp_path, (1, 2, 3))
  damaged = damage(tmp_path / "checkpoints" / "3")

  ckpt = checkpointing.Checkpointer(str(tmp_path), keep_last=5, keep_best=0)
  step, state, data = ckpt.restore_latest(_state(0))
  assert step == 2 and data == {"next": 2}
  np.testing.assert_array_equal(state["params"]["w"], _state(2)["params"]["w"])
  warning = capsys.readouterr().err
  assert "skipping the step-3 checkpoint" in warning
  assert damaged in warning and len(warning.strip().splitlines()) == 1
  # Set aside, so that the resumed run can save step 3 again.
  assert sorted(os.listdir(tmp_path / "checkpoints")) == ["1", "2"]
  assert os.listdir(tmp_path / "checkpoints_damaged") == ["3"]
  ckpt.save(3, _state(3), {"next": 3}, ml_collections.ConfigDict())
  ckpt.close()
  assert checkpointing.Checkpointer(str(tmp_path)).latest_step() == 3


def test_loading_a_damaged_checkpoint_names_the_file(tmp_path):
  _save_steps(tmp_path, (1,))
  damaged = _truncate_largest_array_file(tmp_path / "checkpoints" / "1")
  with pytest.raises(checkpointing.CorruptCheckpointError) as e:
    checkpointing.load_for_inference(str(tmp_path))
  message = str(e.value)
  assert message.startswith(f"{damaged}: checkpoint is damaged")
  assert "\n" not in message


def test_a_checkpoint_of_another_model_is_not_taken_for_a_damaged_one(tmp_path):
  # A changed model fails the restore too; its checkpoints must stay put.
  _save_steps(tmp_path, (1,))
  other = {"step": np.asarray(0, np.int32), "params": {"v": np.zeros(3, np.float32)}}
  with pytest.raises(Exception) as e:
    checkpointing.Checkpointer(str(tmp_path)).restore_latest(other)
  assert not isinstance(e.value, checkpointing.CorruptCheckpointError)
  assert os.listdir(tmp_path / "checkpoints") == ["1"]
  assert not (tmp_path / "checkpoints_damaged").exists()


# ----------------------------------------------------------------------------
# The same faults through the CLIs.
# ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> str:
  return str(tmp_path_factory.mktemp("data"))


def _run(cmd, env: dict | None = None) -> subprocess.CompletedProcess:
  env = env or dict(os.environ, PYTHONUNBUFFERED="1")
  return subprocess.run(
    cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600
  )


def _final_params(workdir, step: int):
  _, params, got = checkpointing.load_for_inference(
    os.path.join(workdir, "checkpoints", str(step))
  )
  assert got == step
  return params


def _max_diff(a, b) -> float:
  import jax  # noqa: PLC0415  (the fast checkpoint tests do not need it)

  diffs = jax.tree.map(lambda x, y: float(np.max(np.abs(x - y))), a, b)
  return max(jax.tree.leaves(diffs))


@pytest.mark.slow
def test_train_cli_on_a_full_disk_stops_with_one_line_and_resumes(tmp_path, data_dir):
  """The fault: once the run's first checkpoint is written, its file size limit
  (RLIMIT_FSIZE, set from outside with prlimit; Python ignores SIGXFSZ) drops
  below a checkpoint's array file, so the next save fails with EFBIG as on a
  full disk."""
  workdir = tmp_path / "w"
  cmd = train_command(
    tmp_path, workdir, data_dir, total_steps=8, checkpoint_every_steps=2
  )
  # No compilation cache: its writes would hit the size limit too (JAX warns).
  env = dict(os.environ, PYTHONUNBUFFERED="1", JAX_ENABLE_COMPILATION_CACHE="false")
  proc = subprocess.Popen(
    cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
  )
  deadline = time.time() + 300
  while not (workdir / "checkpoints" / "2").exists() and time.time() < deadline:
    time.sleep(0.02)
  resource.prlimit(proc.pid, resource.RLIMIT_FSIZE, (50_000, resource.RLIM_INFINITY))
  out, err = proc.communicate(timeout=300)
  assert proc.returncode == 1, err[-3000:]
  # One line (after the data set's first rendering), no orbax tracebacks.
  line = err.strip().splitlines()[-1]
  assert "Traceback" not in err and "ERROR" not in err, err[-3000:]
  assert [x for x in err.splitlines() if "File too large" in x] == [line], err[-3000:]
  assert line.startswith("hrface_jax.train: error: saving the step-")
  assert f"the disk is full (File too large) writing {workdir}/checkpoints/" in line
  last = int(line.split("the last complete checkpoint is step ")[1].split(":")[0])
  assert last >= 2

  r = _run(cmd)
  assert r.returncode == 0, r.stderr[-3000:]
  assert f"resuming at step {last}" in r.stdout
  assert checkpointing.Checkpointer(str(workdir)).latest_step() == 8


@pytest.mark.slow
def test_training_resumes_from_the_newest_intact_checkpoint(tmp_path, data_dir):
  workdir = tmp_path / "w"
  cmd = train_command(
    tmp_path, workdir, data_dir, total_steps=8, checkpoint_every_steps=2
  )
  r = _run(cmd)
  assert r.returncode == 0, r.stderr[-3000:]
  straight = _final_params(str(workdir), 8)
  damaged = _truncate_largest_array_file(workdir / "checkpoints" / "8")

  r = _run(cmd)
  assert r.returncode == 0, r.stderr[-3000:]
  assert f"skipping the step-8 checkpoint: {damaged}: checkpoint is damaged" in r.stderr
  assert "resuming at step 6" in r.stdout
  assert _max_diff(straight, _final_params(str(workdir), 8)) < 1e-6
  assert os.listdir(workdir / "checkpoints_damaged") == ["8"]


def _damaged_copy(workdir: str, tmp_path) -> tuple[str, list[str]]:
  """A copy of ``workdir`` whose checkpoints each have a truncated array file."""
  copy = tmp_path / "damaged_run"
  shutil.copytree(workdir, copy, ignore=shutil.ignore_patterns("eval_*"))
  steps = [p for p in os.listdir(copy / "checkpoints") if p.isdigit()]
  return str(copy), [
    _truncate_largest_array_file(copy / "checkpoints" / step) for step in steps
  ]


def test_evaluate_and_predict_on_a_damaged_checkpoint_fail_naming_the_file(
  tiny_checkpoint, tmp_path
):
  workdir, damaged = _damaged_copy(tiny_checkpoint, tmp_path)
  image = tmp_path / "face.png"
  cv2.imwrite(str(image), np.full((64, 64, 3), 128, np.uint8))
  for cmd in (
    ["hrface_jax.evaluate", f"--workdir={workdir}", "--noprogress"],
    ["hrface_jax.predict", f"--checkpoint={workdir}", f"--out={tmp_path}", str(image)],
  ):
    r = _run([sys.executable, "-m", *cmd])
    assert r.returncode == 1, r.stderr[-3000:]
    (line,) = r.stderr.strip().splitlines()
    assert line.startswith(f"{cmd[0]}: error: /"), line
    assert line.split(": ")[2] in damaged, line
    assert line.split(": ")[3].startswith("checkpoint is damaged and cannot be read")


def test_evaluate_and_predict_print_no_orbax_notices(tiny_checkpoint, tmp_path):
  # Issue 17: orbax's read-only notices on every load of a finished checkpoint.
  image = tmp_path / "face.png"
  cv2.imwrite(str(image), np.full((64, 64, 3), 128, np.uint8))
  for cmd in (
    ["hrface_jax.evaluate", f"--workdir={tiny_checkpoint}", f"--out={tmp_path}/e"],
    [
      "hrface_jax.predict",
      f"--checkpoint={tiny_checkpoint}",
      f"--out={tmp_path}/p",
      "--whole_image",
      str(image),
    ],
  ):
    r = _run([sys.executable, "-m", *cmd])
    assert r.returncode == 0, r.stderr[-3000:]
    output = r.stdout + r.stderr
    for notice in ("read_only", "read only", "WARNING:absl", "orbax"):
      assert notice not in output, (notice, output)
    # What is left is what the user reads: results and (evaluate) progress.
    lines = [x for x in output.replace("\r", "\n").splitlines() if x.strip()]
    assert all(
      x.startswith((tiny_checkpoint, "wrote ", "eval test", str(image), "1 of 1 "))
      for x in lines
    ), lines


# ----------------------------------------------------------------------------
# Hostile data.
# ----------------------------------------------------------------------------


def test_preparation_rejects_landmarks_far_outside_the_image(tmp_path):
  root = tmp_path / "src" / "testset"
  for i in range(3):
    write_ibug_pair(str(root), f"f{i}", ".png", seed=i)
  # Faces cut by the frame have points a little outside it: those are kept.
  points = formats.read_pts(root / "f0.pts")
  points[0] = (-4.0, 3.0)
  formats.write_pts(root / "f0.pts", points)
  formats.write_pts(root / "f1.pts", points * 1000)  # a wrong scale
  data_dir = str(tmp_path / "data")
  with pytest.raises(ValueError) as e:
    builders.build(builders.IbugPts(data_dir=data_dir), str(root.parent))
  assert str(e.value).startswith(f"{root / 'f1.pts'}: landmark ")
  assert "far outside the 52x40 image" in str(e.value)

  b = builders.IbugPts(data_dir=data_dir, skip_bad=True)
  builders.build(b, str(root.parent))
  assert b.info.splits["test"].num_examples == 2
  assert "skipped 1" in prepare.summary(b)


@pytest.mark.parametrize("fault", ["nan", "size"])
def test_synth_preparation_rejects_a_hostile_face(tmp_path, monkeypatch, fault):
  def hostile(seed: int, resolution: int) -> dict:
    face = fake_render_face(seed, resolution)
    if seed == 2 and fault == "nan":
      face["landmarks"][5] = np.nan
    if seed == 2 and fault == "size":
      face["image"] = face["image"][:-1]
    return face

  monkeypatch.setattr(builders, "_render", hostile)
  config = builders.synth_config(SYNTH_RES, 4, 2)
  data_dir = str(tmp_path / "data")
  with pytest.raises(ValueError) as e:
    builders.build(builders.HrfaceSynth(config=config, data_dir=data_dir))
  expected = {
    "nan": "landmarks are not finite (NaN or inf)",
    "size": f"image is 63x64, but the dataset's resolution is {SYNTH_RES}x{SYNTH_RES}",
  }[fault]
  assert str(e.value) == f"hrface_synth seed 2: {expected}"

  b = builders.HrfaceSynth(config=config, data_dir=data_dir, skip_bad=True)
  builders.build(b)
  assert b.info.splits["train"].num_examples == 3
  assert "train: 3 examples" in prepare.summary(b)
  assert "skipped 1" in prepare.summary(b)


def test_a_damaged_frame_file_is_named(tmp_path):
  """Rendered faces' pixels live in a frame file beside the records: a
  truncated or deleted one stops the read naming it (not a crash, not a
  frame of zeros)."""
  data_dir = str(tmp_path / "data")
  build_fake_synth(data_dir, SYNTH_RES, 4, 2)
  config = make_config(data_dir, synth_train_size=4, synth_test_size=2)
  source = prepare.get_data_source(config, "train")
  path = source.frame_file.path
  assert os.path.basename(path) == "frames-train.u8"
  with open(path, "r+b") as f:
    f.truncate(os.path.getsize(path) - 1)
  last = max(range(4), key=lambda i: int(source.source[i]["frame_offset"]))
  source = prepare.get_data_source(config, "train")
  with pytest.raises(ValueError, match=f"{path}: a frame of shape .* outside the file"):
    source[last]
  os.remove(path)
  with pytest.raises(FileNotFoundError, match=f"{path}: the dataset's frame file"):
    prepare.get_data_source(config, "train")


def _record(face: dict, id_: str) -> dict:
  """One stored record, as the data source returns it."""
  image_png = builders.encode_png(face["image"])
  return {
    "image_png": image_png,
    "image_shape": np.asarray(face["image"].shape, np.int32),
    "landmarks": np.asarray(face["landmarks"], np.float32),
    "face_box": np.asarray(face["face_box"], np.float32),
    "id": id_.encode(),
  }


def _spoil(record: dict, fault: str) -> dict:
  record = dict(record)
  if fault == "nan landmarks":
    record["landmarks"] = record["landmarks"].copy()
    record["landmarks"][3, 1] = np.nan
  elif fault == "undecodable image":
    record["image_png"] = record["image_png"][:40]
  elif fault == "size mismatch":
    record["image_shape"] = np.asarray([32, 64, 3], np.int32)
  return record


RECORD_FAULTS = {
  "nan landmarks": "landmarks are not finite",
  "undecodable image": "not an image file",
  "size mismatch": "the image decodes to (64, 64, 3), but the record says (32, 64, 3)",
}


@pytest.mark.parametrize("fault", RECORD_FAULTS)
def test_a_hostile_record_is_named_where_it_is_read(tmp_path, fault):
  pre = pipeline._Preprocess(make_config(str(tmp_path)), augment_=False)
  record = _record(fake_render_face(7, SYNTH_RES), "synth_7")
  out = pre(record, None)
  assert np.isfinite(out["landmarks"]).all()
  with pytest.raises(ValueError) as e:
    pre(_spoil(record, fault), None)
  assert str(e.value).startswith("dataset 'hrface_synth' example b'synth_7'")
  assert RECORD_FAULTS[fault] in str(e.value)


def test_training_batches_never_carry_a_nan_from_the_data(tmp_path, monkeypatch):
  # A record that got past preparation (a dataset prepared before its checks,
  # or edited since): the train pipeline names it instead of yielding NaN.
  def nan_face(seed: int, resolution: int) -> dict:
    face = fake_render_face(seed, resolution)
    if seed == 2:
      face["landmarks"][0] = np.nan
    return face

  monkeypatch.setattr(builders, "_render", nan_face)
  monkeypatch.setattr(builders, "check_example", lambda *args: None)
  data_dir = str(tmp_path / "data")
  config = make_config(data_dir, synth_train_size=4, synth_test_size=2)
  synth = builders.synth_config(SYNTH_RES, 4, 2)
  builders.build(builders.HrfaceSynth(config=synth, data_dir=data_dir))
  it = pipeline.make_train_iterator(config, process_index=0, process_count=1)
  with pytest.raises(ValueError, match="example b'synth_2': landmarks are not finite"):
    next(it)


def test_evaluate_on_a_folder_with_broken_files_names_them_and_scores_the_rest(
  tiny_checkpoint, tmp_path
):
  root = tmp_path / "faces"
  for i in range(6):
    write_ibug_pair(str(root / "testset"), f"f{i}", ".png", seed=i, h=80, w=96)
  broken = {
    "f3.png": "image does not decode",
    "f4.pts": "has 39 points, expected 68",
    "f5.pts": "too short to be a .pts file",
  }
  (root / "testset" / "f3.png").write_bytes(b"\x89PNG broken")
  formats.write_pts(root / "testset" / "f4.pts", np.ones((39, 2)))
  (root / "testset" / "f5.pts").write_text("garbage\n")
  r = _run(
    [
      sys.executable,
      "-m",
      "hrface_jax.evaluate",
      f"--workdir={tiny_checkpoint}",
      "--dataset=ibug_pts",
      f"--manual_dir={root}",
      f"--data_dir={tmp_path / 'data'}",
      f"--out={tmp_path / 'eval'}",
      "--noprogress",
    ]
  )
  assert r.returncode == 0, r.stderr[-3000:]
  assert "ibug_pts/test at 256px, 3 images: NME(io)" in r.stdout, r.stdout
  assert "3 broken file(s) of ibug_pts/test were left out" in r.stdout
  for name, problem in broken.items():
    assert f"  {root / 'testset' / name}: {problem}" in r.stdout
  metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
  assert metrics["num_images"] == 3 and np.isfinite(metrics["nme_inter_ocular"])


# ----------------------------------------------------------------------------
# Preemption at random moments.
# ----------------------------------------------------------------------------


def _last_checkpoint(workdir) -> int | None:
  """The newest finished step folder (orbax renames a save into place last)."""
  folder = workdir / "checkpoints"
  if not folder.exists():
    return None
  return max((int(p.name) for p in folder.iterdir() if p.name.isdigit()), default=None)


def _kill_while_saving(proc, workdir, skip: int, deadline: float) -> bool:
  """kill -9 while the run's ``skip + 1``-th save is seen in progress
  (orbax's temporary folder present); False if the run ended first."""
  folder = workdir / "checkpoints"
  seen = set()
  while proc.poll() is None and time.time() < deadline:
    if folder.exists():
      seen |= {p.name for p in folder.iterdir() if "tmp" in p.name}
      if len(seen) > skip:
        proc.kill()
        return True
    time.sleep(0.001)
  return False


def _kill_after_steps(proc, steps: int, extra: float) -> bool:
  """kill -9 ``extra`` seconds after the run's ``steps``-th step line."""
  seen = 0
  while seen < steps:
    line = proc.stdout.readline()
    if not line:
      return False  # finished first
    seen += line.startswith("step ")
  time.sleep(extra)
  if proc.poll() is not None:
    return False
  proc.kill()
  return True


@pytest.mark.slow
def test_ten_random_kill_9s_lose_nothing_beyond_the_last_checkpoint(tmp_path, data_dir):
  """kill -9 at seeded random moments: while starting (imports, restore,
  compile), after a random number of steps, and while a checkpoint is being
  written (orbax's temporary folder present). Every restart must resume at
  the newest finished checkpoint, and the run must end with the parameters of
  an uninterrupted one, bit for bit."""
  total = 24
  overrides = dict(
    total_steps=total,
    checkpoint_every_steps=2,
    log_every_steps=1,
    stages=(("coarse", 0.25), ("regional", 0.25), ("joint", 0.5)),
  )
  # Restarts load the executables the first run compiled from the run's
  # compilation cache (tests/conftest.py): ~4x shorter restarts.
  env = dict(os.environ, PYTHONUNBUFFERED="1")
  straight = tmp_path / "straight"
  r = _run(train_command(tmp_path, straight, data_dir, **overrides), env)
  assert r.returncode == 0, r.stderr[-3000:]

  rng = np.random.default_rng(0)
  workdir = tmp_path / "killed"
  cmd = train_command(tmp_path, workdir, data_dir, **overrides)
  kills = {"starting": 0, "stepping": 0, "saving": 0}
  expected_start, runs, resumes = None, 0, []
  while sum(kills.values()) < 10:
    runs += 1
    assert runs < 40, kills
    proc = subprocess.Popen(
      cmd,
      cwd=REPO,
      env=env,
      stdout=subprocess.PIPE,
      stderr=subprocess.DEVNULL,
      text=True,
    )
    header = proc.stdout.readline()
    resumed = f"resuming at step {expected_start}" if expected_start else "from scratch"
    assert resumed in header, (resumed, header)
    deadline = time.time() + 300
    moment = ("starting", "stepping", "saving")[sum(kills.values()) % 3]
    if moment == "starting":  # compiling or before the first step
      time.sleep(rng.uniform(0, 1.0))
      killed = proc.poll() is None
      proc.kill()
    elif moment == "stepping":
      killed = _kill_after_steps(proc, int(rng.integers(1, 6)), rng.uniform(0, 0.5))
    else:  # the first, second or third save of this run
      killed = _kill_while_saving(proc, workdir, int(rng.integers(0, 3)), deadline)
    proc.wait(timeout=60)
    proc.stdout.close()
    assert _last_checkpoint(workdir) != total, "finished before 10 kills"
    kills[moment] += killed
    expected_start = _last_checkpoint(workdir)
    resumes.append(expected_start)
  assert min(kills.values()) >= 1, kills
  # The kills did not all land before the first checkpoint.
  assert len(set(resumes) - {None}) >= 3, resumes
  print(f"kills {kills}, resumed at {resumes}")  # shown by pytest -rP

  r = _run(cmd, env)
  assert r.returncode == 0, r.stderr[-3000:]
  assert f"resuming at step {expected_start}" in r.stdout
  a, b = (_final_params(str(w), total) for w in (straight, workdir))
  assert _max_diff(a, b) == 0.0
