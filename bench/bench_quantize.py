"""Photo quantization: fastkm.quantize against scikit-learn KMeans and libimagequant, at scale,
and `fastkm compress` end to end against pngquant.

    /work/venv/bin/python bench/bench_quantize.py            # full run, ~25 min on 2 idle cores
    /work/venv/bin/python bench/bench_quantize.py --quick    # path-640 + kite, K = 16 only
    options: --images a.jpg,b.jpg  --colors 16,64,256  --no-sklearn

``run(...)`` returns the Markdown section for bench/RESULTS.md; progress goes to stderr.
Photos come from ../shared/images beside the repository (see its SOURCES.md).

Every MSE here is computed by this file the same way for every tool: mean over H*W*C of the
squared difference between the input and the uint8 palette colour each pixel is given.
fastkm's own ``.mse`` is checked against it.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from common import SETTLE_S, machine, table, timed  # noqa: E402

import fastkm  # noqa: E402

try:
    import imagequant
except ImportError:
    imagequant = None
try:
    from sklearn.cluster import KMeans as SkKMeans
except ImportError:
    SkKMeans = None

IMAGES = ROOT.parent / "shared" / "images"
KS = (16, 64, 256)
QUICK_IMAGES = ("path-640.jpg", "kite.jpg")
BIG, SMALL = "volna.jpg", "path-640.jpg"  # tables 2 and 3 (SMALL in --quick)
# Runs per timing. Three left the median of a 15-20 ms run swinging by a third between
# runs on a shared 2-core VM; five cost ~1.5 min more over the section.
REPEAT = 5
LONG_RUN = 10.0  # s: a fastkm run longer than this is timed once, not REPEAT times
# scikit-learn costs O(pixels * K) per k-means++ step and per Lloyd iteration: on 2 cores
# about 2 min per 4 MP photo at K = 256 (k-means++ ~40 s, then 30-110 iterations), 4x that
# on volna (14.7 MP). To keep the full run within ~35 min, images over SKLEARN_MAX_PIXELS get
# scikit-learn at K = 16 only. The output lists every skipped case.
SKLEARN_MAX_PIXELS = 5_000_000
GB = 1e9

T0 = time.perf_counter()


def log(msg: str) -> None:
    print(f"[{time.perf_counter() - T0:7.1f} s] {msg}", file=sys.stderr, flush=True)


# ---- measurement helpers ---------------------------------------------------------------

def load_rgb(path: Path) -> np.ndarray:
    """Decoded as `fastkm compress` reads it: Pillow, EXIF orientation applied, RGB."""
    with Image.open(path) as im:
        return np.asarray(ImageOps.exif_transpose(im).convert("RGB"))


def mse(ref: np.ndarray, rows, step: int = 256) -> float:
    """MSE of ``rows(slice)`` (the approximation of those rows of ``ref``) over the image,
    a band of rows at a time so a 59 MP image needs no full-size float copy."""
    sse = 0.0
    for r in range(0, ref.shape[0], step):
        d = (rows(slice(r, r + step)).astype(np.float64) - ref[r:r + step]).ravel()
        sse += float(d @ d)  # exact: integer squares, far below 2**53
    return sse / ref.size


def nearest_mse(rgb: np.ndarray, palette: np.ndarray) -> float:
    """MSE when every pixel takes its nearest palette colour, computed over distinct colours
    (weighted by count) so K = 256 against 4 M pixels stays cheap."""
    packed = (rgb[..., 0].astype(np.uint32) << 16) | (rgb[..., 1].astype(np.uint32) << 8) \
        | rgb[..., 2]
    keys, counts = np.unique(packed, return_counts=True)
    colors = np.stack([keys >> 16, (keys >> 8) & 255, keys & 255], axis=1).astype(np.float64)
    pal = palette.astype(np.float64)
    best = np.empty(len(colors))
    for i in range(0, len(colors), 16384):
        c = colors[i:i + 16384]
        # |c - p|^2 expanded; exact in float64 for 8-bit integers.
        d = (c * c).sum(1)[:, None] - 2.0 * c @ pal.T + (pal * pal).sum(1)[None, :]
        best[i:i + 16384] = d.min(1)
    return float(best @ counts) / rgb.size


def run_fastkm(rgb, k):
    """(median s, runs, MSE, Lloyd iterations, fastkm's own .mse). The warm-up is one untimed
    call on the same image and K: a small crop takes other code paths (sorted instead of
    dense histogram, no coarse seeding) and left Numba compilation in the first timed call.
    Runs longer than LONG_RUN are timed once: more would only lengthen the benchmark."""
    call = lambda: fastkm.quantize(rgb, k, seed=0)  # noqa: E731
    t_warm, _ = timed(call)
    runs = REPEAT if t_warm < LONG_RUN else 1
    t, q = timed(call, runs)
    return t, runs, mse(rgb, lambda s: q.palette[q.indices[s]]), q.n_iter, q.mse


def run_sklearn(pixels, rgb, k):
    """(s, MSE, iterations) of one fit on every pixel; its palette is rounded to uint8 and each
    pixel mapped to the nearest entry, as fastkm does."""
    t, km = timed(lambda: SkKMeans(n_clusters=k, n_init=1, random_state=0).fit(pixels))
    palette = np.clip(np.rint(km.cluster_centers_), 0, 255).astype(np.uint8)
    return t, nearest_mse(rgb, palette), km.n_iter_


def run_liq(rgb, k):
    """(median s, MSE, palette size): libimagequant's own indices and palette, no dithering.
    The RGBA bytes it needs are made before the clock starts."""
    h, w = rgb.shape[:2]
    rgba = np.dstack([rgb, np.full((h, w), 255, np.uint8)]).tobytes()
    t, (idx, pal) = timed(lambda: imagequant.quantize_raw_rgba_bytes(
        rgba, w, h, dithering_level=0.0, max_colors=k), REPEAT)
    pal = np.array(pal, np.uint8).reshape(-1, 4)[:, :3]
    idx = np.frombuffer(idx, np.uint8).reshape(h, w)
    return t, mse(rgb, lambda s: pal[idx[s]]), len(pal)


def sklearn_skip(n_pixels: int, k: int) -> str | None:
    """Why scikit-learn does not run on this case (the time budget above), or None."""
    if k > 16 and n_pixels > SKLEARN_MAX_PIXELS:
        return f"images over {SKLEARN_MAX_PIXELS / 1e6:g} MP at K = 16 only"
    return None


# ---- formatting ------------------------------------------------------------------------

def fmt(x, kind: str) -> str:
    if x is None:
        return "—"
    if kind == "s":
        return f"{x:.3f}" if x < 1 else f"{x:.2f}" if x < 10 else f"{x:.1f}" if x < 100 \
            else f"{x:.0f}"
    return {"mse": f"{x:.2f}", "x": f"{x:.1f}x" if x >= 1 else f"{x:.2g}x", "r": f"{x:.3f}",
            "gb": f"{x / GB:.2f}", "int": f"{x:,}"}[kind]


def ratio(a, b):
    return None if a is None or b is None or b == 0 else a / b


def geomean(xs):
    xs = [x for x in xs if x is not None]
    return float(np.exp(np.mean(np.log(xs)))) if xs else None


def mean(xs):
    xs = [x for x in xs if x is not None]
    return float(np.mean(xs)) if xs else None


# ---- header ----------------------------------------------------------------------------

def version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def liq_version(v: int) -> str:
    return f"{v // 10000}.{v // 100 % 100}.{v % 100}"


def header_lines(command: str) -> list[str]:
    import numba
    threads = "?"
    try:
        from threadpoolctl import threadpool_info
        threads = ", ".join(f"{p['internal_api']} {p['num_threads']}"
                            for p in threadpool_info())
    except ImportError:
        pass
    pq = shutil.which("pngquant")
    pq_version = subprocess.run([pq, "--version"], capture_output=True, text=True) \
        .stdout.strip() if pq else "not installed"
    liq = liq_version(imagequant.lib.liq_version()) if imagequant else "—"
    load = os.getloadavg()[0]
    # fastkm, scikit-learn and pngquant use both cores: other work distorts the times.
    busy = " **Other processes were running: the times are not reliable.**" if load > 0.5 else ""
    return [
        f"Machine: {machine()}; load average {load:.2f} at the start.{busy}",
        "",
        f"Versions: fastkm {fastkm.__version__}, numpy {np.__version__}, numba "
        f"{numba.__version__} ({numba.get_num_threads()} threads), scikit-learn "
        f"{version('scikit-learn')} (threads: {threads}), imagequant {version('imagequant')} "
        f"(bundles libimagequant {liq}, single-threaded), Pillow {version('pillow')}, "
        f"pngquant {pq_version}.",
        "",
        f"Command: `{command}`",
    ]


# ---- table 1: photos -------------------------------------------------------------------

def photo_table(paths: list[Path], ks, use_sklearn: bool) -> tuple[list[str], list[dict]]:
    cases, mismatch = [], []
    for path in paths:
        rgb = load_rgb(path)
        h, w = rgb.shape[:2]
        pixels = None  # float64 copy for scikit-learn, made only if it runs on this image
        for k in ks:
            c = dict(name=path.name, w=w, h=h, k=k, sk_t=None, sk_mse=None, skip=None,
                     liq_t=None, liq_mse=None)
            c["fk_t"], c["fk_runs"], c["fk_mse"], c["fk_iter"], own = run_fastkm(rgb, k)
            if not np.isclose(own, c["fk_mse"], rtol=1e-6, atol=0):
                mismatch.append(f"{path.name} K={k}: .mse {own:.4f}, recomputed "
                                f"{c['fk_mse']:.4f}")
            msg = f"{path.name} K={k}: fastkm {c['fk_t']:.3f} s MSE {c['fk_mse']:.2f} " \
                  f"({c['fk_iter']} it)"
            if imagequant:
                c["liq_t"], c["liq_mse"], c["liq_n"] = run_liq(rgb, k)
                msg += f" | liq {c['liq_t']:.3f} s MSE {c['liq_mse']:.2f}"
            c["skip"] = "--no-sklearn" if not use_sklearn else \
                "not installed" if SkKMeans is None else sklearn_skip(h * w, k)
            if c["skip"] is None:
                if pixels is None:
                    pixels = rgb.reshape(-1, 3).astype(np.float64)
                c["sk_t"], c["sk_mse"], sk_iter = run_sklearn(pixels, rgb, k)
                msg += f" | sklearn {c['sk_t']:.1f} s MSE {c['sk_mse']:.2f} ({sk_iter} it)"
            log(msg)
            cases.append(c)
        del rgb, pixels

    rows = [[c["name"], f"{c['w'] * c['h'] / 1e6:.1f}", str(c["k"]),
             fmt(c["fk_t"], "s") + ("" if c["fk_runs"] == REPEAT else f" ({c['fk_runs']})"),
             fmt(c["sk_t"], "s"), fmt(c["liq_t"], "s"),
             fmt(c["fk_mse"], "mse"), fmt(c["sk_mse"], "mse"), fmt(c["liq_mse"], "mse"),
             fmt(ratio(c["sk_t"], c["fk_t"]), "x"), fmt(ratio(c["liq_t"], c["fk_t"]), "x"),
             fmt(ratio(c["fk_mse"], c["sk_mse"]), "r"), fmt(ratio(c["fk_mse"], c["liq_mse"]), "r")]
            for c in cases]
    lines = [table(["image", "MP", "K", "fastkm s", "sklearn s", "liq s", "fastkm MSE",
                    "sklearn MSE", "liq MSE", "sklearn / fastkm time", "liq / fastkm time",
                    "fastkm / sklearn MSE", "fastkm / liq MSE"], rows)]
    if mismatch:
        lines += ["", "**fastkm's `.mse` differs from the MSE of its palette and indices:** "
                  + "; ".join(mismatch) + "."]

    skipped = [f"{c['name']} K={c['k']} ({c['skip']})" for c in cases if c["skip"]]
    if skipped:
        lines += ["", "scikit-learn not run on: " + "; ".join(skipped) + "."]
    fewer = [f"{c['name']} K={c['k']}: {c['liq_n']}" for c in cases
             if c["liq_t"] is not None and c["liq_n"] < c["k"]]
    if fewer:
        lines += ["", "libimagequant returned fewer colours than K: " + "; ".join(fewer) + "."]

    summary = []
    for k in ks:
        ck = [c for c in cases if c["k"] == k]
        both = [c for c in ck if c["sk_mse"] is not None]
        summary.append([str(k), str(len(ck)), fmt(mean(c["fk_mse"] for c in ck), "mse"),
                        fmt(mean(c["liq_mse"] for c in ck), "mse"), str(len(both)),
                        fmt(mean(c["fk_mse"] for c in both), "mse"),
                        fmt(mean(c["sk_mse"] for c in both), "mse"),
                        fmt(geomean(ratio(c["sk_t"], c["fk_t"]) for c in both), "x"),
                        fmt(geomean(ratio(c["liq_t"], c["fk_t"]) for c in ck), "x")])
    lines += ["", "Per K: mean MSE over the images (scikit-learn compared on the images it "
              "ran on), geometric mean of the speed ratios.", ""]
    lines += [table(["K", "images", "fastkm mean MSE", "liq mean MSE", "images with sklearn",
                    "fastkm mean MSE (those)", "sklearn mean MSE (those)",
                    "sklearn / fastkm time", "liq / fastkm time"], summary)]
    return lines, cases


# ---- table 2: scale --------------------------------------------------------------------

# Runs in a fresh process so its RSS is this job's alone. The peak is VmHWM, not ru_maxrss:
# after fork and exec, ru_maxrss starts from the parent's peak (this benchmark's own 2.2-2.4
# GB, which earlier runs reported as quantize's). Writing 5 to /proc/self/clear_refs resets
# VmHWM to the current RSS, which separates the peak of quantize from that of decoding and
# upscaling.
SCALE_SCRIPT = r"""
import json, resource, sys, time
import numpy as np
from PIL import Image, ImageOps
import fastkm

def peak():
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize()

path, scale, k, repeat = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
with Image.open(path) as src:
    rgb = ImageOps.exif_transpose(src).convert("RGB")
big = rgb.resize((rgb.width * scale, rgb.height * scale), Image.Resampling.BICUBIC)
image = np.asarray(big)
del rgb, big
# Warm-up on the image itself: Numba compiles per array type (this one is read-only), and a
# compilation in the timed calls would count in their time and their peak memory.
fastkm.quantize(image, k, seed=0)
out = {"shape": image.shape, "rss_before": rss(), "peak_before": peak()}
try:
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    out["reset"] = True
except OSError:
    out["reset"] = False
runs, q = [], None
for _ in range(repeat):
    q = None  # free the previous result first: the peak is that of one call
    t = time.perf_counter()
    q = fastkm.quantize(image, k, seed=0)
    runs.append((time.perf_counter() - t, q.timings))
t, timings = sorted(runs, key=lambda r: r[0])[len(runs) // 2]  # the median run
out.update(peak=peak(), t=t, timings=timings, n_distinct=q.n_distinct, mse=q.mse)
print(json.dumps(out))
"""


def scale_table(path: Path, scale: int, k: int) -> tuple[list[str], dict]:
    log(f"scale: {path.name} x{scale}, K={k} (subprocess)")
    r = subprocess.run([sys.executable, "-c", SCALE_SCRIPT, str(path), str(scale), str(k),
                        str(REPEAT)], capture_output=True, text=True, cwd=ROOT)
    if r.returncode:
        raise RuntimeError(f"scale subprocess failed:\n{r.stderr}")
    s = json.loads(r.stdout.strip().splitlines()[-1])
    h, w = s["shape"][:2]
    tm = s["timings"]
    log(f"scale: {w}x{h} quantize {s['t']:.2f} s, peak RSS {s['peak'] / GB:.2f} GB")
    during = "peak RSS during quantize, GB" if s["reset"] else \
        "peak RSS of the process, GB (reset not available)"
    lines = [table(["image", "MP", "K", f"quantize s (median of {REPEAT})",
                   "histogram / k-means / map s (that run)", "distinct colours",
                   "RSS before quantize, GB", during,
                   "process peak before (decode, upscale, warm-up), GB"],
                  [[f"{path.name} x{scale} ({w}x{h})", f"{w * h / 1e6:.1f}", str(k),
                    fmt(s["t"], "s"), " / ".join(f"{tm[x]:.2f}" for x in
                                                  ("histogram", "kmeans", "map")),
                    fmt(s["n_distinct"], "int"), fmt(s["rss_before"], "gb"),
                    fmt(s["peak"], "gb"), fmt(s["peak_before"], "gb")]])]
    lines += ["", f"A fresh process decodes {path.name} (Pillow), upscales it {scale}x "
              f"(Pillow bicubic), keeps it as a {w}x{h}x3 uint8 array "
              f"({w * h * 3 / 1e6:.0f} MB), warms fastkm up with one untimed call on it, "
              f"then times `fastkm.quantize(image, {k}, seed=0)`. Peak RSS (VmHWM, GB = "
              "10^9 bytes) includes the interpreter, numpy, Numba and its compiled code, the "
              "input array and everything quantize allocates (histogram, palette, index "
              "plane); the peak during quantize was reset to the current RSS just before the "
              "first timed call (`/proc/self/clear_refs`), so it excludes the upscaling."]
    s.update(w=w, h=h)
    return lines, s


# ---- table 3: end to end ---------------------------------------------------------------

def fastkm_cli() -> list[str]:
    exe = Path(sys.executable).with_name("fastkm")
    return [str(exe)] if exe.exists() else [shutil.which("fastkm") or "fastkm"]


def wall_times(cmd: list[str], env: dict, runs: int = REPEAT) -> list[float]:
    """Wall seconds of ``runs`` runs: hyperfine (no shell) when installed, else perf_counter
    around subprocess.run."""
    if shutil.which("hyperfine"):
        with tempfile.TemporaryDirectory() as d:
            out = Path(d) / "h.json"
            subprocess.run(["hyperfine", "-N", "--style", "none", "--runs", str(runs),
                            "--export-json", str(out), shlex.join(cmd)],
                           env=env, check=True, capture_output=True)
            return json.loads(out.read_text())["results"][0]["times"]
    return [timed(lambda: subprocess.run(cmd, env=env, check=True, capture_output=True))[0]
            for _ in range(runs)]


def e2e_table(path: Path, k: int) -> tuple[list[str], dict]:
    ref = load_rgb(path)
    res = {}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        png = tmp / (path.stem + ".png")
        Image.fromarray(ref).save(png)  # lossless: same pixels as the decoded JPEG
        # A fresh Numba cache: the first run compiles (cold), the next ones load the cache.
        env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp / "numba-cache"))
        fk = fastkm_cli()
        jobs = [("fastkm", path, [*fk, "compress", str(path), "-k", str(k), "-o",
                                  str(tmp / "fk-jpg.png"), "--force"]),
                ("fastkm", png, [*fk, "compress", str(png), "-k", str(k), "-o",
                                 str(tmp / "fk-png.png"), "--force"])]
        if shutil.which("pngquant"):
            jobs.append(("pngquant", png, ["pngquant", "--nofs", "--force", "--output",
                                           str(tmp / "pq.png"), str(k), str(png)]))
        for i, (tool, src, cmd) in enumerate(jobs):
            cold = None
            if i == 0:
                cold, _ = timed(lambda: subprocess.run(cmd, env=env, check=True,
                                                       capture_output=True))
            t = float(np.median(wall_times(cmd, env)))
            out = Path(cmd[cmd.index("--output" if tool == "pngquant" else "-o") + 1])
            with Image.open(out) as im:
                got = np.asarray(im.convert("RGB"))
            err = mse(ref, lambda s: got[s])
            res[(tool, src.suffix)] = dict(t=t, mse=err, bytes=out.stat().st_size)
            log(f"e2e: {tool} {src.name}: {t:.2f} s, MSE {err:.2f}, {out.stat().st_size} B")
            shown = shlex.join([Path(cmd[0]).name, *cmd[1:]]).replace(str(tmp) + "/", "")
            shown = shown.replace(str(path.parent) + "/", "")
            rows.append([f"`{shown}`", fmt(cold, "s"), fmt(t, "s"),
                         fmt(out.stat().st_size, "int"), fmt(err, "mse")])
    lines = [table(["command", "cold s", f"warm s (median of {REPEAT})", "output bytes",
                    "MSE vs original"], rows)]
    timer = "hyperfine -N, no shell" if shutil.which("hyperfine") else \
        "time.perf_counter around subprocess.run"
    lines += ["", f"Wall time of the whole process, by {timer}: start-up, imports, decode, "
              f"quantize, PNG encode, write. {path.stem}.png is a lossless PNG of the decoded "
              f"{path.name} made beforehand (pngquant reads only PNG), so every MSE is against "
              "the same pixels; outputs are read back with Pillow and the palette expanded. "
              "Cold = the first fastkm run with an empty Numba cache (NUMBA_CACHE_DIR pointed "
              "at a fresh folder), so it includes JIT compilation; the warm runs load that "
              "cache. pngquant runs at its default speed 4 (libimagequant with OpenMP), "
              "`--nofs` turns dithering off."]
    if not shutil.which("pngquant"):
        lines += ["", "pngquant is not installed (`apt-get install pngquant`): not compared."]
    return lines, res


# ---- the targets ---------------------------------------------------------------

def target_rows(cases: list[dict], ks, scale: dict | None, e2e: dict | None) -> list[list[str]]:
    yes = {True: "yes", False: "**no**"}
    rows = []
    for k in ks:
        ck = [c for c in cases if c["k"] == k]
        both = [c for c in ck if c["sk_t"] is not None]
        if both:
            a, b = mean(c["fk_mse"] for c in both), mean(c["sk_mse"] for c in both)
            rows.append([f"K={k}: mean MSE <= sklearn", f"{a:.2f} vs {b:.2f} "
                         f"({len(both)} images)", yes[a <= b]])
        if ck[0]["liq_t"] is not None:
            a, b = mean(c["fk_mse"] for c in ck), mean(c["liq_mse"] for c in ck)
            rows.append([f"K={k}: mean MSE <= liq", f"{a:.2f} vs {b:.2f} ({len(ck)} images)",
                         yes[a <= b]])
        for tool, key, goal, group in (("sklearn", "sk_t", 20, both), ("liq", "liq_t", 3, ck)):
            rs = [c[key] / c["fk_t"] for c in group if c[key] is not None]
            if rs:
                n = sum(r >= goal for r in rs)
                rows.append([f"K={k}: >= {goal}x faster than {tool}",
                             f"{n} of {len(rs)} cases; min {fmt(min(rs), 'x')}, geomean "
                             f"{fmt(geomean(rs), 'x')}", yes[n == len(rs)]])
    four = [c["fk_t"] for c in cases if c["k"] == 256 and 3.5e6 < c["w"] * c["h"] < 5e6]
    if four:
        rows.append(["K=256 on a 4 MP photo < 1 s", f"max {max(four):.2f} s over "
                     f"{len(four)} photos", yes[max(four) < 1]])
    if scale:
        mp = scale["w"] * scale["h"] / 1e6
        rows.append([f"{mp:.0f} MP at K=16 < 3 s", f"{scale['t']:.2f} s", yes[scale["t"] < 3]])
        rows.append([f"{mp:.0f} MP at K=16: peak RSS < 2.5 GB", f"{scale['peak'] / GB:.2f} GB",
                     yes[scale["peak"] < 2.5 * GB]])
    if e2e and ("pngquant", ".png") in e2e:
        p = e2e[("pngquant", ".png")]
        for ext in (".jpg", ".png"):  # the JPEG command; the same PNG as pngquant
            f = e2e[("fastkm", ext)]
            rows.append([f"`fastkm compress` ({ext} input) faster than `pngquant --nofs`",
                         f"{f['t']:.2f} s vs {p['t']:.2f} s", yes[f["t"] < p["t"]]])
        rows.append(["`fastkm compress` lower MSE than `pngquant --nofs`",
                     f"{f['mse']:.2f} vs {p['mse']:.2f}", yes[f["mse"] < p["mse"]]])
    return rows


# ---- the section -----------------------------------------------------------------------

def resolve(name: str) -> Path:
    return Path(name) if Path(name).exists() else IMAGES / name


def run(quick: bool = False, images: list[str] | None = None, colors=None,
        sklearn: bool = True) -> str:
    start = time.perf_counter()
    title = "## Photo quantization: fastkm against scikit-learn, libimagequant, pngquant\n\n"
    if not IMAGES.is_dir():
        return title + f"No photos: {IMAGES} is missing (expected as ../shared/images beside " \
                       "the repository). Nothing measured.\n"
    paths = [resolve(n) for n in images] if images else \
        [IMAGES / n for n in QUICK_IMAGES] if quick else sorted(IMAGES.glob("*.jpg"))
    missing = [str(p) for p in paths if not p.is_file()]
    if missing or not paths:
        return title + f"Photos not found: {', '.join(missing) or IMAGES}. Nothing measured.\n"
    ks = tuple(colors) if colors else (16,) if quick else KS
    big = IMAGES / (SMALL if quick else BIG)
    command = " ".join(["python bench/bench_quantize.py", *(["--quick"] if quick else []),
                        *(["--images", ",".join(images)] if images else []),
                        *(["--colors", ",".join(map(str, colors))] if colors else []),
                        *([] if sklearn else ["--no-sklearn"])])

    lines = [title.rstrip(), "", *header_lines(command), "",
             "### Quantization of photos in memory", "",
             "fastkm: `fastkm.quantize(image, K, seed=0)` with its defaults: k-means++ seeding "
             "drawn once (n_init=1) on a coarse histogram and improved there by breathing k-means, "
             "max_iter 300, tol 1e-4; "
             "uint8 image already in memory. One untimed call on the same image and K first "
             f"(Numba compilation, caches), then the median of {REPEAT} runs (one run, marked "
             f"(1), when it takes over {LONG_RUN:g} s). scikit-learn: `KMeans(n_clusters=K, "
             "n_init=1, random_state=0).fit(X)`, **one seeding**, on all pixels as a float64 "
             "(N, 3) array made beforehand, its defaults otherwise (k-means++, lloyd, "
             "max_iter 300, tol 1e-4) and its default threads; one run; its centres are rounded "
             "to uint8 and each pixel mapped to the nearest. liq: `imagequant."
             "quantize_raw_rgba_bytes(rgba, w, h, dithering_level=0.0, max_colors=K)` "
             "(libimagequant, no dithering) on RGBA bytes made beforehand; the binding has no "
             "speed setting, so libimagequant's default speed 4 applies; median of "
             f"{REPEAT} runs; its MSE is that of its own palette and indices (it remaps in its "
             "own perceptual colour space, not to the nearest colour in RGB). MSE: mean over "
             "H*W*C of the squared error, computed by the benchmark for all three (fastkm's "
             "own `.mse` is checked against it). Every timed batch starts after "
             f"{SETTLE_S:g} s idle, once the worker threads of whatever ran before (OpenBLAS, "
             "OpenMP) have stopped spinning. Speed ratios above 1x mean fastkm is faster; "
             "MSE ratios below 1 mean fastkm is closer.", ""]
    log(f"table 1: {len(paths)} images, K = {ks}, sklearn {'on' if sklearn else 'off'}")
    photo, cases = photo_table(paths, ks, sklearn)
    lines += photo

    scale = e2e = None
    if big.is_file():
        lines += ["", f"### Scale: {big.name} upscaled 2x, K = 16", ""]
        more, scale = scale_table(big, 2, 16)
        lines += more
        lines += ["", f"### End to end: {big.name}, K = 16", ""]
        more, e2e = e2e_table(big, 16)
        lines += more
    else:
        lines += ["", f"{big} not found: scale and end-to-end tables skipped."]

    lines += ["", "### The issue's targets in this run", ""]
    lines += [table(["target", "measured", "met"], target_rows(cases, ks, scale, e2e))]
    lines += ["", f"Load average at the end (this run included): {os.getloadavg()[0]:.2f}; "
              f"this section took {(time.perf_counter() - start) / 60:.1f} min."]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true",
                    help=f"{' and '.join(QUICK_IMAGES)} at K = 16; {SMALL} for scale and e2e")
    ap.add_argument("--images", help="comma-separated names in ../shared/images (or paths)")
    ap.add_argument("--colors", help="comma-separated K values, default 16,64,256")
    ap.add_argument("--no-sklearn", action="store_true", help="skip scikit-learn")
    a = ap.parse_args()
    if not IMAGES.is_dir():
        sys.exit(f"bench_quantize: photo folder {IMAGES} not found; it is expected as "
                 "../shared/images beside the repository.")
    print(run(a.quick, a.images.split(",") if a.images else None,
              [int(k) for k in a.colors.split(",")] if a.colors else None, not a.no_sklearn))


if __name__ == "__main__":
    main()
