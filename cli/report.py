"""What the commands print: aligned tables, progress bars, the .fkm header view."""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterator

import numpy as np
from rich import box
from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from fastkm.metrics import bits_per_pixel, ratio_to_raw24

if TYPE_CHECKING:  # rich.progress is imported where a bar is made: a compress needs none
    from rich.progress import Progress


def console(*, stderr: bool = False) -> Console:
    """A console on the current stdout/stderr; wide when piped, so tables are not cut."""
    probe = Console(stderr=stderr)
    # markup=False, emoji=False: file names such as "[1].png" or ":x:.png" are text, not
    # Rich style tags or emoji codes.
    return Console(stderr=stderr, width=None if probe.is_terminal else 200,
                   highlight=False, markup=False, emoji=False)


def format_psnr(value: float) -> str:
    return "inf" if math.isinf(value) else f"{value:.2f}"


def format_delta_e(value: float) -> str:
    return "—" if math.isnan(value) else f"{value:.2f}"


def format_bytes(n: int) -> str:
    if n < 1024:
        return f"{n} B"
    for unit in ("KiB", "MiB", "GiB"):
        n /= 1024
        if n < 1024 or unit == "GiB":
            return f"{n:.1f} {unit}"
    raise AssertionError("unreachable")


@dataclass
class Result:
    """One quantized-and-encoded image, as the tables show it."""

    width: int
    height: int
    n_distinct: int
    k: int
    mse: float
    psnr: float
    n_bytes: int
    seconds: float
    output: str = ""  # the file written, for compress
    delta_e: float = math.nan  # mean OKLab distance x 100 (nan: not measured)
    variant: str = ""  # colour space and dither, when a table compares several
    k_requested: int | None = None  # the K asked for; ``k`` is the colours the result has

    @property
    def bpp(self) -> float:
        return bits_per_pixel(self.n_bytes, self.height, self.width)

    @property
    def ratio(self) -> float:
        return ratio_to_raw24(self.n_bytes, self.height, self.width)


def _table(*columns: str, title: str | None = None) -> Table:
    table = Table(box=box.SIMPLE_HEAD, title=title, title_justify="left", show_edge=False,
                  collapse_padding=True)
    for name in columns:
        if name in ("input", "output"):
            # Paths may wrap in a narrow terminal; numbers must never be cut.
            table.add_column(name, overflow="fold")
        else:
            table.add_column(name, justify="right", no_wrap=True, min_width=len(name))
    return table


def compress_table(results: list[Result]) -> Table:
    table = _table("output", "size", "colours", "K", "PSNR dB", "ΔE", "bytes", "bpp",
                   "vs 24-bit", "seconds")
    for r in results:
        table.add_row(r.output, f"{r.width}x{r.height}", f"{r.n_distinct:,}", str(r.k),
                      format_psnr(r.psnr), format_delta_e(r.delta_e), f"{r.n_bytes:,}",
                      f"{r.bpp:.3f}",
                      f"{r.ratio:.1f}x", f"{r.seconds:.2f}")
    return table


def sweep_table(results: list[Result], size_of: str, title: str | None = None) -> Table:
    """One row per K (and per space/dither variant, when the results differ in it)."""
    variants = len({r.variant for r in results}) > 1
    # An image with fewer distinct colours than K gets fewer: then both are shown.
    fewer = any(r.k_requested not in (None, r.k) for r in results)
    table = _table("K", *(["colours"] if fewer else []), *(["variant"] if variants else []),
                   "MSE", "PSNR dB", "ΔE", f"bytes ({size_of})", "bpp", "vs 24-bit",
                   "seconds", title=title)
    for r in results:
        table.add_row(str(r.k if r.k_requested is None else r.k_requested),
                      *([str(r.k)] if fewer else []),
                      *([r.variant] if variants else []), f"{r.mse:.2f}",
                      format_psnr(r.psnr), format_delta_e(r.delta_e), f"{r.n_bytes:,}",
                      f"{r.bpp:.3f}", f"{r.ratio:.1f}x", f"{r.seconds:.2f}")
    return table


