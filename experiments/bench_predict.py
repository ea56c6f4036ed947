r"""Prediction latency per face at 1080p and 4K (compute, not accuracy).

    python experiments/bench_predict.py [--checkpoint=PATH] [--config=quickstart]
        [--resolution=N] [--repeats=10] [--json=out.json]

Without ``--checkpoint`` a model with the chosen config's architecture
(configs/quickstart.py or configs/regional.py) is trained for 2 steps on a
tiny synthetic set in a temporary folder: the weights only need the right
shapes. A synthetic face is pasted into a 1920x1080 and a 3840x2160 frame
(face side ~half the frame height) and saved as JPEG. After one warm-up call
(compilation), each case is timed ``--repeats`` times:

* ``predict``: ``predictor(image, box)`` on the decoded array (warp to the
  network input + model + mapping back), no decode;
* ``decode+predict``: ``image_io.load_image(jpeg)`` then the same call;
* ``predict_path``: ``predictor.predict_path(jpeg, box)``, which decodes the
  JPEG only as finely as the model needs (DCT scaling);
* ``detect``: the Haar face detector alone on the decoded frame;
* ``batch``: ``predictor.predict_batch`` on ``--batch_faces`` copies of the
  1080p frame (one face each) in one call (model batches of
  ``Predictor.default_batch_size``), per face, against the same faces one
  call each.

Prints medians in ms per face; the machine's CPU count is printed too.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

import numpy as np
from PIL import Image

from hrface_jax import atomic, host_memory, image_io
from hrface_jax.data import synth
from hrface_jax.inference import face_detect
from hrface_jax.inference.predictor import Predictor

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def train_briefly(config_name: str, workdir: str, resolution: int = 0) -> str:
  """2 training steps of ``configs/<config_name>.py`` on 8 synthetic faces."""
  import importlib.util

  from hrface_jax import train

  spec = importlib.util.spec_from_file_location(
    "bench_config", os.path.join(REPO, "configs", f"{config_name}.py")
  )
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  config = module.get_config()
  if resolution:
    config.resolution = resolution
  config.data_dir = os.path.join(workdir, "data")
  config.synth_train_size = 8
  config.synth_test_size = 4
  config.batch_size = 4
  config.total_steps = 2
  config.stages = (("joint", 1.0),)
  config.optimizer.warmup_steps = 1
  config.log_every_steps = 1
  config.eval_every_steps = 2
  config.checkpoint_every_steps = 2
  config.augment.enabled = False
  run = os.path.join(workdir, "run")
  train.train_and_evaluate(config, run)
  return run


def frame_with_face(width: int, height: int, seed: int = 3):
  """(uint8 frame, face box): a synthetic face rendered at half the height."""
  side = height // 2
  face = synth.render_face(seed, side)
  frame = np.full((height, width, 3), 110, np.uint8)
  x, y = (width - side) // 2, (height - side) // 2
  frame[y : y + side, x : x + side] = face["image"]
  lm = face["landmarks"] + np.array([x, y], np.float32)
  return frame, np.concatenate([lm.min(0), lm.max(0)])


def _median_ms(fn, repeats: int) -> float:
  times = []
  for _ in range(repeats):
    t0 = time.perf_counter()
    fn()
    times.append(time.perf_counter() - t0)
  return 1000 * statistics.median(times)


def batch_record(predictor: Predictor, num_faces: int, repeats: int) -> dict:
  """Per-face ms of ``predict_batch`` on ``num_faces`` 1080p frames vs one
  ``predictor(frame, box)`` call per frame (both after warm-up)."""
  frame, box = frame_with_face(1920, 1080)
  frames, boxes = [frame] * num_faces, [box[None]] * num_faces
  predictor.predict_batch(frames, boxes)  # compiles
  batched = _median_ms(lambda: predictor.predict_batch(frames, boxes), repeats)
  single = _median_ms(
    lambda: [predictor(f, b) for f, b in zip(frames, boxes, strict=True)], repeats
  )
  return {
    "num_faces": num_faces,
    "batch_size": predictor.default_batch_size,
    "batch_ms_per_face": batched / num_faces,
    "single_ms_per_face": single / num_faces,
    "speedup": single / batched,
  }


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--checkpoint", default=None)
  parser.add_argument("--config", default="quickstart")
  parser.add_argument(
    "--resolution", type=int, default=0, help="Model resolution (default: config's)."
  )
  parser.add_argument("--repeats", type=int, default=10)
  parser.add_argument(
    "--batch_faces", type=int, default=64, help="Faces per predict_batch call."
  )
  parser.add_argument("--json", default=None)
  args = parser.parse_args()

  with tempfile.TemporaryDirectory() as tmp:
    checkpoint = args.checkpoint or train_briefly(args.config, tmp, args.resolution)
    predictor = Predictor.from_checkpoint(checkpoint)
    print(
      f"model: {predictor.config.model_name} at {predictor.resolution}px "
      f"({checkpoint if args.checkpoint else args.config + ', 2 steps'}); "
      f"{os.cpu_count()} CPU(s)"
    )
    records = []
    for name, (w, h) in (("1080p", (1920, 1080)), ("4K", (3840, 2160))):
      frame, box = frame_with_face(w, h)
      path = os.path.join(tmp, f"{name}.jpg")
      Image.fromarray(frame).save(path, quality=92)
      boxes = box[None]
      predictor(frame, boxes)  # warm-up: compiles the batch-1 bucket
      compiled = predictor.num_compilations
      record = {
        "frame": name,
        "width": w,
        "height": h,
        "face_box_side": float((box[2:] - box[:2]).max()),
        "predict_ms": _median_ms(
          lambda f=frame, b=boxes: predictor(f, b), args.repeats
        ),
        "decode_predict_ms": _median_ms(
          lambda p=path, b=boxes: predictor(image_io.load_image(p), b), args.repeats
        ),
        "decode_ms": _median_ms(lambda p=path: image_io.load_image(p), args.repeats),
        # The JPEG decoded only as finely as the model needs (DCT scaling).
        "predict_path_ms": _median_ms(
          lambda p=path, b=boxes: predictor.predict_path(p, b), args.repeats
        ),
      }
      if face_detect.detector_available():
        record["detect_ms"] = _median_ms(
          lambda f=frame: face_detect.detect_faces(f), args.repeats
        )
      assert predictor.num_compilations == compiled, "recompiled after warm-up"
      records.append(record)
      print(
        f"{name:6s} {w}x{h}: predict {record['predict_ms']:7.1f} ms/face, "
        f"decode+predict {record['decode_predict_ms']:7.1f} ms/face "
        f"(decode {record['decode_ms']:.1f} ms), "
        f"predict_path {record['predict_path_ms']:7.1f} ms/face ("
        + (f"Haar detect {record['detect_ms']:.1f} ms" if "detect_ms" in record else "")
        + ")"
      )
    batch = batch_record(predictor, args.batch_faces, max(1, args.repeats // 3))
    print(
      f"batch of {args.batch_faces} faces (1080p frames, decoded): "
      f"{batch['batch_ms_per_face']:.1f} ms/face in one predict_batch call, "
      f"{batch['single_ms_per_face']:.1f} ms/face one by one "
      f"({batch['speedup']:.1f}x)"
    )
    if args.json:
      atomic.write_json(
        args.json,
        {
          "model": predictor.config.model_name,
          "resolution": predictor.resolution,
          "config": args.config,
          "cpus": os.cpu_count(),
          "records": records,
          "batch": batch,
        },
      )


if __name__ == "__main__":
  host_memory.reexec_with_huge_pages()  # first: see hrface_jax/host_memory.py
  main()
