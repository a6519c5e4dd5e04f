"""The fastkm command line: compress, decode, info, compare, sweep (installed as ``fastkm.cli``).

The commands parse, report and show; the work is done by fastkm.quantize, fastkm.codec,
fastkm.images and fastkm.metrics. matplotlib, Pillow and the quantizer are imported inside
the commands that use them, so that ``--help`` and usage errors stay quick.
"""

from __future__ import annotations

import csv
import io
import math
import time
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from . import firstrun, outputs, report
from .errors import CliError, one_line, print_error, reported

app = typer.Typer(
    name="fastkm",
    help="Fast K-means colour quantization and the compact .fkm palette image format.\n\n"
         "Exit status: 0 success, 1 error (one line on stderr, starting with 'error:'), "
         "2 bad usage.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",
    context_settings={"help_option_names": ["-h", "--help"]},
)

MAX_K = 256


class Init(str, Enum):
    kmeanspp = "k-means++"
    random = "random"


class Format(str, Enum):
    fkm = "fkm"
    png = "png"


class Space(str, Enum):
    rgb = "rgb"
    oklab = "oklab"


class Dither(str, Enum):
    none = "none"
    fs = "fs"
    ordered = "ordered"


SPACE_HELP = ("Colour space k-means clusters in: rgb (least squared sRGB error, best PSNR) or "
              "oklab (perceptually uniform: lower delta E, gradients kept smoother).")
DITHER_HELP = ("How pixels are mapped to the palette: none (nearest colour), fs "
               "(Floyd–Steinberg error diffusion) or ordered (Bayer 8x8 pattern). Dithering "
               "trades PSNR and file size for less banding.")


# Options several commands share, declared once.
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="Print nothing but errors.")]
Debug = Annotated[bool, typer.Option("--debug", help="Show the full traceback on errors.")]
Force = Annotated[bool, typer.Option("--force", "-f", help="Overwrite existing output files.")]
Seed = Annotated[int, typer.Option("--seed", help="Random seed; the same seed gives the same "
                                                  "result.")]

READ_NOTE = ("Inputs: JPEG, PNG, TIFF, WebP, BMP, GIF (first frame) and other formats Pillow "
             "reads; EXIF orientation is applied; greyscale stays one channel, alpha is kept "
             "as a fourth clustered channel (a PNG colour key, tRNS, becomes alpha), palette "
             "images are expanded, and 16-bit samples "
             "are reduced to 8 bits with rounding.")


def _version(value: bool) -> None:
    if value:
        from fastkm import __version__

        typer.echo(f"fastkm {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Show the version and exit.")] = False,
) -> None:
    """Fast K-means colour quantization and the compact .fkm palette image format."""


# ------------------------------------------------------------------------------ checks

def _check_k(k: int, option: str = "-k/--colors") -> int:
    if not 1 <= k <= MAX_K:
        raise CliError(f"{option} must be between 1 and {MAX_K}, got {k}")
    return k


def _check_fit(n_init: int, max_iter: int, tol: float) -> None:
    if n_init < 1:
        raise CliError(f"--n-init must be at least 1, got {n_init}")
    if max_iter < 1:
        raise CliError(f"--max-iter must be at least 1, got {max_iter}")
    if not 0 <= tol < math.inf:
        raise CliError(f"--tol must be a finite number >= 0, got {tol}")


def _check_seed(seed: int) -> None:
    # Checked once here, not by the quantizer per file after each read.
    if seed < 0:
        raise CliError(f"--seed must be >= 0, got {seed}")


def _parse_colors(text: str) -> list[int]:
    values = []
    for part in text.split(","):
        part = part.strip()
        try:
            values.append(int(part))
        except ValueError:
            raise CliError(f"--colors takes whole numbers separated by commas, got {text!r}") \
                from None
    for k in values:
        _check_k(k, "--colors")
    return sorted(set(values))


def _check_input(path: Path) -> None:
    if not path.exists():
        raise CliError(f"{path}: no such file")
    if path.is_dir():
        raise CliError(f"{path}: is a folder, not a file")


