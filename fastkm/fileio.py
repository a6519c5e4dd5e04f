"""Writing files so that a failure never leaves a half-written output behind."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Iterator


class OutputExistsError(FileExistsError):
    """The output file exists and overwriting was not allowed."""


class OutputWriteError(OSError):
    """Writing an output failed (disk full, folder gone, ...). The message names the output
    and what failed, never the temporary file: ``out.png: cannot write: no space left``."""

    def __init__(self, path: str | os.PathLike, cause: OSError):
        reason = (cause.strerror or str(cause) or type(cause).__name__).lower()
        super().__init__(cause.errno, f"cannot write: {reason}", str(path))

    def __str__(self) -> str:
        return f"{self.filename}: {self.strerror}"


def check_output_path(path: str | os.PathLike, *, overwrite: bool) -> Path:
    """Validate an output path before any work is done; return it as a Path."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise OutputExistsError(f"{path}: already exists (use --force to overwrite)")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise FileNotFoundError(f"{path}: folder {parent} does not exist")
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike, *, overwrite: bool = True) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only on success.

    The temporary file lives in the same folder so that the final ``os.replace`` is atomic.
    """
    path = check_output_path(path, overwrite=overwrite)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp" + path.suffix,
                                   dir=path.parent if str(path.parent) else ".")
    except OSError as exc:
        raise OutputWriteError(path, exc) from exc
    try:
        os.close(fd)
        # mkstemp creates 0600; the result should get the mode any new file would (or keep
        # the mode of the file it replaces).
        try:
            mode = path.stat().st_mode & 0o7777
        except FileNotFoundError:
            mode = 0o666 & ~_umask()
        os.chmod(tmp, mode)
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError) and not isinstance(exc, OutputWriteError):
            # The temporary name means nothing to the user: name the output instead.
            raise OutputWriteError(path, exc) from exc
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes, *, overwrite: bool = True) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename."""
    with atomic_output(path, overwrite=overwrite) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
