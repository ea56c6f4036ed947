r"""One-shot accelerator run: throughput and memory on the device you are lent.

    python experiments/device_run.py                      # a GPU/TPU, < 8 min
    python experiments/device_run.py --dry_run --out=/tmp/dry   # CPU, tiny sizes

Measures, on the default device, with synthetic uint8 batches (the device
side only; the host pipeline is ``experiments/benchmark.py``'s):

* the regional train step (configs/regional_patches.py:gpu, the per-device
  batch of its accelerator schedule) at 1024^2, 2048^2 and 4096^2: img/s;
* the holistic baseline at full resolution (configs/holistic.py:gpu) at the
  largest of those sizes whose compiled train step fits the device's memory;
* 4K inference (3840 x 2160 frames are face-cropped to the model's 4096^2
  input by the predictor; here the model's own step on 4096^2 inputs): faces/s;
* peak device memory (``memory_stats()["peak_bytes_in_use"]``) after each.

Writes ``OUT/device_run.json`` and ``OUT/device_run.md`` after every
measurement (default ``experiments/results``), so a run cut short keeps what
it measured. ``--dry_run`` does the same on tiny sizes and nets (CPU, tests).
"""

from __future__ import annotations

import os
import time
from typing import Any

from hrface_jax import atomic, host_memory
from hrface_jax import sweep as rs
from hrface_jax.sweep import benchmark

FIELDS = ("what", "model", "resolution", "batch", "status", "per_second", "unit")


def _configs(dry_run: bool):
  """(regional config factory, holistic config factory) for a resolution."""
  from hrface_jax import config_lib  # noqa: PLC0415

  regional_path = os.path.join(rs.REPO, "configs", "regional_patches.py")
  holistic_path = os.path.join(rs.REPO, "configs", "holistic.py")

  def regional(res: int):
    config = config_lib.load_config_file(regional_path, "" if dry_run else "gpu")
    config.resolution = res
    if dry_run:
      config.batch_size = 2
      config.coarse.input_size = 64
      config.coarse.widths = (8, 16)
      config.coarse.stem_width = 8
      config.regional.widths = (8, 16)
      config.regional.stem_widths = (8,)
      config.patches.widths = (8, 16)
      config.patches.stem_widths = (8,)
      config.patches.feature_size = 8
    return config

  def holistic(res: int):
    config = config_lib.load_config_file(holistic_path, "" if dry_run else "gpu")
    config.resolution = res
    config.input_resolution = 0
    if dry_run:
      config.batch_size = 2
      config.holistic.width = 8
      config.holistic.stem_width = 8
      config.holistic.levels = 2
      config.holistic.stacks = 1
    return config

  return regional, holistic


def _peak_bytes() -> int | None:
  import jax  # noqa: PLC0415

  try:
    stats = jax.local_devices()[0].memory_stats() or {}
  except Exception:  # noqa: BLE001  (backends without memory stats)
    return None
  return stats.get("peak_bytes_in_use")


def markdown(records: list[dict[str, Any]], device: str) -> str:
  lines = [
    f"# Device run on {device}\n",
    "| what | model | resolution | batch | status | rate | peak device GiB |",
    "| --- | --- | ---: | ---: | --- | ---: | ---: |",
  ]
  for r in records:
    peak, rate = r.get("peak_bytes"), r.get("per_second")
    rate_text = "–" if rate is None else f"{rate:.1f} {r['unit']}"
    peak_text = "–" if peak is None else f"{peak / 2**30:.2f}"
    lines.append(
      f"| {r['what']} | {r['model']} | {r['resolution']} | {r['batch']} | "
      f"{r['status']} | {rate_text} | {peak_text} |"
    )
  return "\n".join(lines) + "\n"


def device_run(
  out: str, *, dry_run: bool = False, iters: int = 5, log=print
) -> list[dict[str, Any]]:
  """Runs every measurement (see the module doc); returns the records."""
  sizes = (64, 128) if dry_run else (1024, 2048, 4096)
  regional, holistic = _configs(dry_run)
  device = rs.device_description()
  budget = rs.memory_budget_bytes(0.0)
  records: list[dict[str, Any]] = []
  t_start = time.perf_counter()

  def add(record: dict[str, Any]) -> None:
    record["peak_bytes"] = _peak_bytes()
    record["device"] = device
    records.append(record)
    os.makedirs(out, exist_ok=True)
    atomic.write_json(os.path.join(out, "device_run.json"), records)
    atomic.write_text(os.path.join(out, "device_run.md"), markdown(records, device))
    rate = record["per_second"]
    log(
      f"[{time.perf_counter() - t_start:5.0f} s] {record['what']} "
      f"{record['model']} @ {record['resolution']}: {record['status']}"
      + ("" if rate is None else f", {rate:.1f} {record['unit']}")
    )

  for res in sizes:  # regional training
    config = regional(res)
    timing = benchmark.device_steps(config, iters)
    batch = int(config.batch_size)
    measured = dict(model="regional_patches", resolution=res, batch=batch, status="ok")
    add(
      dict(
        measured,
        what="train",
        per_second=timing["train_images_per_second"],
        unit="img/s",
        step_ms=timing["train_step_ms"],
      )
    )
    if res == sizes[-1]:  # inference at the largest size: faces/s
      add(
        dict(
          measured,
          what="infer",
          per_second=timing["infer_images_per_second"],
          unit="faces/s",
        )
      )
  for res in sorted(sizes, reverse=True):  # holistic: the largest that fits
    config = holistic(res)
    mem = rs.train_memory(config)
    need = mem["train_temp_bytes"] + mem["train_argument_bytes"]
    record = dict(
      what="train",
      model="holistic_full",
      resolution=res,
      batch=int(config.batch_size),
      required_bytes=int(need),
      per_second=None,
      unit="img/s",
    )
    if need > budget:
      add(dict(record, status="does_not_fit"))
      continue
    timing = benchmark.device_steps(config, iters)
    add(dict(record, status="ok", per_second=timing["train_images_per_second"]))
    break
  log(f"device run done in {time.perf_counter() - t_start:.0f} s: {out}")
  return records


def main(argv) -> None:
  from absl import flags  # noqa: PLC0415

  del argv
  rs.quiet_logging()
  f = flags.FLAGS
  if f.dry_run and not f.out:
    raise SystemExit("--dry_run needs --out (the committed results are real runs)")
  device_run(
    f.out or os.path.join(rs.REPO, "experiments", "results"),
    dry_run=f.dry_run,
    iters=f.iters,
  )


if __name__ == "__main__":
  host_memory.reexec_with_huge_pages()  # first: see hrface_jax/host_memory.py
  from absl import app, flags

  flags.DEFINE_bool("dry_run", False, "Tiny sizes and nets (CPU): checks the script.")
  flags.DEFINE_string("out", None, "Results folder (default experiments/results).")
  flags.DEFINE_integer("iters", 5, "Timed steps per measurement (after one warm-up).")
  app.run(main)