def _quantize(image, k: int, **options):
    from fastkm import quantize

    return quantize(image, k, **options)


# fastkm.quantize's own defaults, written out so that --help need not import the quantizer
# (and Numba); tests/test_cli.py checks them against quantize's signature.
FIT = {"init": "k-means++", "n_init": 1, "max_iter": 300, "tol": 1e-4, "seed": None,
       "space": "rgb", "dither": "none"}


def _measured(image, q, data: bytes, seconds: float, output: str = "") -> report.Result:
    from fastkm.metrics import mse, psnr_from_mse

    # The quantizer measures its own error against the input (the tests check it against
    # fastkm.metrics); measure here only if it did not.
    error = getattr(q, "mse", None)
    if error is None:
        error = mse(image, q.to_image())
    delta_e = getattr(q, "delta_e", None)
    if delta_e is None:
        from fastkm.metrics import delta_e as measure

        delta_e = measure(image, q.to_image())
    return report.Result(width=image.shape[1], height=image.shape[0],
                         n_distinct=int(getattr(q, "n_distinct", -1)), k=q.n_colors,
                         mse=float(error), psnr=psnr_from_mse(float(error)),
                         n_bytes=len(data), seconds=seconds, output=output,
                         delta_e=float(delta_e))


def _variant(space: str, dither: str) -> str:
    """How a result was made, for captions and tables: "rgb", "oklab + fs", ..."""
    return space if dither == "none" else f"{space} + {dither}"


def _each_k(image, ks: list[int], seed: int, size_of: str, label: str, quiet: bool,
            variants=((FIT["space"], FIT["dither"]),)):
    """Quantize ``image`` at each K and each (space, dither) variant in turn under one
    progress bar; yield (K, variant name, quantized, row)."""
    jobs = [(k, space, dither) for k in ks for space, dither in variants]
    with report.progress(len(jobs), label, enabled=not quiet) as bar, \
            firstrun.CompileNotice(quiet):
        for k, space, dither in jobs:
            firstrun.expect(image, k, space, dither, size_of)
        for k, space, dither in jobs:
            name = _variant(space, dither)
            report.describe(bar, f"K={k} {name}")
            start = time.perf_counter()
            q = _quantize(image, k, seed=seed, space=space, dither=dither)
            data = outputs.encode(q, size_of)
            result = _measured(image, q, data, time.perf_counter() - start)
            result.variant, result.k_requested = name, k
            yield k, name, q, result
            report.advance(bar)


# ------------------------------------------------------------------------------ compress

