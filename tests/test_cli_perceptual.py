"""--space and --dither on compress, compare and sweep; ΔE in the tables; compare's zoom."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from fastkm.cli import panels
from fastkm.cli.app import app
from typer.testing import CliRunner

import fastkm
from fastkm import metrics
from fastkm.images import read_image


def run(*args: object):
    return CliRunner().invoke(app, [str(a) for a in args])


def test_compress_with_oklab_and_dithering_writes_that_result(tmp_path, small_photo):
    out = tmp_path / "o.fkm"
    result = run("compress", small_photo, "-k", 8, "--space", "oklab", "--dither", "fs",
                 "-o", out)
    assert result.exit_code == 0, result.output
    image = read_image(small_photo)
    q = fastkm.quantize(image, 8, seed=0, space="oklab", dither="fs")
    back = fastkm.load(out)
    np.testing.assert_array_equal(back.palette, q.palette)
    np.testing.assert_array_equal(back.indices, q.indices)
    row = next(line for line in result.stdout.splitlines() if "o.fkm" in line)
    assert f"{metrics.psnr(image, back.to_image()):.2f}" in row
    assert f"{metrics.delta_e(image, back.to_image()):.2f}" in row
    assert "ΔE" in result.stdout


@pytest.mark.parametrize("command", ["compress", "compare", "sweep"])
@pytest.mark.parametrize("option, value", [("--space", "lab"), ("--dither", "floyd")])
def test_bad_space_or_dither_is_a_usage_error(tmp_path, small_photo, command, option, value):
    args = [command, small_photo, option, value, "-o", tmp_path / "x.png"]
    if command == "compress":
        args[2:2] = ["-k", 4]
    result = run(*args)
    assert result.exit_code == 2
    assert value in result.stderr and option in result.stderr
    assert not (tmp_path / "x.png").exists()


def test_help_documents_the_new_options():
    for command in ("compress", "compare", "sweep"):
        text = " ".join(run(command, "--help").stdout.split())
        assert "--space" in text and "oklab" in text and "--dither" in text
        assert "Floyd" in text and "Bayer" in text


def test_compare_draws_each_space_with_zoomed_crops(tmp_path, small_photo):
    out = tmp_path / "c.png"
    result = run("compare", small_photo, "-k", 6, "--space", "rgb", "--space", "oklab",
                 "-o", out)
    assert result.exit_code == 0, result.output
    sheet = read_image(out)
    image = read_image(small_photo)
    gap = panels._GAP
    cell = (sheet.shape[1] - 4 * gap) // 3
    size = panels.zoom_size(160, 100)
    assert size == 40
    y, x = panels.zoom_region(image, size)
    zoom_top = gap + 100 + gap // 2
    for n, picture in enumerate([image] + [
            fastkm.quantize(image, 6, seed=0, space=s).to_image() for s in ("rgb", "oklab")]):
        left = gap + n * (cell + gap)
        np.testing.assert_array_equal(sheet[gap:gap + 100, left:left + 160], picture)
        np.testing.assert_array_equal(sheet[zoom_top:zoom_top + 160, left:left + 160],
                                      panels.zoomed(picture, (y, x, size)))
    lines = result.stdout.splitlines()
    for space in ("rgb", "oklab"):
        q = fastkm.quantize(image, 6, seed=0, space=space)
        row = next(line for line in lines if f" {space} " in line)
        assert f"{q.delta_e:.2f}" in row and f"{q.psnr:.2f}" in row


def test_compare_without_zoom_keeps_the_plain_layout(tmp_path, small_photo):
    run("compare", small_photo, "-k", 3, "-o", tmp_path / "a.png", "-q")
    run("compare", small_photo, "-k", 3, "-o", tmp_path / "b.png", "--no-zoom", "-q")
    with_zoom, without = read_image(tmp_path / "a.png"), read_image(tmp_path / "b.png")
    assert with_zoom.shape[0] - without.shape[0] == 160 + panels._GAP // 2
    assert with_zoom.shape[1] >= without.shape[1]  # the caption also says where the zoom is


def test_zoom_region_finds_the_smooth_gradient():
    rng = np.random.default_rng(0)
    image = np.zeros((200, 400, 3), np.uint8)
    image[:, :200] = rng.integers(0, 256, (200, 200, 1))  # texture
    image[:, 200:] = np.linspace(40, 200, 200).astype(np.uint8)[None, :, None]  # ramp
    image[:40, 200:] = 90  # a flat patch: no variation, nothing to see
    y, x = panels.zoom_region(image, 64)
    assert x >= 200 and y + 64 <= 200
    # A flat picture has no gradient anywhere: some window is still returned.
    assert panels.zoom_region(np.full((50, 50), 7, np.uint8), 16) in {
        (a, b) for a in range(0, 35, 4) for b in range(0, 35, 4)}


def test_sweep_reports_delta_e_in_table_and_csv(tmp_path, small_photo):
    table = tmp_path / "s.csv"
    result = run("sweep", small_photo, "--colors", "4,8", "--space", "oklab",
                 "--dither", "ordered", "--csv", table)
    assert result.exit_code == 0, result.output
    image = read_image(small_photo)
    with open(table, newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0])[-2:] == ["delta_e", "k_requested"]
    for r in rows:
        q = fastkm.quantize(image, int(r["k"]), seed=0, space="oklab", dither="ordered")
        assert float(r["delta_e"]) == pytest.approx(metrics.delta_e(image, q.to_image()),
                                                    rel=1e-6)
        assert f"{q.delta_e:.2f}" in result.stdout
    assert "ΔE" in result.stdout
