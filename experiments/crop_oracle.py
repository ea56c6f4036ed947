r"""Where does a regional model's error come from: its crops or its networks?

    python experiments/crop_oracle.py \
        --workdir=runs/resolution_sweep_hrface_synth/regional_r1024_s300_* \
        [--split=test] [--json=PATH] [--fusion=confidence|precision]

Prints :func:`hrface_jax.evaluation.crop_oracle.crop_oracle` of a trained
regional checkpoint (what each figure means is said there).
"""

from absl import app, flags

from hrface_jax import atomic, host_memory, sweep
from hrface_jax.evaluation.crop_oracle import crop_oracle


def main(argv) -> None:
  del argv
  sweep.quiet_logging()
  f = flags.FLAGS
  result = crop_oracle(f.workdir, f.split, f.fusion)
  for k, v in result.items():
    print(f"{k:>32}: {v:.4f}" if isinstance(v, float) else f"{k:>32}: {v}")
  if f.json:
    atomic.write_json(f.json, result)


if __name__ == "__main__":
  host_memory.reexec_with_huge_pages()  # first: see hrface_jax/host_memory.py
  flags.DEFINE_string("workdir", None, "A regional run's workdir (or checkpoint).")
  flags.DEFINE_string("split", None, "Split to evaluate (default the config's).")
  flags.DEFINE_string("json", None, "Write the result here as JSON.")
  flags.DEFINE_enum(
    "fusion", None, ["confidence", "precision"], "Fusion reported (default: the run's)."
  )
  flags.mark_flag_as_required("workdir")
  app.run(main)
