"""Synthetic high-resolution faces with exact iBUG-68 landmarks.

A face is a pure function of ``(seed, resolution)``. Every geometric and
appearance parameter is drawn from ``np.random.default_rng(seed)`` in a
resolution-independent frame, so the same seed at 256 and 4096 pixels is the
same face: the landmarks agree exactly once scaled, and the image differs only
in detail. Noise fields (skin texture, sensor noise) come from generators
seeded with ``[seed, stream]``; a texture octave is the same grid of values in
normalised image coordinates at every resolution, and octaves finer than about
two pixels are only drawn where the image has the pixels for them.

The pieces, in the order a face is made:

* :mod:`params`: the random choices (identity, expression, pose, appearance,
  scene) and the landmark index groups.
* :mod:`head`: the 3D head surface (elliptical slices plus a relief) and the
  landmark template on it.
* :mod:`projection`, :mod:`geometry`, :mod:`zbuffer`: pose, projection, jaw
  landmarks on the face boundary, outlines of face, hair, neck, clothes and
  ears, the resolution-independent z-buffer and self-occlusion.
* :mod:`raster`, :mod:`eyes`, :mod:`features`, :mod:`occluders`: drawing in
  pixels with exact sub-pixel coverage.
* :mod:`shading`, :mod:`background`: smooth fields rendered on small grids
  and upsampled.
* :mod:`render`: :func:`render_face`, which puts them together.

Coordinates: a point at normalised position ``u`` in [0, 1] is at pixel
``u * R - 0.5`` (pixel centres at integer coordinates).
"""

from hrface_jax.data.synth.geometry import face_geometry
from hrface_jax.data.synth.occluders import occluder_polygon
from hrface_jax.data.synth.params import (
  JAW,
  LEFT_BROW,
  LEFT_EYE,
  MOUTH,
  NOSE,
  NUM_LANDMARKS,
  RIGHT_BROW,
  RIGHT_EYE,
  sample_params,
)
from hrface_jax.data.synth.primitives import points_in_polygon
from hrface_jax.data.synth.render import render_face

__all__ = [
  "JAW",
  "LEFT_BROW",
  "LEFT_EYE",
  "MOUTH",
  "NOSE",
  "NUM_LANDMARKS",
  "RIGHT_BROW",
  "RIGHT_EYE",
  "face_geometry",
  "occluder_polygon",
  "points_in_polygon",
  "render_face",
  "sample_params",
]
