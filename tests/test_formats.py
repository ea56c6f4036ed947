"""iBUG .pts and WFLW annotation readers/writers."""

import os

import numpy as np
import pytest

from hrface_jax.data import formats


def test_pts_round_trip_is_exact(tmp_path):
  rng = np.random.default_rng(0)
  points = rng.uniform(-5, 4000, (68, 2))
  path = tmp_path / "a.pts"
  formats.write_pts(path, points)
  back = formats.read_pts(path)
  assert back.dtype == np.float64
  np.testing.assert_array_equal(back, points)
  assert os.listdir(tmp_path) == ["a.pts"]  # no temp file left behind


def test_pts_layout_and_values_as_written(tmp_path):
  path = tmp_path / "b.pts"
  formats.write_pts(path, np.array([[1.0, 2.5], [3.25, 4.0]]))
  lines = path.read_text().splitlines()
  assert lines[:3] == ["version: 1", "n_points: 2", "{"]
  assert lines[-1] == "}"
  assert [tuple(map(float, s.split())) for s in lines[3:-1]] == [(1, 2.5), (3.25, 4)]


def test_read_pts_tolerates_crlf_bom_and_blank_lines_no_index_shift(tmp_path):
  path = tmp_path / "c.pts"
  text = (
    "\ufeffversion: 1\r\nn_points:  3\r\n{\r\n"
    "1 1\r\n 10.5   20.25 \r\n\r\n300 400\r\n}\r\n\r\n"
  )
  path.write_bytes(text.encode("utf-8"))
  np.testing.assert_array_equal(
    formats.read_pts(path), [[1, 1], [10.5, 20.25], [300, 400]]
  )


def test_write_pts_overwrites_atomically(tmp_path):
  path = tmp_path / "d.pts"
  formats.write_pts(path, np.zeros((68, 2)))
  formats.write_pts(path, np.ones((39, 2)))
  assert formats.read_pts(path).shape == (39, 2)
  with pytest.raises(ValueError, match="non-finite"):
    formats.write_pts(path, np.full((2, 2), np.nan))
  assert formats.read_pts(path).shape == (39, 2)  # the old file is intact
  assert sorted(os.listdir(tmp_path)) == ["d.pts"]


def _pts(body_lines, n=None, header="version: 1"):
  n = len(body_lines) if n is None else n
  return "\n".join([header, f"n_points: {n}", "{", *body_lines, "}"]) + "\n"


@pytest.mark.parametrize(
  "text, problem",
  [
    (_pts(["1 2", "3 4"], header="version 1 2"), "expected 'version: 1'"),
    (_pts(["1 2", "3 4"], header="hello"), "expected 'version: 1'"),
    (_pts(["1 2", "3 4"], n=3), "n_points: 3 but the file has 2"),
    (_pts(["1 2", "3 4"], n="x"), "malformed point count"),
    (_pts(["1 2", "3 four"]), "malformed number 'four'"),
    (_pts(["1 2", "3"]), "expected 'x y'"),
    (_pts(["1 2", "nan 4"]), "NaN"),
    (_pts(["1 2", "3 inf"]), "non-finite"),
    ("version: 1\nn_points: 2\n{\n1 2\n3 4\n", "missing closing"),
    ("version: 1\nn_points: 1\n1 2\n}\n", "expected '{'"),
    ("version: 1\n", "too short"),
  ],
)
def test_read_pts_errors_name_file_and_problem(tmp_path, text, problem):
  path = tmp_path / "bad.pts"
  path.write_text(text)
  with pytest.raises(ValueError) as e:
    formats.read_pts(path)
  assert str(path) in str(e.value)
  assert problem in str(e.value)


def test_read_pts_error_names_the_line(tmp_path):
  path = tmp_path / "line.pts"
  path.write_text(_pts(["1 2", "3 4", "5 x"]))
  with pytest.raises(ValueError, match=rf"{path}:6: malformed number"):
    formats.read_pts(path)


def _wflw_line(rng, name="1--Handshaking/img.jpg", attrs=(1, 0, 0, 1, 0, 1)):
  coords = rng.uniform(0, 500, 196)
  box = [10, 20, 300, 400]
  tokens = [repr(float(c)) for c in coords] + [str(b) for b in box]
  tokens += [str(a) for a in attrs] + [name]
  return " ".join(tokens), coords, box


def test_read_wflw_annotations(tmp_path):
  rng = np.random.default_rng(1)
  l1, c1, b1 = _wflw_line(rng, "a/x.jpg")
  l2, c2, _ = _wflw_line(rng, "b/y.jpg", attrs=(0, 1, 1, 0, 1, 0))
  path = tmp_path / "list.txt"
  path.write_text(l1 + "\n\n" + l2 + "\n")
  recs = formats.read_wflw_annotations(path)
  assert [r.image_path for r in recs] == ["a/x.jpg", "b/y.jpg"]
  assert [r.line for r in recs] == [1, 3]
  # x0 y0 x1 y1 ...: point k is (coords[2k], coords[2k+1]); values as written.
  np.testing.assert_array_equal(recs[0].landmarks[:, 0], c1[0::2])
  np.testing.assert_array_equal(recs[0].landmarks[:, 1], c1[1::2])
  np.testing.assert_array_equal(recs[1].landmarks.reshape(-1), c2)
  np.testing.assert_array_equal(recs[0].box, b1)
  np.testing.assert_array_equal(recs[1].attributes, [0, 1, 1, 0, 1, 0])


@pytest.mark.parametrize(
  "mutate, problem",
  [
    (lambda t: t[:-2] + t[-1:], "expected 207 fields"),
    (lambda t: ["abc"] + t[1:], "malformed number 'abc'"),
    (lambda t: t[:5] + ["nan"] + t[6:], "NaN"),
    (lambda t: t[:-3] + ["x"] + t[-2:], "malformed attribute"),
  ],
)
def test_read_wflw_errors_name_file_and_line(tmp_path, mutate, problem):
  rng = np.random.default_rng(2)
  good, _, _ = _wflw_line(rng)
  bad = " ".join(mutate(good.split()))
  path = tmp_path / "list.txt"
  path.write_text(good + "\n" + bad + "\n")
  with pytest.raises(ValueError) as e:
    formats.read_wflw_annotations(path)
  assert f"{path}:2" in str(e.value)
  assert problem in str(e.value)