@app.command(epilog=READ_NOTE)
def compress(
    inputs: Annotated[list[Path], typer.Argument(metavar="IN", show_default=False,
                                                  help="Images to compress.")],
    colors: Annotated[int, typer.Option("-k", "--colors", show_default=False,
                                        help="Palette size K, 1 to 256.")],
    output: Annotated[Optional[Path], typer.Option(
        "-o", "--output", metavar="OUT",
        help="Output file (one input only); .fkm or .png decides the format.")] = None,
    out_dir: Annotated[Optional[Path], typer.Option(
        "--out-dir", metavar="DIR", help="Folder for the outputs, named after the inputs.")] = None,
    fmt: Annotated[Optional[Format], typer.Option(
        "--format", help="Format when the name is derived from the input [default: fkm].")] = None,
    init: Annotated[Init, typer.Option("--init", help="Seeding of the centres.")] =
        Init(FIT["init"]),
    n_init: Annotated[int, typer.Option("--n-init", help="Seedings tried; the best is kept.")] =
        FIT["n_init"],
    max_iter: Annotated[int, typer.Option("--max-iter", help="Iteration limit per run.")] =
        FIT["max_iter"],
    tol: Annotated[float, typer.Option("--tol", help="Convergence tolerance.")] = FIT["tol"],
    space: Annotated[Space, typer.Option("--space", help=SPACE_HELP)] = Space(FIT["space"]),
    dither: Annotated[Dither, typer.Option("--dither", help=DITHER_HELP)] =
        Dither(FIT["dither"]),
    seed: Seed = 0,
    force: Force = False,
    quiet: Quiet = False,
    debug: Debug = False,
    shared_palette: Annotated[bool, typer.Option(
        "--shared-palette", help="One palette for all inputs: exact k-means on their merged "
                                 "colour histograms (sprite sheets, frames, product shots).")] =
        False,
    jobs: Annotated[Optional[int], typer.Option(
        "--jobs", "-j", metavar="N", show_default=False,
        help="Worker processes for several inputs [default: the number of cores].")] = None,
    skip_existing: Annotated[bool, typer.Option(
        "--skip-existing", help="Leave inputs whose output exists alone (resume a batch).")] =
        False,
    csv_path: Annotated[Optional[Path], typer.Option(
        "--csv", metavar="FILE.csv", help="Write one row per input (status, error, size, "
                                          "PSNR, bytes, seconds).")] = None,
    scheduler: Annotated[Optional[str], typer.Option(
        "--scheduler", metavar="ADDRESS", help="Run the files as tasks on a dask.distributed "
        "scheduler (tcp://host:8786), or 'local' for a LocalCluster. The workers read the "
        "inputs and write the outputs themselves: the paths must be on storage they all "
        "share. Needs pip install 'fastkm[dask]'.")] = None,
) -> None:
    """Quantize images to K colours and write them as .fkm or palette PNG.

    Without -o or --out-dir each result goes beside its input, named IN with the extension
    .fkm (or --format png). A .png is a palette PNG (alpha in its tRNS chunk); greyscale
    results are written as 8-bit greyscale PNG, since a PNG palette is always RGB. The table
    gives, per input: size, distinct colours, K, PSNR
    and ΔE (mean OKLab distance x 100; about 2 is just noticeable) against the input,
    output bytes, bits per pixel, how many times smaller than raw 24-bit
    RGB, and seconds (read, quantize, encode, write).

    Existing files are not overwritten without --force, an input never; every output is
    written to a temporary file and renamed, so a failure leaves nothing half-written. All
    output names (--csv too) and option values are checked before any work starts. If one
    of several inputs fails, the error is reported, the others are still done, and the exit
    status is 1.

    Example: fastkm compress photo.jpg -k 16 -o photo.fkm
    """
    if output is not None and len(inputs) > 1:
        raise typer.BadParameter(f"takes one input, got {len(inputs)}; use --out-dir DIR for "
                                 "several", param_hint="'-o' / '--output'")
    if output is not None and out_dir is not None:
        raise typer.BadParameter("give -o OUT or --out-dir DIR, not both",
                                 param_hint="'-o' / '--output'")
    if shared_palette:
        _check_shared_palette(csv_path=csv_path, skip_existing=skip_existing, jobs=jobs,
                              scheduler=scheduler)
    with reported(debug):
        _check_k(colors)
        _check_fit(n_init, max_iter, tol)
        _check_seed(seed)
        if jobs is not None and jobs < 1:
            raise CliError(f"--jobs must be at least 1, got {jobs}")
        outputs.check_csv_name(csv_path)
        if out_dir is not None and not out_dir.is_dir():
            what = "is not a folder" if out_dir.exists() else "does not exist"
            raise CliError(f"--out-dir: {out_dir} {what}")
        targets = outputs.plan_outputs(inputs, output, out_dir, fmt.value if fmt else None)
        outputs.check_distinct(inputs, [*targets, csv_path])
        outputs.check_outputs([t for t in targets if not (skip_existing and t.exists())]
                              + [csv_path], force)
        if any(outputs.format_of(t) == "fkm" for t in targets):
            outputs.codec()
        results, failures = [], 0
        if not shared_palette and (len(inputs) > 1 or scheduler is not None
                                   or skip_existing or csv_path is not None):
            from . import batch

            fit = {"init": init.value, "n_init": n_init, "max_iter": max_iter, "tol": tol,
                   "seed": seed, "space": space.value, "dither": dither.value}
            results, failures = batch.run(inputs, targets, colors, fit, force=force,
                                          skip_existing=skip_existing, jobs=jobs,
                                          scheduler=scheduler, csv_path=csv_path,
                                          quiet=quiet, debug=debug)
            inputs = []
        if shared_palette:
            from .shared import compress_shared

            def on_error(source, exc):
                nonlocal failures
                if debug:
                    raise exc
                failures += 1
                print_error(_naming(source, exc))

            fit = {"init": init.value, "n_init": n_init, "max_iter": max_iter, "tol": tol,
                   "seed": seed, "space": space.value, "dither": dither.value}
            results = compress_shared(inputs, targets, colors, fit, force, on_error)
            inputs = []
        with report.progress(len(inputs), "compressing", enabled=not quiet) as bar, \
                firstrun.CompileNotice(quiet):
            for source, target in zip(inputs, targets):
                report.describe(bar, f"compressing {source.name}")
                try:
                    results.append(_compress_one(source, target, colors, init.value, n_init,
                                                 max_iter, tol, seed, force, space.value,
                                                 dither.value))
                except Exception as exc:
                    if debug:
                        raise
                    failures += 1
                    print_error(_naming(source, exc))
                report.advance(bar)
        if results and not quiet:
            report.console().print(report.compress_table(results))
        if failures:
            if len(targets) > 1:
                print_error(f"{failures} of {len(targets)} files failed")
            raise typer.Exit(1)


