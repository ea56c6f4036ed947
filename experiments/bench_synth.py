r"""Times the synthetic face renderer on one CPU thread.

  python experiments/bench_synth.py [--resolutions=256,1024,2048,4096]
      [--seeds=5] [--json=PATH]

Each resolution renders faces 0..seeds-1 after one warm-up render; prints
mean / median / max seconds per face.
"""

from __future__ import annotations

import os

# Single thread everywhere, before numpy / OpenCV load their thread pools.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
  os.environ[_var] = "1"

import json  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import cv2  # noqa: E402
from absl import app, flags  # noqa: E402

from hrface_jax import host_memory  # noqa: E402
from hrface_jax.data import synth  # noqa: E402

_RESOLUTIONS = flags.DEFINE_list(
  "resolutions", ["256", "1024", "2048", "4096"], "Sides."
)
_SEEDS = flags.DEFINE_integer("seeds", 5, "Faces timed per resolution.")
_JSON = flags.DEFINE_string("json", None, "Optional path for the results as JSON.")


def bench(resolutions, seeds: int) -> list[dict]:
  cv2.setNumThreads(1)
  rows = []
  for r in resolutions:
    synth.render_face(10_000, r)  # warm-up (allocator, code paths)
    times = []
    for s in range(seeds):
      t0 = time.perf_counter()
      synth.render_face(s, r)
      times.append(time.perf_counter() - t0)
    rows.append(
      {
        "resolution": r,
        "seeds": seeds,
        "mean_s": statistics.fmean(times),
        "median_s": statistics.median(times),
        "max_s": max(times),
      }
    )
    print(
      f"{r:>6d}  {rows[-1]['mean_s']:8.3f}  {rows[-1]['median_s']:8.3f}"
      f"  {rows[-1]['max_s']:8.3f}",
      flush=True,
    )
  return rows


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  try:
    resolutions = [int(r) for r in _RESOLUTIONS.value]
  except ValueError:
    raise app.UsageError(
      f"--resolutions must be integers, got {_RESOLUTIONS.value}"
    ) from None
  if _SEEDS.value < 1:
    raise app.UsageError(f"--seeds must be >= 1, got {_SEEDS.value}")
  print(f"render_face, 1 thread, {platform.processor() or platform.machine()}")
  print(f"{'res':>6s}  {'mean s':>8s}  {'median s':>8s}  {'max s':>8s}")
  rows = bench(resolutions, _SEEDS.value)
  if _JSON.value:
    path = os.path.abspath(_JSON.value)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), suffix=".json")
    with os.fdopen(fd, "w") as f:
      json.dump({"threads": 1, "results": rows}, f, indent=2)
    os.replace(tmp, path)
    print(path)


if __name__ == "__main__":
  host_memory.reexec_with_huge_pages()  # first: see hrface_jax/host_memory.py
  app.run(main)
