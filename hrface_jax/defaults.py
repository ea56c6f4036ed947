"""Every field a training run has, with its one default: the table that
``configs/*.py`` start from and override.

The defaults give a *small* run: a model that trains on 256-512 px synthetic
faces to a visible result in minutes on a laptop CPU (``configs/*.py:gpu``
widen it). A network hyperparameter's default is its Flax module's field:
the model sections are made from them (``models.config.module_fields``) and
handed back by name (``models.config.build_module``); everything else is
written here, once. Checkpoints written before a field existed load with its
default from here (``config_lib.with_defaults``).

The crop and patch geometry's rules: ``hrface_jax/models/config.py``.
"""

from __future__ import annotations

import ml_collections

from hrface_jax.models.coarse import CoarseNet
from hrface_jax.models.config import SHARED_MODULE_FIELDS, module_fields
from hrface_jax.models.holistic import HolisticModel
from hrface_jax.models.patches import PatchRefiner
from hrface_jax.models.regional import RegionalLandmarkModel, RegionalNet
from hrface_jax.models.shape import ShapePrior

# Training stages: (name, fraction of total_steps), run in order in one run
# (hrface_jax/training/stages.py).
REGIONAL_STAGES = (("coarse", 0.3), ("regional", 0.4), ("joint", 0.3))
HOLISTIC_STAGES = (("holistic", 1.0),)


def base_config() -> ml_collections.ConfigDict:
  """Every field a training run has, with its default (a small CPU run)."""
  config = ml_collections.ConfigDict()

  # What is trained, on what.
  config.model_name = "regional"  # "regional" | "coarse" | "holistic"
  config.markup = "ibug68"  # see hrface_jax.markup
  config.resolution = 256  # full-resolution side of the (square) face images
  config.seed = 0
  _data(config)

  # Schedule. batch_size is global: across all devices and hosts.
  config.batch_size = 8
  config.total_steps = 1000
  config.learning_rate = 1e-3
  config.stages = REGIONAL_STAGES
  config.optimizer = ml_collections.ConfigDict(
    dict(
      name="adamw",  # "adam" | "adamw"
      b1=0.9,
      b2=0.999,
      eps=1e-8,
      weight_decay=1e-4,  # adamw only
      schedule="cosine",  # "cosine" | "constant" (after warm-up)
      warmup_steps=100,
      final_lr_fraction=0.01,
      grad_clip_norm=1.0,  # 0 disables
      ema_decay=0.0,  # 0 disables the EMA of parameters
    )
  )

  _model(config)
  _training_crops(config)
  _loss(config)

  # Reuse: top-level parameter subtrees ("coarse", "regional", "patches_0",
  # ...) copied from another run's checkpoint (its best, else latest) when
  # this run starts from scratch, and subtrees that are not trained (their
  # gradients are never computed). A coarse network trained once at its fixed
  # input size serves the regional model at every resolution this way.
  config.init_from = ""  # a workdir or checkpoint; "" = none
  config.init_modules = ("coarse",)  # what init_from provides
  config.frozen_modules = ()

  # Bookkeeping.
  config.log_every_steps = 50
  config.eval_every_steps = 500
  config.eval_max_examples = 0  # 0: the whole eval split
  config.checkpoint_every_steps = 500
  config.keep_checkpoints = 2  # the last K...
  config.keep_best_checkpoints = 1  # ...plus the best by validation NME
  config.device_prefetch_batches = 2  # batches put on the devices ahead of the step
  # Multi-host: "auto" initialises jax.distributed when a cluster is detected.
  config.distributed = "auto"  # "auto" | "on" | "off"
  # A process without a heartbeat for this long is declared lost; the others
  # then stop with an error instead of waiting for it.
  config.distributed_timeout_s = 30
  return config


def _data(config: ml_collections.ConfigDict) -> None:
  """What hrface_jax.data.pipeline and .prepare read."""
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
  config.augment = ml_collections.ConfigDict(
    dict(
      enabled=True,
      scale_min=0.9,  # multiplicative zoom about the image centre
      scale_max=1.1,
      rotation_deg=15.0,  # uniform in [-r, r]
      translation=0.05,  # fraction of the image side, per axis
      # Shifts rounded to whole pixels: with rotation_deg=0 and scale 1 the
      # warp is then a copy (no resampling), the cheap path for 2K-4K frames.
      whole_pixel_shifts=False,
      flip_prob=0.5,  # horizontal flip (uses the markup's pairs)
      brightness=0.1,  # additive, fraction of 255, uniform [-b, b]
      contrast=0.2,  # factor uniform in [1 - c, 1 + c]
      saturation=0.2,  # factor uniform in [1 - s, 1 + s]
      noise_std=3.0,  # gaussian sigma in [0, noise_std] grey levels
      noise_prob=0.5,
    )
  )


