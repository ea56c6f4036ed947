"""Landmark markups: point counts, left/right flip permutations, facial regions.

A markup is everything that depends on the annotation scheme. Models, metrics
and augmentation read it from here (selected by ``config.markup``), so WFLW-98
works by configuration alone. Indices are 0-based.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

import numpy as np


@dataclasses.dataclass(frozen=True)
class Markup:
  """An annotation scheme.

  Attributes:
    name: short name used in configs ("ibug68", "wflw98").
    num_landmarks: points per face.
    flip_pairs: (i, j) index pairs that swap under a horizontal flip.
    regions: region name -> landmark indices (overlap allowed). The regional
      model cuts one crop per region, in this order.
    outer_eye_corners: (right, left) indices for inter-ocular normalisation.
    right_eye, left_eye: indices whose mean is the pupil (inter-pupil NME).
    groups: anatomical groups for per-group reporting and drawing.
    contour_group: the group along the face outline. Its points are spaced
      along a smooth edge, so where along it they sit is fixed by the whole
      face, not by local detail; metrics also report the rest as "inner".
    curves: the drawn lines, each (its points in order, whether it closes).
      A point's tangent runs between its neighbours on its curve; metrics
      split errors into along-curve and across-curve parts with it.
  """

  name: str
  num_landmarks: int
  flip_pairs: tuple[tuple[int, int], ...]
  regions: Mapping[str, tuple[int, ...]]
  outer_eye_corners: tuple[int, int]
  right_eye: tuple[int, ...]
  left_eye: tuple[int, ...]
  groups: Mapping[str, tuple[int, ...]]
  contour_group: str = ""
  curves: tuple[tuple[tuple[int, ...], bool], ...] = ()

  def curve_neighbours(self) -> tuple[np.ndarray, np.ndarray]:
    """(previous, next) point of each point along its curve ``[L]`` each;
    a curve's open ends use themselves, points on no curve both."""
    prev = np.arange(self.num_landmarks)
    nxt = np.arange(self.num_landmarks)
    for points, closed in self.curves:
      n = len(points)
      for j, i in enumerate(points):
        if closed:
          prev[i], nxt[i] = points[(j - 1) % n], points[(j + 1) % n]
        else:
          prev[i], nxt[i] = points[max(j - 1, 0)], points[min(j + 1, n - 1)]
    return prev, nxt

  def inner_indices(self) -> tuple[int, ...]:
    """Every point outside ``contour_group`` (all points if it is unset)."""
    contour = set(self.groups.get(self.contour_group, ()))
    return tuple(i for i in range(self.num_landmarks) if i not in contour)

  @property
  def flip_permutation(self) -> np.ndarray:
    """perm such that ``flipped_landmarks = landmarks[perm]`` after mirroring x."""
    perm = np.arange(self.num_landmarks)
    for i, j in self.flip_pairs:
      perm[i], perm[j] = j, i
    return perm

  @property
  def region_names(self) -> tuple[str, ...]:
    return tuple(self.regions)

  @property
  def num_regions(self) -> int:
    return len(self.regions)

  def region_indices(self) -> list[np.ndarray]:
    return [np.asarray(v, np.int32) for v in self.regions.values()]


def _r(a: int, b: int) -> tuple[int, ...]:
  """Inclusive index range."""
  return tuple(range(a, b + 1))


def _mirror_pairs(left: Sequence[int], right: Sequence[int]) -> list[tuple[int, int]]:
  return list(zip(left, right, strict=True))


