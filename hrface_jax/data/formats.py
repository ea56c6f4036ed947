"""Readers and writers for published landmark annotation formats.

Values are returned exactly as written in the files: the iBUG ``.pts`` files
are 1-based and WFLW's are 0-based, and the conversion to the project's
0-based pixel-centre convention happens once, in the dataset builders
(:mod:`hrface_jax.data.builders`), which know which format they read.
"""

from __future__ import annotations

import dataclasses
import math
import os

import numpy as np

from hrface_jax import atomic

WFLW_NUM_POINTS = 98
_WFLW_FIELDS = 2 * WFLW_NUM_POINTS + 4 + 6 + 1  # coords, box, attributes, path
WFLW_ATTRIBUTES = ("pose", "expression", "illumination", "makeup", "occlusion", "blur")


def _parse_float(token: str, where: str) -> float:
  try:
    value = float(token)
  except ValueError:
    raise ValueError(f"{where}: malformed number {token!r}") from None
  if not math.isfinite(value):
    raise ValueError(f"{where}: non-finite coordinate {token!r} (NaN or inf)")
  return value


def read_pts(path: str | os.PathLike) -> np.ndarray:
  """Reads an iBUG ``.pts`` file; returns float64 [N, 2] (x, y) as written.

  Raises:
    ValueError: naming the file (and line) on a wrong header, a point count
      that disagrees with ``n_points``, a malformed or non-finite number.
  """
  path = os.fspath(path)
  try:
    with open(path, encoding="utf-8-sig") as f:  # -sig: tolerate a BOM
      raw = f.read().splitlines()
  except UnicodeDecodeError as e:
    raise ValueError(f"{path}: not a text .pts file ({e})") from None
  # Keep line numbers for messages; blank lines are allowed anywhere.
  lines = [(i + 1, s.strip()) for i, s in enumerate(raw) if s.strip()]
  if len(lines) < 3:
    raise ValueError(f"{path}: too short to be a .pts file ({len(lines)} lines)")

  (ln, version), (ln2, npts), (ln3, brace) = lines[:3]
  if not version.lower().startswith("version:"):
    raise ValueError(f"{path}:{ln}: expected 'version: 1', got {version!r}")
  key, _, value = npts.partition(":")
  if key.strip().lower() != "n_points":
    raise ValueError(f"{path}:{ln2}: expected 'n_points: N', got {npts!r}")
  try:
    n = int(value.strip())
  except ValueError:
    raise ValueError(f"{path}:{ln2}: malformed point count {value.strip()!r}") from None
  if n <= 0:
    raise ValueError(f"{path}:{ln2}: point count must be positive, got {n}")
  if brace != "{":
    raise ValueError(f"{path}:{ln3}: expected '{{', got {brace!r}")

  body = lines[3:]
  end = next((k for k, (_, s) in enumerate(body) if s == "}"), None)
  if end is None:
    raise ValueError(f"{path}: missing closing '}}'")
  if end != n:
    raise ValueError(
      f"{path}: header says n_points: {n} but the file has {end} point lines"
    )
  if len(body) > end + 1:
    extra_ln = body[end + 1][0]
    raise ValueError(f"{path}:{extra_ln}: unexpected content after '}}'")

  points = np.empty((n, 2), np.float64)
  for k, (lnk, s) in enumerate(body[:end]):
    tokens = s.split()
    if len(tokens) != 2:
      raise ValueError(f"{path}:{lnk}: expected 'x y', got {s!r}")
    points[k] = [_parse_float(t, f"{path}:{lnk}") for t in tokens]
  return points


def write_pts(path: str | os.PathLike, points: np.ndarray) -> None:
  """Writes ``points`` [N, 2] as an iBUG ``.pts`` file (atomically).

  Numbers are written as the shortest decimal that reads back to the same
  float64, so ``read_pts(write_pts(p))`` is exact. No index shift is applied.
  """
  points = np.asarray(points, np.float64)
  if points.ndim != 2 or points.shape[1] != 2 or not len(points):
    raise ValueError(f"{os.fspath(path)}: points must be [N, 2], got {points.shape}")
  if not np.isfinite(points).all():
    raise ValueError(f"{os.fspath(path)}: refusing to write non-finite points")
  rows = "".join(f"{float(x)!r} {float(y)!r}\n" for x, y in points)
  atomic.write_text(
    os.fspath(path), f"version: 1\nn_points: {len(points)}\n{{\n{rows}}}\n"
  )


@dataclasses.dataclass(frozen=True)
class WflwRecord:
  """One WFLW annotation line.

  Attributes:
    landmarks: float64 [98, 2] (x, y) as written (WFLW is 0-based).
    box: float64 [4] face rectangle x_min, y_min, x_max, y_max.
    attributes: int32 [6] flags, in the order of ``WFLW_ATTRIBUTES``.
    image_path: image path relative to ``WFLW_images/``.
    line: 1-based line number in the annotation file (for messages).
  """

  landmarks: np.ndarray
  box: np.ndarray
  attributes: np.ndarray
  image_path: str
  line: int


def read_wflw_annotations(path: str | os.PathLike) -> list[WflwRecord]:
  """Reads a WFLW ``list_98pt_rect_attr_*.txt`` file.

  Each line: 196 landmark coordinates (x0 y0 ... x97 y97), 4 box values,
  6 attribute flags and the image path relative to ``WFLW_images/``.

  Raises:
    ValueError: naming the file and line on a wrong field count, a malformed
      or non-finite number.
  """
  path = os.fspath(path)
  records = []
  with open(path, encoding="utf-8-sig") as f:
    for ln, line in enumerate(f, start=1):
      tokens = line.split()
      if not tokens:
        continue
      where = f"{path}:{ln}"
      if len(tokens) != _WFLW_FIELDS:
        raise ValueError(
          f"{where}: expected {_WFLW_FIELDS} fields (196 coordinates, 4 box,"
          f" 6 attributes, image path), got {len(tokens)}"
        )
      values = [_parse_float(t, where) for t in tokens[: 2 * WFLW_NUM_POINTS + 4]]
      try:
        attributes = np.array([int(t) for t in tokens[-7:-1]], np.int32)
      except ValueError:
        raise ValueError(
          f"{where}: malformed attribute flags {tokens[-7:-1]}"
        ) from None
      records.append(
        WflwRecord(
          landmarks=np.array(values[: 2 * WFLW_NUM_POINTS], np.float64).reshape(
            WFLW_NUM_POINTS, 2
          ),
          box=np.array(values[2 * WFLW_NUM_POINTS :], np.float64),
          attributes=attributes,
          image_path=tokens[-1],
          line=ln,
        )
      )
  if not records:
    raise ValueError(f"{path}: no annotation lines")
  return records
