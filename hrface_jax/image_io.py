"""Loading images from disk as uint8 RGB arrays, with errors that say why not.

Whatever PIL reads (JPEG, PNG, PPM/PGM, BMP, TIFF, WebP, ...) comes back as
``uint8 [H, W, 3]`` in the orientation a viewer shows: the EXIF orientation
tag of camera JPEGs is applied. Greyscale, palette, CMYK and alpha images are
converted to RGB (alpha is dropped); 16-bit and float images are rescaled to
8 bits. Files PIL cannot fully decode, including truncated ones, raise
:class:`ImageLoadError` naming the file.
"""

from __future__ import annotations

import io
import os
import struct
import warnings

import cv2
import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

# Largest image accepted, in pixels: 16K x 16K (8K camera frames and 4K/8K
# face crops fit well below). PIL's own default refuses ~180 Mpx outright, so
# its limit is raised to ours and our own check below gives the error.
MAX_PIXELS = 16384 * 16384
if Image.MAX_IMAGE_PIXELS is not None and Image.MAX_IMAGE_PIXELS < MAX_PIXELS:
  Image.MAX_IMAGE_PIXELS = MAX_PIXELS

_SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N")
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class ImageLoadError(ValueError):
  """An image file is missing, unreadable, not an image, truncated or too big."""


def load_image(path: str | os.PathLike[str]) -> np.ndarray:
  """Reads the image at ``path`` as ``uint8 [H, W, 3]`` RGB (EXIF-oriented).

  Raises:
    ImageLoadError: the path does not exist, is a directory, is not an image
      PIL can read, is truncated or corrupt, or has more than MAX_PIXELS pixels.
  """
  path = os.fspath(path)
  return decode_image(_read(path), name=path)


def load_image_reduced(
  path: str | os.PathLike[str], reduce: int
) -> tuple[np.ndarray, int]:
  """(image, factor): :func:`load_image`, a JPEG decoded ``factor`` times smaller.

  ``reduce`` is 1, 2, 4 or 8. A JPEG is decoded at 1/``reduce`` of its size
  by DCT scaling (an area average, done while decoding: a 4K frame at 1/4
  decodes several times faster than at full size); other formats come back
  whole (``factor`` 1). Pixel ``i`` of the result covers full-size pixels
  ``[i f, (i + 1) f)``: its centre is ``(i + 0.5) f - 0.5`` there.
  """
  if reduce not in (1, 2, 4, 8):
    raise ValueError(f"reduce={reduce}: expected 1, 2, 4 or 8")
  path = os.fspath(path)
  return _decode(_read(path), path, reduce)


def _read(path: str) -> bytes:
  if os.path.isdir(path):
    raise ImageLoadError(f"{path}: is a directory, not an image file")
  try:
    with open(path, "rb") as f:
      return f.read()
  except FileNotFoundError:
    raise ImageLoadError(f"{path}: no such file") from None
  except OSError as e:
    raise ImageLoadError(f"{path}: cannot read file: {e}") from e


def decode_image(data: bytes, name: str = "<bytes>") -> np.ndarray:
  """Decodes encoded image bytes like :func:`load_image`; ``name`` goes in
  errors."""
  return _decode(data, name, 1)[0]


