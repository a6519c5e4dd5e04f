"""fastkm.batch on a real dask.distributed LocalCluster: a killed worker's files are retried
and every output is there, whole."""

from __future__ import annotations

import os
import shutil
import signal
import threading
from pathlib import Path

import numpy as np
import pytest

import fastkm
from fastkm.batch import compress_many
from fastkm.images import read_image

distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def cluster():
    from distributed import Client, LocalCluster

    # Allow a worker to be lost more than once before a task is declared failed.
    with LocalCluster(n_workers=2, threads_per_worker=2, processes=True,
                      dashboard_address=":0") as cluster, Client(cluster) as client:
        yield cluster, client


@pytest.fixture(scope="module")
def crops(tmp_path_factory, demo_photo):
    from PIL import Image

    folder = tmp_path_factory.mktemp("dask_in")
    paths = []
    with Image.open(demo_photo) as im:
        for i in range(12):
            x, y = (i * 37) % 500, (i * 23) % 300
            paths.append(folder / f"c{i:02d}.png")
            im.crop((x, y, x + 140, y + 100)).save(paths[-1])
    return paths


def test_batch_on_dask_equals_local(tmp_path, cluster, crops):
    _, client = cluster
    results = compress_many(crops[:4], tmp_path, 8, fmt="png", client=client, seed=1)
    assert all(r.ok for r in results)
    for path in crops[:4]:
        want = fastkm.quantize(read_image(path), 8, seed=1)
        np.testing.assert_array_equal(read_image(tmp_path / f"{path.stem}.png"), want.to_image())


def test_killed_worker_still_gives_every_output(tmp_path, cluster, crops):
    _, client = cluster
    many = []
    for i in range(3):
        for p in crops:
            many.append(tmp_path / "in" / f"{p.stem}_{i}.png")
            many[-1].parent.mkdir(exist_ok=True)
            shutil.copy(p, many[-1])
    out = tmp_path / "out"
    out.mkdir()
    killed = []

    def kill_one(result):
        # After the first file is done, kill one worker process (SIGKILL: no clean-up).
        if not killed:
            pids = client.run(os.getpid)
            pid = next(iter(pids.values()))
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)

    lock = threading.Lock()

    def on_result(result):
        with lock:
            kill_one(result)

    results = compress_many(many, out, 16, client=client, on_result=on_result, retries=3)
    assert killed
    assert all(r.ok for r in results), [r.error for r in results if not r.ok]
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted(f"{p.stem}.fkm" for p in many)  # no temporary files left over
    for p in many:
        q = fastkm.load(out / f"{p.stem}.fkm")
        assert q.indices.shape == (100, 140)


def test_existing_output_refused_without_overwrite(tmp_path, cluster, crops):
    _, client = cluster
    (tmp_path / "c00.fkm").write_bytes(b"keep")
    results = compress_many(crops[:2], tmp_path, 4, client=client)
    assert "already exists" in results[0].error and results[1].ok
    assert (tmp_path / "c00.fkm").read_bytes() == b"keep"


def test_relative_paths_name_the_callers_files_not_the_workers(tmp_path, cluster, crops,
                                                                monkeypatch):
    """Workers run in folders of their own: relative paths made them read and write (and,
    as a retry may, overwrite) files there, not the caller's."""
    _, client = cluster
    monkeypatch.chdir(tmp_path)
    Path("in").mkdir()
    Path("out").mkdir()
    for p in crops[:2]:
        shutil.copy(p, Path("in") / p.name)
    inputs = [Path("in") / p.name for p in crops[:2]]
    results = compress_many(inputs, Path("out"), 4, fmt="png", client=client, seed=1)
    assert [r.error for r in results] == [None, None]
    assert [r.source for r in results] == [str(p) for p in inputs]
    assert [r.target for r in results] == [str(Path("out") / f"{p.stem}.png") for p in crops[:2]]
    for p in crops[:2]:
        np.testing.assert_array_equal(read_image(tmp_path / "out" / f"{p.stem}.png"),
                                      fastkm.quantize(read_image(p), 4, seed=1).to_image())


def test_cli_scheduler_address(tmp_path, cluster, crops):
    from fastkm.cli.app import app
    from typer.testing import CliRunner

    local, _ = cluster
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"nope")
    out = tmp_path / "out"
    out.mkdir()
    result = CliRunner().invoke(app, ["compress", str(crops[0]), str(bad), str(crops[1]), "-k",
                                      "4", "--out-dir", str(out), "--format", "png", "-q",
                                      "--scheduler", local.scheduler_address])
    assert result.exit_code == 1, result.output
    assert result.stderr.strip().splitlines()[-1] == "error: 1 of 3 files failed"
    assert sorted(p.name for p in out.iterdir()) == ["c00.png", "c01.png"]
    np.testing.assert_array_equal(read_image(out / "c01.png"),
                                  fastkm.quantize(read_image(crops[1]), 4, seed=0).to_image())
