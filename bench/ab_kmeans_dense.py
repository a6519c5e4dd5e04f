"""Interleaved A/B of dense KMeans.fit between two source trees of fastkm, each fit in a
fresh process: the same blobs and k-means++ start, max_iter=100, tol=0, best of 3 fits.
Prints both times, their ratio and whether labels, centres, inertia and n_iter are
bit-identical.

    git archive <base-commit> fastkm | tar -x -C /tmp/base
    python bench/ab_kmeans_dense.py /tmp/base .
"""
import statistics
import subprocess
import sys

CODE = """
import sys, time, numpy as np
sys.path.insert(0, sys.argv[1])
import fastkm
from fastkm.init import kmeans_plusplus
n, d, k = map(int, sys.argv[2:5])
rng = np.random.default_rng(0)
centres = rng.uniform(-10, 10, (k, d))
X = centres[rng.integers(0, k, n)] + rng.normal(size=(n, d))
start = kmeans_plusplus(X, np.ones(n), k, np.random.default_rng(0))
fastkm.KMeans(k, init=start, max_iter=2, tol=0).fit(X[:5000])
ts = []
for _ in range(3):
    time.sleep(0.3)
    t = time.perf_counter(); km = fastkm.KMeans(k, init=start, max_iter=100, tol=0).fit(X)
    ts.append(time.perf_counter() - t)
import hashlib
digest = [hashlib.md5(a.tobytes()).hexdigest() for a in (km.labels_, km.cluster_centers_)]
print(min(ts), repr(km.inertia_), km.n_iter_, *digest)
"""
paths = {"base": sys.argv[1], "new": sys.argv[2]}
for case in [(1_000_000, 3, 16), (200_000, 16, 64), (1_000_000, 3, 256)]:
    res = {"base": [], "new": []}
    for rep in range(2):
        for name in (("base", "new") if rep % 2 == 0 else ("new", "base")):
            out = subprocess.run([sys.executable, "-c", CODE, paths[name], *map(str, case)],
                                 capture_output=True, text=True, check=True).stdout.split()
            res[name].append(out)
    b = statistics.median(float(r[0]) for r in res["base"])
    nw = statistics.median(float(r[0]) for r in res["new"])
    same = res["base"][0][1:] == res["new"][0][1:]
    print(case, f"base {b:.3f}s new {nw:.3f}s ratio base/new {b/nw:.2f} same result {same}")
