"""Outputs appear whole or not at all."""

import os

import pytest

from fastkm.fileio import OutputExistsError, atomic_output, atomic_write_bytes, check_output_path


def test_write_then_rename(tmp_path):
    target = tmp_path / "out.bin"
    atomic_write_bytes(target, b"abc")
    assert target.read_bytes() == b"abc"
    assert os.listdir(tmp_path) == ["out.bin"]


def test_failure_leaves_nothing_and_keeps_the_old_file(tmp_path):
    target = tmp_path / "out.bin"
    with pytest.raises(RuntimeError, match="boom"):
        with atomic_output(target) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("boom")
    assert os.listdir(tmp_path) == []
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with atomic_output(target) as tmp:
            tmp.write_bytes(b"new")
            raise RuntimeError("boom")
    assert target.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["out.bin"]


def test_refuses_to_overwrite_and_names_missing_folders(tmp_path):
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")
    with pytest.raises(OutputExistsError, match=r"out.bin: already exists \(use --force to overwrite\)"):
        atomic_write_bytes(target, b"new", overwrite=False)
    assert target.read_bytes() == b"old"
    with pytest.raises(FileNotFoundError, match="does not exist"):
        check_output_path(tmp_path / "missing" / "x.png", overwrite=True)


def test_new_files_get_the_usual_mode_and_replaced_files_keep_theirs(tmp_path):
    target = tmp_path / "out.bin"
    old = os.umask(0o022)
    try:
        atomic_write_bytes(target, b"x")
        assert target.stat().st_mode & 0o777 == 0o644
        os.chmod(target, 0o600)
        atomic_write_bytes(target, b"y")
        assert target.stat().st_mode & 0o777 == 0o600
    finally:
        os.umask(old)


def test_a_failed_write_names_the_output_and_the_reason(tmp_path, monkeypatch):
    import errno

    from fastkm import fileio

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(fileio.os, "fsync", full)
    target = tmp_path / "out.bin"
    with pytest.raises(fileio.OutputWriteError) as caught:
        atomic_write_bytes(target, b"abc")
    assert str(caught.value) == f"{target}: cannot write: no space left on device"
    assert caught.value.filename == str(target) and caught.value.errno == errno.ENOSPC
    assert os.listdir(tmp_path) == []
