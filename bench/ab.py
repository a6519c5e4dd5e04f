"""Interleaved A/B of the compiled paths: this checkout against another install.

    python bench/ab.py --baseline /path/to/other/venv [--rounds 2]

Each round runs, in a fresh process per install and alternating between them, quantize
(3 photos x K = 16/64/256, plus OKLab), .fkm encode and decode, both dithers and KMeans on
blobs: one warm-up call, then the median of 5 (3 for the slower cases). Prints per-case
milliseconds and the ratio new / baseline over all rounds. Photos from ../shared/images.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

PHOTOS = ("path.jpg", "fallenleaf.jpg", "kite.jpg")
IMAGES = Path(__file__).resolve().parents[2] / "shared" / "images"

CASES = r"""
import json, statistics, sys, time
import numpy as np
import fastkm
from fastkm.images import read_image

def med(fn, n=5):
    fn()
    ts = []
    for _ in range(n):
        t = time.perf_counter(); fn(); ts.append(time.perf_counter() - t)
    return statistics.median(ts) * 1e3

out = {}
for name in sys.argv[2].split(","):
    img = read_image(f"{sys.argv[1]}/{name}")
    for k in (16, 64, 256):
        out[f"quantize {name} K={k}"] = med(lambda: fastkm.quantize(img, k, seed=0))
    out[f"quantize oklab {name} K=64"] = med(
        lambda: fastkm.quantize(img, 64, seed=0, space="oklab"), 3)
    q = fastkm.quantize(img, 64, seed=0)
    data = fastkm.encode(q)
    out[f"encode {name} K=64"] = med(lambda: fastkm.encode(q))
    out[f"decode {name} K=64"] = med(lambda: fastkm.decode(data))
    for mode in ("fs", "ordered"):
        out[f"dither {mode} {name} K=64"] = med(
            lambda: fastkm.dither.dither(img, q.palette, mode), 3)
rng = np.random.default_rng(0)
X = rng.normal(size=(200000, 3)) + rng.integers(0, 20, (200000, 1))
for k in (16, 64):
    out[f"KMeans blobs 200k x 3 K={k}"] = med(
        lambda: fastkm.KMeans(k, random_state=0, max_iter=50).fit(X), 3)
print(json.dumps(out))
"""


def _one(python: str, photos: str) -> dict:
    run = subprocess.run([python, "-c", CASES, str(IMAGES), photos], capture_output=True,
                         text=True, check=True)
    return json.loads(run.stdout)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--baseline", required=True, help="venv of the install to compare with")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--photos", default=",".join(PHOTOS))
    args = ap.parse_args()
    base_python = str(Path(args.baseline) / "bin" / "python")
    new, base = {}, {}
    for _ in range(args.rounds):
        for python, into in ((base_python, base), (sys.executable, new)):
            for case, ms in _one(python, args.photos).items():
                into.setdefault(case, []).append(ms)
    print("| case | baseline ms | new ms | new / baseline |")
    print("|---|---|---|---|")
    ratios = []
    for case in base:
        b, n = statistics.median(base[case]), statistics.median(new[case])
        ratios.append(n / b)
        print(f"| {case} | {b:.1f} | {n:.1f} | {n / b:.2f} |")
    geo = statistics.geometric_mean(ratios)
    print(f"\ngeometric mean of new / baseline over {len(ratios)} cases: {geo:.3f}")


if __name__ == "__main__":
    main()
