r"""Facial landmarks for image files.

    python -m hrface_jax.predict --checkpoint=PATH IMAGE... --out=DIR \
        [--bbox=x0,y0,x1,y1 | --whole_image]

For each image writes ``STEM.json`` (every face: box, landmarks in original
image pixels, per-landmark confidence), ``STEM.pts`` (iBUG format, 1-based,
the largest face) and ``STEM_landmarks.png`` (overlay). A file that fails
(missing, not an image, truncated, no face found) is reported and skipped;
the exit code is 1 if any failed.
"""

from __future__ import annotations

import os
import sys
import time

import numpy as np
from absl import app, flags

from hrface_jax import evaluation, image_io, viz
from hrface_jax.data import formats
from hrface_jax.predictor import Predictor

FLAGS = flags.FLAGS
flags.DEFINE_string("checkpoint", None, "Checkpoint step folder or training workdir.")
flags.DEFINE_string("out", None, "Output folder.")
flags.DEFINE_list(
  "bbox", None, "Face box x0,y0,x1,y1 in image pixels (skips detection)."
)
flags.DEFINE_bool("whole_image", False, "Treat the whole image as one face.")


def _parse_bbox(values: list[str] | None) -> np.ndarray | None:
  if values is None:
    return None
  try:
    box = np.array([float(v) for v in values], np.float32)
  except ValueError:
    raise ValueError(f"--bbox={','.join(values)}: expected four numbers") from None
  if box.shape != (4,) or not (box[2] > box[0] and box[3] > box[1]):
    raise ValueError(
      f"--bbox={','.join(values)}: expected x0,y0,x1,y1 with x1>x0, y1>y0"
    )
  return box[None]


def predict_file(predictor: Predictor, path: str, out: str, boxes, whole_image: bool):
  image = image_io.load_image(path)
  t0 = time.perf_counter()
  faces = predictor(image, boxes, whole_image=whole_image)
  seconds = time.perf_counter() - t0
  if not faces:
    raise ValueError(
      f"{path}: no face found (give --bbox=x0,y0,x1,y1 or --whole_image)"
    )
  stem = os.path.splitext(os.path.basename(path))[0]
  h, w = image.shape[:2]
  largest = max(faces, key=lambda f: (f.box[2] - f.box[0]) * (f.box[3] - f.box[1]))
  evaluation.write_json(
    os.path.join(out, f"{stem}.json"),
    {
      "image": os.path.abspath(path),
      "width": w,
      "height": h,
      "faces": [
        {
          "box": f.box.round(2).tolist(),
          "landmarks": f.landmarks.round(3).tolist(),
          "confidence": f.confidence.round(4).tolist(),
        }
        for f in faces
      ],
    },
  )
  formats.write_pts(os.path.join(out, f"{stem}.pts"), largest.landmarks + 1.0)
  overlay = image
  for f in faces:
    overlay = viz.draw_landmarks(overlay, f.landmarks)
  viz.save_png(os.path.join(out, f"{stem}_landmarks.png"), overlay)
  return len(faces), seconds


def main(argv):
  images = argv[1:]
  if not images:
    raise app.UsageError("give one or more IMAGE paths")
  if FLAGS.checkpoint is None or FLAGS.out is None:
    raise app.UsageError("--checkpoint and --out are required")
  try:
    boxes = _parse_bbox(FLAGS.bbox)
    predictor = Predictor.from_checkpoint(FLAGS.checkpoint)
  except (ValueError, FileNotFoundError) as e:
    print(f"hrface_jax.predict: error: {e}", file=sys.stderr)
    sys.exit(2)
  os.makedirs(FLAGS.out, exist_ok=True)
  failed = 0
  for path in images:
    try:
      n, seconds = predict_file(predictor, path, FLAGS.out, boxes, FLAGS.whole_image)
      print(f"{path}: {n} face(s), {seconds * 1000:.0f} ms")
    except (ValueError, OSError) as e:
      failed += 1
      print(f"{path}: FAILED: {e}", file=sys.stderr)
  print(f"{len(images) - failed} of {len(images)} images done; results in {FLAGS.out}")
  sys.exit(1 if failed else 0)


if __name__ == "__main__":
  app.run(main)
