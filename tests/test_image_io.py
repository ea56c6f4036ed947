"""image_io: formats, EXIF orientation, conversions and every failure mode."""

import io
import struct
import zlib

import cv2
import numpy as np
import pytest
from PIL import Image

from hrface_jax import image_io
from hrface_jax.image_io import ImageLoadError, load_image


def _marked_rgb(h=30, w=50) -> np.ndarray:
  """Grey image with a red block at the stored top-left corner."""
  a = np.full((h, w, 3), 128, np.uint8)
  a[:8, :8] = (255, 0, 0)
  return a


@pytest.mark.parametrize(
  "orientation, corner",
  [(1, (0, 0)), (6, (0, -1)), (8, (-1, 0)), (3, (-1, -1))],
)
def test_exif_orientation_applied(tmp_path, orientation, corner):
  # Orientation 6: the camera was turned, a viewer rotates 90 degrees
  # clockwise, so the stored top-left ends up top-right. 8: bottom-left.
  p = tmp_path / f"o{orientation}.jpg"
  exif = Image.Exif()
  exif[0x0112] = orientation
  Image.fromarray(_marked_rgb()).save(p, exif=exif, quality=95)
  img = load_image(p)
  assert img.dtype == np.uint8
  assert img.shape == ((50, 30, 3) if orientation in (6, 8) else (30, 50, 3))
  y = 2 if corner[0] == 0 else img.shape[0] - 3
  x = 2 if corner[1] == 0 else img.shape[1] - 3
  r, g, b = img[y, x].astype(int)
  assert r > 200 and g < 60 and b < 60, img[y, x]
  assert abs(int(img[img.shape[0] // 2, img.shape[1] // 2, 0]) - 128) < 10


def test_png_round_trip_exact(tmp_path):
  a = np.random.default_rng(0).integers(0, 256, (17, 23, 3), dtype=np.uint8)
  Image.fromarray(a).save(tmp_path / "a.png")
  np.testing.assert_array_equal(load_image(str(tmp_path / "a.png")), a)


def test_greyscale_png_to_rgb(tmp_path):
  g = np.arange(20 * 30, dtype=np.uint8).reshape(20, 30)
  Image.fromarray(g, "L").save(tmp_path / "g.png")
  img = load_image(tmp_path / "g.png")
  assert img.shape == (20, 30, 3)
  for c in range(3):
    np.testing.assert_array_equal(img[..., c], g)


def test_rgba_and_palette(tmp_path):
  a = np.zeros((10, 12, 4), np.uint8)
  a[..., 1] = 200
  a[..., 3] = 50  # alpha dropped, colour kept
  Image.fromarray(a, "RGBA").save(tmp_path / "a.png")
  img = load_image(tmp_path / "a.png")
  assert img.shape == (10, 12, 3)
  assert (img == (0, 200, 0)).all()
  pal = Image.fromarray(_marked_rgb()).convert("P", palette=Image.Palette.ADAPTIVE)
  pal.save(tmp_path / "p.gif", transparency=0)
  img = load_image(tmp_path / "p.gif")
  assert img.shape == (30, 50, 3)


def test_ppm_and_pgm(tmp_path):
  a = _marked_rgb()
  Image.fromarray(a).save(tmp_path / "a.ppm")
  np.testing.assert_array_equal(load_image(tmp_path / "a.ppm"), a)
  # A hand-written binary PGM (P5): greyscale to RGB.
  (tmp_path / "b.pgm").write_bytes(b"P5\n3 2\n255\n" + bytes([0, 10, 20, 30, 40, 250]))
  img = load_image(tmp_path / "b.pgm")
  assert img.shape == (2, 3, 3)
  np.testing.assert_array_equal(img[..., 2], [[0, 10, 20], [30, 40, 250]])


def test_sixteen_bit_png(tmp_path):
  g = np.array([[0, 257, 65535, 32896]], np.uint16)  # -> 0, 1, 255, 128
  Image.fromarray(g).save(tmp_path / "g16.png")
  assert Image.open(tmp_path / "g16.png").mode.startswith("I")  # really 16-bit
  img = load_image(tmp_path / "g16.png")
  assert img.dtype == np.uint8 and img.shape == (1, 4, 3)
  np.testing.assert_array_equal(img[0, :, 0], [0, 1, 255, 128])


def test_float_tiff(tmp_path):
  f = np.array([[0.0, 0.5, 1.0]], np.float32)
  Image.fromarray(f, "F").save(tmp_path / "f.tif")
  np.testing.assert_array_equal(load_image(tmp_path / "f.tif")[0, :, 1], [0, 128, 255])


@pytest.mark.parametrize("fmt", ["jpg", "png"])
def test_truncated_files_raise(tmp_path, fmt):
  a = np.random.default_rng(0).integers(0, 256, (200, 300, 3), dtype=np.uint8)
  full = tmp_path / f"full.{fmt}"
  Image.fromarray(a).save(full)
  data = full.read_bytes()
  assert load_image(full).shape == (200, 300, 3)
  for keep in (len(data) // 2, len(data) * 9 // 10):
    cut = tmp_path / f"cut{keep}.{fmt}"
    cut.write_bytes(data[:keep])
    with pytest.raises(ImageLoadError, match="truncated") as e:
      load_image(cut)
    assert str(cut) in str(e.value)


def test_missing_directory_and_non_image(tmp_path):
  with pytest.raises(ImageLoadError, match="no such file") as e:
    load_image(tmp_path / "nope.jpg")
  assert "nope.jpg" in str(e.value)
  with pytest.raises(ImageLoadError, match="directory"):
    load_image(tmp_path)
  txt = tmp_path / "notes.jpg"
  txt.write_text("this is not a JPEG\n")
  with pytest.raises(ImageLoadError, match="not an image") as e:
    load_image(txt)
  assert "notes.jpg" in str(e.value)
  (tmp_path / "empty.png").write_bytes(b"")
  with pytest.raises(ImageLoadError, match="empty"):
    load_image(tmp_path / "empty.png")
  assert issubclass(ImageLoadError, ValueError)


def _png_header_only(w: int, h: int) -> bytes:
  """A PNG whose header claims w x h RGB pixels and that has no pixel data."""

  def chunk(kind: bytes, body: bytes) -> bytes:
    crc = zlib.crc32(kind + body) & 0xFFFFFFFF
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

  ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
  idat = zlib.compress(b"\0" * 64)
  return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat)


def test_size_limits(tmp_path):
  # Beyond 16K x 16K: refused from the header, before decoding.
  p = tmp_path / "huge.png"
  p.write_bytes(_png_header_only(20000, 20000))
  with pytest.raises(ImageLoadError, match="too large") as e:
    load_image(p)
  assert "20000 x 20000" in str(e.value)
  # 15K x 15K is past PIL's default decompression-bomb error but within ours:
  # it gets as far as decoding (and then fails for the missing data).
  p = tmp_path / "big.png"
  p.write_bytes(_png_header_only(15000, 15000))
  with pytest.raises(ImageLoadError) as e:
    load_image(p)
  assert "too large" not in str(e.value)
  assert "truncated" in str(e.value)
  assert image_io.MAX_PIXELS == 16384**2


def test_8k_jpeg_loads(tmp_path):
  a = np.zeros((4320, 7680, 3), np.uint8)
  a[:, 3840:] = 200
  Image.fromarray(a).save(tmp_path / "8k.jpg", quality=80)
  img = load_image(tmp_path / "8k.jpg")
  assert img.shape == (4320, 7680, 3)
  assert img[100, 100, 0] < 10 and img[100, 7000, 0] > 190


def test_reduced_jpeg_decode_is_an_area_average(tmp_path):
  """A JPEG decoded at 1/4 is the full decode area-averaged (to JPEG error);
  other formats come back whole; a bad factor is refused by name."""
  rng = np.random.default_rng(0)
  small = rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)
  full = np.asarray(Image.fromarray(small).resize((640, 480), Image.BILINEAR))
  jpeg, png = tmp_path / "a.jpg", tmp_path / "a.png"
  Image.fromarray(full).save(jpeg, quality=95)
  Image.fromarray(full).save(png)
  reduced, factor = image_io.load_image_reduced(jpeg, 4)
  assert factor == 4 and reduced.shape == (120, 160, 3)
  whole = image_io.load_image(jpeg).astype(np.float32)
  area = whole.reshape(120, 4, 160, 4, 3).mean(axis=(1, 3))
  assert np.abs(reduced - area).mean() < 4.0
  same, factor = image_io.load_image_reduced(png, 4)
  assert factor == 1
  np.testing.assert_array_equal(same, full)
  with pytest.raises(ValueError, match="reduce=3"):
    image_io.load_image_reduced(jpeg, 3)


def test_plain_png_decodes_like_pil_and_exif_png_is_oriented(tmp_path):
  # 8-bit RGB PNGs as the datasets store them (written by OpenCV) take
  # OpenCV's faster path: the same pixels as PIL's.
  a = np.random.default_rng(1).integers(0, 256, (37, 41, 3), dtype=np.uint8)
  data = cv2.imencode(".png", cv2.cvtColor(a, cv2.COLOR_RGB2BGR))[1].tobytes()
  np.testing.assert_array_equal(image_io.decode_image(data), a)
  np.testing.assert_array_equal(
    image_io.decode_image(data), np.asarray(Image.open(io.BytesIO(data)))
  )
  # A PNG with an EXIF orientation (eXIf chunk) is turned like a JPEG.
  exif = Image.Exif()
  exif[0x0112] = 6
  Image.fromarray(_marked_rgb()).save(tmp_path / "o6.png", exif=exif)
  img = load_image(tmp_path / "o6.png")
  assert img.shape == (50, 30, 3)
  np.testing.assert_array_equal(img[2, -3], (255, 0, 0))
