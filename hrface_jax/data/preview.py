r"""Contact sheet of synthetic faces with their landmarks.

  python -m hrface_jax.data.preview --resolution=1024 --num=8 --out=/tmp/prev

Renders faces ``seed .. seed+num-1`` at full resolution, draws the landmarks
(rings: not visible) at that resolution and writes
``OUT/synth_preview_r{resolution}.png`` with tiles of at most 512 pixels.
"""

from __future__ import annotations

import os
import sys
import time

from absl import app, flags

from hrface_jax import viz
from hrface_jax.data import synth

_RESOLUTION = flags.DEFINE_integer("resolution", 1024, "Rendered image side, pixels.")
_NUM = flags.DEFINE_integer("num", 8, "Number of faces.")
_SEED = flags.DEFINE_integer("seed", 0, "First face seed.")
_OUT = flags.DEFINE_string("out", None, "Output directory.", required=True)
_NCOLS = flags.DEFINE_integer("ncols", 4, "Tiles per row.")
_TILE = flags.DEFINE_integer("tile", 512, "Tile size (at most 512).")


def make_preview(
  resolution: int,
  num: int,
  seed: int,
  out_dir: str,
  ncols: int = 4,
  tile: int = 512,
  log=print,
) -> str:
  """Renders the sheet and returns its path."""
  if num < 1:
    raise ValueError(f"--num must be >= 1, got {num}")
  if seed < 0:
    raise ValueError(f"--seed must be >= 0, got {seed}")
  tile = min(tile, 512, resolution)
  tiles, labels = [], []
  t0 = time.perf_counter()
  for i in range(num):
    s = seed + i
    face = synth.render_face(s, resolution)
    img = viz.draw_landmarks(face["image"], face["landmarks"], visible=face["visible"])
    tiles.append(img)
    yaw, pitch, roll = face["pose"]
    labels.append(f"seed {s}  yaw {yaw:+.0f} pitch {pitch:+.0f} roll {roll:+.0f}")
    log(f"[{i + 1}/{num}] seed {s} rendered ({time.perf_counter() - t0:.1f} s elapsed)")
  sheet = viz.contact_sheet(tiles, ncols, tile, labels)
  path = os.path.join(out_dir, f"synth_preview_r{resolution}.png")
  return viz.save_png(path, sheet)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  path = make_preview(
    _RESOLUTION.value,
    _NUM.value,
    _SEED.value,
    _OUT.value,
    _NCOLS.value,
    _TILE.value,
    log=lambda m: print(m, file=sys.stderr, flush=True),
  )
  print(path)


if __name__ == "__main__":
  app.run(main)