@contextlib.contextmanager
def progress(total: int, what: str, *, enabled: bool) -> Iterator[Progress | None]:
    """A progress bar on stderr, erased when done, so the screen keeps only the table and
    the errors; None when it would not be shown (:func:`advance` and :func:`describe`
    accept that)."""
    global _ACTIVE
    err = console(stderr=True)
    # Off unless stderr is a terminal: Rich would still print a final blank line into logs.
    if not (enabled and err.is_terminal):
        yield None  # and rich.progress is not even imported (~5 ms of a warm compress)
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
    )

    bar = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                   MofNCompleteColumn(), TimeElapsedColumn(), console=err, transient=True)
    with bar:
        bar.add_task(what, total=total)
        _ACTIVE = bar
        try:
            yield bar
        finally:
            _ACTIVE = None


_ACTIVE: Progress | None = None


def active_progress() -> Progress | None:
    """The progress bar on screen now, if any (a line printed through its console shows
    above it)."""
    return _ACTIVE


def advance(bar: Progress | None) -> None:
    if bar is not None:
        bar.update(bar.task_ids[0], advance=1)


def describe(bar: Progress | None, description: str) -> None:
    if bar is not None:
        bar.update(bar.task_ids[0], description=description)


def swatches(palette: np.ndarray) -> Table:
    """The palette as coloured blocks with their hex codes, several to a row."""
    palette = np.asarray(palette)
    per_row = 4
    table = Table(box=None, show_header=False, pad_edge=False, padding=(0, 2, 0, 0))
    for _ in range(per_row):
        table.add_column(no_wrap=True)
    cells = []
    for i, colour in enumerate(palette):
        rgb = [int(colour[0])] * 3 if len(colour) < 3 else [int(c) for c in colour[:3]]
        hex_rgb = "#{:02x}{:02x}{:02x}".format(*rgb)
        code = hex_rgb + (f"{int(colour[3]):02x}" if len(colour) == 4 else "")
        if len(colour) == 1:
            code = f"#{int(colour[0]):02x}"
        cell = Text(f"{i:>3} ")
        # Foreground-coloured blocks, so the swatch still shows (as grey blocks) without colour.
        cell.append("████", style=hex_rgb)
        cell.append(f" {code}")
        cells.append(cell)
    for start in range(0, len(cells), per_row):
        row = cells[start:start + per_row]
        table.add_row(*row, *[""] * (per_row - len(row)))
    return table


_CHANNEL_NAMES = {1: "grey", 3: "RGB", 4: "RGBA"}


def info_view(path, header: dict, file_bytes: int) -> Group:
    """The `info` page: header fields, strips, sizes, then the palette as swatches."""
    w, h, k = header["width"], header["height"], header["n_colors"]
    strips = header.get("strip_bytes") or []
    fields = Table(box=None, show_header=False, pad_edge=False, padding=(0, 2, 0, 0))
    fields.add_column(style="bold", no_wrap=True)
    fields.add_column()
    flags = header.get("flags", 0)
    flag_text = f"0x{flags:02x}" + (" (permuted: indices are coded in nearest-colour order)"
                                    if header.get("permuted") else "")
    fields.add_row("file", f"{path}  ({file_bytes:,} bytes)")
    fields.add_row("format", f".fkm version {header.get('version')}, coder {header.get('coder')}, "
                             f"flags {flag_text}")
    fields.add_row("image", f"{w}x{h}, {header['channels']} channel"
                            f"{'s' if header['channels'] > 1 else ''} "
                            f"({_CHANNEL_NAMES.get(header['channels'], '?')}), K = {k}")
    if len(strips) == 1:
        fields.add_row("strips", f"1 strip of {h} rows, {strips[0]:,} bytes")
    elif strips:
        fields.add_row("strips", f"{len(strips)} of {header.get('strip_height')} rows, "
                                 f"{min(strips):,} to {max(strips):,} bytes each")
    total = header.get("total_bytes", file_bytes)
    fields.add_row("size", f"{total:,} bytes = {header.get('coded_bytes', 0):,} coded + "
                           f"{header.get('overhead_bytes', 0):,} header, palette and tables")
    ratio = ratio_to_raw24(total, h, w)
    versus = (f"{ratio:.1f}x smaller than" if ratio >= 1 else f"{1 / ratio:.1f}x larger than")
    fields.add_row("rate", f"{bits_per_pixel(total, h, w):.3f} bits per pixel, "
                           f"{versus} raw 24-bit")
    if "file_crc32" in header:
        fields.add_row("crc-32", header["file_crc32"])
    title = Text(f"palette ({k} colour{'s' if k != 1 else ''})", style="bold")
    return Group(fields, Text(""), title, swatches(header["palette"]))
