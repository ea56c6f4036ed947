r"""Facial landmarks for image files.

    python -m hrface_jax.predict --checkpoint=PATH IMAGE... --out=DIR \
        [--bbox=x0,y0,x1,y1[,x0,y0,x1,y1...] | --whole_image]

Faces are found by OpenCV's Haar cascade unless boxes are given (``--bbox``,
the same for every image; several boxes are several faces) or
``--whole_image`` treats each image as one face. For each image writes
``STEM.json`` (every face: box, 68 landmarks in original image pixels,
per-landmark confidence), ``STEM.pts`` (iBUG format, 1-based, the largest
face) and ``STEM_landmarks.png`` (overlay). A file that fails (missing, not
an image, truncated, no face found, box outside the image) is reported and
skipped; the exit code is 1 if any failed.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Sequence

import numpy as np
from absl import app, flags

from hrface_jax import atomic, host_memory, image_io, viz
from hrface_jax.cli import private_flags_parser, quiet_logging
from hrface_jax.data import formats
from hrface_jax.inference import face_detect
from hrface_jax.inference.predictor import Face, Predictor

# This CLI's own flag set (hrface_jax.evaluate defines --checkpoint and --out
# too; both modules are imported together in tests and notebooks).
_FLAGS = flags.FlagValues()
flags.DEFINE_string(
  "checkpoint",
  None,
  "Checkpoint step folder or training workdir.",
  flag_values=_FLAGS,
)
flags.DEFINE_string("out", None, "Output folder.", flag_values=_FLAGS)
flags.DEFINE_list(
  "bbox",
  None,
  "Face box(es) x0,y0,x1,y1 in image pixels (skips detection).",
  flag_values=_FLAGS,
)
flags.DEFINE_bool(
  "whole_image", False, "Treat the whole image as one face.", flag_values=_FLAGS
)


def parse_bbox(values: Sequence[str] | str | None) -> np.ndarray | None:
  """``x0,y0,x1,y1[,...]`` -> float32 [K, 4]; ValueError naming the value."""
  if values is None:
    return None
  if isinstance(values, str):
    values = values.split(",")
  text = ",".join(values)
  try:
    numbers = [float(v) for v in values]
  except ValueError:
    raise ValueError(f"--bbox={text}: expected numbers x0,y0,x1,y1") from None
  if not numbers or len(numbers) % 4:
    raise ValueError(
      f"--bbox={text}: expected 4 numbers per box (x0,y0,x1,y1), got {len(numbers)}"
    )
  boxes = np.array(numbers, np.float32).reshape(-1, 4)
  for b in boxes:
    if not np.isfinite(b).all() or not (b[2] > b[0] and b[3] > b[1]):
      raise ValueError(f"--bbox={text}: expected x0,y0,x1,y1 with x1>x0 and y1>y0")
  return boxes


def largest_face(faces: Sequence[Face]) -> Face:
  return max(faces, key=lambda f: (f.box[2] - f.box[0]) * (f.box[3] - f.box[1]))


def write_outputs(
  path: str, image: np.ndarray, faces: Sequence[Face], out: str, stem: str
) -> None:
  """STEM.json (all faces), STEM.pts (largest, 1-based), STEM_landmarks.png."""
  h, w = image.shape[:2]
  atomic.write_json(
    os.path.join(out, f"{stem}.json"),
    {
      "image": os.path.abspath(path),
      "width": w,
      "height": h,
      "coordinates": "x y in original image pixels, 0-based, pixel centres "
      "at integers (STEM.pts is 1-based)",
      "faces": [
        {
          "box": np.round(f.box.astype(np.float64), 2).tolist(),
          "landmarks": np.round(f.landmarks.astype(np.float64), 3).tolist(),
          "confidence": np.round(f.confidence.astype(np.float64), 4).tolist(),
        }
        for f in faces
      ],
    },
    indent=1,
  )
  # iBUG .pts files are 1-based (MATLAB convention).
  formats.write_pts(
    os.path.join(out, f"{stem}.pts"), largest_face(faces).landmarks + 1.0
  )
  overlay = image
  for f in faces:
    overlay = viz.draw_landmarks(overlay, f.landmarks)
  viz.save_png(os.path.join(out, f"{stem}_landmarks.png"), overlay)


def predict_file(
  predictor: Predictor,
  path: str,
  out: str,
  boxes: np.ndarray | None = None,
  whole_image: bool = False,
  stem: str | None = None,
) -> tuple[int, float]:
  """Predicts and writes one image's outputs; (number of faces, seconds).

  Raises ValueError (incl. image_io.ImageLoadError) naming ``path``.
  """
  image = image_io.load_image(path)
  t0 = time.perf_counter()
  try:
    faces = predictor(image, boxes, whole_image=whole_image)
  except ValueError as e:
    raise ValueError(f"{path}: {e}") from None
  seconds = time.perf_counter() - t0
  if not faces:
    raise ValueError(
      f"{path}: no face found (give --bbox=x0,y0,x1,y1 or --whole_image)"
    )
  if stem is None:
    stem = os.path.splitext(os.path.basename(path))[0]
  write_outputs(path, image, faces, out, stem)
  return len(faces), seconds


def predict_files(
  predictor: Predictor,
  paths: Sequence[str],
  out: str,
  boxes: np.ndarray | None = None,
  whole_image: bool = False,
) -> list[str]:
  """Processes every file, reporting failures; returns the failed paths."""
  os.makedirs(out, exist_ok=True)
  failed, stems = [], set()
  for path in paths:
    stem = os.path.splitext(os.path.basename(path))[0]
    try:
      if stem in stems:
        raise ValueError(
          f"{path}: another input already wrote {stem}.json to {out}; "
          "rename it or run it separately"
        )
      stems.add(stem)
      n, seconds = predict_file(predictor, path, out, boxes, whole_image, stem)
      print(f"{path}: {n} face(s), {seconds * 1000:.0f} ms")
    except (ValueError, OSError) as e:
      failed.append(path)
      message = str(e) if path in str(e) else f"{path}: {e}"
      print(f"FAILED {message}", file=sys.stderr)
  return failed


def main(argv: list[str]) -> None:
  quiet_logging()
  images = argv[1:]
  if not images:
    raise app.UsageError("give one or more IMAGE paths")
  if _FLAGS.checkpoint is None or _FLAGS.out is None:
    raise app.UsageError("--checkpoint and --out are required")
  if _FLAGS.bbox is not None and _FLAGS.whole_image:
    raise app.UsageError("give --bbox or --whole_image, not both")
  try:
    boxes = parse_bbox(_FLAGS.bbox)
    if boxes is None and not _FLAGS.whole_image:
      face_detect.load_cascade()  # fail now, not once per image
    predictor = Predictor.from_checkpoint(_FLAGS.checkpoint)
  except (ValueError, FileNotFoundError, face_detect.FaceDetectorUnavailableError) as e:
    print(f"hrface_jax.predict: error: {e}", file=sys.stderr)
    sys.exit(1)
  failed = predict_files(predictor, images, _FLAGS.out, boxes, _FLAGS.whole_image)
  print(
    f"{len(images) - len(failed)} of {len(images)} images done; results in {_FLAGS.out}"
  )
  sys.exit(1 if failed else 0)


_parse_flags = private_flags_parser(_FLAGS, "hrface_jax.predict", __doc__)


if __name__ == "__main__":
  host_memory.reexec_with_huge_pages()  # first: see hrface_jax/host_memory.py
  app.run(main, flags_parser=_parse_flags)