def _model(config: ml_collections.ConfigDict) -> None:
  """The networks: the modules' own field defaults, plus the crop and patch
  geometry and the shape prior's fit, which no module holds."""
  config.compute_dtype = "float32"  # "float32" | "bfloat16" (params stay float32)
  # Holistic model: longer image side it sees (0 = full resolution).
  config.input_resolution = module_fields(HolisticModel)["input_resolution"]
  coarse = module_fields(CoarseNet)
  config.heatmap = ml_collections.ConfigDict(
    {k: coarse[k] for k in ("sigma", "attention_sigma", "temperature")}
  )
  landmark_model = module_fields(RegionalLandmarkModel)

  config.coarse = ml_collections.ConfigDict(
    dict(
      **module_fields(CoarseNet, exclude=SHARED_MODULE_FIELDS),
      center_source=landmark_model["center_source"],
    )
  )

  config.regional = ml_collections.ConfigDict(
    dict(
      # Crop side / image side: the largest region's extent (0.44 of the side
      # on hrface_synth, the lower jaw) plus twice the attention's 99th
      # percentile centre error, plus 0.02 (crop_fraction_for).
      crop_fraction=0.5625,
      feature_size=36,  # crop features per side after the stem, every resolution
      # Rows (resolution, crop_size, stem_stride) override the rule (checkpoints
      # written before it carry one); crop_size / stem_stride > 0 (full-
      # resolution pixels; the stride must divide the crop) override both.
      crop_table=(),
      crop_size=0,
      stem_stride=0,
      **module_fields(RegionalNet, exclude=SHARED_MODULE_FIELDS),
      fusion=landmark_model["fusion"],
    )
  )

  # Native-resolution refinement (beyond the paper; off = the paper's model).
  config.patches = ml_collections.ConfigDict(
    dict(
      enabled=False,
      feature_size=16,  # heatmap side of every patch stage
      stem_stride=2,  # the last stage's heatmap pixel, in full-resolution pixels
      # First window / image side: about twice the regional estimate's 99th
      # percentile error (patch_stages).
      first_window=0.125,
      shrink=4,  # each stage's window / the next one's
      # "fused": the first stage refines the two-stage (regional) estimate;
      # "coarse": the coarse network's.
      start_from=landmark_model["patches_from"],
      # Every stage's network (their pad_value is config.regional's).
      **module_fields(
        PatchRefiner, exclude={*SHARED_MODULE_FIELDS, "level", "pad_value"}
      ),
      # Training centres: ground truth + uniform +- this fraction of the
      # stage's window (the joint stage mixes in the model's own points).
      train_jitter=0.2,
    )
  )

  config.holistic = ml_collections.ConfigDict(
    module_fields(HolisticModel, exclude=SHARED_MODULE_FIELDS)
  )

  # Shape prior (regional and holistic models; hrface_jax/models/shape.py):
  # fitted after the last train step on the model's own points on up to
  # fit_examples training faces (unaugmented), for fit_steps Adam steps of
  # fit_batch_size faces, each point jittered by fit_noise inter-ocular
  # distances. fit_steps=0: keep the prior as it is (e.g. from init_from).
  # fit_mirrored: the faces' mirror images too (training/shape_fit.py).
  config.shape = ml_collections.ConfigDict(
    dict(
      enabled=False,
      **module_fields(ShapePrior, exclude={"frame_corners"}),
      fit_examples=1000,
      fit_mirrored=True,
      fit_steps=4000,
      fit_batch_size=128,
      fit_learning_rate=1e-3,
      fit_weight_decay=1e-2,
      fit_noise=0.005,
    )
  )


def _training_crops(config: ml_collections.ConfigDict) -> None:
  """Crop centres in the joint stage (the coarse and regional stages crop
  around jittered ground truth): jittered ground truth ("gt_jitter"),
  predicted by the attention ("predicted"), per example a mix of both
  ("mix"), or per example and region a uniform random point between them
  ("between")."""
  config.train_crop_centers = "mix"
  config.train_crop_jitter = 0.03  # uniform +-, as a fraction of the image side
  config.train_crop_mix_gt_fraction = 0.5  # "mix": P(ground truth) per example


def _loss(config: ml_collections.ConfigDict) -> None:
  config.loss = ml_collections.ConfigDict(
    dict(
      # "ce" (KL to the normalised target) | "mse" (Gaussian targets). While the
      # maps are still flat the MSE's gradient is ~1 / (map pixels): the
      # regional maps of a 40-step test run stayed flat under it.
      heatmap="ce",
      coord="wing",  # "wing" | "l1"
      wing_w=10.0,
      wing_epsilon=2.0,
      # Coordinate errors are measured in pixels of a coord_scale-px version
      # of the image, so the Wing parameters mean the same at every resolution.
      coord_scale=256.0,
      # Coordinate terms weigh 1/20 of the heatmap terms. At weight 1 their
      # gradient (Wing on a soft-argmax, tens of pixels early on) swamped the
      # heatmap term's: a flat map whose mean moves satisfies it, so the
      # regional maps never left uniform (their heatmap loss flat for 300
      # steps) and the model answered with its crop centres. At 0.05 the
      # small sweep's regional NME at 256^2 went 0.329 -> 0.223, and the
      # holistic baseline's 0.327 -> 0.295 (2026-11-22).
      coarse_heatmap_weight=1.0,
      coarse_coord_weight=0.05,
      attention_heatmap_weight=1.0,
      attention_coord_weight=0.05,
      regional_heatmap_weight=1.0,
      regional_coord_weight=0.05,
      patch_heatmap_weight=1.0,
      patch_coord_weight=0.05,
      holistic_heatmap_weight=1.0,
      holistic_coord_weight=0.05,
    )
  )
