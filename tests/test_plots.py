"""plots: PNGs exist, are real images with content, and bad points don't crash."""

import os

import numpy as np
import pytest
from PIL import Image

from hrface_jax.evaluation import plots


def _check_png(path) -> np.ndarray:
  assert os.path.isfile(path)
  with Image.open(path) as im:
    assert im.format == "PNG"
    w, h = im.size
    a = np.asarray(im.convert("RGB"))
  assert w > 300 and h > 200, (w, h)
  # Not a blank canvas: many distinct colours (lines, text, grid).
  assert len(np.unique(a.reshape(-1, 3), axis=0)) > 20
  return a


def _coloured_pixels(a: np.ndarray) -> int:
  """Pixels that are clearly not grey (curves; text, grid and axes are grey)."""
  a = a.astype(int)
  return int(((a.max(-1) - a.min(-1)) > 80).sum())


def test_plot_ced(tmp_path):
  rng = np.random.default_rng(0)
  curves = {
    "regional": rng.gamma(3, 0.012, 200),
    "holistic": np.concatenate([rng.gamma(3, 0.018, 199), [np.nan]]),
  }
  path = plots.plot_ced(curves, tmp_path / "sub" / "ced.png", title="CED")
  assert path == str(tmp_path / "sub" / "ced.png")
  a = _check_png(path)
  assert _coloured_pixels(a) > 500
  # No temporary files left behind.
  assert os.listdir(tmp_path / "sub") == ["ced.png"]


def test_plot_ced_curves_are_drawn(tmp_path):
  # Same figure with and without curves (an empty one is only a legend entry):
  # the coloured area must grow with the curves.
  empty = _check_png(plots.plot_ced({"a": np.zeros(0)}, tmp_path / "e.png"))
  full = _check_png(plots.plot_ced({"a": np.linspace(0, 0.1, 50)}, tmp_path / "f.png"))
  assert _coloured_pixels(full) > _coloured_pixels(empty) + 300
  with pytest.raises(ValueError, match="no curves"):
    plots.plot_ced({}, tmp_path / "x.png")


def test_plot_lines_with_missing_points(tmp_path):
  x = [256, 512, 1024, 2048, 4096]
  series = {
    "regional": [0.05, 0.042, 0.035, 0.031, 0.029],
    "holistic": [0.055, 0.05, None, float("nan"), None],  # out of memory
    "nothing": [None] * 5,
  }
  for logx, logy in [(False, False), (True, False), (True, True)]:
    p = tmp_path / f"l{logx}{logy}.png"
    plots.plot_lines(x, series, p, "resolution", "NME", logx=logx, logy=logy, title="t")
    _check_png(p)


def test_plot_lines_log_with_nonpositive_values(tmp_path):
  # A zero on a log axis is shown as missing rather than breaking the scale.
  p = tmp_path / "z.png"
  plots.plot_lines([1, 2, 3], {"a": [0.0, 1.0, 10.0]}, p, "x", "y", logy=True)
  _check_png(p)


def test_plot_lines_bad_input(tmp_path):
  with pytest.raises(ValueError, match="'a' has 2 values for 3"):
    plots.plot_lines([1, 2, 3], {"a": [1, 2]}, tmp_path / "a.png", "x", "y")
  with pytest.raises(ValueError, match="positive x"):
    plots.plot_lines([0, 1], {"a": [1, 2]}, tmp_path / "a.png", "x", "y", logx=True)
  with pytest.raises(ValueError, match="finite"):
    plots.plot_lines([1, None], {"a": [1, 2]}, tmp_path / "a.png", "x", "y")
  assert not (tmp_path / "a.png").exists()


@pytest.mark.parametrize(
  "series", [{"a": [0.33, 0.331], "b": [0.326, None]}, {"a": [None, None]}]
)
def test_plot_lines_ymin_fixes_the_bottom_of_the_axis(tmp_path, monkeypatch, series):
  limits = []
  monkeypatch.setattr(
    plots, "save_figure", lambda fig, path: limits.append(fig.axes[0].get_ylim())
  )
  plots.plot_lines([256, 1024], series, tmp_path / "a.png", "x", "NME", ymin=0.0)
  bottom, top = limits[0]
  assert bottom == 0.0
  if series["a"][0] is not None:  # headroom above the lines for the legend
    assert top > 1.2 * 0.331
