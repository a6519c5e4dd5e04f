"""Interleaved A/B of fastkm.quantize between two source trees of fastkm, each run in a
fresh process: 3 photos of ../shared/images x K = 16/64/256, one warm-up call, median of 5;
3 rounds alternating the order, the first discarded (it fills Numba's cache). Prints both
times, the ratio new / base and whether the MSE is the same.

    git archive <base-commit> fastkm | tar -x -C /tmp/base
    python bench/ab_quantize_trees.py /tmp/base .
"""
import json
import math
import statistics
import subprocess
import sys
from pathlib import Path

IMAGES = Path(__file__).resolve().parents[2] / "shared" / "images"
CODE = r"""
import sys, time, json, statistics
sys.path.insert(0, sys.argv[1])
import fastkm
from fastkm.images import read_image
out = {}
for name in ("path.jpg", "fallenleaf.jpg", "kite.jpg"):
    img = read_image(sys.argv[2] + "/" + name)
    for k in (16, 64, 256):
        fastkm.quantize(img, k, seed=0)
        ts = []
        for _ in range(5):
            t = time.perf_counter(); q = fastkm.quantize(img, k, seed=0); ts.append(time.perf_counter() - t)
        out[f"{name} K={k}"] = (statistics.median(ts) * 1e3, float(q.mse))
print(json.dumps(out))
"""
paths = {"base": str(Path(sys.argv[1]).resolve()), "new": str(Path(sys.argv[2]).resolve())}
res = {"base": [], "new": []}
for rep in range(3):
    for name in (("base", "new") if rep % 2 == 0 else ("new", "base")):
        r = subprocess.run([sys.executable, "-c", CODE, paths[name], str(IMAGES)], capture_output=True,
                           text=True, cwd="/")
        if r.returncode:
            print(r.stderr[-2000:])
            sys.exit(1)
        res[name].append(json.loads(r.stdout))
ratios = []
for case in res["new"][0]:
    b = statistics.median(x[case][0] for x in res["base"][1:])
    n = statistics.median(x[case][0] for x in res["new"][1:])
    same = res["base"][-1][case][1] == res["new"][-1][case][1]
    ratios.append(n / b)
    print(f"{case:22s} base {b:7.1f} ms  new {n:7.1f} ms  new/base {n / b:.3f}  same MSE {same}")
print("geomean new/base", math.exp(sum(map(math.log, ratios)) / len(ratios)))
