"""Building blocks shared by every model: on-device input preparation,
space-to-depth stems, depthwise-separable residual blocks, an encoder-decoder
(U-Net / hourglass) and heatmap heads.

No BatchNorm anywhere (LayerNorm only): the train step stays a pure function
of the parameters, which keeps pmap and EMA simple. Parameters are float32;
``dtype`` is the compute dtype (float32 or bfloat16).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

Dtype = Any

glorot = nn.initializers.xavier_uniform()


def get_dtype(name: str) -> Dtype:
  return {"float32": jnp.float32, "bfloat16": jnp.bfloat16}[name]


def normalize(x: jax.Array) -> jax.Array:
  """uint8-range values -> [-1, 1] float32."""
  return x.astype(jnp.float32) * (2.0 / 255.0) - 1.0


def prepare_input(
  images: jax.Array, size: int, divisor: int = 1
) -> tuple[jax.Array, float]:
  """Whole uint8 images -> normalised network input, on device.

  ``size > 0``: the image is padded (bottom/right, mid-grey) to a square of its
  longer side M, then area-downsampled to ``size`` (a reshape-mean when M is a
  multiple of ``size``, else an antialiased resize). ``size == 0``: full
  resolution, padded bottom/right up to a multiple of ``divisor``.

  Returns (x [B, h, w, C] float32 in [-1, 1], scale) with
  ``x_full = (x_input + 0.5) * scale - 0.5`` (pixel centres at integers; the
  bottom/right padding leaves the origin in place).
  """
  b, h, w, c = images.shape
  m = max(h, w)
  if (
    size > 0 and h == w and m % size == 0 and jnp.issubdtype(images.dtype, jnp.integer)
  ):
    # Area mean of uint8 pixels summed as int32: exact, and ~18x faster than
    # a float32 reduction on CPU (4096^2 -> 256^2: 9 ms instead of 170).
    return normalize(area_pool(images, m // size)), m / size
  x = images.astype(jnp.float32)
  if size == 0:
    ph, pw = -h % divisor, -w % divisor
    if ph or pw:
      x = jnp.pad(x, ((0, 0), (0, ph), (0, pw), (0, 0)), constant_values=127.5)
    return normalize(x), 1.0
  if h != w:
    x = jnp.pad(x, ((0, 0), (0, m - h), (0, m - w), (0, 0)), constant_values=127.5)
  if m % size == 0:
    k = m // size
    x = x.reshape(b, size, k, size, k, c).mean(axis=(2, 4))
  else:
    x = jax.image.resize(x, (b, size, size, c), "linear", antialias=True)
  return normalize(x), m / size


def area_pool(x: jax.Array, k: int) -> jax.Array:
  """Mean over k x k blocks of [..., H, W, C] (H, W divisible by k), float32.

  uint8 input is summed as int32: exact, and much faster than a float
  reduction on CPU.
  """
  if k == 1:
    return x.astype(jnp.float32)
  *lead, h, w, c = x.shape
  x = x.reshape(*lead, h // k, k, w // k, k, c)
  acc = jnp.int32 if jnp.issubdtype(x.dtype, jnp.integer) else jnp.float32
  return x.astype(acc).sum((-4, -2)).astype(jnp.float32) / (k * k)


def space_to_depth(x: jax.Array, k: int) -> jax.Array:
  """[..., H, W, C] -> [..., H/k, W/k, k*k*C]: every pixel kept, as channels."""
  if k == 1:
    return x
  *lead, h, w, c = x.shape
  x = x.reshape(*lead, h // k, k, w // k, k, c)
  x = jnp.swapaxes(x, -4, -3)  # [..., h/k, w/k, k, k, c]
  return x.reshape(*lead, h // k, w // k, k * k * c)


def upsample2(x: jax.Array) -> jax.Array:
  """Nearest-neighbour x2 upsampling of [B, H, W, C]."""
  b, h, w, c = x.shape
  x = jnp.broadcast_to(x[:, :, None, :, None, :], (b, h, 2, w, 2, c))
  return x.reshape(b, 2 * h, 2 * w, c)


def _layer_norm(x: jax.Array, scale: jax.Array, bias: jax.Array) -> jax.Array:
  mean = jnp.mean(x, axis=-1, keepdims=True)
  var = jnp.mean(jnp.square(x - mean), axis=-1, keepdims=True)
  return (x - mean) * jax.lax.rsqrt(var + 1e-6) * scale + bias


class SpaceToDepthStem(nn.Module):
  """Stride ``prod(factors)`` patch-embedding stem that sees every pixel.

  Each stage folds a k x k neighbourhood into channels and mixes it with a
  dense layer (+ LayerNorm, SiLU), so a high-resolution crop shrinks to a
  fixed-size feature map without discarding pixels first (as a resize would)
  and without the memory of full-resolution feature maps (as strided 3x3
  convs would).

  ``normalize_input``: the input is uint8-range and is normalised inside the
  first stage. Inputs of more than ``strip_pixels`` pixels run the first
  stage in row strips, each rematerialised in the backward pass, so the
  float32 copy of a 3072^2 crop never exists whole (only its uint8 pixels).
  """

  factors: Sequence[int]
  widths: Sequence[int]
  dtype: Dtype = jnp.float32
  normalize_input: bool = False
  strip_pixels: int = 1 << 20

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    for i, k in enumerate(self.factors):
      width = self.widths[min(i, len(self.widths) - 1)]
      cin = x.shape[-1] * k * k
      kernel = self.param(f"embed{i}_kernel", glorot, (cin, width))
      bias = self.param(f"embed{i}_bias", nn.initializers.zeros, (width,))
      scale = self.param(f"norm{i}_scale", nn.initializers.ones, (width,))
      shift = self.param(f"norm{i}_bias", nn.initializers.zeros, (width,))
      p = [a.astype(self.dtype) for a in (kernel, bias, scale, shift)]
      first = i == 0

      def stage(x, k=k, p=p, first=first):
        if first and self.normalize_input:
          x = normalize(x)
        x = space_to_depth(x.astype(self.dtype), k)
        x = _layer_norm(x @ p[0] + p[1], p[2], p[3])
        return nn.silu(x)

      h, w = x.shape[-3], x.shape[-2]
      n = _num_strips(h // k, h * w // self.strip_pixels) if first else 1
      if n > 1:
        lead = x.shape[:-3]
        xs = jnp.moveaxis(x.reshape(*lead, n, h // n, *x.shape[-2:]), -4, 0)
        ys = jax.lax.map(jax.checkpoint(stage), xs)
        x = jnp.moveaxis(ys, 0, -4)
        x = x.reshape(*lead, h // k, *x.shape[-2:])
      else:
        x = stage(x)
    return x


def _num_strips(rows: int, want: int) -> int:
  """Largest divisor of ``rows`` that is <= ``want`` (>= 1)."""
  n = max(1, min(want, rows))
  while rows % n:
    n -= 1
  return n


class DepthwiseConv(nn.Module):
  """k x k depthwise convolution ('SAME', stride 1) as a sum of shifted products.

  Elementwise, so it vmaps over stacked per-region kernels with a cheap
  backward pass (lax.conv's batching rule turns per-example kernels into a
  grouped convolution whose kernel gradient costs ~10x the forward).
  """

  kernel_size: int = 3
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    k = self.kernel_size
    c = x.shape[-1]
    kernel = self.param("kernel", glorot, (k, k, 1, c)).astype(self.dtype)
    bias = self.param("bias", nn.initializers.zeros, (c,)).astype(self.dtype)
    x = x.astype(self.dtype)
    h, w = x.shape[-3], x.shape[-2]
    lo = (k - 1) // 2
    pads = [(0, 0)] * (x.ndim - 3) + [(lo, k - 1 - lo), (lo, k - 1 - lo), (0, 0)]
    xp = jnp.pad(x, pads)
    out = bias
    for i in range(k):
      for j in range(k):
        out = out + xp[..., i : i + h, j : j + w, :] * kernel[i, j, 0]
    return out


class SepConvBlock(nn.Module):
  """Depthwise-separable residual block (ConvNeXt-style, LayerNorm).

  depthwise k x k -> LayerNorm -> pointwise expand -> SiLU -> pointwise.
  """

  features: int
  kernel_size: int = 3
  expansion: int = 2
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    c = x.shape[-1]
    h = DepthwiseConv(self.kernel_size, dtype=self.dtype, name="depthwise")(x)
    h = nn.LayerNorm(dtype=self.dtype)(h)
    h = nn.Dense(self.features * self.expansion, dtype=self.dtype, kernel_init=glorot)(
      h
    )
    h = nn.silu(h)
    h = nn.Dense(self.features, dtype=self.dtype, kernel_init=glorot)(h)
    if c != self.features:
      x = nn.Dense(self.features, dtype=self.dtype, kernel_init=glorot, name="proj")(x)
    return x + h


class Downsample(nn.Module):
  """x2 downsampling: space-to-depth(2) + LayerNorm + dense."""

  features: int
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    x = nn.LayerNorm(dtype=self.dtype)(space_to_depth(x, 2))
    return nn.Dense(self.features, dtype=self.dtype, kernel_init=glorot)(x)


class EncoderDecoder(nn.Module):
  """U-Net / hourglass: ``len(widths)`` levels, each half the previous size.

  The encoder runs ``blocks`` residual blocks per level; the decoder
  upsamples, adds the skip of its level and runs a block, down to level
  ``out_level`` (0 = input resolution). Input H, W must be divisible by
  ``2 ** (len(widths) - 1)``.
  """

  widths: Sequence[int]
  blocks: int = 1
  out_level: int = 0
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    skips = []
    for i, w in enumerate(self.widths):
      if i > 0:
        x = Downsample(w, dtype=self.dtype, name=f"down{i}")(x)
      elif x.shape[-1] != w:
        x = nn.Dense(w, dtype=self.dtype, kernel_init=glorot, name="in_proj")(x)
      for j in range(self.blocks):
        x = SepConvBlock(w, dtype=self.dtype, name=f"enc{i}_{j}")(x)
      skips.append(x)
    for i in range(len(self.widths) - 2, self.out_level - 1, -1):
      w = self.widths[i]
      x = nn.Dense(w, dtype=self.dtype, kernel_init=glorot, name=f"up{i}")(upsample2(x))
      x = SepConvBlock(w, dtype=self.dtype, name=f"dec{i}")(x + skips[i])
    return x


class HeatmapHead(nn.Module):
  """Features -> ``num`` heatmap logits (float32, for a stable softmax).

  The last layer starts tiny: near-uniform heatmaps (soft-argmax near the
  map's centre, a well-conditioned start for the coordinate loss) while
  gradients still reach the trunk from the first step (zeros would block them).
  """

  num: int
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    x = nn.LayerNorm(dtype=self.dtype)(x)
    x = nn.silu(nn.Dense(x.shape[-1], dtype=self.dtype, kernel_init=glorot)(x))
    tiny = nn.initializers.variance_scaling(1e-4, "fan_in", "truncated_normal")
    x = nn.Dense(self.num, dtype=self.dtype, kernel_init=tiny)(x)
    return x.astype(jnp.float32)


def stem_factors(stride: int) -> tuple[int, ...]:
  """Splits a stem stride into space-to-depth factors, 4s first (64 -> 4,4,4)."""
  factors, s = [], int(stride)
  while s % 4 == 0:
    factors.append(4)
    s //= 4
  p = 2
  while s > 1:
    while s % p == 0:
      factors.append(p)
      s //= p
    p += 1
  return tuple(factors)
