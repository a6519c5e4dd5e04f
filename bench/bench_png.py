"""Palette PNG output: fastkm's PNG of fastkm's quantization against pngquant's PNG of its own.

    python bench/run.py --only png
    python bench/bench_png.py --quick   # two photos, K = 16

For every photo of ../shared/images and K = 16, 64, 256: fastkm.quantize(image, K, seed=0)
written by fastkm.png.palette_png (default, and optimize=True), against
`pngquant --nofs K` on a lossless PNG of the decoded photo. Ratio = file bytes. Then the
time to write volna.jpg's PNG at K = 16 (fastkm's writer, 1 and 2 threads, against Pillow's
PNG encoder of the same palette image, which fastkm used before), interleaved, median of
5, and `fastkm compress volna.jpg -k 16 -o out.png` end to end against `pngquant --nofs 16`.
Every PNG fastkm writes is read back and compared with palette[indices].
"""

from __future__ import annotations

import io
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import table

import fastkm
from fastkm import png
from fastkm.images import read_image

IMAGES = ROOT.parent / "shared" / "images"
KS = (16, 64, 256)
REPEAT = 5
try:
    import oxipng
    OPT = f"pyoxipng {getattr(oxipng, '__version__', '')} preset 2 on the level-6 file"
except ImportError:
    OPT = "zlib level 9; pyoxipng not installed"


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def loadavg() -> str:
    return Path("/proc/loadavg").read_text().split()[0]


def pillow_png(pal: np.ndarray, idx: np.ndarray) -> bytes:
    """What fastkm wrote before: Pillow's PNG of the P image (default settings)."""
    im = Image.fromarray(idx, "P")
    im.putpalette(pal.tobytes(), rawmode="RGB")
    buf = io.BytesIO()
    im.save(buf, "PNG")
    return buf.getvalue()


