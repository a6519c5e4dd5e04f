"""`fastkm compare` and `fastkm sweep`: the side-by-side PNG, the table, the CSV, the plot."""

from __future__ import annotations

import csv
import os
import sys

import numpy as np
import pytest
from fastkm.cli import panels
from fastkm.cli.app import app
from typer.testing import CliRunner

import fastkm
from fastkm import codec, metrics
from fastkm.images import png_bytes, read_image

SIZE_FORMAT = "fkm" if hasattr(codec, "encode") else "png"


def run(*args: object):
    return CliRunner().invoke(app, [str(a) for a in args])


def encoded_size(q) -> int:
    return len(codec.encode(q)) if SIZE_FORMAT == "fkm" else len(png_bytes(q))


def test_compare_draws_original_and_each_k(tmp_path, small_photo, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = run("compare", small_photo, "-k", 3, "-k", 9)
    assert result.exit_code == 0, result.output
    sheet = read_image(tmp_path / "compare.png")  # the documented default name
    image = read_image(small_photo)
    # One row of three cells, each a 160x100 panel (at least as wide as its caption) with
    # the caption below.
    gap = panels._GAP
    cell = (sheet.shape[1] - 4 * gap) / 3
    assert cell == int(cell) and cell >= 160
    cell = int(cell)
    assert sheet.shape[0] > 100 + 2 * gap
    np.testing.assert_array_equal(sheet[gap:gap + 100, gap:gap + 160], image)
    for n, k in enumerate((3, 9), start=1):
        q = fastkm.quantize(image, k, seed=0)
        x = gap + n * (cell + gap)
        np.testing.assert_array_equal(sheet[gap:gap + 100, x:x + 160], q.to_image())
        row = next(line for line in result.stdout.splitlines() if line.strip().startswith(str(k)))
        assert f"{metrics.psnr(image, q.to_image()):.2f}" in row
        assert f"{encoded_size(q):,}" in row


def test_compare_reduces_wide_panels_but_measures_the_full_image(tmp_path, small_photo):
    from PIL import Image

    wide = tmp_path / "wide.png"
    Image.fromarray(np.tile(read_image(small_photo)[:50], (1, 7, 1))).save(wide)  # 1120x50
    result = run("compare", wide, "-k", 2, "-o", tmp_path / "c.png")
    assert result.exit_code == 0, result.output
    sheet = read_image(tmp_path / "c.png")
    assert sheet.shape[1] == 2 * panels.PANEL_WIDTH + 3 * panels._GAP
    q = fastkm.quantize(read_image(wide), 2, seed=0)
    assert f"{encoded_size(q):,}" in result.stdout


def test_compare_small_pictures_get_cells_as_wide_as_their_captions(tmp_path, rng):
    from PIL import Image

    tiny = tmp_path / "tiny.png"
    rgba = rng.integers(0, 256, size=(12, 20, 4), dtype=np.uint8)
    Image.fromarray(rgba).save(tiny)
    result = run("compare", tiny, "-k", 2, "-k", 5, "-o", tmp_path / "t.png", "-q")
    assert result.exit_code == 0, result.output
    sheet = read_image(tmp_path / "t.png")
    assert sheet.shape[2] == 3  # alpha is shown over a checkerboard, not stored
    assert sheet.shape[1] > 3 * 100, "three captions side by side need more than 3 x 20 px"


def test_compare_lays_many_panels_out_in_a_grid(tmp_path, small_photo):
    result = run("compare", small_photo, "-k", 2, "-k", 3, "-k", 4, "-o", tmp_path / "g.png", "-q")
    assert result.exit_code == 0 and result.stdout == ""
    sheet = read_image(tmp_path / "g.png")
    gap = panels._GAP
    cell = (sheet.shape[1] - 3 * gap) // 2  # 4 panels: 2 x 2
    assert sheet.shape[1] == 2 * cell + 3 * gap and cell >= 160
    cell_h = (sheet.shape[0] - 3 * gap) // 2
    image = read_image(small_photo)
    np.testing.assert_array_equal(sheet[gap:gap + 100, gap:gap + 160], image)
    # K = 4 is the fourth panel: second row, second column.
    y, x = 2 * gap + cell_h, 2 * gap + cell
    np.testing.assert_array_equal(sheet[y:y + 100, x:x + 160],
                                  fastkm.quantize(image, 4, seed=0).to_image())


def test_compare_refuses_existing_output_and_bad_k(tmp_path, small_photo):
    out = tmp_path / "c.png"
    out.write_bytes(b"x")
    result = run("compare", small_photo, "-k", 4, "-o", out)
    assert result.exit_code == 1 and "already exists" in result.stderr
    result = run("compare", small_photo, "-k", 4, "-k", 0, "-o", tmp_path / "d.png")
    assert result.exit_code == 1
    assert result.stderr.strip() == "error: -k/--colors must be between 1 and 256, got 0"
    assert os.listdir(tmp_path) == ["c.png"] and out.read_bytes() == b"x"


def test_sweep_table_and_csv_match_independent_measurements(tmp_path, small_photo):
    table = tmp_path / "s.csv"
    result = run("sweep", small_photo, "--colors", "8,2,4", "--csv", table)
    assert result.exit_code == 0, result.output
    image = read_image(small_photo)
    with open(table, newline="") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["k"]) for r in rows] == [2, 4, 8]
    for r in rows:
        q = fastkm.quantize(image, int(r["k"]), seed=0)
        n_bytes = encoded_size(q)
        assert int(r["bytes"]) == n_bytes
        assert float(r["mse"]) == pytest.approx(metrics.mse(image, q.to_image()), rel=1e-6)
        assert float(r["psnr_db"]) == pytest.approx(metrics.psnr(image, q.to_image()), rel=1e-6)
        assert float(r["bits_per_pixel"]) == pytest.approx(8 * n_bytes / image[..., 0].size,
                                                           rel=1e-6)
        assert f"{n_bytes:,}" in result.stdout
    assert "MSE" in result.stdout and "bpp" in result.stdout and "seconds" in result.stdout


