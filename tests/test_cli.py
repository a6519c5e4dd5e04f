"""`fastkm compress` and the CLI's error behaviour, driven through the real commands."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from fastkm.cli.app import app
from typer.testing import CliRunner

import fastkm
from fastkm import metrics
from fastkm.images import read_image


def run(*args: object):
    return CliRunner().invoke(app, [str(a) for a in args])


def assert_one_error_line(result, *fragments: str, code: int = 1) -> str:
    assert result.exit_code == code, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    for fragment in fragments:
        assert fragment in lines[0]
    assert "Traceback" not in result.output
    return lines[0]


def files_in(folder: Path) -> list[str]:
    return sorted(os.listdir(folder))


# ------------------------------------------------------------------------ success

def test_compress_to_palette_png_is_the_quantized_image(tmp_path, demo_photo, quantized):
    out = tmp_path / "p.png"
    result = run("compress", demo_photo, "-k", 16, "-o", out)
    assert result.exit_code == 0, result.output
    q = quantized(demo_photo, 16)
    back = read_image(out)
    np.testing.assert_array_equal(back, q.to_image())  # bit-exact, lossless PNG
    # The table: the output, its size and the PSNR computed independently here.
    image = read_image(demo_photo)
    row = next(line for line in result.stdout.splitlines() if "p.png" in line)
    assert "640x400" in row and " 16 " in row
    assert f"{metrics.psnr(image, back):.2f}" in row
    assert f"{out.stat().st_size:,}" in row
    assert f"{metrics.bits_per_pixel(out.stat().st_size, 400, 640):.3f}" in row
    for column in ("output", "size", "colours", "K", "PSNR dB", "bytes", "bpp",
                   "vs 24-bit", "seconds"):
        assert column in result.stdout
    assert files_in(tmp_path) == ["p.png"]


def test_compress_default_output_is_beside_the_input(tmp_path, small_photo, quantized):
    from PIL import Image

    source = tmp_path / "pic.bmp"
    Image.open(small_photo).save(source)
    result = run("compress", source, "-k", 4, "--format", "png", "-q")
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert files_in(tmp_path) == ["pic.bmp", "pic.png"]
    np.testing.assert_array_equal(read_image(tmp_path / "pic.png"),
                                  quantized(small_photo, 4).to_image())


@pytest.mark.parametrize("name", ["[1].png", ":x:.png"])
def test_table_prints_file_names_as_they_are(tmp_path, small_photo, name):
    """No Rich markup or emoji codes in names: "[1]" and ":x:" are printed, not rendered."""
    source = tmp_path / name
    shutil.copy(small_photo, source)
    target = tmp_path / (Path(name).stem + ".fkm")
    result = run("compress", source, "-k", 4, "-o", target)
    assert result.exit_code == 0, result.output
    assert str(target) in result.stdout


def test_compress_several_inputs_into_a_folder(tmp_path, small_photo, quantized):
    other = tmp_path / "other.png"
    shutil.copy(small_photo, other)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    result = run("compress", small_photo, other, "-k", 8,
                 "--out-dir", out_dir, "--format", "png")
    assert result.exit_code == 0, result.output
    assert files_in(out_dir) == ["other.png", "small.png"]
    for name in ("other.png", "small.png"):
        np.testing.assert_array_equal(read_image(out_dir / name),
                                      quantized(small_photo, 8).to_image())
        assert name in result.stdout


def test_quiet_prints_nothing_on_success(tmp_path, small_photo):
    result = run("compress", small_photo, "-k", 3, "-o", tmp_path / "q.png", "--quiet")
    assert result.exit_code == 0
    assert result.stdout == "" and result.stderr == ""


def test_seed_and_options_reach_the_quantizer(tmp_path, small_photo):
    out = tmp_path / "r.png"
    result = run("compress", small_photo, "-k", 5, "-o", out, "--init", "random", "--n-init", 2,
                 "--max-iter", 7, "--tol", 0.01, "--seed", 3)
    assert result.exit_code == 0, result.output
    q = fastkm.quantize(read_image(small_photo), 5, init="random", n_init=2, max_iter=7,
                        tol=0.01, seed=3)
    np.testing.assert_array_equal(read_image(out), q.to_image())


def test_force_overwrites(tmp_path, small_photo, quantized):
    out = tmp_path / "o.png"
    out.write_bytes(b"old")
    result = run("compress", small_photo, "-k", 4, "-o", out, "--force")
    assert result.exit_code == 0, result.output
    np.testing.assert_array_equal(read_image(out), quantized(small_photo, 4).to_image())
    assert files_in(tmp_path) == ["o.png"]


def test_every_command_has_a_manual():
    for command in ("compress", "decode", "info", "compare", "sweep"):
        result = run(command, "--help")
        assert result.exit_code == 0
        assert "Usage: " in result.stdout
    help_text = run("compress", "--help").stdout
    assert "rounding" in help_text and "--force" in help_text and "--out-dir" in help_text
    assert "fastkm" in run("--version").stdout


# ------------------------------------------------------------------------ bad input

def test_missing_input(tmp_path):
    assert_one_error_line(run("compress", tmp_path / "nope.jpg", "-k", 4, "-o", tmp_path / "x.png"),
                          "nope.jpg: no such file")
    assert files_in(tmp_path) == []


def test_text_file_named_jpg(tmp_path):
    (tmp_path / "notes.jpg").write_text("shopping list\n")
    assert_one_error_line(run("compress", tmp_path / "notes.jpg", "-k", 4, "-o", tmp_path / "x.png"),
                          "notes.jpg: not an image file")
    assert files_in(tmp_path) == ["notes.jpg"]


def test_truncated_jpeg(tmp_path, demo_photo):
    (tmp_path / "cut.jpg").write_bytes(demo_photo.read_bytes()[:50000])
    assert_one_error_line(run("compress", tmp_path / "cut.jpg", "-k", 4, "-o", tmp_path / "x.png"),
                          "cut.jpg: truncated")
    assert files_in(tmp_path) == ["cut.jpg"]


@pytest.mark.parametrize("k", [0, 100000, -3])
def test_k_out_of_range(tmp_path, small_photo, k):
    assert_one_error_line(run("compress", small_photo, "-k", k, "-o", tmp_path / "x.png"),
                          f"-k/--colors must be between 1 and 256, got {k}")
    assert files_in(tmp_path) == []


def test_k_not_a_number_is_a_usage_error(tmp_path, small_photo):
    result = run("compress", small_photo, "-k", "many", "-o", tmp_path / "x.png")
    assert result.exit_code == 2
    assert "'-k' / '--colors'" in result.stderr


def test_output_in_missing_folder(tmp_path, small_photo):
    assert_one_error_line(run("compress", small_photo, "-k", 4, "-o", tmp_path / "no" / "x.png"),
                          "x.png: folder", "does not exist")
    assert files_in(tmp_path) == []


def test_existing_output_without_force_is_kept(tmp_path, small_photo):
    out = tmp_path / "x.png"
    out.write_bytes(b"precious")
    assert_one_error_line(run("compress", small_photo, "-k", 4, "-o", out),
                          "x.png: already exists (use --force to overwrite)")
    assert out.read_bytes() == b"precious"
    assert files_in(tmp_path) == ["x.png"]


def test_unknown_output_extension(tmp_path, small_photo):
    assert_one_error_line(run("compress", small_photo, "-k", 4, "-o", tmp_path / "x.jpg"),
                          "unknown extension '.jpg'", "use .fkm or .png")


def test_output_with_several_inputs_is_a_usage_error(tmp_path, small_photo, demo_photo):
    result = run("compress", small_photo, demo_photo, "-k", 4, "-o", tmp_path / "x.png")
    assert result.exit_code == 2
    assert "--out-dir" in result.stderr
    assert files_in(tmp_path) == []


def test_output_and_out_dir_together_is_a_usage_error(tmp_path, small_photo):
    result = run("compress", small_photo, "-k", 4, "-o", tmp_path / "x.png", "--out-dir", tmp_path)
    assert result.exit_code == 2


def test_outputs_are_all_checked_before_any_work(tmp_path, small_photo, demo_photo):
    (tmp_path / "path-640.png").write_bytes(b"old")
    result = run("compress", small_photo, demo_photo, "-k", 4, "--out-dir", tmp_path,
                 "--format", "png")
    assert_one_error_line(result, "path-640.png: already exists")
    assert files_in(tmp_path) == ["path-640.png"], "small.png must not be written either"


def test_two_inputs_with_the_same_output_name(tmp_path, small_photo):
    other = tmp_path / "a"
    other.mkdir()
    shutil.copy(small_photo, other / "small.png")
    result = run("compress", small_photo, other / "small.png", "-k", 4, "--out-dir", tmp_path,
                 "--format", "png")
    assert_one_error_line(result, "would both be written to")


def test_one_bad_input_among_several_the_rest_is_done(tmp_path, small_photo):
    (tmp_path / "bad.jpg").write_text("not an image")
    shutil.copy(small_photo, tmp_path / "later.png")
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    result = run("compress", small_photo, tmp_path / "bad.jpg", tmp_path / "later.png", "-k", 4,
                 "--out-dir", out_dir, "--format", "png")
    # One line for the bad file, then the count at the end.
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 2, result.stderr
    assert lines[0].startswith("error: ") and "bad.jpg: not an image file" in lines[0]
    assert lines[1] == "error: 1 of 3 files failed"
    assert files_in(out_dir) == ["later.png", "small.png"]
    assert "small.png" in result.stdout and "later.png" in result.stdout


def test_debug_shows_the_exception(tmp_path):
    result = run("compress", tmp_path / "nope.jpg", "-k", 4, "-o", tmp_path / "x.png", "--debug")
    assert result.exit_code == 1
    assert result.exception is not None and "no such file" in str(result.exception)


# ------------------------------------------------------------------------ the installed script

def _script() -> str:
    path = Path(sys.executable).with_name("fastkm")
    found = str(path) if path.exists() else shutil.which("fastkm")
    assert found, "the fastkm console script is not installed (pip install -e .)"
    return found


def test_installed_script_exit_codes(tmp_path, small_photo, quantized):
    script = _script()
    ok = subprocess.run([script, "compress", str(small_photo), "-k", "4", "-o",
                         str(tmp_path / "s.png")], capture_output=True, text=True, timeout=300)
    assert ok.returncode == 0, ok.stderr
    assert ok.stderr == "", f"success must be silent on stderr, got: {ok.stderr!r}"
    assert "s.png" in ok.stdout
    np.testing.assert_array_equal(read_image(tmp_path / "s.png"),
                                  quantized(small_photo, 4).to_image())

    missing = subprocess.run([script, "compress", str(tmp_path / "none.jpg"), "-k", "4"],
                             capture_output=True, text=True, timeout=300)
    assert missing.returncode == 1
    assert missing.stderr.strip().splitlines() == [f"error: {tmp_path / 'none.jpg'}: no such file"]
    assert missing.stdout == ""

    usage = subprocess.run([script, "compress", str(small_photo), "--colours", "4"],
                           capture_output=True, text=True, timeout=300)
    assert usage.returncode == 2
    assert "Traceback" not in usage.stderr


def test_a_failed_write_leaves_nothing_behind(tmp_path, small_photo, monkeypatch):
    import errno

    from fastkm import fileio

    real_replace = os.replace
    target = tmp_path / "x.png"

    def full_disk(src, dst):
        if Path(dst) == target:  # only our output; Numba's cache renames files too
            raise OSError(errno.ENOSPC, "No space left on device", str(dst))
        return real_replace(src, dst)

    monkeypatch.setattr(fileio.os, "replace", full_disk)
    result = run("compress", small_photo, "-k", 4, "-o", tmp_path / "x.png")
    assert_one_error_line(result, "x.png: cannot write: no space left on device")
    assert files_in(tmp_path) == [], "neither the output nor its temporary file may remain"
