"""Where results go and in which format: output names, early checks, encoding by extension."""

from __future__ import annotations

import os
from pathlib import Path
from types import ModuleType

from fastkm.fileio import atomic_write_bytes, check_output_path
from fastkm.palette import PaletteImage

from .errors import CliError

FORMATS = ("fkm", "png")


def format_of(path: Path, option: str = "-o/--output") -> str:
    """The output format named by ``path``'s extension."""
    suffix = path.suffix.lower().lstrip(".")
    if suffix not in FORMATS:
        raise CliError(f"{option}: unknown extension {path.suffix or '(none)'!r} in {path} "
                       "(use .fkm or .png)")
    return suffix


def plan_outputs(inputs: list[Path], output: Path | None, out_dir: Path | None,
                 fmt: str | None) -> list[Path]:
    """One output path per input: ``-o`` as given, else the input's name with the format's
    extension, in ``--out-dir`` or beside the input."""
    if output is not None:
        if fmt is not None and format_of(output) != fmt:
            raise CliError(f"--format {fmt} contradicts the extension of -o {output}")
        format_of(output)
        return [output]
    ext = "." + (fmt or "fkm")
    planned = [(out_dir if out_dir is not None else p.parent) / (p.stem + ext) for p in inputs]
    seen: dict[Path, Path] = {}
    for source, target in zip(inputs, planned):
        key = Path(os.path.abspath(target))
        if key in seen:
            raise CliError(f"{seen[key]} and {source} would both be written to {target}")
        seen[key] = source
    return planned


def check_outputs(paths: list[Path | None], force: bool) -> None:
    """Refuse existing files (without --force) and missing folders before any work is done."""
    for path in paths:
        if path is None:
            continue
        if path.is_dir():
            raise CliError(f"{path}: is a folder; give a file name")
        check_output_path(path, overwrite=force)
        folder = path.parent if str(path.parent) else Path(".")
        if not os.access(folder, os.W_OK):
            raise CliError(f"{path}: cannot write in folder {folder} (permission denied)")


def check_csv_name(path: Path | None) -> None:
    """--csv must name a .csv file (compress and sweep)."""
    if path is not None and path.suffix.lower() != ".csv":
        raise CliError(f"--csv: expected a .csv file name, got {path}")


def _identity(path: Path):
    # An existing file is known by its inode (hard links, symlinks, "./a" vs "a"), a new
    # one by its resolved path.
    try:
        st = path.stat()
        return st.st_dev, st.st_ino
    except OSError:
        return os.path.realpath(path)


def check_distinct(inputs: list[Path], paths: list[Path | None]) -> None:
    """Refuse an output that is one of the inputs (even with --force: an input is never
    replaced) or that is named twice as an output, before any work is done."""
    sources = {_identity(p) for p in inputs}
    seen = set()
    for path in paths:
        if path is None:
            continue
        key = _identity(path)
        if key in sources:
            raise CliError(f"{path}: is an input of this command; an input is never "
                           "overwritten, even with --force (choose another output name)")
        if key in seen:
            raise CliError(f"{path}: named twice as an output (give each output its own "
                           "name)")
        seen.add(key)


def codec() -> ModuleType:
    """The .fkm codec, or a clear error when this build does not have it yet."""
    from fastkm import codec as module

    if not all(hasattr(module, name) for name in ("encode", "decode", "read_info")):
        raise CliError("the .fkm codec is not available in this build of fastkm; "
                       "write a .png instead")
    return module


def check_fkm_size(source: Path) -> None:
    """Refuse, from its header, before decoding, a picture too large for the .fkm format."""
    from fastkm.images import image_size

    limit = getattr(codec(), "MAX_PIXELS", None)
    if limit is None:
        return
    width, height = image_size(source)
    if height * width > limit:
        raise CliError(f"{source}: {width}x{height} = {height * width:,} pixels is more than "
                       f"a .fkm file holds ({limit:,}); write a .png instead")


def encode(image: PaletteImage, fmt: str) -> bytes:
    """The bytes of ``image`` in ``fmt`` ("fkm" or palette "png")."""
    if fmt == "fkm":
        return codec().encode(image)
    from fastkm.images import png_bytes

    return png_bytes(image)


def write(path: Path, data: bytes, *, force: bool) -> None:
    """Write through a temporary file and a rename, so a failure leaves nothing behind."""
    atomic_write_bytes(path, data, overwrite=force)
