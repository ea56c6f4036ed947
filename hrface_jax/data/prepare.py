r"""Builds datasets once, and opens them for training and evaluation.

Command line::

  python -m hrface_jax.data.prepare --dataset=hrface_synth --resolution=1024
  python -m hrface_jax.data.prepare --dataset=ibug_pts --manual_dir=~/300W \
      [--config_name=300w --test_dirs=testset,ibug] [--skip_bad]
  python -m hrface_jax.data.prepare --dataset=wflw --manual_dir=~/WFLW

The data dir is ``--data_dir``, else ``$HRFACE_DATA_DIR``, else ``./data``.
Training code calls :func:`get_data_source`, which builds ``hrface_synth``
on first use (it is rendered locally) and tells the user the command above
for real datasets that are not prepared yet.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

import ml_collections
import numpy as np
from absl import app, flags, logging

from hrface_jax import host_memory
from hrface_jax.cli import private_flags_parser
from hrface_jax.data import builders, frames

DATA_DIR_ENV = "HRFACE_DATA_DIR"


def resolve_data_dir(data_dir: str = "") -> str:
  """``data_dir`` or ``$HRFACE_DATA_DIR`` or ``./data``, made absolute."""
  d = data_dir or os.environ.get(DATA_DIR_ENV) or "data"
  return os.path.abspath(os.path.expanduser(d))


def parse_dataset(name: str) -> tuple[str, str | None]:
  """``"NAME"`` or ``"NAME/CONFIG"`` -> (NAME, CONFIG or None)."""
  base, _, cfg = name.partition("/")
  if base not in builders.BUILDERS:
    raise ValueError(
      f"unknown dataset {name!r}; known datasets: {sorted(builders.BUILDERS)}"
    )
  return base, cfg or None


def make_builder(
  dataset: str,
  data_dir: str,
  *,
  resolution: int = 256,
  train_size: int = 0,
  test_size: int = 0,
  test_dirs: Sequence[str] | None = None,
  skip_bad: bool = False,
  num_workers: int | None = None,
):
  """The TFDS builder for ``dataset`` ("NAME" or "NAME/CONFIG") in ``data_dir``.

  ``resolution``/sizes apply to hrface_synth when no config is named;
  ``test_dirs`` to ibug_pts (a custom split rule needs a config name).
  """
  base, cfg = parse_dataset(dataset)
  if base == "hrface_synth":
    config = cfg or builders.synth_config(resolution, train_size, test_size)
    if isinstance(config, str) and config not in builders.HrfaceSynth.builder_configs:
      # A named size variant ("r256_t100_e20") built earlier.
      config = _synth_config_from_name(config)
    return builders.HrfaceSynth(
      config=config, data_dir=data_dir, skip_bad=skip_bad, num_workers=num_workers
    )
  if base == "ibug_pts":
    config = builders.ibug_config(cfg or "default", test_dirs)
    return builders.IbugPts(config=config, data_dir=data_dir, skip_bad=skip_bad)
  if cfg:
    raise ValueError(f"dataset {base!r} has no configs (got {dataset!r})")
  return builders.Wflw(data_dir=data_dir, skip_bad=skip_bad)


def _synth_config_from_name(name: str) -> builders.HrfaceSynthConfig:
  try:
    r, t, e = name.split("_")
    return builders.synth_config(int(r[1:]), int(t[1:]), int(e[1:]))
  except ValueError:
    raise ValueError(
      f"unknown hrface_synth config {name!r}; use r256..r4096 or rRES_tTRAIN_eTEST"
    ) from None


def builder_for_config(config: ml_collections.ConfigDict, *, skip_bad: bool = False):
  """The builder that ``config`` (dataset, data_dir, resolution...) reads."""
  return make_builder(
    config.dataset,
    resolve_data_dir(config.get("data_dir", "")),
    resolution=config.get("synth_resolution", 0) or config.resolution,
    train_size=config.get("synth_train_size", 0),
    test_size=config.get("synth_test_size", 0),
    skip_bad=skip_bad,
  )


def prepare_from_folder(config: ml_collections.ConfigDict, manual_dir: str):
  """Builds ``config``'s real dataset from ``manual_dir`` unless it is
  prepared already, skipping (and recording) the files that are broken."""
  builder = builder_for_config(config, skip_bad=True)
  if not builder.is_prepared():
    builders.build(builder, os.path.expanduser(manual_dir))
  return builder


def skipped_examples(builder, split: str) -> list[str]:
  """What preparation skipped in ``split``: one "FILE: problem" per example."""
  return list((builder.info.metadata.get("skipped", {}) or {}).get(split, []))


def _prepare_command(builder) -> str:
  cfg = builder.builder_config.name if builder.builder_config else None
  name = builder.name + (f" --config_name={cfg}" if cfg and cfg != "default" else "")
  return (
    f"python -m hrface_jax.data.prepare --dataset={name}"
    f" --manual_dir=/path/to/your/copy --data_dir={builder.data_dir_root}"
  )


def ensure_prepared(config: ml_collections.ConfigDict):
  """Returns the prepared builder; builds hrface_synth if it is missing.

  Raises:
    FileNotFoundError: for a real dataset not prepared yet, with the command
      that prepares it.
  """
  builder = builder_for_config(config)
  if builder.is_prepared():
    return builder
  if builder.name != "hrface_synth":
    raise FileNotFoundError(
      f"dataset {config.dataset!r} is not prepared in {builder.data_dir_root}."
      f" Prepare it once from your local copy with:\n  {_prepare_command(builder)}"
    )
  print(
    f"hrface_synth/{builder.builder_config.name} is not built yet in"
    f" {builder.data_dir_root}; rendering it now (once).",
    file=sys.stderr,
  )
  builders.build(builder)
  return builder


def get_data_source(config: ml_collections.ConfigDict, split: str):
  """Random-access source of ``split`` (a TFDS ArrayRecordDataSource).

  Elements are dicts of numpy arrays; ``image_png`` and ``id`` are bytes.
  Datasets with frame files (``hrface_synth``) add ``image``, the frame as a
  read-only uint8 view (:mod:`hrface_jax.data.frames`).
  """
  builder = ensure_prepared(config)
  if split not in builder.info.splits:
    raise ValueError(
      f"dataset {config.dataset!r} has no split {split!r};"
      f" it has {sorted(builder.info.splits)}"
    )
  return data_source(builder, split)


def data_source(builder, split: str):
  """``builder``'s (prepared) ``split`` as :func:`get_data_source` gives it."""
  source = builder.as_data_source(split)
  if "frame_offset" in builder.info.features:
    path = frames.frame_path(builder.data_dir, split)
    return frames.FramedSource(source, frames.FrameFile(path))
  return source