def _check_shared_palette(**given) -> None:
    """Refuse the options --shared-palette does not honour: it reads every input in this
    process and fits one palette, so there is no per-file batch to skip, spread or report."""
    names = {"csv_path": "--csv", "skip_existing": "--skip-existing", "jobs": "--jobs",
             "scheduler": "--scheduler"}
    refused = [names[name] for name, value in given.items() if value not in (None, False)]
    if refused:
        raise typer.BadParameter(f"cannot be combined with {', '.join(refused)}",
                                 param_hint="'--shared-palette'")


def _naming(source: Path, exc: BaseException) -> str:
    """The error line for one input, naming it unless the message already does."""
    from fastkm.fileio import OutputWriteError

    text = one_line(exc)
    if text.startswith(str(source)) or isinstance(exc, OutputWriteError):
        return text  # a failed write names its output
    return f"{source}: {text}"


def _compress_one(source: Path, target: Path, k: int, init: str, n_init: int, max_iter: int,
                  tol: float, seed: int, force: bool, space: str = FIT["space"],
                  dither: str = FIT["dither"]) -> report.Result:
    from fastkm.images import read_image

    start = time.perf_counter()
    _check_input(source)
    if source.suffix.lower() == ".fkm":
        raise CliError(f"{source}: is a .fkm file already (fastkm decode turns it into a PNG)")
    fmt = outputs.format_of(target)
    if fmt == "fkm":
        outputs.check_fkm_size(source)
    image = read_image(source)
    firstrun.expect(image, k, space, dither, fmt)
    q = _quantize(image, k, init=init, n_init=n_init, max_iter=max_iter, tol=tol, seed=seed,
                  space=space, dither=dither)
    data = outputs.encode(q, fmt)
    outputs.write(target, data, force=force)
    return _measured(image, q, data, time.perf_counter() - start, str(target))


# ------------------------------------------------------------------------------ decode, info

@app.command()
def decode(
    source: Annotated[Path, typer.Argument(metavar="IN.fkm", show_default=False,
                                           help="A .fkm file.")],
    output: Annotated[Optional[Path], typer.Option(
        "-o", "--output", metavar="OUT.png",
        help="PNG to write [default: IN with the extension .png, beside it].")] = None,
    force: Force = False,
    quiet: Quiet = False,
    debug: Debug = False,
) -> None:
    """Decode a .fkm file to a palette PNG (lossless: the same palette and indices).

    Greyscale images are written as 8-bit greyscale PNG, since a PNG palette is always RGB.

    Example: fastkm decode photo.fkm -o photo.png
    """
    with reported(debug):
        target = output if output is not None else source.with_suffix(".png")
        if target.suffix.lower() != ".png":
            raise CliError(f"-o/--output: decode writes PNG, got {target}")
        if output is None and source.suffix.lower() == ".png":
            # Its default output would be itself: say what is wrong with the input instead.
            _check_input(source)
            _decoded(outputs.codec(), source, source.read_bytes(), info=True)
        outputs.check_distinct([source], [target])
        outputs.check_outputs([target], force)
        codec = outputs.codec()
        _check_input(source)
        with firstrun.CompileNotice(quiet, background=False):
            image = _decoded(codec, source, source.read_bytes())
        from fastkm.images import write_png

        n_bytes = write_png(target, image, overwrite=force)
        if not quiet:
            h, w = image.shape
            colours = "colour" if image.n_colors == 1 else "colours"
            report.console().print(f"wrote {target}  {w}x{h}, {image.n_colors} {colours}, "
                                   f"{n_bytes:,} bytes")


