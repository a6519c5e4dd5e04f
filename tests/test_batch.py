"""fastkm.batch and compress --jobs: many files in worker processes, one result each."""

from __future__ import annotations

import csv
import shutil

import numpy as np
import pytest
from fastkm.cli.app import app
from typer.testing import CliRunner

import fastkm
from fastkm.batch import compress_many
from fastkm.images import read_image


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, demo_photo):
    from PIL import Image

    folder = tmp_path_factory.mktemp("batch_in")
    paths = []
    with Image.open(demo_photo) as im:
        for i, box in enumerate([(0, 0, 120, 90), (200, 150, 330, 240), (400, 200, 520, 300),
                                 (100, 300, 220, 400), (500, 0, 640, 100)]):
            paths.append(folder / f"p{i}.png")
            im.crop(box).save(paths[-1])
    return paths


def test_every_output_is_quantize_of_its_input(tmp_path, inputs):
    seen = []
    results = compress_many(inputs, tmp_path, 8, fmt="png", jobs=2, seed=5,
                            on_result=seen.append)
    assert [r.source for r in results] == [str(p) for p in inputs]
    assert sorted(r.source for r in seen) == sorted(str(p) for p in inputs)
    for path, r in zip(inputs, results):
        assert r.ok and not r.skipped
        want = fastkm.quantize(read_image(path), 8, seed=5)
        np.testing.assert_array_equal(read_image(tmp_path / f"{path.stem}.png"), want.to_image())
        assert r.psnr == pytest.approx(want.psnr, rel=1e-12)
        assert (r.width, r.height) == (want.indices.shape[1], want.indices.shape[0])
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_bad_file_others_done_exit_1_and_csv(tmp_path, inputs):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not a png")
    out = tmp_path / "out"
    out.mkdir()
    report = tmp_path / "report.csv"
    result = CliRunner().invoke(app, ["compress", str(inputs[0]), str(bad), str(inputs[1]),
                                      "-k", "4", "--out-dir", str(out), "--jobs", "2",
                                      "--csv", str(report), "-q"])
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 2 and "bad.png: not an image file" in lines[0]
    assert lines[1] == "error: 1 of 3 files failed"
    assert sorted(p.name for p in out.iterdir()) == ["p0.fkm", "p1.fkm"]
    for path in inputs[:2]:
        q = fastkm.load(out / f"{path.stem}.fkm")
        np.testing.assert_array_equal(q.to_image(),
                                      fastkm.quantize(read_image(path), 4, seed=0).to_image())
    with open(report, newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["status"] for r in rows] == ["ok", "error", "ok"]
    assert rows[0]["source"] == str(inputs[0]) and int(rows[0]["n_bytes"]) == \
        (out / "p0.fkm").stat().st_size
    assert "not an image file" in rows[1]["error"]


def test_skip_existing_resumes(tmp_path, inputs):
    first = compress_many(inputs[:2], tmp_path, 4, fmt="png", jobs=1)
    assert all(r.ok for r in first)
    stamp = (tmp_path / "p0.png").stat().st_mtime_ns
    result = CliRunner().invoke(app, ["compress", *map(str, inputs), "-k", "4", "--out-dir",
                                      str(tmp_path), "--format", "png", "--skip-existing",
                                      "-q", "--jobs", "2"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "p0.png").stat().st_mtime_ns == stamp
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"p{i}.png" for i in range(5)]
    # Without --skip-existing (or --force) existing outputs are refused before any work.
    result = CliRunner().invoke(app, ["compress", *map(str, inputs), "-k", "4", "--out-dir",
                                      str(tmp_path), "--format", "png", "-q"])
    assert result.exit_code == 1 and "already exists" in result.stderr


def test_interrupt_leaves_no_partial_output(tmp_path, inputs):
    many = []
    for i in range(3):
        for p in inputs:
            many.append(tmp_path / f"{p.stem}_{i}.png")
            shutil.copy(p, many[-1])
    out = tmp_path / "out"
    out.mkdir()

    def stop(result):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        compress_many(many, out, 16, jobs=2, on_result=stop)
    written = list(out.iterdir())
    assert len(written) < len(many)
    assert not [p for p in written if p.name.startswith(".")]  # no temporary files left
    for path in written:  # every output there is complete
        fastkm.load(path)


def test_errors(tmp_path, inputs):
    with pytest.raises(ValueError, match="would both be written"):
        compress_many([inputs[0], inputs[0]], tmp_path, 4)
    with pytest.raises(ValueError, match="jobs must be >= 1"):
        compress_many(inputs, tmp_path, 4, jobs=0)
    result = CliRunner().invoke(app, ["compress", *map(str, inputs), "-k", "4", "--out-dir",
                                      str(tmp_path), "--jobs", "0"])
    assert result.exit_code == 1 and "--jobs must be at least 1" in result.stderr


def test_pool_takes_the_largest_files_first(tmp_path, monkeypatch):
    """A large photo handed out last would keep one worker busy alone at the end."""
    from PIL import Image

    from fastkm import batch

    rng = np.random.default_rng(0)
    sizes = {"a.png": 8, "b.png": 64, "c.png": 16, "d.png": 32}
    paths = []
    for name, side in sizes.items():
        Image.fromarray(rng.integers(0, 256, (side, side, 3), dtype=np.uint8)).save(
            tmp_path / name)
        paths.append(tmp_path / name)
    seen = []
    monkeypatch.setattr(batch, "_run_pool",
                        lambda jobs, todo, args, *rest, **kw: seen.extend(a[0].name for a in args))
    compress_many(paths, tmp_path / "out", 4, jobs=2)
    assert seen == ["b.png", "d.png", "c.png", "a.png"]


def test_a_worker_that_dies_fails_its_file_only(tmp_path, inputs, monkeypatch):
    """kill -9 / the OOM killer on one worker: that file is reported, the pool restarted,
    the other files done, the CSV and the summary written, no worker process left over."""
    import multiprocessing

    from fastkm import batch

    monkeypatch.setattr(batch, "_KILL_WORKER_ON", inputs[2].name)
    before = set(multiprocessing.active_children())
    out = tmp_path / "out"
    out.mkdir()
    report = tmp_path / "report.csv"
    result = CliRunner().invoke(app, ["compress", *map(str, inputs), "-k", "4", "--out-dir",
                                      str(out), "--jobs", "2", "--csv", str(report), "-q"])
    assert result.exit_code == 1, result.output
    assert result.stderr.strip().splitlines() == [
        f"error: {inputs[2]}: worker process died (killed or out of memory)",
        "error: 1 of 5 files failed"]
    assert sorted(p.name for p in out.iterdir()) == ["p0.fkm", "p1.fkm", "p3.fkm", "p4.fkm"]
    for path in inputs[:2] + inputs[3:]:
        np.testing.assert_array_equal(fastkm.load(out / f"{path.stem}.fkm").to_image(),
                                      fastkm.quantize(read_image(path), 4, seed=0).to_image())
    with open(report, newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["status"] for r in rows] == ["ok", "ok", "error", "ok", "ok"]
    assert "worker process died" in rows[2]["error"]
    assert set(multiprocessing.active_children()) <= before
