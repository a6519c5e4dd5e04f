"""Perceptual quality: k-means in OKLab against RGB and pngquant; dithering speed and size.

    python bench/bench_perceptual.py            # full run (~7 min on 2 idle cores); prints it
    python bench/bench_perceptual.py --quick    # path-640 + kite, K = 16; prints only

``run(quick)`` returns the Markdown section for bench/RESULTS.md (``python bench/run.py
--only perceptual``). Progress goes to stderr. Photos come from ../shared/images.

Every measure is computed here the same way for every tool, on the decoded picture each
produced: ΔE = ``fastkm.metrics.delta_e`` (mean OKLab distance x 100), PSNR =
``fastkm.metrics.psnr``, SSIM = scikit-image ``structural_similarity(channel_axis=2,
data_range=255)``. fastkm's own ``.delta_e`` and ``.mse`` are checked against them.
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from common import machine, table  # noqa: E402

import fastkm  # noqa: E402
from fastkm import dither, metrics  # noqa: E402
from fastkm.images import read_image  # noqa: E402
from fastkm.palette import PaletteImage  # noqa: E402

IMAGES = ROOT.parent / "shared" / "images"
KS = (16, 64)
QUICK_IMAGES = ("path-640.jpg", "kite.jpg")
SMALL = "path-640.jpg"  # not a dithering-speed case: too small to time in MP/s
REPEAT = 3
MODES = ("none", "ordered", "fs")
TARGET_MPS = {"ordered": 100.0, "fs": 20.0}

T0 = time.perf_counter()


def log(msg: str) -> None:
    print(f"[{time.perf_counter() - T0:7.1f} s] {msg}", file=sys.stderr, flush=True)


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    from skimage.metrics import structural_similarity

    return float(structural_similarity(a, b, channel_axis=2, data_range=255))


def pngquant(rgb: np.ndarray, k: int, workdir: Path) -> np.ndarray:
    """`pngquant --nofs K` on a PNG of the decoded photo; its output read back as RGB."""
    src, out = workdir / "in.png", workdir / "out.png"
    Image.fromarray(rgb).save(src, compress_level=1)
    subprocess.run(["pngquant", "--nofs", "--force", "--output", str(out), str(k), str(src)],
                   check=True, capture_output=True)
    with Image.open(out) as im:
        return np.asarray(im.convert("RGB"))


def png8_bytes(img: PaletteImage) -> int:
    """PNG-8 of exactly this palette and these indices (Pillow, optimize=True)."""
    p = Image.fromarray(img.indices, "P")
    p.putpalette(img.palette.reshape(-1).tolist())
    buffer = io.BytesIO()
    p.save(buffer, "PNG", optimize=True)
    return len(buffer.getvalue())


def measures(rgb: np.ndarray, out: np.ndarray) -> dict:
    return {"de": metrics.delta_e(rgb, out), "psnr": metrics.psnr(rgb, out), "ssim": ssim(rgb, out)}


def mean(xs) -> float:
    xs = list(xs)
    return sum(xs) / len(xs)


# ---- table 1: quality ------------------------------------------------------------------

def quality_table(paths: list[Path], ks) -> tuple[list[str], list[dict]]:
    have_pq = shutil.which("pngquant") is not None
    cases, rows = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for path in paths:
            rgb = read_image(path)
            for k in ks:
                log(f"quality {path.name} K={k}")
                case = {"image": path.name, "k": k, "mp": rgb.shape[0] * rgb.shape[1] / 1e6}
                for space in ("rgb", "oklab"):
                    q = fastkm.quantize(rgb, k, seed=0, space=space)
                    case[space] = m = measures(rgb, q.to_image())
                    # The quantizer's own figures (from the histogram) must agree with these.
                    assert abs(q.delta_e - m["de"]) <= 1e-9 * max(1.0, m["de"]), (q.delta_e, m)
                    assert abs(q.psnr - m["psnr"]) <= 1e-9 * m["psnr"], (q.psnr, m)
                case["pq"] = measures(rgb, pngquant(rgb, k, Path(tmp))) if have_pq else None
                cases.append(case)
                pq = case["pq"]
                rows.append([case["image"], f"{case['mp']:.1f}", k,
                             *(f"{case[s]['de']:.3f}" for s in ("rgb", "oklab")),
                             f"{pq['de']:.3f}" if pq else "—",
                             *(f"{case[s]['psnr']:.2f}" for s in ("rgb", "oklab")),
                             f"{pq['psnr']:.2f}" if pq else "—",
                             *(f"{case[s]['ssim']:.4f}" for s in ("rgb", "oklab")),
                             f"{pq['ssim']:.4f}" if pq else "—",
                             "yes" if case["oklab"]["de"] < case["rgb"]["de"] else "**no**",
                             ("yes" if case["oklab"]["de"] < pq["de"] else "**no**") if pq
                             else "—"])
    header = ["image", "MP", "K", "ΔE rgb", "ΔE oklab", "ΔE pngquant", "PSNR rgb",
              "PSNR oklab", "PSNR pngquant", "SSIM rgb", "SSIM oklab", "SSIM pngquant",
              "oklab < rgb", "oklab < pngquant"]
    lines = [table(header, rows), ""]
    summary = []
    for k in ks:
        ck = [c for c in cases if c["k"] == k]
        drop = [c["rgb"]["psnr"] - c["oklab"]["psnr"] for c in ck]
        row = [k, f"{mean(c['rgb']['de'] for c in ck):.3f}",
               f"{mean(c['oklab']['de'] for c in ck):.3f}",
               f"{mean(c['pq']['de'] for c in ck):.3f}" if have_pq else "—",
               f"{mean(drop):.2f} dB (from {min(drop):.2f} to {max(drop):.2f})",
               f"{mean(c['rgb']['ssim'] for c in ck):.4f}",
               f"{mean(c['oklab']['ssim'] for c in ck):.4f}",
               f"{mean(c['pq']['ssim'] for c in ck):.4f}" if have_pq else "—"]
        summary.append(row)
    lines += ["Means over the photos:", "",
              table(["K", "ΔE rgb", "ΔE oklab", "ΔE pngquant", "PSNR drop oklab vs rgb",
                     "SSIM rgb", "SSIM oklab", "SSIM pngquant"], summary)]
    return lines, cases


# ---- table 2: dithering speed and size -------------------------------------------------

def dither_table(paths: list[Path], ks) -> tuple[list[str], list[dict]]:
    cases, rows = [], []
    for path in paths:
        rgb = read_image(path)
        mp = rgb.shape[0] * rgb.shape[1] / 1e6
        for k in ks:
            log(f"dither {path.name} K={k}")
            palette = fastkm.quantize(rgb, k, seed=0).palette
            case = {"image": path.name, "k": k, "mp": mp}
            for mode in MODES:
                dither.dither(rgb, palette, mode)  # warm: compiled, caches touched
                times = []
                for _ in range(REPEAT):
                    t = time.perf_counter()
                    indices = dither.dither(rgb, palette, mode)
                    times.append(time.perf_counter() - t)
                img = PaletteImage(palette, indices)
                back = fastkm.decode(fastkm.encode(img))
                assert np.array_equal(back.indices, indices), "dithered .fkm round trip"
                case[mode] = {"mps": mp / statistics.median(times),
                              "fkm": len(fastkm.encode(img)), "png": png8_bytes(img)}
            cases.append(case)
            none = case["none"]
            rows.append([path.name, f"{mp:.1f}", k,
                         *(f"{case[m]['mps']:.0f}" for m in MODES),
                         *(f"{case[m]['fkm']:,} ({case[m]['fkm'] / none['fkm']:.2f}x)"
                           for m in MODES),
                         *(f"{case[m]['png']:,} ({case[m]['png'] / none['png']:.2f}x)"
                           for m in MODES)])
    header = ["image", "MP", "K", "none MP/s", "ordered MP/s", "fs MP/s", ".fkm none",
              ".fkm ordered", ".fkm fs", "PNG-8 none", "PNG-8 ordered", "PNG-8 fs"]
    summary = []
    for k in ks:
        ck = [c for c in cases if c["k"] == k]
        summary.append([k, *(f"{min(c[m]['mps'] for c in ck):.0f} / "
                             f"{statistics.median(c[m]['mps'] for c in ck):.0f}"
                             for m in MODES),
                        *(f"{mean(c[m]['fkm'] / c['none']['fkm'] for c in ck):.2f}x"
                          for m in ("ordered", "fs")),
                        *(f"{mean(c[m]['png'] / c['none']['png'] for c in ck):.2f}x"
                          for m in ("ordered", "fs"))])
    lines = [table(header, rows), "", "Summary (MP/s as min / median over the photos; sizes "
             "as the mean ratio to no dithering):", "",
             table(["K", "none MP/s", "ordered MP/s", "fs MP/s", ".fkm ordered / none",
                    ".fkm fs / none", "PNG-8 ordered / none", "PNG-8 fs / none"], summary)]
    return lines, cases


# ---- compile time ------------------------------------------------------------------------

_FIRST_CALLS = """
import time, numpy as np
t = time.perf_counter()
from fastkm import oklab, dither, quantize
img = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
t0 = time.perf_counter(); oklab.srgb_to_oklab(img.reshape(-1, 3)); t1 = time.perf_counter()
quantize(img, 16, seed=0, space="oklab"); t2 = time.perf_counter()
dither.dither(img, img[0, :16], "ordered"); t3 = time.perf_counter()
dither.dither(img, img[0, :16], "fs"); t4 = time.perf_counter()
quantize(img, 16, seed=0, space="oklab", dither="fs"); t5 = time.perf_counter()
print(t0 - t, t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4)
"""


def compile_table() -> list[str]:
    """First calls in fresh processes: with an empty Numba cache (compiles) and then warm."""
    rows = []
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache, PYTHONPATH=str(ROOT))
        for label in ("cold (compiles, fills cache)", "warm (cache loaded)"):
            out = subprocess.run([sys.executable, "-c", _FIRST_CALLS], env=env, check=True,
                                 capture_output=True, text=True).stdout.split()
            rows.append([label, *(f"{float(x):.2f} s" for x in out)])
    return [table(["", "import", "first srgb_to_oklab", "then quantize(space='oklab')",
                   "then dither ordered", "then dither fs",
                   "then quantize(dither='fs')"], rows)]


# ---- targets and the section -------------------------------------------------------------

def target_rows(quality: list[dict], dithers: list[dict], ks) -> list[list[str]]:
    yes = {True: "yes", False: "**no**"}
    rows = []
    for k in ks:
        ck = [c for c in quality if c["k"] == k]
        n = sum(c["oklab"]["de"] < c["rgb"]["de"] for c in ck)
        rows.append([f"K={k}: ΔE oklab < rgb on every photo", f"{n} of {len(ck)}",
                     yes[n == len(ck)]])
        pq = [c for c in ck if c["pq"]]
        if pq:
            n = sum(c["oklab"]["de"] < c["pq"]["de"] for c in pq)
            rows.append([f"K={k}: ΔE oklab < pngquant --nofs on every photo",
                         f"{n} of {len(pq)}", yes[n == len(pq)]])
        drop = mean(c["rgb"]["psnr"] - c["oklab"]["psnr"] for c in ck)
        rows.append([f"K={k}: PSNR cost of oklab (reported, no target)",
                     f"mean {drop:.2f} dB lower than rgb", "—"])
    for mode, goal in TARGET_MPS.items():
        for k in ks:
            speeds = [c[mode]["mps"] for c in dithers if c["k"] == k]
            if speeds:
                rows.append([f"K={k}: {mode} >= {goal:.0f} MP/s",
                             f"min {min(speeds):.0f}, median {statistics.median(speeds):.0f} "
                             f"MP/s over {len(speeds)} photos", yes[min(speeds) >= goal]])
    return rows


def header_lines(command: str) -> list[str]:
    import numba

    def version(dist):
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            return "not installed"

    pq = shutil.which("pngquant")
    pq_version = subprocess.run([pq, "--version"], capture_output=True, text=True) \
        .stdout.strip() if pq else "not installed"
    load = os.getloadavg()[0]
    busy = " **Other processes were running: the times are not reliable.**" if load > 0.5 else ""
    return [f"Machine: {machine()}; load average {load:.2f} at the start.{busy}", "",
            f"Versions: fastkm {fastkm.__version__}, numpy {np.__version__}, numba "
            f"{numba.__version__} ({numba.get_num_threads()} threads), scikit-image "
            f"{version('scikit-image')}, Pillow {version('pillow')}, pngquant {pq_version}.",
            "", f"Command: `{command}`"]


def run(quick: bool = False) -> str:
    start = time.perf_counter()
    title = "## Perceptual quality: OKLab clustering and dithering"
    if not IMAGES.is_dir():
        return f"{title}\n\nNo photos: {IMAGES} is missing. Nothing measured.\n"
    paths = [IMAGES / n for n in QUICK_IMAGES] if quick else sorted(IMAGES.glob("*.jpg"))
    ks = (16,) if quick else KS
    command = "python bench/bench_perceptual.py" + (" --quick" if quick else "")
    lines = [title, "", *header_lines(command), "",
             "### Mean ΔE, PSNR and SSIM: k-means in RGB, in OKLab, and pngquant", "",
             "fastkm: `fastkm.quantize(image, K, seed=0, space=...)` with its defaults "
             "(one k-means++ seeding improved by breathing k-means, no dithering). "
             "pngquant: `pngquant --nofs K` (its default speed 4, no dithering) on a PNG of "
             "the decoded photo, its output read back. ΔE: mean over pixels of the OKLab "
             "distance x 100 (about 2 is just noticeable); PSNR in dB over RGB; SSIM from "
             "scikit-image (`channel_axis=2, data_range=255`). All three are computed by "
             "this file in the same way for every tool.", ""]
    log(f"quality: {len(paths)} photos, K = {ks}")
    more, quality = quality_table(paths, ks)
    lines += more
    speed_paths = [p for p in paths if p.name != SMALL] or paths
    lines += ["", "### Dithering: speed and the cost in file size", "",
              f"`fastkm.dither.dither(image, palette, mode)` on the photos of {3.5:g} MP and "
              "more, palette from `quantize(image, K, seed=0)`; image and palette already in "
              f"memory; one warm-up call, then the median of {REPEAT}. The time includes "
              "building the nearest-colour grid (Floyd–Steinberg; ordered dithering works by "
              f"tiles of {dither.TILE_ROWS} x {dither.TILE_COLS} pixels and needs none). MP/s = megapixels per second. "
              "Floyd–"
              f"Steinberg runs in parallel strips of {dither.STRIP_ROWS} rows, each first "
              f"diffusing the {dither.WARMUP_ROWS} rows above it. Sizes: `.fkm` from "
              "`fastkm.encode` (every dithered file is decoded and checked bit for bit) and "
              "PNG-8 of the same palette and indices (Pillow, optimize=True).", ""]
    log(f"dithering: {len(speed_paths)} photos")
    more, dithers = dither_table(speed_paths, ks)
    lines += more
    lines += ["", "### First calls of the new kernels", "",
              "Each row a fresh process on a 64x64 image; *cold* with an empty "
              "`NUMBA_CACHE_DIR` (Numba compiles), *warm* with the cache the cold run filled. "
              "Columns are cumulative steps, each timed alone.", ""]
    log("compile times")
    lines += compile_table()
    lines += ["", "### The issue's targets in this run", ""]
    lines += [table(["target", "measured", "met"], target_rows(quality, dithers, ks))]
    lines += ["", f"Load average at the end (this run included): {os.getloadavg()[0]:.2f}; "
              f"this section took {(time.perf_counter() - start) / 60:.1f} min."]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true",
                    help=f"{' and '.join(QUICK_IMAGES)} at K = 16; print only")
    a = ap.parse_args()
    if not IMAGES.is_dir():
        sys.exit(f"bench_perceptual: photo folder {IMAGES} not found; it is expected as "
                 "../shared/images beside the repository.")
    text = run(a.quick)
    print(text)


if __name__ == "__main__":
    main()