@app.command()
def info(
    source: Annotated[Path, typer.Argument(metavar="IN.fkm", show_default=False,
                                           help="A .fkm file.")],
    debug: Debug = False,
) -> None:
    """Show a .fkm file's header, palette (colour swatches and hex), strips and sizes.

    Reads and checks the whole file, so a damaged file is reported here too.
    """
    with reported(debug):
        codec = outputs.codec()
        _check_input(source)
        data = source.read_bytes()
        header = _decoded(codec, source, data, info=True)
        with firstrun.CompileNotice(background=False):  # decoding compiles on a first run
            _decoded(codec, source, data)  # every strip, not only the header and checksums
        report.console().print(report.info_view(source, header, len(data)))


def _decoded(codec, source: Path, data: bytes, info: bool = False):
    try:
        return codec.read_info(data) if info else codec.decode(data)
    except codec.FkmError as exc:
        raise CliError(f"{source}: not a valid .fkm file: {one_line(exc)}") from None


# ------------------------------------------------------------------------------ compare, sweep

def _size_format(choice: Optional[Format]) -> str:
    if choice is not None:
        if choice is Format.fkm:
            outputs.codec()
        return choice.value
    try:
        outputs.codec()
        return "fkm"
    except CliError:
        return "png"


SizeFormat = Annotated[Optional[Format], typer.Option(
    "--format", help="Encoding whose size is reported [default: fkm, or png if this build "
                     "has no .fkm codec].")]


