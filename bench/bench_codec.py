""".fkm against PNG-8 and WebP lossless on quantized photos: sizes, speed, compile time.

    /work/venv/bin/python bench/bench_codec.py          # full run (several minutes)
    /work/venv/bin/python bench/bench_codec.py --quick  # two images, K = 16 only

``run(quick)`` returns the Markdown section for bench/RESULTS.md. Every image and K is also
round-tripped through .fkm and compared bit for bit (palette and indices); a mismatch aborts.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import fastkm  # noqa: E402
from fastkm import codec  # noqa: E402
from fastkm.palette import PaletteImage  # noqa: E402

IMAGES = ROOT.parent / "shared" / "images"
KS = (16, 64, 256)


def quantizer():
    """fastkm.quantize when the package has it, else Pillow's median cut (named in the output)."""
    if hasattr(fastkm, "quantize"):
        def q(rgb, k):
            out = fastkm.quantize(rgb, n_colors=k, seed=0)
            return PaletteImage(np.asarray(out.palette), np.asarray(out.indices))
        return q, "fastkm.quantize(image, n_colors=K, seed=0)"

    def q(rgb, k):
        p = Image.fromarray(rgb).quantize(k, method=Image.Quantize.MEDIANCUT,
                                          dither=Image.Dither.NONE)
        idx = np.asarray(p)
        pal = np.array(p.getpalette()[:3 * k], np.uint8).reshape(-1, 3)
        return PaletteImage(pal[:int(idx.max()) + 1], idx)
    return q, "Pillow Image.quantize(K, MEDIANCUT, dither=NONE) (fastkm.quantize not available)"


def png8(img: PaletteImage) -> bytes:
    """PNG-8 of exactly this palette and these indices (Pillow, optimize=True)."""
    p = Image.fromarray(img.indices, "P")
    p.putpalette(img.palette.reshape(-1).tolist(), rawmode="RGB" if img.channels == 3 else
                 {1: "L", 4: "RGBA"}[img.channels])
    b = io.BytesIO()
    p.save(b, "PNG", optimize=True)
    return b.getvalue()


def webp(img: PaletteImage) -> bytes:
    """WebP lossless of the expanded picture (WebP takes no palette input; it re-palettises)."""
    pic = img.to_image()
    b = io.BytesIO()
    Image.fromarray(pic[..., 0] if img.channels == 1 else pic).save(
        b, "WEBP", lossless=True, method=6)
    return b.getvalue()


def best_time(fn, repeat, clock=time.perf_counter):
    best = float("inf")
    for _ in range(repeat):
        t = clock()
        fn()
        best = min(best, clock() - t)
    return best


def pil_decode(data: bytes):
    with Image.open(io.BytesIO(data)) as im:
        im.load()


COMPILE_SCRIPT = r"""
import json, time
t0 = time.perf_counter()
import numpy as np
from fastkm import codec
from fastkm.palette import PaletteImage
t1 = time.perf_counter()
img = PaletteImage(np.zeros((2, 3), np.uint8), np.eye(4, 5, dtype=np.uint8))
data = codec.encode(img)
t2 = time.perf_counter()
codec.decode(data)
t3 = time.perf_counter()
print(json.dumps({"import": t1 - t0, "encode": t2 - t1, "decode": t3 - t2}))
"""


def compile_times() -> tuple[dict, dict]:
    """First-call times in a fresh process with an empty Numba cache, then with it filled."""
    out = []
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        for _ in range(2):
            r = subprocess.run([sys.executable, "-c", COMPILE_SCRIPT], env=env, check=True,
                               capture_output=True, text=True, cwd=ROOT)
            out.append(json.loads(r.stdout.strip().splitlines()[-1]))
    return out[0], out[1]


