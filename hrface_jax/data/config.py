"""Data-layer config defaults (owned by the data layer).

Fields read by :mod:`hrface_jax.data.pipeline` and
:mod:`hrface_jax.data.prepare`. ``config.resolution`` (the side of the square
network image), ``config.markup``, ``config.batch_size`` (global) and
``config.seed`` are defined by :func:`hrface_jax.config_lib.base_config`.
"""

import ml_collections


def add_defaults(config: ml_collections.ConfigDict) -> None:
  """Adds every data field with its default to ``config`` (in place)."""
  # Which data. "NAME" or "NAME/CONFIG": hrface_synth (config defaults to
  # r{synth_resolution}), ibug_pts (config "default" or the name given to
  # prepare --config_name), wflw.
  config.dataset = "hrface_synth"
  config.data_dir = ""  # "" -> $HRFACE_DATA_DIR or ./data
  config.train_split = "train"
  config.eval_split = "test"

  # hrface_synth only. 0 -> config.resolution (the stored images are then
  # exactly the network resolution). Split sizes 0 -> the builder config's
  # standard sizes; anything else builds a separately named variant
  # ("r256_t100_e20") so small runs never shadow the standard dataset.
  config.synth_resolution = 0
  config.synth_train_size = 0
  config.synth_test_size = 0

  # Face crop. True: a square box around the stored face_box, enlarged by
  # face_box_scale, is mapped to the network image (real photos, where the
  # face is a small part of the frame). False: the whole frame is mapped
  # (centred, aspect kept): hrface_synth images are already face crops, so
  # with augmentation off the warp is the identity when synth_resolution
  # equals resolution. None -> True for real datasets, False for hrface_synth.
  config.crop_to_face = ml_collections.config_dict.placeholder(bool)
  config.face_box_scale = 1.3

  # Input pipeline (Grain). data_workers > 0 uses that many worker processes;
  # data_threads are per process; prefetch_batches bounds host memory (each
  # batch is batch_size * resolution^2 * 3 bytes: 0.4 GB at 8 x 4096^2).
  config.data_workers = 0
  config.data_threads = 4
  config.prefetch_batches = 2
  # Decoded training frames kept in host memory (GB per process; 0: off), so
  # a 4K PNG is decoded once per run (0.3 s each). Rendered faces need none:
  # their frames are memory-mapped (hrface_jax/data/frames.py).
  config.data_cache_gb = 0.0

  # Training augmentation (eval never augments). One affine warp per image
  # composed with the face crop, then photometric jitter on uint8.
  config.augment = ml_collections.ConfigDict()
  config.augment.enabled = True
  config.augment.scale_min = 0.9  # multiplicative zoom about the image centre
  config.augment.scale_max = 1.1
  config.augment.rotation_deg = 15.0  # uniform in [-r, r]
  config.augment.translation = 0.05  # fraction of the image side, per axis
  # Shifts rounded to whole pixels: with rotation_deg=0 and scale 1 the warp
  # is then a copy (no resampling), the cheap path for 2K-4K frames.
  config.augment.whole_pixel_shifts = False
  config.augment.flip_prob = 0.5  # horizontal flip (uses the markup's pairs)
  config.augment.brightness = 0.1  # additive, fraction of 255, uniform [-b, b]
  config.augment.contrast = 0.2  # factor uniform in [1 - c, 1 + c]
  config.augment.saturation = 0.2  # factor uniform in [1 - s, 1 + s]
  config.augment.noise_std = 3.0  # gaussian sigma in [0, noise_std] grey levels
  config.augment.noise_prob = 0.5
