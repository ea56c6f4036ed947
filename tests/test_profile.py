"""The profile CLI compiles train + inference steps and writes JSON records."""

import json
import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_profile_cli_writes_json(tmp_path):
  out = tmp_path / "profile.json"
  cmd = [
    sys.executable, "-m", "hrface_jax.profile",
    "--config=" + os.path.join(REPO, "configs", "holistic.py"),
    "--resolutions=128", "--batch=2", f"--json={out}",
    "--config.holistic.width=16", "--config.holistic.stem_width=8",
    "--config.holistic.levels=3",
  ]  # fmt: skip
  env = {**os.environ, "JAX_PLATFORMS": "cpu"}
  proc = subprocess.run(
    cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240
  )
  assert proc.returncode == 0, proc.stderr[-3000:]
  records = json.loads(out.read_text())
  assert [r["step"] for r in records] == ["train", "infer"]
  for r in records:
    assert r["model"] == "holistic" and r["resolution"] == 128 and r["batch"] == 2
    for k in ("temp_bytes", "argument_bytes", "output_bytes"):
      assert isinstance(r[k], int) and r[k] >= 0
    assert r["flops"] > 0
  train, infer = records
  # Training keeps activations for the backward pass; inference doesn't.
  assert train["temp_bytes"] > infer["temp_bytes"]
  assert train["flops"] > 2 * infer["flops"]
  # Memory traffic: at least the step's own arguments are read.
  assert train["bytes_accessed"] >= train["argument_bytes"] > 0
  assert infer["bytes_accessed"] >= infer["argument_bytes"]
  # The images are an argument: at least 2 * 128 * 128 * 3 bytes.
  assert infer["argument_bytes"] >= 2 * 128 * 128 * 3
  assert "temp GiB" in proc.stdout


def test_profile_regional_records_in_process():
  from hrface_jax import config_lib, profile

  cfg = config_lib.base_config()
  cfg.coarse.input_size = 64
  cfg.coarse.widths = (8, 16)
  cfg.regional.widths = (8, 16)
  cfg.regional.stem_widths = (8,)
  cfg.regional.crop_table = ((128, 96, 4),)
  records = profile.profile_resolution(cfg, 128, batch=1)
  assert [r["model"] for r in records] == ["regional", "regional"]
  assert all(r["temp_bytes"] > 0 for r in records)
  assert "regional" in profile.format_table(records)
  # Compiled for analysis only (no backend optimisation): the same figures
  # as a fully optimised compile.
  full = profile.profile_resolution(cfg, 128, 1, ("train",), compiler_options=None)
  assert full == records[:1]
  with pytest.raises(ValueError, match="profile step 'eval'"):
    profile.profile_resolution(cfg, 128, 1, ("eval",))


@pytest.mark.slow
def test_regional_patches_memory_is_flat_up_to_8192():
  """configs/regional_patches.py compiles at 8192^2 and its train step's
  temp memory grows at most 1.5x from 4096^2 (the image itself, an argument,
  grows 4x)."""
  from hrface_jax import profile
  from hrface_jax.config_lib import load_config_file  # noqa: PLC0415

  cfg = load_config_file(os.path.join(REPO, "configs", "regional_patches.py"))
  cfg.coarse.widths = (8, 16)
  cfg.coarse.stem_width = 8
  cfg.regional.widths = (8, 16)
  cfg.regional.stem_widths = (8,)
  cfg.patches.widths = (8, 16)
  cfg.patches.stem_widths = (8,)
  temp = {}
  for res in (4096, 8192):
    train, infer = profile.profile_resolution(cfg, res, batch=1)
    temp[res] = train["temp_bytes"]
    assert infer["argument_bytes"] >= res * res * 3
  assert temp[8192] <= 1.5 * temp[4096], temp
