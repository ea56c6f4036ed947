"""PNG plots for evaluation and experiments: CED curves and metric-vs-x lines.

Uses matplotlib's object API with the Agg canvas (no pyplot state, no
display), and writes each PNG to a temporary file that is renamed into place.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, NullLocator, PercentFormatter

from hrface_jax.atomic import atomic_open
from hrface_jax.evaluation import metrics

_DPI = 120


def _new_figure(size=(6.4, 4.8)) -> tuple[Figure, object]:
  fig = Figure(figsize=size, dpi=_DPI)
  FigureCanvasAgg(fig)
  return fig, fig.add_subplot()


def save_figure(fig: Figure, path: str | os.PathLike[str]) -> str:
  """Writes ``fig`` as PNG to ``path`` atomically; returns the path."""
  path = os.fspath(path)
  with atomic_open(path, "wb") as f:
    fig.savefig(f, format="png", dpi=_DPI, bbox_inches="tight")
  return path


def plot_ced(
  curves: Mapping[str, np.ndarray],
  path: str | os.PathLike[str],
  max_threshold: float = 0.10,
  title: str | None = "Cumulative error distribution",
  xlabel: str = "NME (inter-ocular)",
  failure_threshold: float | None = 0.08,
) -> str:
  """One CED curve per model from its per-image NMEs, AUC in the legend.

  Args:
    curves: name -> per-image NMEs (``LandmarkMetrics.per_image_nme()``).
    path: the PNG to write.
    max_threshold: x-axis range and the AUC's upper limit.
    title: plot title (None for none).
    xlabel: names the normalisation.
    failure_threshold: draws a dashed line there and puts the failure rate
      in the legend (None for neither).
  """
  if not curves:
    raise ValueError("plot_ced: no curves to plot")
  fig, ax = _new_figure()
  for name, nmes in curves.items():
    nmes = np.asarray(nmes, np.float64).reshape(-1)
    if nmes.size == 0:
      ax.plot([], [], label=f"{name} (no images)")
      continue
    # Fraction of images with NME <= x, sampled finely enough to look exact.
    x, y = metrics.ced_curve(nmes, max_threshold, num_steps=1001)
    a = float(metrics.auc(nmes, max_threshold))
    label = f"{name}: AUC@{max_threshold:.2f} = {a:.3f}"
    if failure_threshold is not None:
      fr = float(metrics.failure_rate(nmes, failure_threshold))
      label += f", FR@{failure_threshold:.2f} = {100 * fr:.1f}%"
    ax.plot(x, y, linewidth=1.8, label=label)
  if failure_threshold is not None and failure_threshold < max_threshold:
    ax.axvline(failure_threshold, color="0.4", linestyle="--", linewidth=0.9)
  ax.set_xlim(0, max_threshold)
  ax.set_ylim(0, 1.0)
  ax.yaxis.set_major_formatter(PercentFormatter(1.0))
  ax.set_xlabel(xlabel)
  ax.set_ylabel("Images with NME ≤ x")
  ax.grid(True, which="major", alpha=0.35)
  ax.grid(True, which="minor", alpha=0.12)
  ax.minorticks_on()
  ax.legend(loc="lower right", fontsize="small", framealpha=0.9)
  if title:
    ax.set_title(title)
  return save_figure(fig, path)


def _finite(values: Sequence[float | None]) -> np.ndarray:
  return np.array([np.nan if v is None else float(v) for v in values], dtype=np.float64)


def plot_lines(
  x: Sequence[float],
  series: Mapping[str, Sequence[float | None]],
  path: str | os.PathLike[str],
  xlabel: str,
  ylabel: str,
  logx: bool = False,
  logy: bool = False,
  title: str | None = None,
  missing_label: str = "missing (e.g. out of memory)",
  ymin: float | None = None,
) -> str:
  """One line per series over shared ``x``; NaN/None points are missing.

  ``ymin`` fixes the bottom of a linear y axis (e.g. 0 for an error, so that
  a 0.005 gap between two models does not fill the plot's height).
  ``logy`` falls back to a linear axis while no value is positive (e.g. a
  sweep whose only records so far did not fit).

  Missing points are gaps in the line and an ``x`` marker on the bottom edge
  of the plot at their x, in the series' colour (e.g. a model that ran out of
  memory at 4096^2). With ``logx`` the ticks are the x values themselves
  (resolutions read better as 256, 1024, 4096 than as powers of ten).
  """
  xs = _finite(x)
  if not np.isfinite(xs).all():
    raise ValueError(f"plot_lines: x must be finite numbers; got {list(x)}")
  if not series:
    raise ValueError("plot_lines: no series to plot")
  values = np.concatenate([_finite(v) for v in series.values()])
  logy = logy and bool((values[np.isfinite(values)] > 0).any())
  fig, ax = _new_figure()
  any_missing = False
  for name, ys in series.items():
    ys = _finite(ys)
    if ys.shape != xs.shape:
      raise ValueError(
        f"plot_lines: series {name!r} has {ys.size} values for {xs.size} x values"
      )
    bad = ~np.isfinite(ys) | ((ys <= 0) if logy else False)
    (line,) = ax.plot(
      xs, np.where(bad, np.nan, ys), marker="o", markersize=4, label=name
    )
    if bad.any():
      any_missing = True
      # x in data coordinates, y on the axes' bottom edge.
      ax.plot(
        xs[bad],
        np.zeros(int(bad.sum())),
        linestyle="none",
        marker="x",
        markersize=8,
        markeredgewidth=2,
        color=line.get_color(),
        transform=ax.get_xaxis_transform(),
        clip_on=False,
      )
  if any_missing:
    ax.plot([], [], linestyle="none", marker="x", color="0.3", label=missing_label)
  if logx:
    if (xs <= 0).any():
      raise ValueError(f"plot_lines: logx needs positive x; got {list(x)}")
    ax.set_xscale("log", base=2 if _all_powers_of_two(xs) else 10)
    ax.set_xticks(xs)
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_locator(NullLocator())
  if logy:
    ax.set_yscale("log")
  elif ymin is not None:
    top = np.max(values[np.isfinite(values)], initial=ymin)
    if top > ymin:  # headroom above the lines for the legend
      ax.set_ylim(ymin, ymin + 1.3 * (top - ymin))
    else:
      ax.set_ylim(bottom=ymin)
  ax.set_xlabel(xlabel)
  ax.set_ylabel(ylabel)
  ax.grid(True, which="major", alpha=0.35)
  if logy:
    ax.grid(True, which="minor", axis="y", alpha=0.12)
  ax.legend(fontsize="small", framealpha=0.9)
  if title:
    ax.set_title(title)
  return save_figure(fig, path)


def _all_powers_of_two(xs: np.ndarray) -> bool:
  return all(v > 0 and float(math.log2(v)).is_integer() for v in xs)
