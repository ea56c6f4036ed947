"""Shared fixtures for the data-layer tests: a stand-in face renderer, a tiny
prebuilt hrface_synth dataset and a minimal config."""

from __future__ import annotations

import atexit
import contextlib
import gc
import io
import os
import shutil
import sys
import tempfile

# Most of the suite's time is XLA compiling. Tests check behaviour, not speed,
# so they get XLA's cheapest compile (-38% wall time on the model tests).
# Through the environment, before JAX is imported, so that the CLIs tests
# start as subprocesses get it too. JAX_DISABLE_MOST_OPTIMIZATIONS=0 undoes it.
os.environ.setdefault("JAX_DISABLE_MOST_OPTIMIZATIONS", "1")
# Many tests, and the training processes they start (kill/resume loops, two
# processes against one), compile the same tiny steps again: one compilation
# cache for every process of the run serves the repeats from disk. A fresh
# folder per run (removed at exit); HRFACE_TEST_XLA_CACHE=0 turns it off, and
# JAX_COMPILATION_CACHE_DIR set by the caller is used as it is.
if os.environ.get("HRFACE_TEST_XLA_CACHE", "1") == "1" and (
  "JAX_COMPILATION_CACHE_DIR" not in os.environ
):
  _xla_cache = tempfile.mkdtemp(prefix="hrface_jax_tests_xla_cache_")
  os.environ["JAX_COMPILATION_CACHE_DIR"] = _xla_cache
  atexit.register(shutil.rmtree, _xla_cache, ignore_errors=True)
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")

import cv2
import jax
import ml_collections
import numpy as np
import pytest
from absl import app

from hrface_jax import config_lib
from hrface_jax.data import formats

# hrface_jax.data.builders (TFDS) is imported inside the fixtures so that other
# engineers' test files do not pay for importing TFDS.


@pytest.fixture(autouse=True, scope="module")
def _release_compiled_programs():
  """Frees every compiled program after each test module.

  XLA:CPU maps memory for the code of every program it compiles (~4,000
  mappings for a 2-step quickstart training run), and a process may hold at
  most vm.max_map_count (65,530): one pytest process keeping the whole
  suite's programs reached it in tests/test_train.py and crashed inside XLA
  (a segfault while compiling or serialising, three runs on 2026-12-01).
  """
  yield
  jax.clear_caches()
  gc.collect()


SYNTH_RES = 64
SYNTH_TRAIN = 12
SYNTH_TEST = 5


def fake_render_face(seed: int, resolution: int) -> dict:
  """Stand-in for hrface_jax.data.synth.render_face with the same contract:
  geometry depends on the seed only, landmarks are pixel-centre coordinates."""
  rng = np.random.default_rng(seed)
  unit = 0.2 + 0.6 * rng.random((68, 2))  # in [0, 1] of the frame's extent
  landmarks = (unit * resolution - 0.5).astype(np.float32)
  small = rng.integers(0, 256, (6, 6, 3), dtype=np.uint8)
  image = cv2.resize(small, (resolution, resolution), interpolation=cv2.INTER_LINEAR)
  box = np.concatenate([landmarks.min(0), landmarks.max(0)]).astype(np.float32)
  return {
    "image": image,
    "landmarks": landmarks,
    "visible": np.ones(68, bool),
    "face_box": box,
    "pose": np.zeros(3, np.float32),
  }


@contextlib.contextmanager
def patched_renderer():
  from hrface_jax.data import builders

  with pytest.MonkeyPatch.context() as mp:
    mp.setattr(builders, "_render", fake_render_face)
    yield


@pytest.fixture
def fake_synth():
  """Builders render with :func:`fake_render_face` (in-process)."""
  with patched_renderer():
    yield


def build_fake_synth(data_dir: str, resolution: int, train: int, test: int):
  from hrface_jax.data import builders

  with patched_renderer():
    builder = builders.HrfaceSynth(
      config=builders.synth_config(resolution, train, test),
      data_dir=data_dir,
      num_workers=1,
    )
    return builders.build(builder)


@pytest.fixture(scope="session")
def synth_data_dir(tmp_path_factory) -> str:
  """A data dir holding hrface_synth r64_t12_e5 rendered by the stand-in."""
  d = str(tmp_path_factory.mktemp("synth_data"))
  build_fake_synth(d, SYNTH_RES, SYNTH_TRAIN, SYNTH_TEST)
  return d


def make_config(data_dir: str, **overrides) -> ml_collections.ConfigDict:
  """The default config (the data layer reads its data fields) + overrides."""
  config = config_lib.base_config()
  config.resolution = SYNTH_RES
  config.batch_size = 4
  config.data_dir = data_dir
  config.synth_resolution = SYNTH_RES
  config.synth_train_size = SYNTH_TRAIN
  config.synth_test_size = SYNTH_TEST
  config.data_threads = 2
  return with_overrides(config, overrides)


