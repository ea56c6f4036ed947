"""TFDS builders for every dataset (array_record files, no TensorFlow needed).

Common features of every dataset:

* ``image_png``: the encoded image (RGB; decode with
  :func:`hrface_jax.image_io.decode_image`): PNG bytes, except for
  ``hrface_synth``, whose records hold no pixels (empty bytes; see below).
  ``tfds.features.Image`` needs TensorFlow to encode, so images are stored as
  an opaque bytes tensor.
* ``image_shape``: int32 [3] (H, W, 3).
* ``landmarks``: float32 [N, 2] (x, y), 0-based pixels, pixel centres at
  integer coordinates. Conversions happen here, once: iBUG ``.pts`` are
  1-based (1 is subtracted); WFLW and the synthetic renderer are already
  0-based and are stored unchanged.
* ``face_box``: float32 [4] x0, y0, x1, y1 in the same pixel coordinates.
* ``id``: a string naming the example (seed or relative image path).

Datasets:

* ``hrface_synth``: rendered by :func:`hrface_jax.data.synth.render_face`.
  Configs ``r256`` ... ``r4096``; train seeds ``0..n-1``, test seeds
  ``TEST_SEED_OFFSET + 0..m-1`` (disjoint from train, identical at every
  resolution so a resolution sweep compares the same faces). Extra features:
  ``visible`` bool [68], ``pose`` float32 [3] (as returned by the renderer)
  and ``frame_offset`` int64: the rendered frames are raw pixels in a frame
  file per split beside the records (:mod:`hrface_jax.data.frames`), where a
  4096^2 one is a memory-mapped view instead of ~0.4 s of reading, zstd and
  deserialising out of a record (a 4096^2 PNG: ~0.3 s to decode, ~1.2 s to
  encode, and only a third smaller on the renderer's noisy skin).
  :func:`hrface_jax.data.prepare.get_data_source` adds each frame to its
  record as ``image``.
* ``ibug_pts``: any folder tree of images with same-stem ``.pts`` files
  (300-W, Menpo, Helen, LFPW, AFW, Multi-PIE). ``face_box`` is the landmarks'
  bounding box (the files carry no box). See :class:`IbugPts` for splits.
* ``wflw``: WFLW's published layout. ``face_box`` is WFLW's rectangle.
  Extra feature ``attributes`` int32 [6] (pose, expression, illumination,
  make-up, occlusion, blur flags) for WFLW's subset evaluation.

Bad input (missing or undecodable image, malformed ``.pts``, wrong point
count, NaN or out-of-range landmarks, an image whose size is not the
dataset's resolution) raises ``ValueError`` naming the file and the problem, and
:func:`build` leaves no partial dataset behind; with ``skip_bad=True`` such
examples are skipped and listed in ``builder.skipped`` and in the dataset's
metadata (``skipped.json``).
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import fcntl
import functools
import hashlib
import importlib.util
import logging
import multiprocessing
import os
import shutil
import tempfile
import types
from collections.abc import Callable, Iterator, Sequence

import cv2
import numpy as np
import tensorflow_datasets as tfds

from hrface_jax import markup as markup_lib
from hrface_jax.data import formats, frames

# Re-exported: the input pipeline decodes the stored PNGs with it.
from hrface_jax.image_io import decode_image as decode_image

VERSION = tfds.core.Version("1.0.0")
# 1.1.0: frames in frame files beside the records (1.0.0: binary PPM inside).
SYNTH_VERSION = tfds.core.Version("1.1.0")
TEST_SEED_OFFSET = 1_000_000  # synth test seeds start here (train: 0, 1, ...)
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")
DEFAULT_TEST_DIRS = ("test", "testset", "test_set", "testing")
HOLDOUT_FRACTION = 0.1
# Annotations of faces cut by the frame have some points outside the image,
# but never this far: further out is a wrong scale, a swapped axis or garbage.
MAX_OUTSIDE_FRACTION = 0.5

# hrface_synth standard sizes (train, test). Render time grows from ~0.05 s
# (256) to ~2 s (4096) per face and a 4096 PNG is 10-25 MB, so the large
# resolutions get fewer faces (4096: ~400 faces, ~4-10 GB).
SYNTH_SIZES = {
  256: (2000, 200),
  512: (2000, 200),
  1024: (1000, 200),
  2048: (500, 100),
  4096: (300, 100),
}


class BadExampleError(ValueError):
  """An input example that cannot be used (the message names the file)."""


def encode_png(image_rgb: np.ndarray) -> bytes:
  """uint8 [H, W, 3] RGB -> PNG bytes."""
  ok, buf = cv2.imencode(".png", cv2.cvtColor(image_rgb, cv2.COLOR_RGB2BGR))
  if not ok:
    raise ValueError(f"PNG encoding failed for an image of shape {image_rgb.shape}")
  return buf.tobytes()


def _read_image(path: str) -> np.ndarray:
  """Reads an image file as uint8 RGB [H, W, 3] or raises BadExampleError."""
  if not os.path.isfile(path):
    raise BadExampleError(f"{path}: image file is missing")
  try:
    with open(path, "rb") as f:
      data = f.read()
  except OSError as e:
    raise BadExampleError(f"{path}: image is unreadable ({e})") from None
  # Annotations refer to the stored pixel grid: ignore EXIF orientation.
  image = cv2.imdecode(
    np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION
  )
  if image is None:
    raise BadExampleError(f"{path}: image does not decode ({len(data)} bytes)")
  return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def _landmark_box(landmarks: np.ndarray) -> np.ndarray:
  return np.concatenate([landmarks.min(0), landmarks.max(0)]).astype(np.float32)


def check_example(
  image: np.ndarray,
  landmarks: np.ndarray,
  where: str,
  resolution: int | None = None,
) -> None:
  """Raises BadExampleError (naming ``where``) for landmarks that are not
  finite or lie far outside the image, or an image that is not
  ``resolution`` pixels square when the dataset has one resolution."""
  h, w = image.shape[:2]
  if resolution is not None and image.shape != (resolution, resolution, 3):
    raise BadExampleError(
      f"{where}: image is {h}x{w}, but the dataset's resolution is"
      f" {resolution}x{resolution}"
    )
  landmarks = np.asarray(landmarks, np.float64)
  if not np.isfinite(landmarks).all():
    raise BadExampleError(f"{where}: landmarks are not finite (NaN or inf)")
  size = np.array([w, h], np.float64)
  low, high = -MAX_OUTSIDE_FRACTION * size, (1 + MAX_OUTSIDE_FRACTION) * size
  outside = np.any((landmarks < low) | (landmarks > high), axis=1)
  if outside.any():
    k = int(np.argmax(outside))
    raise BadExampleError(
      f"{where}: landmark {k} at ({landmarks[k, 0]:g}, {landmarks[k, 1]:g}) is"
      f" far outside the {w}x{h} image ({int(outside.sum())} such points)"
    )


def _example(
  image: np.ndarray,
  landmarks: np.ndarray,
  face_box: np.ndarray,
  id_: str,
  encode: Callable[[np.ndarray], bytes] = encode_png,
) -> dict:
  return {
    "image_png": encode(image),
    "image_shape": np.asarray(image.shape, np.int32),
    "landmarks": np.asarray(landmarks, np.float32),
    "face_box": np.asarray(face_box, np.float32),
    "id": id_,
  }


def _features(num_points: int | None, **extra) -> tfds.features.FeaturesDict:
  return tfds.features.FeaturesDict(
    {
      "image_png": tfds.features.Tensor(shape=(), dtype=np.object_),
      "image_shape": tfds.features.Tensor(shape=(3,), dtype=np.int32),
      "landmarks": tfds.features.Tensor(shape=(num_points, 2), dtype=np.float32),
      "face_box": tfds.features.Tensor(shape=(4,), dtype=np.float32),
      "id": tfds.features.Text(),
      **extra,
    }
  )


class _SkippingBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
  """Shared bad-example handling: raise (default) or skip and count."""

  # TFDS looks for a checksums file next to the builder's code through
  # importlib_resources, which TFDS 4.9.10 does not install; these builders
  # download nothing, so there are no checksums to look up.
  url_infos = None

  def __init__(self, *, skip_bad: bool = False, **kwargs):
    kwargs.setdefault("file_format", "array_record")
    super().__init__(**kwargs)
    self.skip_bad = skip_bad
    self.skipped: dict[str, list[str]] = collections.defaultdict(list)

  def _bad(self, split: str, error: Exception) -> None:
    if not self.skip_bad:
      raise error
    self.skipped[split].append(str(error))

  def _record_skipped(self) -> None:
    # Runs after the last generator; the metadata is written with the info.
    self.info.metadata["skipped"] = {k: list(v) for k, v in self.skipped.items()}

  def _generate_all(self, gens: dict[str, Iterator]) -> dict[str, Iterator]:
    """Wraps split generators so skipped counts land in the metadata."""

    def wrap(split, gen):
      n = 0
      for n, example in enumerate(gen, start=1):  # noqa: B007
        yield example
      if n == 0:  # TFDS cannot write an empty split: say why it is empty.
        skipped = self.skipped.get(split, [])
        raise ValueError(
          f"split {split!r} has no usable examples ({len(skipped)} skipped"
          + (f"; first: {skipped[0]}" if skipped else "")
          + ")"
        )
      self._record_skipped()

    return {k: wrap(k, g) for k, g in gens.items()}


# --------------------------------------------------------------------------
# hrface_synth


@dataclasses.dataclass(eq=False)
class HrfaceSynthConfig(tfds.core.BuilderConfig):
  resolution: int = 256
  train_size: int = 0
  test_size: int = 0


def synth_config(
  resolution: int, train_size: int = 0, test_size: int = 0
) -> HrfaceSynthConfig | str:
  """The config for ``resolution`` (its name, for a standard one).

  Sizes 0 mean the standard sizes of :data:`SYNTH_SIZES`; other sizes, or a
  resolution outside it (which then needs both sizes), give a separately
  named variant ``r{res}_t{train}_e{test}``, so small runs never shadow the
  standard datasets.
  """
  std_train, std_test = SYNTH_SIZES.get(resolution, (0, 0))
  train_size = train_size or std_train
  test_size = test_size or std_test
  if resolution < 16 or train_size <= 0 or test_size <= 0:
    raise ValueError(
      f"hrface_synth: resolution {resolution} needs explicit train/test sizes"
      f" (standard resolutions: {sorted(SYNTH_SIZES)}) and resolution >= 16;"
      f" got train {train_size}, test {test_size}"
    )
  if resolution in SYNTH_SIZES and (train_size, test_size) == (std_train, std_test):
    return f"r{resolution}"
  return HrfaceSynthConfig(
    name=f"r{resolution}_t{train_size}_e{test_size}",
    description=f"{resolution}^2 faces, {train_size} train / {test_size} test",
    resolution=resolution,
    train_size=train_size,
    test_size=test_size,
  )


def _render(seed: int, resolution: int) -> dict:
  from hrface_jax.data import synth  # pylint: disable=g-import-not-at-top

  return synth.render_face(seed, resolution)


class HrfaceSynth(_SkippingBuilder):
  """Synthetic high-resolution faces, a pure function of (seed, resolution)."""

  VERSION = SYNTH_VERSION
  RELEASE_NOTES = {
    "1.1.0": "Frames as raw pixels in frames-{split}.u8 beside the records.",
    "1.0.0": "Frames as binary PPM inside the records.",
  }
  BUILDER_CONFIGS = [
    HrfaceSynthConfig(
      name=f"r{res}",
      description=f"{res}^2 faces, {tr} train / {te} test",
      resolution=res,
      train_size=tr,
      test_size=te,
    )
    for res, (tr, te) in SYNTH_SIZES.items()
  ]
  DEFAULT_CONFIG_NAME = "r256"

  def __init__(self, *, num_workers: int | None = None, **kwargs):
    super().__init__(**kwargs)
    # Rendering is CPU-bound numpy: spread it over processes when big.
    self.num_workers = num_workers if num_workers is not None else os.cpu_count()

  def _info(self) -> tfds.core.DatasetInfo:
    return tfds.core.DatasetInfo(
      builder=self,
      description="Synthetic faces rendered by hrface_jax.data.synth.",
      features=_features(
        68,
        visible=tfds.features.Tensor(shape=(68,), dtype=np.bool_),
        pose=tfds.features.Tensor(shape=(3,), dtype=np.float32),
        frame_offset=tfds.features.Tensor(shape=(), dtype=np.int64),
      ),
      metadata=tfds.core.MetadataDict(),
    )

  def _split_generators(self, dl_manager):
    del dl_manager
    c = self.builder_config
    return self._generate_all(
      {
        "train": self._generate_examples("train", range(c.train_size)),
        "test": self._generate_examples(
          "test", range(TEST_SEED_OFFSET, TEST_SEED_OFFSET + c.test_size)
        ),
      }
    )

  def _generate_examples(self, split: str, seeds: Sequence[int]):
    res = self.builder_config.resolution
    render = functools.partial(_render, resolution=res)
    workers = min(self.num_workers or 1, len(seeds))
    if workers <= 1 or len(seeds) < 8:
      faces = map(render, seeds)
      pool = None
    else:
      # spawn: forking a process that may have JAX's threads is unsafe.
      pool = multiprocessing.get_context("spawn").Pool(workers)
      faces = pool.imap(render, seeds, chunksize=1)
    # self.data_dir is TFDS's temporary folder while it prepares: the frame
    # file moves into place with the records, or is removed with them.
    path = frames.frame_path(self.data_dir, split)
    try:
      with frames.FrameWriter(path) as frame_file:
        for seed, face in zip(seeds, faces, strict=True):
          try:
            check_example(
              face["image"], face["landmarks"], f"hrface_synth seed {seed}", res
            )
          except BadExampleError as e:
            self._bad(split, e)
            continue
          yield (
            seed,
            {
              **_example(
                face["image"],
                face["landmarks"],
                face["face_box"],
                f"synth_{seed}",
                encode=lambda _: b"",
              ),
              "visible": np.asarray(face["visible"], np.bool_),
              "pose": np.asarray(face["pose"], np.float32),
              "frame_offset": np.int64(frame_file.append(face["image"])),
            },
          )
    finally:
      if pool is not None:
        pool.terminate()


# --------------------------------------------------------------------------
# ibug_pts


@dataclasses.dataclass(eq=False)
class IbugPtsConfig(tfds.core.BuilderConfig):
  test_dirs: tuple[str, ...] = DEFAULT_TEST_DIRS


def _known_counts() -> dict[int, str]:
  return {m.num_landmarks: name for name, m in markup_lib.MARKUPS.items()}


def _holdout(rel_path: str) -> bool:
  digest = hashlib.sha1(rel_path.encode("utf-8")).digest()
  return int.from_bytes(digest[:8], "big") / 2**64 < HOLDOUT_FRACTION


def assign_ibug_splits(
  rel_paths: Sequence[str], test_dirs: Sequence[str] = DEFAULT_TEST_DIRS
) -> dict[str, str]:
  """Relative ``.pts`` path -> "train" | "test".

  A file whose path (relative to the manual dir) has a folder named one of
  ``test_dirs`` (case-insensitive) is test, everything else train. If no file
  is in such a folder, a deterministic hash of the relative path holds out
  ~10% as test (stable when files are added or removed).
  """
  names = {d.lower() for d in test_dirs}
  in_test = {
    p: any(part.lower() in names for part in p.replace("\\", "/").split("/")[:-1])
    for p in rel_paths
  }
  if not any(in_test.values()):
    in_test = {p: _holdout(p) for p in rel_paths}
  return {p: "test" if t else "train" for p, t in in_test.items()}


def find_ibug_pairs(manual_dir: str) -> list[tuple[str, str | None]]:
  """(pts path, image path or None) for every ``.pts`` under ``manual_dir``."""
  pairs = []
  for root, dirs, files in os.walk(manual_dir):
    dirs.sort()
    by_stem = collections.defaultdict(list)
    for f in files:
      stem, ext = os.path.splitext(f)
      by_stem[stem].append((ext.lower(), f))
    for stem in sorted(by_stem):
      entries = dict(by_stem[stem])
      if ".pts" not in entries:
        continue
      image = next((entries[e] for e in IMAGE_EXTENSIONS if e in entries), None)
      pairs.append(
        (
          os.path.join(root, entries[".pts"]),
          os.path.join(root, image) if image else None,
        )
      )
  return pairs


class IbugPts(_SkippingBuilder):
  """iBUG ``.pts`` folders (300-W, Menpo, Helen, LFPW, AFW, Multi-PIE).

  ``manual_dir`` is searched recursively for ``.pts`` files; each needs an
  image with the same stem in the same folder (.jpg/.jpeg/.png, any case).

  Splits: see :func:`assign_ibug_splits`. For the 300-W protocol (train =
  helen/trainset + lfpw/trainset + afw, test = helen/testset + lfpw/testset +
  ibug) use ``test_dirs=("testset", "ibug")`` (prepare ``--test_dirs``).

  Point count: the most common count among the files; it must be the count of
  a known markup (:data:`hrface_jax.markup.MARKUPS`), and files with another
  count (e.g. Menpo's 39-point profiles among 68-point frontals) are bad
  examples. Coordinates are converted from 1-based to 0-based here.

  Several ``ibug_pts`` datasets can live in one data dir under different
  config names (:func:`ibug_config`).
  """

  VERSION = VERSION
  BUILDER_CONFIGS = [IbugPtsConfig(name="default")]
  MANUAL_DOWNLOAD_INSTRUCTIONS = (
    "Pass --manual_dir=DIR: a folder tree of images with same-stem .pts files."
  )

  def _info(self) -> tfds.core.DatasetInfo:
    return tfds.core.DatasetInfo(
      builder=self,
      description="Faces with iBUG .pts landmarks, converted to 0-based.",
      features=_features(None),
      metadata=tfds.core.MetadataDict(),
    )

  def _split_generators(self, dl_manager):
    manual_dir = os.fspath(dl_manager.manual_dir)
    if not os.path.isdir(manual_dir):
      raise ValueError(f"manual_dir {manual_dir} is not a directory")
    pairs = find_ibug_pairs(manual_dir)
    if not pairs:
      raise ValueError(f"{manual_dir}: no .pts files found")

    # Read all .pts up front (tiny) to fix the point count before writing.
    points, bad = {}, {}
    for pts, _ in pairs:
      try:
        points[pts] = formats.read_pts(pts)
      except ValueError as e:
        bad[pts] = e
    counts = collections.Counter(len(p) for p in points.values())
    if not counts:
      raise ValueError(
        f"{manual_dir}: no readable .pts file; first: {next(iter(bad.values()))}"
      )
    num_points = counts.most_common(1)[0][0]
    known = _known_counts()
    if num_points not in known:
      raise ValueError(
        f"{manual_dir}: the .pts files have {num_points} points, which matches"
        f" no known markup ({', '.join(f'{n}: {c}' for c, n in known.items())})"
      )
    self.info.metadata["num_points"] = num_points
    self.info.metadata["markup"] = known[num_points]

    rel = {pts: os.path.relpath(pts, manual_dir) for pts, _ in pairs}
    splits = assign_ibug_splits(list(rel.values()), self.builder_config.test_dirs)
    by_split = collections.defaultdict(list)
    for pts, image in pairs:
      by_split[splits[rel[pts]]].append((pts, image))
    return self._generate_all(
      {
        split: self._generate_examples(
          split, by_split[split], points, bad, num_points, manual_dir
        )
        for split in ("train", "test")
        if by_split[split]  # e.g. a folder of 3 files may hold out none
      }
    )

  def _generate_examples(self, split, pairs, points, bad, num_points, manual_dir):
    for pts, image_path in pairs:
      key = os.path.relpath(pts, manual_dir)
      try:
        if pts in bad:
          raise BadExampleError(str(bad[pts]))
        lm = points[pts]
        if len(lm) != num_points:
          raise BadExampleError(
            f"{pts}: has {len(lm)} points, expected {num_points} like the"
            " other files of this dataset"
          )
        if image_path is None:
          raise BadExampleError(
            f"{pts}: no image with the same stem"
            f" ({'/'.join(IMAGE_EXTENSIONS)}, any case)"
          )
        image = _read_image(image_path)
        lm = lm - 1.0  # iBUG .pts are 1-based
        check_example(image, lm, pts)
      except BadExampleError as e:
        self._bad(split, e)
        continue
      yield key, _example(image, lm, _landmark_box(lm), key)


def ibug_config(name: str = "default", test_dirs: Sequence[str] | None = None):
  """Config ``name`` for IbugPts (``"default"`` is the registered one)."""
  if name == "default" and test_dirs is None:
    return "default"
  if name == "default":
    raise ValueError("give custom test_dirs a config name other than 'default'")
  return IbugPtsConfig(
    name=name, test_dirs=tuple(test_dirs) if test_dirs else DEFAULT_TEST_DIRS
  )


# --------------------------------------------------------------------------
# wflw

WFLW_ANNOTATIONS = "WFLW_annotations/list_98pt_rect_attr_train_test"


class Wflw(_SkippingBuilder):
  """WFLW (98 points). ``manual_dir`` holds ``WFLW_images/`` and
  ``WFLW_annotations/list_98pt_rect_attr_train_test/list_98pt_rect_attr_{train,test}.txt``.

  WFLW coordinates are floats in the 0-based pixel convention (the
  annotations of the corner-aligned WIDER FACE images; all public WFLW code
  uses them unshifted) and are stored as written.
  """

  VERSION = VERSION
  MANUAL_DOWNLOAD_INSTRUCTIONS = (
    "Pass --manual_dir=DIR containing WFLW_images/ and WFLW_annotations/."
  )

  def _info(self) -> tfds.core.DatasetInfo:
    return tfds.core.DatasetInfo(
      builder=self,
      description="WFLW 98-point landmarks.",
      features=_features(
        formats.WFLW_NUM_POINTS,
        attributes=tfds.features.Tensor(shape=(6,), dtype=np.int32),
      ),
      metadata=tfds.core.MetadataDict(),
    )

  def _split_generators(self, dl_manager):
    manual_dir = os.fspath(dl_manager.manual_dir)
    gens = {}
    for split in ("train", "test"):
      ann = os.path.join(
        manual_dir, WFLW_ANNOTATIONS, f"list_98pt_rect_attr_{split}.txt"
      )
      if not os.path.isfile(ann):
        raise ValueError(f"WFLW annotation file missing: {ann}")
      gens[split] = self._generate_examples(
        split, formats.read_wflw_annotations(ann), manual_dir
      )
    return self._generate_all(gens)

  def _generate_examples(self, split, records, manual_dir):
    seen = collections.Counter()
    for r in records:
      try:
        image_path = os.path.join(manual_dir, "WFLW_images", r.image_path)
        image = _read_image(image_path)
        check_example(image, r.landmarks, f"{image_path} (annotation line {r.line})")
      except BadExampleError as e:
        self._bad(split, e)
        continue
      # An image can hold several annotated faces: one example per line.
      seen[r.image_path] += 1
      key = f"{r.image_path}#{seen[r.image_path]}"
      yield (
        key,
        {
          **_example(image, r.landmarks, r.box, key),
          "attributes": r.attributes,
        },
      )


# --------------------------------------------------------------------------
# Building and opening.


class _NoCustomConfigWarning(logging.Filter):
  def filter(self, record: logging.LogRecord) -> bool:
    return "Using custom data configuration" not in record.getMessage()


# Size variants and named ibug_pts copies are custom configs by design.
logging.getLogger("absl").addFilter(_NoCustomConfigWarning())

BUILDERS = {"hrface_synth": HrfaceSynth, "ibug_pts": IbugPts, "wflw": Wflw}


class _NeverRaised(Exception):
  pass


# TFDS's write-time shuffler keeps up to 1 GB of examples in memory, then
# spills them to bucket files through tf.io.gfile: a 4096^2 split (25 MB per
# PNG) needs TensorFlow there. These are the four calls it makes, on local
# files.
_LOCAL_FILES = types.SimpleNamespace(
  io=types.SimpleNamespace(
    gfile=types.SimpleNamespace(GFile=open, exists=os.path.exists, remove=os.remove)
  ),
  errors=types.SimpleNamespace(ResourceExhaustedError=_NeverRaised),
)


def _spill_without_tensorflow() -> None:
  """Lets TFDS's shuffler spill large splits to disk when TensorFlow is absent."""
  if importlib.util.find_spec("tensorflow") is None:
    from tensorflow_datasets.core import shuffle  # noqa: PLC0415

    shuffle.tf = _LOCAL_FILES


def _remove_failed_build(builder: tfds.core.DatasetBuilder) -> None:
  """Removes what a failed build left (TFDS removes its incomplete dir but
  can leave empty parents and the name dir's default-config marker)."""
  version_dir = os.fspath(builder.data_path)
  if os.path.isdir(version_dir) and not os.path.exists(
    os.path.join(version_dir, "dataset_info.json")
  ):
    shutil.rmtree(version_dir)
  # data_dir/name/config/version: prune upwards while nothing built remains.
  for d in (
    os.path.dirname(version_dir),
    os.path.dirname(os.path.dirname(version_dir)),
  ):
    if not os.path.isdir(d):
      continue
    built = any("dataset_info.json" in fs for _, _, fs in os.walk(d))
    if not built:
      shutil.rmtree(d)


@contextlib.contextmanager
def _exclusive_build(builder: tfds.core.DatasetBuilder) -> Iterator[None]:
  """Holds an exclusive lock on the dataset's folder while it builds, after
  removing what killed builds left there: TFDS's ``incomplete.*`` folders (a
  4096^2 synth build's hold gigabytes), which no build of this dataset can be
  writing while the lock is held."""
  folder = os.path.dirname(os.fspath(builder.data_path))
  os.makedirs(folder, exist_ok=True)
  with open(os.path.join(folder, ".build.lock"), "a") as lock:
    fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
    for name in os.listdir(folder):
      if name.startswith("incomplete."):
        shutil.rmtree(os.path.join(folder, name), ignore_errors=True)
    yield


def build(
  builder: tfds.core.DatasetBuilder, manual_dir: str | None = None
) -> tfds.core.DatasetBuilder:
  """``download_and_prepare`` (array_record); on error leaves nothing behind,
  and a build killed before it is cleared away by the next one."""
  download_config = tfds.download.DownloadConfig(
    manual_dir=manual_dir, try_download_gcs=False
  )
  _spill_without_tensorflow()
  with _exclusive_build(builder):
    try:
      # Nothing is downloaded: keep TFDS's empty downloads/ out of the data dir.
      with tempfile.TemporaryDirectory(prefix="hrface_tfds_dl_") as download_dir:
        builder.download_and_prepare(
          download_dir=download_dir, download_config=download_config
        )
    except BaseException:
      _remove_failed_build(builder)
      raise
  return builder