def run(quick: bool = False) -> str:
    paths = sorted(IMAGES.glob("*.jpg"))
    if not paths:
        return f"## .fkm codec\n\nNo photos in {IMAGES}: nothing measured.\n"
    if quick:
        paths = sorted(paths, key=lambda p: p.stat().st_size)[:2]
    ks = (16,) if quick else KS
    repeat = 1 if quick else 3
    quantize, how = quantizer()
    import numba

    load_before = os.getloadavg()[0]

    lines = [
        "## .fkm codec: size and speed",
        "",
        f"Photos: {len(paths)} from `../shared/images`; palettes and indices by {how}. "
        "PNG-8: Pillow, mode P with the same palette and indices, `optimize=True`. WebP: "
        "Pillow lossless, `method=6`, of the expanded RGB picture (same pixels). Every .fkm "
        "file was decoded and compared bit for bit with the palette and indices: all equal.",
        "",
        "| image | size | K | .fkm bytes | PNG-8 bytes | WebP-LL bytes | fkm / min | fkm bpp |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    ratios = {k: [] for k in ks}
    totals = {k: [0, 0, 0] for k in ks}
    speed_rows = []
    sum_px = sum_enc = sum_dec = cpu_enc = cpu_dec = 0.0
    for path in paths:
        rgb = np.asarray(Image.open(path).convert("RGB"))
        h, w = rgb.shape[:2]
        for k in ks:
            img = quantize(rgb, k)
            data = codec.encode(img)
            back = codec.decode(data)
            if not (np.array_equal(back.palette, img.palette)
                    and np.array_equal(back.indices, img.indices)):
                raise AssertionError(f"{path.name} K={k}: round trip differs")
            png, wbp = png8(img), webp(img)
            r = len(data) / min(len(png), len(wbp))
            ratios[k].append(r)
            for i, n in enumerate((len(data), len(png), len(wbp))):
                totals[k][i] += n
            lines.append(f"| {path.stem} | {w}x{h} | {k} | {len(data):,} | {len(png):,} | "
                         f"{len(wbp):,} | {r:.3f} | {8 * len(data) / (w * h):.3f} |")
            if k == 16:
                t_enc = best_time(lambda: codec.encode(img), repeat)
                t_dec = best_time(lambda: codec.decode(data), repeat)
                # CPU seconds summed over threads: robust to other work on the machine.
                c_enc = best_time(lambda: codec.encode(img), repeat, time.process_time)
                c_dec = best_time(lambda: codec.decode(data), repeat, time.process_time)
                t_png_e = best_time(lambda: png8(img), 1)
                t_png_d = best_time(lambda: pil_decode(png), repeat)
                t_wbp_e = best_time(lambda: webp(img), 1)
                t_wbp_d = best_time(lambda: pil_decode(wbp), repeat)
                mp = w * h / 1e6
                sum_px += mp
                sum_enc += t_enc
                sum_dec += t_dec
                cpu_enc += c_enc
                cpu_dec += c_dec
                speed_rows.append(
                    f"| {path.stem} | {mp:.2f} | {mp / t_enc:.1f} | {mp / t_dec:.1f} | "
                    f"{mp / c_enc:.1f} / {mp / c_dec:.1f} | "
                    f"{1e3 * t_enc:.0f} / {1e3 * t_dec:.0f} | {1e3 * t_png_e:.0f} / {1e3 * t_png_d:.0f} | "
                    f"{1e3 * t_wbp_e:.0f} / {1e3 * t_wbp_d:.0f} |")

    lines += ["", "Means over images (ratio = .fkm bytes / min(PNG-8, WebP lossless), "
              "target <= 0.80 at K = 16 and <= 0.90 at K = 256):", "",
              "| K | mean fkm / min | worst | total .fkm | total PNG-8 | total WebP-LL |",
              "|---:|---:|---:|---:|---:|---:|"]
    for k in ks:
        t = totals[k]
        lines.append(f"| {k} | **{np.mean(ratios[k]):.3f}** | {max(ratios[k]):.3f} | {t[0]:,} | "
                     f"{t[1]:,} | {t[2]:,} |")

    lines += ["", f"Speed at K = 16 on {os.cpu_count()} cores ({numba.get_num_threads()} Numba "
              f"threads), best of {repeat}; Pillow times are its encoder/decoder of the same "
              "picture (PNG optimize=True, WebP method=6). Targets: decode >= 20 MP/s, "
              "encode >= 10 MP/s.", "",
              "| image | MP | fkm enc MP/s | fkm dec MP/s | per CPU-s enc / dec | fkm enc / dec ms "
              "| PNG-8 enc / dec ms | WebP-LL enc / dec ms |",
              "|---|---:|---:|---:|---:|---:|---:|---:|", *speed_rows,
              f"| **all** | {sum_px:.1f} | **{sum_px / sum_enc:.1f}** | **{sum_px / sum_dec:.1f}** "
              f"| {sum_px / cpu_enc:.1f} / {sum_px / cpu_dec:.1f} | | | |",
              "", "MP/s columns are wall clock; \"per CPU-s\" is megapixels per CPU-second "
              "summed over threads (what one core does alone; two idle cores do about twice "
              "that)."]

    lines += ["", f"Load average (1 min) at start {load_before:.2f}, at end of the speed runs "
              f"{os.getloadavg()[0]:.2f}: anything above 0 is other work sharing the 2 cores."]
    cold, warm = compile_times()
    lines += ["", "First call in a fresh process (encode then decode of a 4x5 image), empty "
              f"Numba cache: encode {cold['encode']:.1f} s, decode {cold['decode']:.1f} s "
              f"(import {cold['import']:.1f} s); with the cache filled: encode "
              f"{warm['encode']:.2f} s, decode {warm['decode']:.2f} s.", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    print(run(quick="--quick" in sys.argv[1:]))