def with_overrides(config: ml_collections.ConfigDict, overrides: dict):
  """``config`` with dotted-key ``overrides`` ("regional.crop_size": 48) set."""
  config.update_from_flattened_dict(overrides)
  return config


def tiny_config(data_dir: str, **overrides) -> ml_collections.ConfigDict:
  """A regional model small enough to train for a few steps in seconds."""
  c = config_lib.base_config()
  c.resolution = 256
  c.data_dir = data_dir
  c.synth_train_size = 16
  c.synth_test_size = 4
  c.batch_size = 4
  c.total_steps = 12
  c.log_every_steps = 2
  c.eval_every_steps = 1000
  c.checkpoint_every_steps = 4
  c.optimizer.warmup_steps = 2
  c.coarse.input_size = 64
  c.coarse.stem_width = 8
  c.coarse.widths = (8, 16)
  c.coarse.heatmap_level = 0
  c.regional.crop_size = 64
  c.regional.stem_stride = 2
  c.regional.stem_widths = (8,)
  c.regional.widths = (8, 16)
  c.augment.enabled = True
  return with_overrides(c, overrides)


def train_command(config_dir, workdir, data_dir: str, **overrides) -> list[str]:
  """The train CLI on a config file (written to ``config_dir``) that returns
  ``tiny_config(data_dir, **overrides)``."""
  tests = os.path.dirname(os.path.abspath(__file__))
  path = os.path.join(config_dir, "tiny_config.py")
  with open(path, "w") as f:
    f.write(
      f"import sys\nsys.path.insert(0, {tests!r})\n"
      "from conftest import tiny_config\n\n"
      f"def get_config():\n  return tiny_config({data_dir!r}, **{overrides!r})\n"
    )
  return [
    sys.executable,
    "-m",
    "hrface_jax.train",
    f"--config={path}",
    f"--workdir={workdir}",
  ]


def run_cli(module, *args: str) -> tuple[int, str, str]:
  """Runs a CLI module (``hrface_jax.evaluate``, ...) in this process the way
  ``python -m`` does: its own flag parser, then ``main``. Returns (exit code,
  stdout, stderr). For tests of what a command prints and refuses; a real
  process is still what the end-to-end CLI tests start."""
  out, err = io.StringIO(), io.StringIO()
  code = 0
  argv = [module.__name__, *args]
  # sys.argv too: ml_collections' config flag reads its --config.KEY
  # overrides from there.
  saved_argv, sys.argv = sys.argv, argv
  with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
    try:
      module.main(module._parse_flags(argv))
    except SystemExit as e:
      code = e.code if isinstance(e.code, int) else 1
    except app.UsageError as e:  # app.run prints it and exits 1
      print(e, file=sys.stderr)
      code = e.exitcode
    finally:
      sys.argv = saved_argv
  return code, out.getvalue(), err.getvalue()


def shared_checkpoint(tmp_path_factory) -> str:
  """A workdir trained for 4 steps, made once per pytest session (under the
  session's base temp folder) and shared by the evaluate and predict tests."""
  root = tmp_path_factory.getbasetemp() / "shared_tiny_run"
  workdir = root / "workdir"
  if not (workdir / "checkpoints" / "4" / "state").exists():
    from hrface_jax import train

    config = tiny_config(
      str(root / "data"),
      total_steps=4,
      checkpoint_every_steps=4,
      eval_every_steps=4,
      stages=(("joint", 1.0),),  # one train step to compile
    )
    config.augment.enabled = False
    train.train_and_evaluate(config, str(workdir))
  return str(workdir)


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> str:
  return shared_checkpoint(tmp_path_factory)


def write_image(path, h, w, seed):
  """A random [h, w] image file; returns it as any reader decodes it."""
  image = np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)
  assert cv2.imwrite(str(path), image)
  # What any reader sees (JPEG is lossy): RGB as decoded from the file.
  return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


def write_ibug_pair(folder, stem, ext, seed, n=68, h=40, w=52):
  """An image and its same-stem iBUG .pts (1-based points inside it)."""
  os.makedirs(folder, exist_ok=True)
  image = write_image(os.path.join(folder, stem + ext), h, w, seed)
  rng = np.random.default_rng(seed + 100)
  pts = np.round(rng.uniform(1, min(h, w), (n, 2)), 3)  # 1-based, as in 300-W
  formats.write_pts(os.path.join(folder, stem + ".pts"), pts)
  return image, pts
