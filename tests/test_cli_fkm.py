"""The .fkm paths of the CLI: compress -> .fkm -> decode -> PNG, info, damaged files."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest
from fastkm.cli.app import app
from typer.testing import CliRunner

import fastkm
from fastkm import codec
from fastkm.images import read_image


def run(*args: object):
    return CliRunner().invoke(app, [str(a) for a in args])


def one_error_line(result) -> str:
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.output
    return lines[0]


@pytest.fixture(scope="module")
def fkm_file(tmp_path_factory, demo_photo):
    """path-640.jpg compressed with K = 16 through the CLI."""
    path = tmp_path_factory.mktemp("fkm") / "path-640.fkm"
    result = run("compress", demo_photo, "-k", 16, "-o", path)
    assert result.exit_code == 0, result.output
    return path


def test_compress_writes_the_quantized_image(fkm_file, demo_photo, quantized):
    q = quantized(demo_photo, 16)
    back = codec.load(fkm_file)
    np.testing.assert_array_equal(back.palette, q.palette)
    np.testing.assert_array_equal(back.indices, q.indices)


def test_compress_reports_the_file_size(tmp_path, small_photo, quantized):
    out = tmp_path / "s.fkm"
    result = run("compress", small_photo, "-k", 8, "-o", out)
    assert result.exit_code == 0, result.output
    assert f"{out.stat().st_size:,}" in result.stdout
    assert len(codec.encode(quantized(small_photo, 8))) == out.stat().st_size


def test_default_output_is_fkm_beside_the_input(tmp_path, small_photo, quantized):
    source = tmp_path / "pic.png"
    shutil.copy(small_photo, source)
    result = run("compress", source, "-k", 4, "-q")
    assert result.exit_code == 0, result.output
    assert sorted(os.listdir(tmp_path)) == ["pic.fkm", "pic.png"]
    np.testing.assert_array_equal(codec.load(tmp_path / "pic.fkm").to_image(),
                                  quantized(small_photo, 4).to_image())


def test_decode_gives_the_quantized_image_bit_exactly(fkm_file, demo_photo, tmp_path,
                                                      quantized):
    out = tmp_path / "back.png"
    result = run("decode", fkm_file, "-o", out)
    assert result.exit_code == 0, result.output
    assert "640x400" in result.stdout and "16 colours" in result.stdout
    np.testing.assert_array_equal(read_image(out), quantized(demo_photo, 16).to_image())


def test_decode_default_output_and_refusal_to_overwrite(fkm_file, tmp_path):
    source = tmp_path / "x.fkm"
    shutil.copy(fkm_file, source)
    assert run("decode", source, "-q").exit_code == 0
    assert (tmp_path / "x.png").exists()
    line = one_error_line(run("decode", source))
    assert "x.png: already exists (use --force to overwrite)" in line
    assert run("decode", source, "--force", "-q").exit_code == 0


def test_decode_of_a_grey_fkm_writes_greyscale(tmp_path, rng):
    img = fastkm.PaletteImage(np.array([[0], [90], [255]], np.uint8),
                              rng.integers(0, 3, size=(6, 7), dtype=np.uint8))
    codec.save(tmp_path / "g.fkm", img)
    assert run("decode", tmp_path / "g.fkm", "-o", tmp_path / "g.png", "-q").exit_code == 0
    np.testing.assert_array_equal(read_image(tmp_path / "g.png"), img.to_image()[..., 0])


def test_info_shows_header_palette_and_sizes(fkm_file):
    result = run("info", fkm_file)
    assert result.exit_code == 0, result.output
    out = result.stdout
    info = codec.read_info(fkm_file.read_bytes())
    size = fkm_file.stat().st_size
    assert "640x400" in out and "K = 16" in out and "3 channels (RGB)" in out
    assert f"{size:,} bytes" in out
    assert f"{8 * size / (640 * 400):.3f} bits per pixel" in out
    for colour in info["palette"]:
        assert "#{:02x}{:02x}{:02x}".format(*colour) in out
    assert "palette (16 colours)" in out


@pytest.mark.parametrize("damage", ["flip", "cut", "text"])
def test_damaged_fkm_is_one_line_error(fkm_file, tmp_path, damage):
    data = bytearray(fkm_file.read_bytes())
    if damage == "flip":
        data[len(data) // 2] ^= 0x5A
    elif damage == "cut":
        data = data[: len(data) // 3]
    else:
        data = bytearray(b"hello, not an fkm file\n")
    bad = tmp_path / "bad.fkm"
    bad.write_bytes(bytes(data))
    for args in (("info", bad), ("decode", bad, "-o", tmp_path / "bad.png")):
        line = one_error_line(run(*args))
        assert "bad.fkm: not a valid .fkm file" in line
    assert sorted(os.listdir(tmp_path)) == ["bad.fkm"], "nothing may be left behind"


def test_missing_fkm(tmp_path):
    assert "nope.fkm: no such file" in one_error_line(run("info", tmp_path / "nope.fkm"))
    assert "nope.fkm: no such file" in one_error_line(run("decode", tmp_path / "nope.fkm"))


def test_decode_writes_png_only(fkm_file, tmp_path):
    line = one_error_line(run("decode", fkm_file, "-o", tmp_path / "x.jpg"))
    assert "decode writes PNG" in line


@pytest.mark.parametrize("channels", [1, 4])
def test_grey_and_rgba_inputs_round_trip_through_fkm_and_png(tmp_path, rng, channels):
    from PIL import Image

    shape = (30, 40) if channels == 1 else (30, 40, 4)
    image = rng.integers(0, 256, size=shape, dtype=np.uint8)
    source = tmp_path / "in.png"
    Image.fromarray(image).save(source)
    q = fastkm.quantize(image, 6, seed=0)
    assert run("compress", source, "-k", 6, "-o", tmp_path / "q.fkm", "-q").exit_code == 0
    assert run("decode", tmp_path / "q.fkm", "-o", tmp_path / "d.png", "-q").exit_code == 0
    assert run("compress", source, "-k", 6, "-o", tmp_path / "q.png", "-q").exit_code == 0
    want = q.to_image()[..., 0] if channels == 1 else q.to_image()
    np.testing.assert_array_equal(read_image(tmp_path / "d.png"), want)
    np.testing.assert_array_equal(read_image(tmp_path / "q.png"), want)
    assert codec.load(tmp_path / "q.fkm").channels == channels


def test_picture_too_large_for_fkm_is_refused_before_quantizing(tmp_path, small_photo,
                                                                monkeypatch):
    from fastkm import images

    monkeypatch.setattr(codec, "MAX_PIXELS", 160 * 100 - 1)
    called = []
    monkeypatch.setattr(fastkm, "quantize", lambda *a, **k: called.append(1))
    # From the header: the pixels are not even decoded.
    monkeypatch.setattr(images, "read_image", lambda *a, **k: called.append(2))
    line = one_error_line(run("compress", small_photo, "-k", 4, "-o", tmp_path / "big.fkm"))
    assert "160x100 = 16,000 pixels is more than a .fkm file holds (15,999)" in line
    assert called == [] and os.listdir(tmp_path) == []
    # The batch path (here --jobs 1, in this process) checks the header too.
    result = run("compress", small_photo, "-k", 4, "-o", tmp_path / "big.fkm", "--jobs", 1,
                 "--csv", tmp_path / "r.csv")
    assert result.exit_code == 1 and "is more than a .fkm file holds" in result.stderr
    assert called == [] and os.listdir(tmp_path) == ["r.csv"]


def test_compressing_an_fkm_file_points_to_decode(fkm_file, tmp_path):
    line = one_error_line(run("compress", fkm_file, "-k", 4, "-o", tmp_path / "x.png"))
    assert "is a .fkm file already" in line and "fastkm decode" in line
