"""viz: landmark drawing lands where the points are, sheets, atomic PNGs."""

from __future__ import annotations

import os

import cv2
import numpy as np
import pytest

from hrface_jax import viz


def _grey(h=64, w=64, v=40):
  return np.full((h, w, 3), v, np.uint8)


def test_draw_landmarks_colours_the_landmark_pixels_and_copies():
  img = _grey()
  pts = np.array([[10.3, 20.7], [50.0, 5.0]], np.float32)
  out = viz.draw_landmarks(img, pts, color=(255, 0, 0), radius=2)
  assert out is not img and out.shape == img.shape and out.dtype == np.uint8
  np.testing.assert_array_equal(img, _grey())  # input untouched
  np.testing.assert_array_equal(out[21, 10], [255, 0, 0])  # round(20.7), round(10.3)
  np.testing.assert_array_equal(out[5, 50], [255, 0, 0])
  np.testing.assert_array_equal(out[40, 30], [40, 40, 40])  # far away: unchanged


@pytest.mark.parametrize("x, y", [(20.25, 30.75), (20.75, 30.25), (33.5, 12.0)])
def test_draw_landmarks_is_sub_pixel_accurate(x, y):
  img = np.zeros((64, 64, 3), np.uint8)
  out = viz.draw_landmarks(img, np.array([[x, y]]), color=(0, 255, 0), radius=3)
  w = out[..., 1].astype(np.float64)
  yy, xx = np.mgrid[:64, :64]
  cx, cy = (w * xx).sum() / w.sum(), (w * yy).sum() / w.sum()
  assert abs(cx - x) < 0.15 and abs(cy - y) < 0.15, (cx, cy)


def test_default_radius_grows_with_image_size():
  def changed(n):
    out = viz.draw_landmarks(np.zeros((n, n, 3), np.uint8), np.array([[n / 2, n / 2]]))
    return int((out.sum(-1) > 0).sum())

  assert changed(1024) > 4 * changed(256)


def test_invisible_points_are_rings_and_bad_shapes_raise():
  img = np.zeros((64, 64, 3), np.uint8)
  pts = np.array([[16.0, 16.0], [48.0, 48.0]])
  out = viz.draw_landmarks(img, pts, (255, 255, 255), radius=6, visible=[True, False])
  assert out[16, 16].sum() > 0  # filled dot
  assert out[48, 48].sum() == 0  # ring: centre empty
  assert out[48, 54].sum() > 0  # ... but the rim drawn
  with pytest.raises(ValueError, match="visible"):
    viz.draw_landmarks(img, pts, visible=[True])
  with pytest.raises(ValueError, match="landmarks"):
    viz.draw_landmarks(img, np.zeros((3, 3)))


def test_draw_comparison_shows_both_sets_and_error_lines():
  img = np.zeros((80, 80, 3), np.uint8)
  true = np.array([[20.0, 40.0]])
  pred = np.array([[60.0, 40.0]])
  out = viz.draw_comparison(img, pred, true, radius=3)
  np.testing.assert_array_equal(out[40, 20], viz.TRUE_COLOUR)
  np.testing.assert_array_equal(out[40, 60], viz.PRED_COLOUR)
  np.testing.assert_array_equal(out[40, 40], viz.ERROR_COLOUR)  # on the line
  assert out[10, 40].sum() == 0
  with pytest.raises(ValueError, match="same shape"):
    viz.draw_comparison(img, pred, np.zeros((2, 2)))


def test_contact_sheet_layout_and_area_resize():
  red = np.zeros((100, 100, 3), np.uint8)
  red[..., 0] = 255
  blue = np.zeros((50, 100, 3), np.uint8)
  blue[..., 2] = 255
  checker = np.indices((64, 64)).sum(0) % 2 * 255
  checker = np.repeat(checker[..., None], 3, -1).astype(np.uint8)
  sheet = viz.contact_sheet([red, blue, checker], ncols=2, tile_size=32)
  assert sheet.shape == (64, 64, 3) and sheet.dtype == np.uint8
  np.testing.assert_array_equal(sheet[16, 16], [255, 0, 0])
  np.testing.assert_array_equal(sheet[16, 48], [0, 0, 255])  # letterboxed, centred
  assert sheet[2, 48, 2] < 100  # above the 2:1 blue tile: background
  # INTER_AREA averages the 2x2 checker cells to mid grey (no aliasing).
  assert np.all(np.abs(sheet[36:60, 4:28].astype(int) - 127) <= 2)
  labelled = viz.contact_sheet([red, blue], 2, 128, labels=["a", "b"])
  assert labelled.shape == (128, 256, 3)
  with pytest.raises(ValueError, match="labels"):
    viz.contact_sheet([red], 1, 32, labels=["a", "b"])
  with pytest.raises(ValueError, match="no images"):
    viz.contact_sheet([], 1, 32)


def test_save_png_atomic_creates_dirs_and_keeps_rgb(tmp_path):
  img = np.zeros((8, 9, 3), np.uint8)
  img[..., 0] = 200  # red
  path = tmp_path / "a" / "b" / "x.png"
  assert viz.save_png(path, img) == str(path)
  back = cv2.imread(str(path), cv2.IMREAD_COLOR)
  np.testing.assert_array_equal(back[..., ::-1], img)  # BGR on disk
  viz.save_png(path, img[:4])  # overwrite
  assert cv2.imread(str(path)).shape == (4, 9, 3)
  assert os.listdir(path.parent) == ["x.png"]  # no temp files left


def test_save_png_failure_leaves_no_temp_file(tmp_path, monkeypatch):
  def boom(*args, **kwargs):
    raise OSError("disk full")

  monkeypatch.setattr(os, "replace", boom)
  with pytest.raises(OSError, match="disk full"):
    viz.save_png(tmp_path / "y.png", _grey())
  assert os.listdir(tmp_path) == []
