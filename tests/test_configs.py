"""The experiment tables in configs/: they load (however they are loaded),
validate, name only real fields, and share configs/common.py."""

from __future__ import annotations

import os
import textwrap

import pytest
from absl import flags
from conftest import run_cli
from ml_collections import config_flags

from hrface_jax import config_lib
from hrface_jax import train as train_cli
from hrface_jax.data import config as data_config
from hrface_jax.models import config as model_config

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = os.path.join(REPO, "configs")
TRAINING_CONFIGS = ("regional", "regional_patches", "holistic")
VARIANTS = ("", "1024", "gpu", "gpu,4096")


def load(name: str, variant: str | None = None):
  return config_lib.load_config_file(os.path.join(CONFIGS, f"{name}.py"), variant)


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("name", TRAINING_CONFIGS)
def test_every_shipped_config_names_only_real_fields_and_validates(name, variant):
  config = load(name, variant)
  assert config_lib.unknown_fields(config) == []
  config_lib.validate_config(config, num_devices=1)
  if variant.endswith("4096"):
    assert config.resolution == 4096


def test_the_quickstart_config_names_only_real_fields_and_validates():
  config = load("quickstart")
  assert config_lib.unknown_fields(config) == []
  config_lib.validate_config(config, num_devices=1)


@pytest.mark.parametrize("name", ("regional", "holistic"))
def test_the_gpu_variants_take_commons_accelerator_schedule(name):
  common = config_lib.load_sibling(os.path.join(CONFIGS, "common.py"), "common")
  gpu = load(name, "gpu")
  cpu = load(name, "")
  expected = load(name, "")
  common.accelerator_schedule(expected, batch_size=gpu.batch_size)
  for field in ("batch_size", "total_steps", "learning_rate", "compute_dtype"):
    assert gpu[field] == expected[field], field
  assert gpu.optimizer.ema_decay == expected.optimizer.ema_decay > 0
  assert cpu.compute_dtype == "float32" and gpu.compute_dtype == "bfloat16"


def test_a_misspelt_field_in_a_config_is_an_error_naming_it():
  config = load("regional")
  config.regional.fussion = "precision"  # adds a field nothing reads
  config.no_such_top_level = 1
  unknown = config_lib.unknown_fields(config)
  assert sorted(unknown) == ["no_such_top_level", "regional.fussion"]
  with pytest.raises(
    ValueError, match=r"config\.(regional\.fussion|no_such_top_level)"
  ):
    config_lib.validate_config(config, num_devices=1)


def test_configs_load_their_siblings_under_absls_config_flag(tmp_path):
  """The train CLI loads config files with ml_collections' config flags, not
  config_lib: the sibling import must work there too."""
  values = flags.FlagValues()
  holder = config_flags.DEFINE_config_file("config", flag_values=values)
  values(["prog", f"--config={os.path.join(CONFIGS, 'regional_patches.py')}:gpu"])
  config = holder.value
  assert config.patches.enabled and config.compute_dtype == "bfloat16"
  assert config.regional.feature_size == 72  # regional.py's gpu nets


def test_load_sibling_reads_the_file_beside_the_config(tmp_path):
  (tmp_path / "common.py").write_text("BATCH = 24\n")
  (tmp_path / "mine.py").write_text(
    textwrap.dedent(
      """
      from hrface_jax import config_lib

      common = config_lib.load_sibling(__file__, "common")


      def get_config():
        config = config_lib.base_config()
        config.batch_size = common.BATCH
        return config
      """
    )
  )
  assert config_lib.load_config_file(str(tmp_path / "mine.py")).batch_size == 24
  with pytest.raises(FileNotFoundError, match="nothere.py"):
    config_lib.load_sibling(str(tmp_path / "mine.py"), "nothere")


def test_the_old_default_helpers_still_work_with_a_warning():
  base = config_lib.base_config()
  for old in (data_config.add_defaults, model_config.add_defaults):
    config = config_lib.base_config()
    del config["augment"], config["loss"]
    config.batch_size = 3  # what a config has is kept
    with pytest.warns(DeprecationWarning, match="base_config"):
      old(config)
    assert config.augment == base.augment and config.loss == base.loss
    assert config.batch_size == 3
  config = config_lib.base_config()
  with pytest.warns(DeprecationWarning, match="configs/common.py"):
    config_lib.accelerator_schedule(config, batch_size=32)
  assert config.batch_size == 32 and config.compute_dtype == "bfloat16"


def test_train_stops_on_a_misspelt_config_field_before_compiling(tmp_path):
  (tmp_path / "typo.py").write_text(
    textwrap.dedent(
      """
      from hrface_jax import config_lib


      def get_config():
        config = config_lib.base_config()
        config.regional.fussion = "precision"
        return config
      """
    )
  )
  code, _, err = run_cli(
    train_cli, f"--config={tmp_path / 'typo.py'}", f"--workdir={tmp_path / 'w'}"
  )
  assert code == 1
  assert "config.regional.fussion: not a field" in err
  assert not (tmp_path / "w").exists()


def test_print_config_shows_the_resolved_table_and_trains_nothing(tmp_path):
  code, out, err = run_cli(
    train_cli,
    f"--config={os.path.join(CONFIGS, 'regional_patches.py')}:gpu,4096",
    "--config.learning_rate=0.0005",
    "--print_config",
  )
  assert code == 0, err
  rows = {line.split()[0]: line for line in out.splitlines() if line[:1] != "#"}
  assert set(rows) == set(config_lib.flat_fields(config_lib.base_config()))
  assert rows["learning_rate"].split()[1] == "0.0005"  # the override
  assert "# default: 0.001" in rows["learning_rate"]
  assert rows["compute_dtype"].split()[1] == "'bfloat16'"
  assert "# default" not in rows["dataset"]
  # What the geometry rules derive at 4096^2: 9/16 crops, three patch stages.
  assert "regional crops 2304 px, stem stride 32" in out
  assert "512 px / 32 px, 128 px / 8 px, 32 px / 2 px" in out


def test_print_config_names_a_bad_field_and_exits_1():
  code, out, err = run_cli(
    train_cli,
    f"--config={os.path.join(CONFIGS, 'regional.py')}",
    "--config.regional.crop_size=9999",
    "--print_config",
  )
  assert code == 1 and out == ""
  assert "config.regional.crop_size=9999" in err