def run(quick: bool = False) -> str:
    if not shutil.which("pngquant"):
        return "## Palette PNG output\n\npngquant is not installed (`apt-get install pngquant`).\n"
    photos = sorted(p for p in IMAGES.glob("*.jpg"))
    if quick:
        photos = [p for p in photos if p.stem in ("kite", "path-640")]
    ks = (16,) if quick else KS
    rows, ratios, ratios_opt = [], {k: [] for k in ks}, {k: [] for k in ks}
    load0 = loadavg()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for path in photos:
            rgb = read_image(path)
            src = tmp / (path.stem + ".png")
            Image.fromarray(rgb).save(src)
            for k in ks:
                q = fastkm.quantize(rgb, k, seed=0)
                pal, idx = np.asarray(q.palette), np.asarray(q.indices)
                out = tmp / "pq.png"
                subprocess.run(["pngquant", "--nofs", "--force", "--output", str(out), str(k),
                                str(src)], check=True)
                pq = out.stat().st_size
                fk = png.palette_png(pal, idx)
                fk_opt = png.palette_png(pal, idx, optimize=True)
                for data in (fk, fk_opt):
                    back = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
                    assert np.array_equal(back, pal[idx]), f"{path.name} K={k}: pixels differ"
                old = len(pillow_png(pal, idx))
                ratios[k].append(len(fk) / pq)
                ratios_opt[k].append(len(fk_opt) / pq)
                rows.append([path.stem, k, f"{pq:,}", f"{old:,}", f"{len(fk):,}",
                             f"{len(fk_opt):,}", f"{old / pq:.3f}", f"**{len(fk) / pq:.3f}**",
                             f"{len(fk_opt) / pq:.3f}"])
                log(f"png: {path.stem} K={k}: pq {pq} pillow {old} fk {len(fk)} "
                    f"opt {len(fk_opt)}")
        lines = ["## Palette PNG output: fastkm against pngquant", "",
                 ("Photos of `../shared/images`. fastkm: `fastkm.quantize(image, K, seed=0)` "
                 "written by `fastkm.png.palette_png` (the writer of `fastkm compress -o x.png`) "
                 f"and with `optimize=True` ({OPT}). pngquant: "
                 "`pngquant --nofs K` on a lossless PNG of the decoded photo (its own "
                 "quantization and its own PNG). \"Pillow\" is fastkm's PNG before this "
                 "change (Pillow's encoder, same palette and indices). Ratio = file bytes / "
                 "pngquant's. Every fastkm PNG was read back: same pixels as palette[indices]."),
                 "",
                 table(["image", "K", "pngquant B", "Pillow B", "fastkm B", "fastkm opt B",
                        "Pillow / pq", "fastkm / pq", "opt / pq"], rows), ""]
        summary = []
        for k in ks:
            summary.append([k, f"{statistics.mean(ratios[k]):.3f}", f"{max(ratios[k]):.3f}",
                            f"{statistics.mean(ratios_opt[k]):.3f}",
                            f"{max(ratios_opt[k]):.3f}"])
        lines += ["Means over photos (targets: <= 1.0 on every photo, mean <= 0.95):", "",
                  table(["K", "fastkm mean", "fastkm worst", "opt mean", "opt worst"],
                        summary), ""]

        # --- speed: volna.jpg K = 16
        volna = IMAGES / "volna.jpg"
        if volna.exists() and not quick:
            rgb = read_image(volna)
            q = fastkm.quantize(rgb, 16, seed=0)
            pal, idx = np.asarray(q.palette), np.asarray(q.indices)
            writers = {
                "fastkm, 2 threads": lambda: png.palette_png(pal, idx, threads=2),
                "fastkm, 1 thread": lambda: png.palette_png(pal, idx, threads=1),
                "fastkm optimize": lambda: png.palette_png(pal, idx, optimize=True, threads=2),
                "Pillow (before)": lambda: pillow_png(pal, idx),
            }
            times = {n: [] for n in writers}
            sizes = {}
            load1 = loadavg()
            for _ in range(REPEAT):  # interleaved
                for n, fn in writers.items():
                    t = time.perf_counter()
                    sizes[n] = len(fn())
                    times[n].append(time.perf_counter() - t)
            base = statistics.median(times["Pillow (before)"])
            trows = [[n, f"{statistics.median(ts):.3f}", f"{min(ts):.3f}", f"{sizes[n]:,}",
                      f"{base / statistics.median(ts):.2f}x"] for n, ts in times.items()]
            lines += [(f"Writing the PNG of volna.jpg ({rgb.shape[1]}x{rgb.shape[0]}, "
                      f"{rgb.shape[0] * rgb.shape[1] / 1e6:.1f} MP) at K = 16, bytes in "
                      f"memory (no disk), interleaved, {REPEAT} repeats. Target <= 0.4 s. "
                      f"Load average (1 min) {load1} before: the machine was shared."), "",
                      table(["writer", "median s", "min s", "bytes", "speed-up vs Pillow"],
                            trows), ""]
            # --- end to end
            src = tmp / "volna.png"
            Image.fromarray(rgb).save(src)
            fk_cli = [sys.executable, "-m", "cli.app"] if not shutil.which("fastkm") else \
                [shutil.which("fastkm")]
            exe = Path(sys.executable).parent / "fastkm"
            if exe.exists():
                fk_cli = [str(exe)]
            cmds = {
                "fastkm compress volna.jpg -k 16 -o out.png": [
                    *fk_cli, "compress", str(volna), "-k", "16", "-o", str(tmp / "out.png"),
                    "--force"],
                "pngquant --nofs 16 volna.png": [
                    "pngquant", "--nofs", "--force", "--output", str(tmp / "pq16.png"), "16",
                    str(src)],
            }
            subprocess.run(cmds["fastkm compress volna.jpg -k 16 -o out.png"], check=True,
                           capture_output=True)  # warm the Numba cache
            etimes = {n: [] for n in cmds}
            for _ in range(3):
                for n, cmd in cmds.items():
                    t = time.perf_counter()
                    subprocess.run(cmd, check=True, capture_output=True)
                    etimes[n].append(time.perf_counter() - t)
            out_sizes = {"fastkm compress volna.jpg -k 16 -o out.png":
                         (tmp / "out.png").stat().st_size,
                         "pngquant --nofs 16 volna.png": (tmp / "pq16.png").stat().st_size}
            erows = [[f"`{n}`", f"{statistics.median(ts):.2f}", f"{out_sizes[n]:,}"]
                     for n, ts in etimes.items()]
            lines += [("End to end, whole process, median of 3, interleaved (pngquant reads "
                      "only PNG: it gets a lossless PNG of the decoded JPEG; fastkm decodes "
                      "the JPEG itself):"), "", table(["command", "wall s", "output bytes"],
                                                     erows), ""]
    lines += [(f"Load average (1 min): {load0} at the start, {loadavg()} at the end; the "
              "machine (2 cores) was shared with other engineers' work, so times are noisy.")]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(run(quick="--quick" in sys.argv))
