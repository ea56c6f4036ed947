r"""Evaluates checkpoints on a dataset split with the 300-W metric conventions.

    python -m hrface_jax.evaluate --workdir=DIR [--dataset=NAME --split=SPLIT]
    python -m hrface_jax.evaluate --checkpoint=PATH[,PATH...] [--out=DIR] \
        [--resolution=N]
    python -m hrface_jax.evaluate --workdir=DIR --dataset=ibug_pts \
        --manual_dir=FOLDER --data_dir=DIR

``--manual_dir`` prepares a real dataset from its local copy first (when it is
not prepared yet); files that are broken (an image that does not decode, a
``.pts`` with a wrong point count or garbage) are named and left out, and the
rest is evaluated.

A workdir is evaluated at its best checkpoint (lowest validation NME), else
its latest. Writes to ``--out`` (default: ``WORKDIR/eval_<split>``, with
``_step<N>`` added for a step folder): ``metrics.json`` (flat keys such as
``nme_inter_ocular``, ``failure_rate_0.10``, ``auc_0.08``, ``error_pixels``,
``nme_inter_ocular/<region>``, ``coarse_nme_inter_ocular``),
``ced.png`` (one curve per checkpoint), ``predictions.jsonl`` (one line per
image, original-image pixels) and ``examples.png`` (worst and median images,
predicted and true landmarks). With several checkpoints the top-level files
describe the first one and each also gets ``NAME/metrics.json`` and
``NAME/predictions.jsonl``.
"""

from __future__ import annotations

import sys

from absl import app, flags

from hrface_jax import host_memory
from hrface_jax.cli import private_flags_parser, quiet_logging
from hrface_jax.evaluation.checkpoints import evaluate

# This CLI's own flag set: `hrface_jax.data.prepare` (imported through the
# library) and `hrface_jax.train` define some of the same names (--dataset,
# --resolution, --workdir) on absl's global FLAGS, and tests import all of them.
_FLAGS = flags.FlagValues()
flags.DEFINE_string(
  "workdir",
  None,
  "Training workdir (uses its best, else latest, checkpoint).",
  flag_values=_FLAGS,
)
flags.DEFINE_list(
  "checkpoint",
  None,
  "Checkpoint step folders or workdirs; several give several CED curves on one plot.",
  flag_values=_FLAGS,
)
flags.DEFINE_string(
  "dataset", None, "Dataset (default: the training config's).", flag_values=_FLAGS
)
flags.DEFINE_string(
  "split", None, "Split (default: the config's eval split).", flag_values=_FLAGS
)
flags.DEFINE_integer(
  "resolution",
  None,
  "Evaluate at this resolution instead of the training one.",
  flag_values=_FLAGS,
)
flags.DEFINE_string(
  "data_dir", None, "TFDS data dir (default: the config's).", flag_values=_FLAGS
)
flags.DEFINE_string(
  "manual_dir",
  None,
  "A real dataset's local folder (e.g. iBUG .pts + images for"
  " --dataset=ibug_pts): prepared first if it is not yet, broken files"
  " reported and left out.",
  flag_values=_FLAGS,
)
flags.DEFINE_string("out", None, "Output folder.", flag_values=_FLAGS)
flags.DEFINE_integer(
  "batch_size",
  None,
  "Global eval batch size (default: the training one).",
  flag_values=_FLAGS,
)
flags.DEFINE_integer(
  "max_examples", 0, "Evaluate at most this many images (0: all).", flag_values=_FLAGS
)
flags.DEFINE_integer(
  "num_examples_shown",
  4,
  "Worst and median images each in examples.png.",
  flag_values=_FLAGS,
)
flags.DEFINE_bool("progress", True, "Show a progress bar.", flag_values=_FLAGS)


def main(argv: list[str]) -> None:
  quiet_logging()
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  f = _FLAGS
  paths = list(f.checkpoint or []) + ([f.workdir] if f.workdir else [])
  if not paths:
    raise app.UsageError("give --workdir=DIR or --checkpoint=PATH[,PATH...]")
  try:
    out, _ = evaluate(
      paths,
      f.out,
      max_examples=f.max_examples,
      num_examples_shown=f.num_examples_shown,
      progress=f.progress,
      dataset=f.dataset,
      split=f.split,
      resolution=f.resolution,
      data_dir=f.data_dir,
      batch_size=f.batch_size,
      manual_dir=f.manual_dir,
    )
  except (ValueError, FileNotFoundError) as e:
    print(f"hrface_jax.evaluate: error: {e}", file=sys.stderr)
    sys.exit(1)
  print(f"wrote metrics.json, ced.png, predictions.jsonl, examples.png to {out}")


_parse_flags = private_flags_parser(_FLAGS, "hrface_jax.evaluate", __doc__)


if __name__ == "__main__":
  host_memory.reexec_with_huge_pages()  # first: see hrface_jax/host_memory.py
  app.run(main, flags_parser=_parse_flags)
