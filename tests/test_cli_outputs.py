"""Output names and option values are checked before any work; writes fail with the output's
name; the CSV reports of compress and sweep."""

from __future__ import annotations

import csv
import errno
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from fastkm.cli.app import app
from PIL import Image
from typer.testing import CliRunner

from fastkm.images import read_image


def run(*args: object):
    return CliRunner().invoke(app, [str(a) for a in args])


def one_error_line(result, code: int = 1) -> str:
    assert result.exit_code == code, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.output
    return lines[0]


@pytest.fixture
def photo(tmp_path, small_photo) -> Path:
    """A copy of the small photo in this test's folder, as a JPEG-named PNG would not be."""
    path = tmp_path / "photo.png"
    shutil.copy(small_photo, path)
    return path


# ------------------------------------------------------------------------ --csv of compress

def test_csv_must_be_a_csv_name_so_an_input_or_output_is_never_replaced(tmp_path, photo):
    before = photo.read_bytes()
    line = one_error_line(run("compress", photo, "-k", 8, "--csv", photo, "-q"))
    assert line == f"error: --csv: expected a .csv file name, got {photo}"
    line = one_error_line(run("compress", photo, "-k", 8, "-o", tmp_path / "p2.png",
                              "--csv", tmp_path / "p2.png", "-q"))
    assert line == f"error: --csv: expected a .csv file name, got {tmp_path / 'p2.png'}"
    assert photo.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["photo.png"]


def test_csv_that_is_an_input_is_refused_even_with_force(tmp_path, photo):
    # Pillow reads by content, so an image may well be named .csv.
    odd = tmp_path / "pic.csv"
    shutil.copy(photo, odd)
    line = one_error_line(run("compress", odd, "-k", 8, "-o", tmp_path / "o.png", "--csv", odd,
                              "--force", "-q"))
    assert line == (f"error: {odd}: is an input of this command; an input is never "
                    "overwritten, even with --force (choose another output name)")
    assert odd.read_bytes() == photo.read_bytes()
    assert not (tmp_path / "o.png").exists()


@pytest.mark.parametrize("kind, message", [
    ("missing folder", "r.csv: folder {d}/nodir does not exist"),
    ("folder", "r.csv: is a folder; give a file name"),
    ("existing", "r.csv: already exists (use --force to overwrite)"),
])
def test_csv_is_checked_with_the_outputs_before_any_work(tmp_path, photo, kind, message):
    report = tmp_path / "nodir" / "r.csv" if kind == "missing folder" else tmp_path / "r.csv"
    if kind == "folder":
        report.mkdir()
    elif kind == "existing":
        report.write_text("old")
    line = one_error_line(run("compress", photo, "-k", 8, "-o", tmp_path / "out.png",
                              "--csv", report, "-q"))
    assert line.endswith(message.format(d=tmp_path)), line
    assert not (tmp_path / "out.png").exists(), "no work before the names are checked"
    if report.is_file():
        assert report.read_text() == "old"


def test_existing_csv_is_replaced_with_force(tmp_path, photo):
    report = tmp_path / "r.csv"
    report.write_text("old")
    result = run("compress", photo, "-k", 8, "-o", tmp_path / "out.png", "--csv", report,
                 "--force", "-q")
    assert result.exit_code == 0, result.output
    with open(report, newline="") as f:
        rows = list(csv.DictReader(f))
    assert [(r["source"], r["status"]) for r in rows] == [(str(photo), "ok")]


# ------------------------------------------------------------------------ output = input

def test_output_that_is_its_input_is_refused_even_with_force(tmp_path, photo):
    other = tmp_path / "b.png"
    shutil.copy(photo, other)
    before = photo.read_bytes()
    for force in ([], ["--force"]):
        line = one_error_line(run("compress", photo, other, "-k", 16, "--format", "png",
                                  *force))
        assert line == (f"error: {photo}: is an input of this command; an input is never "
                        "overwritten, even with --force (choose another output name)")
    os.symlink(photo, tmp_path / "link.png")
    line = one_error_line(run("compress", tmp_path / "link.png", "-k", 4, "-o", photo, "-f"))
    assert "photo.png: is an input of this command" in line
    assert photo.read_bytes() == before and other.read_bytes() == before


def test_decode_refuses_to_write_over_its_input(tmp_path, photo):
    # A PNG is not a .fkm file: that is what is wrong, not the default output's name.
    line = one_error_line(run("decode", photo, "--force"))
    assert line.startswith(f"error: {photo}: not a valid .fkm file: bad magic")
    # A real .fkm file named .png: its default output would be itself.
    disguised = tmp_path / "disguised.png"
    assert run("compress", photo, "-k", 2, "-o", tmp_path / "x.fkm", "-q").exit_code == 0
    (tmp_path / "x.fkm").rename(disguised)
    line = one_error_line(run("decode", disguised, "--force"))
    assert line.startswith(f"error: {disguised}: is an input of this command")
    assert run("decode", disguised, "-o", tmp_path / "back.png").exit_code == 0


def test_sweep_and_compare_refuse_to_write_over_their_input(tmp_path, photo):
    assert "is an input" in one_error_line(run("sweep", photo, "-k", 2, "-o", photo, "-f"))
    assert "is an input" in one_error_line(run("compare", photo, "-k", 2, "-o", photo, "-f"))


# ------------------------------------------------------------------------ option values