def _decode(data: bytes, name: str, reduce: int) -> tuple[np.ndarray, int]:
  """(uint8 [H, W, 3], the factor it was decoded smaller by)."""
  if not data:
    raise ImageLoadError(f"{name}: empty file, not an image")
  plain = _decode_plain_png(data)
  if plain is not None:
    return plain, 1
  try:
    # Our size check below replaces PIL's decompression-bomb warning.
    with warnings.catch_warnings():
      warnings.simplefilter("ignore", Image.DecompressionBombWarning)
      img = Image.open(io.BytesIO(data))
  except UnidentifiedImageError:
    raise ImageLoadError(
      f"{name}: not an image file PIL can read ({len(data)} bytes)"
    ) from None
  except Image.DecompressionBombError as e:
    raise ImageLoadError(f"{name}: image too large: {e}") from None
  except (OSError, SyntaxError, ValueError) as e:
    raise ImageLoadError(f"{name}: cannot open image: {e}") from e
  with img:
    w, h = img.size
    if w * h > MAX_PIXELS:
      raise ImageLoadError(
        f"{name}: image too large: {w} x {h} = {w * h} pixels, more than "
        f"the limit of {MAX_PIXELS} (16384 x 16384)"
      )
    if w == 0 or h == 0:
      raise ImageLoadError(f"{name}: image has no pixels ({w} x {h})")
    factor = 1
    if reduce > 1 and img.format == "JPEG":
      img.draft(img.mode, (-(-w // reduce), -(-h // reduce)))
      factor = int(round(w / img.size[0]))  # the DCT scale PIL chose: 1..8
    try:
      # Decode everything now: a truncated file fails here (as long as
      # ImageFile.LOAD_TRUNCATED_IMAGES stays False) instead of silently
      # returning grey pixels.
      img.load()
      img = ImageOps.exif_transpose(img)
    except (OSError, SyntaxError, ValueError, EOFError) as e:
      if ImageFile.LOAD_TRUNCATED_IMAGES:
        warnings.warn(
          "PIL.ImageFile.LOAD_TRUNCATED_IMAGES is True: truncated images "
          "are not detected",
          stacklevel=2,
        )
      raise ImageLoadError(
        f"{name}: truncated or corrupt {img.format or 'image'} file: {e}"
      ) from e
    return _to_rgb8(img, name), factor


def _decode_plain_png(data: bytes) -> np.ndarray | None:
  """An 8-bit RGB PNG without EXIF decoded by OpenCV, else None.

  That is the format the datasets store (``data.builders.encode_png``): OpenCV
  gives the same pixels as PIL, about 1.4x faster at 4096^2, where the
  training input pipeline is the bottleneck. None also for a file OpenCV
  cannot decode, so that the PIL path names what is wrong with it.
  """
  size = _plain_png_size(data)
  if size is None or not 0 < size[0] * size[1] <= MAX_PIXELS:
    return None
  # No eXIf chunk, so there is no orientation for OpenCV to apply.
  image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
  if image is None or image.shape != (size[1], size[0], 3):
    return None
  return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def _plain_png_size(data: bytes) -> tuple[int, int] | None:
  """(width, height) from the header of an 8-bit RGB PNG with no eXIf chunk
  before its pixel data (where the PNG spec puts it), else None."""
  if not data.startswith(_PNG_SIGNATURE) or data[12:16] != b"IHDR":
    return None
  width, height, depth, colour_type = struct.unpack(">IIBB", data[16:26])
  if depth != 8 or colour_type != 2:
    return None
  pos = 8
  while pos + 8 <= len(data):
    length, kind = struct.unpack(">I4s", data[pos : pos + 8])
    if kind == b"IDAT":
      return width, height
    if kind == b"eXIf":
      return None
    pos += 12 + length
  return None


def _to_rgb8(img: Image.Image, name: str) -> np.ndarray:
  """Any PIL mode to contiguous uint8 [H, W, 3]."""
  mode = img.mode
  if mode in _SIXTEEN_BIT_MODES or mode in ("I", "F"):
    a = np.asarray(img)
    if mode in _SIXTEEN_BIT_MODES:
      grey = np.round(a.astype(np.float32) / 257.0)
    elif mode == "I":
      # 32-bit integer images come from 16-bit PNG/TIFF in older PILs.
      grey = np.round(a.astype(np.float32) / 257.0) if a.max() > 255 else a
    else:  # "F": float images, 0..1 if they look like it, else 0..255.
      a = np.nan_to_num(a.astype(np.float32))
      grey = np.round(a * 255.0) if a.max() <= 1.0 else a
    grey = np.clip(grey, 0, 255).astype(np.uint8)
    return np.ascontiguousarray(np.repeat(grey[..., None], 3, axis=-1))
  if mode == "P" and "transparency" in img.info:
    img = img.convert("RGBA")  # PIL warns on P -> RGB with transparency.
  if img.mode != "RGB":
    try:
      img = img.convert("RGB")
    except (ValueError, OSError) as e:
      raise ImageLoadError(f"{name}: cannot convert {mode} image to RGB: {e}") from e
  out = np.array(img, dtype=np.uint8)
  if out.ndim != 3 or out.shape[-1] != 3:
    raise ImageLoadError(f"{name}: decoded to unexpected shape {out.shape}")
  return out