IBUG68 = Markup(
  name="ibug68",
  num_landmarks=68,
  flip_pairs=tuple(
    _mirror_pairs(_r(0, 7), _r(9, 16)[::-1])  # jaw
    + _mirror_pairs(_r(17, 21), _r(22, 26)[::-1])  # brows
    + [(31, 35), (32, 34)]  # nostrils
    + [(36, 45), (37, 44), (38, 43), (39, 42), (40, 47), (41, 46)]  # eyes
    + [(48, 54), (49, 53), (50, 52), (55, 59), (56, 58)]  # outer lips
    + [(60, 64), (61, 63), (65, 67)]  # inner lips
  ),
  # Each region fits a crop of 9/16 of the side around its box centre: on
  # hrface_synth a region's points lie at most 0.17 (eyes, mouth) to 0.24
  # (jaw quarters) of the side from it, leaving room for crop-centre error.
  regions={
    "right_eye_brow": _r(17, 21) + _r(36, 41),
    "left_eye_brow": _r(22, 26) + _r(42, 47),
    "nose": _r(27, 35),
    "mouth": _r(48, 67),
    "right_cheek": _r(0, 4),
    "right_jaw": _r(4, 8),
    "left_jaw": _r(8, 12),
    "left_cheek": _r(12, 16),
  },
  outer_eye_corners=(36, 45),
  right_eye=_r(36, 41),
  left_eye=_r(42, 47),
  groups={
    "jaw": _r(0, 16),
    "right_brow": _r(17, 21),
    "left_brow": _r(22, 26),
    "nose": _r(27, 35),
    "right_eye": _r(36, 41),
    "left_eye": _r(42, 47),
    "mouth": _r(48, 67),
  },
  contour_group="jaw",
  curves=(
    (_r(0, 16), False),  # jaw
    (_r(17, 21), False),  # brows
    (_r(22, 26), False),
    (_r(27, 30), False),  # nose bridge
    (_r(31, 35), False),  # nostrils
    (_r(36, 41), True),  # eyes
    (_r(42, 47), True),
    (_r(48, 59), True),  # outer lips
    (_r(60, 67), True),  # inner lips
  ),
)

WFLW98 = Markup(
  name="wflw98",
  num_landmarks=98,
  flip_pairs=tuple(
    _mirror_pairs(_r(0, 15), _r(17, 32)[::-1])  # contour
    + [(33, 46), (34, 45), (35, 44), (36, 43), (37, 42)]  # upper brows
    + [(38, 50), (39, 49), (40, 48), (41, 47)]  # lower brows
    + [(55, 59), (56, 58)]  # nostrils
    + [(60, 72), (61, 71), (62, 70), (63, 69), (64, 68)]  # eyes, upper
    + [(65, 75), (66, 74), (67, 73)]  # eyes, lower
    + [(76, 82), (77, 81), (78, 80), (83, 87), (84, 86)]  # outer lips
    + [(88, 92), (89, 91), (93, 95)]  # inner lips
    + [(96, 97)]  # pupils
  ),
  regions={
    "right_eye_brow": _r(33, 41) + _r(60, 67) + (96,),
    "left_eye_brow": _r(42, 50) + _r(68, 75) + (97,),
    "nose": _r(51, 59),
    "mouth": _r(76, 95),
    "right_cheek": _r(0, 8),
    "right_jaw": _r(8, 16),
    "left_jaw": _r(16, 24),
    "left_cheek": _r(24, 32),
  },
  outer_eye_corners=(60, 72),
  right_eye=(96,),
  left_eye=(97,),
  groups={
    "contour": _r(0, 32),
    "right_brow": _r(33, 41),
    "left_brow": _r(42, 50),
    "nose": _r(51, 59),
    "right_eye": _r(60, 67) + (96,),
    "left_eye": _r(68, 75) + (97,),
    "mouth": _r(76, 95),
  },
  contour_group="contour",
  curves=(
    (_r(0, 32), False),  # contour
    (_r(33, 41), True),  # brows: upper edge, then lower
    (_r(42, 50), True),
    (_r(51, 54), False),  # nose bridge
    (_r(55, 59), False),  # nostrils
    (_r(60, 67), True),  # eyes (pupils 96, 97 on no curve)
    (_r(68, 75), True),
    (_r(76, 87), True),  # outer lips
    (_r(88, 95), True),  # inner lips
  ),
)

MARKUPS: dict[str, Markup] = {m.name: m for m in (IBUG68, WFLW98)}


def get_markup(name: str) -> Markup:
  """Returns the markup called ``name`` or raises naming the known ones."""
  try:
    return MARKUPS[name]
  except KeyError:
    raise ValueError(
      f"unknown markup {name!r}; known markups: {sorted(MARKUPS)}"
    ) from None


def with_regions(markup: Markup, regions: Mapping[str, Sequence[int]]) -> Markup:
  """Returns ``markup`` with its regions replaced (validated)."""
  for name, idx in regions.items():
    bad = [i for i in idx if not 0 <= int(i) < markup.num_landmarks]
    if not idx or bad:
      raise ValueError(
        f"region {name!r}: indices must be non-empty and in "
        f"[0, {markup.num_landmarks}); got bad values {bad or 'none (empty)'}"
      )
  return dataclasses.replace(
    markup, regions={k: tuple(int(i) for i in v) for k, v in regions.items()}
  )