def summary(builder) -> str:
  """What was built: examples per split, image sizes, skipped, where."""
  lines = [f"{builder.info.full_name} in {builder.data_dir}"]
  skipped = {name: skipped_examples(builder, name) for name in builder.info.splits}
  for name, split in sorted(builder.info.splits.items()):
    src = builder.as_data_source(name)
    # A sample (a PNG dataset's records hold whole images).
    sample = sorted({int(i) for i in np.linspace(0, len(src) - 1, min(len(src), 20))})
    shapes = sorted({tuple(int(v) for v in src[i]["image_shape"][:2]) for i in sample})
    if len(shapes) <= 2:
      size = ", ".join(f"{h}x{w}" for h, w in shapes)
    else:
      (h0, w0), (h1, w1) = shapes[0], shapes[-1]
      size = f"{len(shapes)} sizes, {h0}x{w0} .. {h1}x{w1}"
    lines.append(
      f"  {name}: {split.num_examples} examples, images (HxW) {size or '-'}"
      f", skipped {len(skipped.get(name, []))}"
    )
    for reason in skipped.get(name, [])[:5]:
      lines.append(f"    skipped: {reason}")
    if len(skipped.get(name, [])) > 5:
      lines.append(f"    ... and {len(skipped[name]) - 5} more (see metadata.json)")
  return "\n".join(lines)


# Private flag set: importing this module (the pipeline does) defines nothing
# on absl's global FLAGS, so other CLIs can own --dataset / --data_dir.
FLAGS = flags.FlagValues()
flags.DEFINE_string(
  "dataset", "hrface_synth", "hrface_synth | ibug_pts | wflw", flag_values=FLAGS
)
flags.DEFINE_string(
  "manual_dir", None, "Local copy of a real dataset.", flag_values=FLAGS
)
flags.DEFINE_string(
  "data_dir", "", f"Output dir; default ${DATA_DIR_ENV} or ./data.", flag_values=FLAGS
)
flags.DEFINE_list(
  "resolution",
  ["256"],
  "hrface_synth resolutions (comma-separated).",
  flag_values=FLAGS,
)
flags.DEFINE_integer(
  "train_size", 0, "hrface_synth train faces (0: standard).", flag_values=FLAGS
)
flags.DEFINE_integer(
  "test_size", 0, "hrface_synth test faces (0: standard).", flag_values=FLAGS
)
flags.DEFINE_string(
  "config_name", None, "ibug_pts: name of this copy (e.g. 300w).", flag_values=FLAGS
)
flags.DEFINE_list(
  "test_dirs",
  None,
  "ibug_pts: folder names that mark test files"
  f" (default {','.join(builders.DEFAULT_TEST_DIRS)}).",
  flag_values=FLAGS,
)
flags.DEFINE_bool(
  "skip_bad",
  False,
  "Skip and count bad examples instead of failing.",
  flag_values=FLAGS,
)
flags.DEFINE_integer(
  "num_workers", None, "hrface_synth render processes.", flag_values=FLAGS
)


def main(argv: Sequence[str]) -> None:
  del argv
  logging.set_verbosity(logging.ERROR)  # TFDS's INFO lines drown the summary
  data_dir = resolve_data_dir(FLAGS.data_dir)
  base, _ = parse_dataset(FLAGS.dataset)
  name = FLAGS.dataset
  if FLAGS.config_name:
    name = f"{base}/{FLAGS.config_name}"
  if base != "hrface_synth" and not FLAGS.manual_dir:
    raise app.UsageError(f"--dataset={base} needs --manual_dir")
  resolutions = [int(r) for r in FLAGS.resolution] if base == "hrface_synth" else [0]
  manual_dir = os.path.expanduser(FLAGS.manual_dir) if FLAGS.manual_dir else None
  for res in resolutions:
    builder = make_builder(
      name,
      data_dir,
      resolution=res,
      train_size=FLAGS.train_size,
      test_size=FLAGS.test_size,
      test_dirs=FLAGS.test_dirs,
      skip_bad=FLAGS.skip_bad,
      num_workers=FLAGS.num_workers,
    )
    if builder.is_prepared():
      print(f"already built: {builder.info.full_name}")
    else:
      builders.build(builder, manual_dir)
    print(summary(builder))


_parse_flags = private_flags_parser(FLAGS, "hrface_jax.data.prepare", __doc__)


if __name__ == "__main__":
  host_memory.reexec_with_huge_pages()  # first: see hrface_jax/host_memory.py
  app.run(main, flags_parser=_parse_flags)
