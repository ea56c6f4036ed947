"""Regional refinement networks and the full attention-driven-cropping model."""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from hrface_jax.models import cropping, layers
from hrface_jax.models import heatmaps as hm
from hrface_jax.models.coarse import CoarseNet
from hrface_jax.models.patches import PatchRefiner
from hrface_jax.models.shape import ShapePrior, apply_shape_prior

RegionIndex = Sequence[Sequence[int]]


def region_slots(region_index: RegionIndex) -> tuple[np.ndarray, np.ndarray]:
  """Pads regions to K = the largest region: (index [R, K] int, mask [R, K])."""
  k = max(len(r) for r in region_index)
  index = np.zeros((len(region_index), k), np.int32)
  mask = np.zeros((len(region_index), k), bool)
  for i, r in enumerate(region_index):
    index[i, : len(r)] = r
    mask[i, : len(r)] = True
  return index, mask


def _region_onehot(region_index: RegionIndex, num: int) -> np.ndarray:
  """[R, K, L] one-hot: slot k of region r holds landmark l."""
  index, mask = region_slots(region_index)
  onehot = np.zeros(index.shape + (num,), np.float32)
  r, k = np.nonzero(mask)
  onehot[r, k, index[r, k]] = 1.0
  return onehot


def fuse_regions(
  values: jax.Array,
  weights: jax.Array,
  region_index: RegionIndex,
  fallback: jax.Array,
  fallback_weights: jax.Array | None = None,
) -> jax.Array:
  """Per-region estimates [B, R, K, D] -> one per landmark [B, L, D].

  A landmark's value is the ``weights``-weighted mean ([B, R, K], >= 0) of
  the estimates of every region it is in. One whose estimates all weigh 0
  (in no region, or outside every crop) keeps ``fallback`` [B, L, D]; with
  ``fallback_weights`` [B, L] the fallback also joins every landmark's mean
  with that weight.
  """
  onehot = _region_onehot(region_index, fallback.shape[-2])  # [R, K, L]
  num_ = jnp.einsum("brk,rkl,brkd->bld", weights, onehot, values)
  den = jnp.einsum("brk,rkl->bl", weights, onehot)
  if fallback_weights is not None:
    num_ = num_ + fallback_weights[..., None] * fallback
    den = den + fallback_weights
  fused = num_ / jnp.where(den > 0, den, 1.0)[..., None]
  return jnp.where((den > 0)[..., None], fused, fallback)


def points_in_crops(points: jax.Array, boxes: jax.Array) -> jax.Array:
  """Whether ``points`` [B, R, K, 2] lie in their region's crop, ``boxes``
  [B, R, 4] (x0, y0, x1, y1; x1 exclusive): [B, R, K] bool."""
  lo = boxes[:, :, None, :2] - 0.5  # pixel centres at integers
  hi = boxes[:, :, None, 2:] - 0.5
  return jnp.all((points >= lo) & (points <= hi), axis=-1)


class _CropStem(nn.Module):
  """One region's crop (uint8, or float32 for sub-pixel or pooled crops, in
  the uint8 range) embedded by the stem."""

  factors: Sequence[int]
  widths: Sequence[int]
  remat: bool
  dtype: layers.Dtype

  @nn.compact
  def __call__(self, carry, crops: jax.Array):
    # Only the stem is recomputed in the backward pass; the crops are kept.
    stem_cls = layers.SpaceToDepthStem
    if self.remat:
      stem_cls = nn.remat(stem_cls, prevent_cse=False)
    stem = stem_cls(
      self.factors,
      self.widths,
      self.dtype,
      normalize_input=True,
      name="SpaceToDepthStem_0",  # its unwrapped name: checkpoints load as before
    )
    return carry, stem(crops)


class _Trunk(nn.Module):
  widths: Sequence[int]
  blocks: int
  num_outputs: int
  dtype: layers.Dtype

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    x = layers.EncoderDecoder(self.widths, self.blocks, 0, dtype=self.dtype)(x)
    return layers.HeatmapHead(self.num_outputs, self.dtype)(x)