@pytest.mark.parametrize("option, value, message", [
    ("--seed", "-1", "--seed must be >= 0, got -1"),
    ("--tol", "inf", "--tol must be a finite number >= 0, got inf"),
    ("--tol", "nan", "--tol must be a finite number >= 0, got nan"),
])
def test_bad_option_values_are_one_error_before_any_file_is_read(tmp_path, photo, option,
                                                                   value, message):
    missing = tmp_path / "missing.png"  # would give its own error if anything were read
    result = run("compress", photo, missing, "-k", 4, "--out-dir", tmp_path / "..",
                 option, value)
    assert one_error_line(result) == f"error: {message}"


@pytest.mark.parametrize("command", ["sweep", "compare"])
def test_negative_seed_in_sweep_and_compare(tmp_path, photo, command):
    result = run(command, photo, "-k", 2, "-o", tmp_path / "x.png", "--seed", -5)
    assert one_error_line(result) == "error: --seed must be >= 0, got -5"
    assert not (tmp_path / "x.png").exists()


# ------------------------------------------------------------------------ --shared-palette

@pytest.mark.parametrize("extra, named", [
    (["--csv", "r.csv"], "--csv"), (["--skip-existing"], "--skip-existing"),
    (["--jobs", "2"], "--jobs"), (["--scheduler", "local"], "--scheduler"),
    (["--csv", "r.csv", "-j", "3"], "--csv, --jobs"),
])
def test_shared_palette_refuses_options_it_cannot_honour(tmp_path, photo, extra, named):
    other = tmp_path / "b.png"
    shutil.copy(photo, other)
    out = tmp_path / "out"
    out.mkdir()
    result = run("compress", photo, other, "-k", 4, "--shared-palette", "--out-dir", out,
                 *[str(tmp_path / e) if e == "r.csv" else e for e in extra])
    assert result.exit_code == 2, result.output
    assert f"cannot be combined with {named}" in " ".join(result.stderr.replace("│", " ")
                                                                     .split())
    assert os.listdir(out) == []


# ------------------------------------------------------------------------ failed writes

def full_disk_for(monkeypatch, target: Path) -> None:
    from fastkm import fileio

    real_replace = os.replace

    def replace(src, dst):
        if Path(dst) == target:  # only our output; Numba's cache renames files too
            raise OSError(errno.ENOSPC, "No space left on device", str(src))
        return real_replace(src, dst)

    monkeypatch.setattr(fileio.os, "replace", replace)


@pytest.mark.parametrize("batch", [False, True])
def test_a_failed_write_names_the_output_not_the_input_or_a_temporary(tmp_path, photo,
                                                                        monkeypatch, batch):
    out = tmp_path / "out"
    out.mkdir()
    full_disk_for(monkeypatch, out / "photo.png")
    extra = ["--csv", tmp_path / "r.csv", "--jobs", 1] if batch else []
    result = run("compress", photo, "-k", 4, "-o", out / "photo.png", *extra)
    line = result.stderr.strip().splitlines()[0]
    assert result.exit_code == 1
    assert line == f"error: {out / 'photo.png'}: cannot write: no space left on device"
    assert os.listdir(out) == []


def test_a_folder_that_cannot_take_the_temporary_file(tmp_path, photo, monkeypatch):
    from fastkm import fileio

    def no_folder(prefix, suffix, dir):
        path = os.path.join(dir, prefix + "6phg1605" + suffix)
        raise FileNotFoundError(errno.ENOENT, "No such file or directory", path)

    monkeypatch.setattr(fileio.tempfile, "mkstemp", no_folder)
    line = one_error_line(run("compress", photo, "-k", 4, "-o", tmp_path / "x.png"))
    assert line == f"error: {tmp_path / 'x.png'}: cannot write: no such file or directory"


# ------------------------------------------------------------------------ sweep CSV

def test_sweep_csv_gives_the_requested_and_the_achieved_k(tmp_path):
    Image.new("RGB", (1, 1), (10, 20, 30)).save(tmp_path / "1x1.png")
    result = run("sweep", tmp_path / "1x1.png", "-k", "1,2,256", "--csv", tmp_path / "s.csv")
    assert result.exit_code == 0, result.output
    with open(tmp_path / "s.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [(r["k_requested"], r["k"]) for r in rows] == [("1", "1"), ("2", "1"), ("256", "1")]
    assert "colours" in result.stdout and "256" in result.stdout


def test_colour_keyed_png_keeps_its_transparency_through_compress(tmp_path):
    rgb = np.zeros((4, 6, 3), np.uint8)
    rgb[:, :3] = (200, 30, 30)
    Image.fromarray(rgb).save(tmp_path / "key.png", transparency=(0, 0, 0))
    result = run("compress", tmp_path / "key.png", "-k", 2, "-o", tmp_path / "q.png", "-q")
    assert result.exit_code == 0, result.output
    back = read_image(tmp_path / "q.png")
    assert back.shape == (4, 6, 4)
    np.testing.assert_array_equal(back[..., 3], np.where(rgb[..., 0] == 0, 0, 255))


def test_tiny_files_are_not_called_smaller_and_one_colour_is_singular(tmp_path):
    from PIL import Image

    Image.new("RGB", (1, 1), (10, 20, 30)).save(tmp_path / "one.png")
    assert run("compress", tmp_path / "one.png", "-k", 4, "-o", tmp_path / "one.fkm",
               "-q").exit_code == 0
    shown = run("info", tmp_path / "one.fkm")
    assert shown.exit_code == 0 and "x larger than raw 24-bit" in shown.stdout
    decoded = run("decode", tmp_path / "one.fkm", "-o", tmp_path / "back.png")
    assert decoded.exit_code == 0 and ", 1 colour, " in decoded.stdout