def test_sweep_plot(tmp_path, small_photo):
    pytest.importorskip("matplotlib")
    result = run("sweep", small_photo, "--colors", "2,4", "-o", tmp_path / "s.png", "-q")
    assert result.exit_code == 0, result.output
    plot = read_image(tmp_path / "s.png")
    assert plot.ndim == 3 and plot.shape[0] > 200 and plot.std() > 5


def test_sweep_without_matplotlib_says_what_to_install(tmp_path, small_photo, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib now fails
    result = run("sweep", small_photo, "--colors", "2", "-o", tmp_path / "s.png",
                 "--csv", tmp_path / "s.csv")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: plotting needs matplotlib: pip install 'fastkm[plot]'")
    assert os.listdir(tmp_path) == [], "checked before any work, nothing written"
    # Without -o the table does not need matplotlib.
    assert run("sweep", small_photo, "--colors", "2", "-q").exit_code == 0


@pytest.mark.parametrize("colors, message", [
    ("2,x", "--colors takes whole numbers separated by commas, got '2,x'"),
    ("0,4", "--colors must be between 1 and 256, got 0"),
    ("4,257", "--colors must be between 1 and 256, got 257"),
])
def test_sweep_bad_colors(small_photo, colors, message):
    result = run("sweep", small_photo, "--colors", colors)
    assert result.exit_code == 1
    assert result.stderr.strip() == f"error: {message}"


def test_sweep_missing_input_and_bad_plot_name(tmp_path, small_photo):
    result = run("sweep", tmp_path / "gone.jpg", "--colors", "2")
    assert result.exit_code == 1 and "gone.jpg: no such file" in result.stderr
    result = run("sweep", small_photo, "-o", tmp_path / "plot.gif")
    assert result.exit_code == 1 and ".png, .svg or .pdf" in result.stderr