@app.command(epilog=READ_NOTE)
def compare(
    source: Annotated[Path, typer.Argument(metavar="IN", show_default=False,
                                           help="Image to compare.")],
    colors: Annotated[Optional[list[int]], typer.Option(
        "-k", "--colors", show_default=False,
        help="Palette size; repeat for several panels [default: -k 4 -k 16 -k 64].")] = None,
    output: Annotated[Path, typer.Option("-o", "--output", metavar="OUT.png",
                                         help="PNG to write.")] = Path("compare.png"),
    space: Annotated[Optional[list[Space]], typer.Option(
        "--space", show_default=False,
        help=SPACE_HELP + " Repeat to compare spaces side by side [default: rgb].")] = None,
    dither: Annotated[Optional[list[Dither]], typer.Option(
        "--dither", show_default=False,
        help=DITHER_HELP + " Repeat to compare modes side by side [default: none].")] = None,
    zoom: Annotated[bool, typer.Option(
        "--zoom/--no-zoom", help="Draw below each panel the same crop magnified 4x (nearest "
                                 "neighbour), chosen where the picture has smooth gradients, "
                                 "so that banding and dither patterns show.")] = True,
    fmt: SizeFormat = None,
    seed: Seed = 0,
    force: Force = False,
    quiet: Quiet = False,
    debug: Debug = False,
) -> None:
    """Draw the original beside its quantized versions, as one PNG.

    One panel per K and per --space and --dither given (every combination). Each is
    captioned with K, how it was made (when not the default), PSNR and dE (ΔE: mean OKLab
    distance x 100) against the original, and the encoded size (.fkm, or palette PNG).
    Panels are reduced to at most 800 pixels wide for display; PSNR, ΔE and size are
    measured on the full image. Below each panel, unless --no-zoom, the same region at full
    resolution magnified 4x: where the picture has smooth gradients, so banding and
    dithering are seen pixel by pixel. One row up to three panels, a grid beyond.

    Example: fastkm compare photo.jpg -k 16 --space rgb --space oklab -o compare.png
    """
    with reported(debug):
        ks = [_check_k(k) for k in (colors or [4, 16, 64])]
        if output.suffix.lower() != ".png":
            raise CliError(f"-o/--output: compare writes PNG, got {output}")
        _check_seed(seed)
        outputs.check_distinct([source], [output])
        outputs.check_outputs([output], force)
        size_of = _size_format(fmt)
        _check_input(source)
        from fastkm.images import read_image, write_png

        from .panels import compose, zoom_region, zoom_size

        image = read_image(source)
        h, w = image.shape[:2]
        shown = min(1.0, 800 / w)
        scale_note = "" if shown == 1 else f"  (shown at {shown:.0%})"
        region = None
        if zoom:
            size = zoom_size(w, h)
            region = (*zoom_region(image, size), size)
            scale_note += f"; zoom 4x at x={region[1]}, y={region[0]}"
        panels = [(image, f"original  {w}x{h}{scale_note}")]
        results = []
        variants = [(s.value, d.value) for s in _unique(space or [Space(FIT["space"])])
                    for d in _unique(dither or [Dither(FIT["dither"])])]
        for k, name, q, r in _each_k(image, ks, seed, size_of, "quantizing", quiet, variants):
            results.append(r)
            made = f"{name}  " if len(variants) > 1 or name != _variant(FIT["space"],
                                                                        FIT["dither"]) else ""
            panels.append((q.to_image(), f"K={k}  {made}PSNR {report.format_psnr(r.psnr)} dB  "
                                         f"dE {report.format_delta_e(r.delta_e)}  "
                                         f"{report.format_bytes(r.n_bytes)} .{size_of}"))
        write_png(output, compose(panels, zoom=region), overwrite=force)
        if not quiet:
            report.console().print(report.sweep_table(results, f".{size_of}",
                                                      title=f"{source} -> {output}"))


def _unique(values: list) -> list:
    """``values`` without repeats, in the order given."""
    return list(dict.fromkeys(values))


@app.command(epilog=READ_NOTE)
def sweep(
    source: Annotated[Path, typer.Argument(metavar="IN", show_default=False,
                                           help="Image to measure.")],
    colors: Annotated[str, typer.Option(
        "--colors", "-k", metavar="K,K,...",
        help="Palette sizes, comma-separated, each 1 to 256.")] = "2,4,8,16,32,64,128,256",
    space: Annotated[Space, typer.Option("--space", help=SPACE_HELP)] = Space(FIT["space"]),
    dither: Annotated[Dither, typer.Option("--dither", help=DITHER_HELP)] =
        Dither(FIT["dither"]),
    output: Annotated[Optional[Path], typer.Option(
        "-o", "--output", metavar="PLOT",
        help="Plot of PSNR and bits per pixel against K (.png, .svg or .pdf); "
             "needs matplotlib: pip install 'fastkm[plot]'.")] = None,
    csv_path: Annotated[Optional[Path], typer.Option(
        "--csv", metavar="FILE.csv", help="Also write the table as CSV.")] = None,
    fmt: SizeFormat = None,
    seed: Seed = 0,
    force: Force = False,
    quiet: Quiet = False,
    debug: Debug = False,
) -> None:
    """Measure the K trade-off: MSE, PSNR, ΔE, encoded bytes, bits per pixel, seconds per K.

    Prints the table; -o adds a plot (PSNR and bits per pixel), --csv the same numbers as
    CSV (columns k, mse, psnr_db, bytes, bits_per_pixel, ratio_24bit, seconds, delta_e,
    k_requested; k is the number of colours the result has, fewer than k_requested when
    the image has fewer distinct colours; delta_e is the mean OKLab distance x 100).

    Example: fastkm sweep photo.jpg --colors 4,16,64,256 -o sweep.png --csv sweep.csv
    """
    with reported(debug):
        ks = _parse_colors(colors)
        if output is not None and output.suffix.lower() not in (".png", ".svg", ".pdf"):
            raise CliError(f"-o/--output: the plot is written as .png, .svg or .pdf, "
                           f"got {output}")
        outputs.check_csv_name(csv_path)
        _check_seed(seed)
        outputs.check_distinct([source], [output, csv_path])
        outputs.check_outputs([output, csv_path], force)
        if output is not None:
            from .panels import require_matplotlib

            require_matplotlib()
        size_of = _size_format(fmt)
        _check_input(source)
        from fastkm.images import read_image

        image = read_image(source)
        results = [r for _, _, _, r in _each_k(image, ks, seed, size_of, "sweeping K", quiet,
                                               [(space.value, dither.value)])]
        if csv_path is not None:
            outputs.write(csv_path, _csv_bytes(results), force=force)
        if output is not None:
            from .panels import sweep_plot

            plot = sweep_plot([r.k_requested for r in results], [r.psnr for r in results],
                              [r.bpp for r in results],
                              f"{source.name} ({image.shape[1]}x{image.shape[0]}"
                              f"{_plot_note(space.value, dither.value)}), "
                              f"sizes of the .{size_of} encoding",
                              output.suffix.lower().lstrip("."))
            outputs.write(output, plot, force=force)
        if not quiet:
            report.console().print(report.sweep_table(results, f".{size_of}", title=str(source)))