class RegionalNet(nn.Module):
  """Crops every region out of the full-resolution image and refines it.

  The stem (space-to-depth stages with stride ``stem_stride``) runs region by
  region in a scan, rematerialised in the backward pass: full-resolution
  pixels cost float memory for one crop at a time (the uint8 crops of every
  region are kept). The rest runs on fixed-size
  ``crop_size / stem_stride`` feature maps, all regions at once (vmap over
  stacked per-region parameters, or a shared trunk with per-region heads).
  """

  region_index: RegionIndex
  crop_size: int
  stem_stride: int
  # Channels of the space-to-depth stem stages (stage i uses stem_widths[i],
  # the last one repeats: a stride of 64 has stages 4, 4, 4).
  stem_widths: Sequence[int] = (16, 32)
  widths: Sequence[int] = (16, 32, 48)  # encoder-decoder levels after the stem
  blocks: int = 1
  share_trunk: bool = False  # True: one trunk, per-region heads; False: per region
  # Bilinear sub-pixel crops: the crop moves smoothly with its centre, so
  # gradients reach the attention maps (hard crops stop them).
  differentiable_crop: bool = False
  remat_stem: bool = True  # recompute the stem in the backward pass (saves memory)
  # > 0: crops whose stem stride is larger are first area-averaged down to
  # this stride (a mean over stem_stride / stem_max_stride pixels per side),
  # so the learned stem runs on at most feature_size x stem_max_stride
  # pixels per side. 0: the learned stem sees every pixel (the paper).
  stem_max_stride: int = 0
  pad_value: int = 0  # uint8 value outside the image
  sigma: float = 1.5
  temperature: float = 0.1
  dtype: layers.Dtype = jnp.float32

  @property
  def crop_pool(self) -> int:
    """The area-mean factor applied to crops before the learned stem."""
    if self.stem_max_stride <= 0 or self.stem_stride <= self.stem_max_stride:
      return 1
    return self.stem_stride // self.stem_max_stride

  @nn.compact
  def __call__(self, images: jax.Array, centers: jax.Array) -> dict[str, jax.Array]:
    num_regions = len(self.region_index)
    size = self.crop_size
    _, k = region_slots(self.region_index)[0].shape
    h, w = images.shape[1:3]
    sub = self.differentiable_crop
    origins = cropping.crop_origins(centers, size, (h, w), subpixel=sub)

    # Every crop is cut before the scan: a slice of an operand that a loop
    # carries runs ~10x slower on CPU (XLA turns it into a gather loop), and
    # the crops are kept for the backward pass anyway.
    crop = lambda im, o: cropping.crop_window(im, o, size, sub, self.pad_value)
    crops = jax.vmap(jax.vmap(crop), (None, 0))(
      images, jnp.swapaxes(origins, 0, 1)
    )  # [R, B, size, size, C]: made in the scan's order (no transpose)
    # Large crops are area-averaged right away: XLA fuses the cut into the
    # mean, so neither the full-resolution crops nor a copy of them is kept.
    crops = layers.area_pool(crops, self.crop_pool) if self.crop_pool > 1 else crops

    shared = self.share_trunk
    stem = nn.scan(
      _CropStem,
      variable_axes={} if shared else {"params": 0},
      variable_broadcast="params" if shared else False,
      split_rngs={"params": not shared},
      length=num_regions,
    )(
      layers.stem_factors(self.stem_stride // self.crop_pool),
      tuple(self.stem_widths),
      self.remat_stem,
      self.dtype,
      name="stem",
    )
    _, feats = stem(None, crops)  # [R, B, f, f, C]

    if shared:
      r, b = feats.shape[:2]
      x = layers.EncoderDecoder(self.widths, self.blocks, 0, self.dtype, name="trunk")(
        feats.reshape(r * b, *feats.shape[2:])
      )
      x = x.reshape(r, b, *x.shape[1:])
      logits = nn.vmap(
        layers.HeatmapHead,
        variable_axes={"params": 0},
        split_rngs={"params": True},
      )(k, self.dtype, name="heads")(x)
    else:
      logits = nn.vmap(
        _Trunk,
        variable_axes={"params": 0},
        split_rngs={"params": True},
      )(tuple(self.widths), self.blocks, k, self.dtype, name="trunks")(feats)
    logits = jnp.swapaxes(logits, 0, 1)  # [B, R, f, f, K]

    coords, probs, var = hm.soft_argmax(logits, self.temperature)
    scale = size / logits.shape[-2]  # crop pixels per heatmap pixel
    full = hm.heatmap_to_image(coords, scale, origins[:, :, None, :])
    return {
      "regional_landmarks": full,  # [B, R, K, 2] full-image pixels
      "regional_confidence": hm.confidence_from_variance(var, self.sigma),
      "regional_variance_px": var * scale**2,  # [B, R, K] full-image px^2
      "regional_heatmaps": probs,  # [B, R, f, f, K]
      "regional_heatmap_scale": jnp.float32(scale),
      "crop_origins": origins,  # [B, R, 2]
      "crop_boxes": cropping.crop_boxes(origins, size),
    }


class RegionalLandmarkModel(nn.Module):
  """Coarse attention network -> crops at full resolution -> regional nets.

  ``crop_centers`` [B, R, 2] (full-image pixels; NaN rows = use the
  predicted centre) overrides the attention's centres, e.g. with jittered
  ground truth while training. ``crop_center_weights`` [B, R] in [0, 1] moves
  each crop only that far from the predicted centre towards ``crop_centers``
  (training on the attention's own errors, scaled). Without
  ``differentiable_crop`` the predicted centres are a stop-gradient: hard
  crops have no gradient w.r.t. position.

  ``patches`` (optional, beyond the paper): native-resolution refinement
  stages run after the fusion, each around the previous points
  (:class:`hrface_jax.models.patches.PatchRefiner`); ``patch_centers`` [S, B,
  L, 2] and ``patch_center_weights`` [S, B, L] override their centres the same
  way while training.
  """

  coarse: CoarseNet
  regional: RegionalNet
  # Crop centres: the attention maps' soft-argmax, or "landmarks": the mean
  # of each region's coarse landmarks.
  center_source: str = "attention"
  # How a landmark's estimates combine. "confidence": the regions that
  # contain it, weighted by heatmap sharpness (the coarse landmark only
  # where no region does). "precision": those and the coarse landmark,
  # each weighted by 1 / its heatmap variance in full-image pixels^2.
  fusion: str = "confidence"
  patches: Sequence[PatchRefiner] = ()
  # The points the first patch stage refines: "fused" (the two-stage
  # estimate, after the regional networks) or "coarse" (the coarse
  # network's; the two-stage estimate is still computed, as
  # "regional_fused_landmarks").
  patches_from: str = "fused"
  # Optional: the final points through a shape prior fitted after training
  # (hrface_jax/models/shape.py); the points before it: "unrefined_landmarks".
  shape: ShapePrior | None = None

  @nn.compact
  def __call__(
    self,
    images: jax.Array,
    *,
    crop_centers: jax.Array | None = None,
    crop_center_weights: jax.Array | None = None,
    patch_centers: jax.Array | None = None,
    patch_center_weights: jax.Array | None = None,
    train: bool = False,
  ) -> dict[str, jax.Array]:
    del train  # no dropout / batch statistics: train and eval are the same
    out = dict(self.coarse(images))
    if self.center_source == "landmarks":
      pred = cropping.region_centers_from_landmarks(
        out["coarse_landmarks"], self.regional.region_index
      )
    else:
      pred = out["region_centers"]
    if not self.regional.differentiable_crop:
      pred = jax.lax.stop_gradient(pred)
    centers = pred
    if crop_centers is not None:
      centers = jnp.where(jnp.isnan(crop_centers), pred, crop_centers)
      if crop_center_weights is not None:
        centers = pred + crop_center_weights[..., None] * (centers - pred)
    out.update(self.regional(images, centers))
    out["crop_centers"] = centers
    regions = self.regional.region_index
    if self.fusion == "precision":
      # Every estimate, the coarse one included, weighted by the inverse of
      # its heatmap's variance in full-image pixels^2: a sharp regional map
      # (fine pixels) wins, a flat one defers to the coarse landmark.
      weights = 1.0 / jnp.maximum(out["regional_variance_px"], 1e-6)
      coarse_weights = 1.0 / jnp.maximum(out["coarse_variance_px"], 1e-6)
    else:  # "confidence": regional estimates only; coarse where none
      weights, coarse_weights = out["regional_confidence"], None
    # A crop answers only for the landmarks it holds (by the coarse
    # estimate): a point outside its window can only be put on the border.
    index, _ = region_slots(regions)
    held = points_in_crops(out["coarse_landmarks"][:, index], out["crop_boxes"])
    weights = weights * held
    out["landmarks"] = fuse_regions(
      out["regional_landmarks"],
      weights,
      regions,
      out["coarse_landmarks"],
      coarse_weights,
    )
    out["confidence"] = fuse_regions(
      out["regional_confidence"][..., None],
      weights,
      regions,
      out["coarse_confidence"][..., None],
      coarse_weights,
    )[..., 0]
    out["regional_fused_landmarks"] = out["landmarks"]
    # What the patch stages start from, and (precision fusion) its precision
    # in 1 / px^2.
    if self.patches and self.patches_from == "coarse":
      out["landmarks"] = out["coarse_landmarks"]
      out["confidence"] = out["coarse_confidence"]
      precision = coarse_weights
    elif self.fusion == "precision":
      onehot = _region_onehot(regions, coarse_weights.shape[-1])
      precision = coarse_weights + jnp.einsum("brk,rkl->bl", weights, onehot)
    for i, stage in enumerate(self.patches):
      centers = jax.lax.stop_gradient(out["landmarks"])
      if patch_centers is not None:
        w = patch_center_weights[i][..., None]
        centers = centers + w * (patch_centers[i] - centers)
      refined = stage(images, centers)
      out.update({f"patch{i}_{k}": v for k, v in refined.items()})
      if self.fusion == "precision":
        # The patch's point and the one it refines, each by its precision: a
        # flat patch map (an occluded point) leaves the estimate where it was.
        p = 1.0 / jnp.maximum(refined["variance_px"], 1e-6)
        out["landmarks"] = (
          precision[..., None] * centers + p[..., None] * refined["landmarks"]
        ) / (precision + p)[..., None]
        precision = precision + p
      else:
        out["landmarks"] = refined["landmarks"]
    apply_shape_prior(out, self.shape)
    return out