def _plot_note(space: str, dither: str) -> str:
    name = _variant(space, dither)
    return "" if name == _variant(FIT["space"], FIT["dither"]) else f", {name}"


def _csv_bytes(results: list[report.Result]) -> bytes:
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    # New columns go last: readers that index the older ones by position keep working.
    # k is the colours the result has (fewer than asked when the image has fewer).
    writer.writerow(["k", "mse", "psnr_db", "bytes", "bits_per_pixel", "ratio_24bit",
                     "seconds", "delta_e", "k_requested"])
    for r in results:
        writer.writerow([r.k, f"{r.mse:.6f}", f"{r.psnr:.6f}", r.n_bytes, f"{r.bpp:.6f}",
                         f"{r.ratio:.4f}", f"{r.seconds:.4f}", f"{r.delta_e:.6f}",
                         r.k_requested])
    return text.getvalue().encode()


# ------------------------------------------------------------------------------ warmup

@app.command()
def warmup(
    jobs: Annotated[Optional[int], typer.Option(
        "--jobs", "-j", help="Processes compiling at once [default: one per core].")] = None,
    quiet: Quiet = False,
    debug: Debug = False,
) -> None:
    """Compile and cache every kernel the commands can reach, several at once.

    Numba compiles fastkm's kernels for this CPU on their first use and caches them
    (beside the sources, under the user's cache folder when those are read-only, or in
    NUMBA_CACHE_DIR). Run this once where the first use must be quick: in a Dockerfile
    (RUN fastkm warmup) or a CI job's set-up.
    """
    with reported(debug):
        if jobs is not None and jobs < 1:
            raise CliError(f"--jobs must be at least 1, got {jobs}")
        firstrun.warmup(jobs, quiet)


def main() -> None:
    """The ``fastkm`` console script: once per process (it freezes the garbage collector)."""
    import gc
    import sys
    import warnings

    # Numba probes SciPy's BLAS when it loads its registries: 0.1-0.2 s of every warm
    # start where SciPy is installed, for linear algebra that no fastkm kernel does.
    sys.modules.setdefault("scipy.linalg.cython_blas", None)
    if "--debug" not in sys.argv:
        # Compiler notes (e.g. Numba declining to cache a kernel) are for developers; a
        # user sees only results and one-line errors.
        warnings.filterwarnings("ignore", module=r"numba(\.|$)")
        warnings.filterwarnings("ignore", message=r"Cannot cache compiled function")
    try:
        app(prog_name="fastkm")
    finally:
        # The command is over: spare the interpreter's exit its garbage collection of
        # Numba's and LLVM's object graphs, ~60 ms of a warm run. Finalizers of objects in
        # cycles no longer run, so outputs, pools and clusters are closed explicitly.
        gc.freeze()
