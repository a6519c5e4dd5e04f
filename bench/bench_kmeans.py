"""fastkm.KMeans against scikit-learn's KMeans (lloyd and elkan) and faiss on blobs.

Same data, same initial centres (k-means++ drawn once), same max_iter, tol=0. Reports times,
the speed ratio against the faster scikit-learn algorithm, the relative inertia difference
and label agreement against scikit-learn's Lloyd; then fastkm's cold compile time and warm
import time, each measured in a fresh subprocess.

    python bench/bench_kmeans.py [--quick]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from common import table, timed  # noqa: E402

CASES = [(1_000_000, 3, 16), (1_000_000, 3, 256), (200_000, 16, 64)]
QUICK_CASES = [(100_000, 3, 16), (100_000, 3, 64), (20_000, 16, 16)]
MAX_ITER = 100
# Median of REPEAT fits for every library: one fit alone swung by 2x between runs here.
REPEAT = 3


def _blobs(n, d, k):
    from sklearn.datasets import make_blobs
    X, _ = make_blobs(n, n_features=d, centers=k, random_state=0)
    return np.ascontiguousarray(X)


def _faiss(X, start, max_iter):
    try:
        import faiss
    except ImportError:
        return None
    X32 = X.astype(np.float32)
    # All points are used (faiss subsamples to 256 per centroid by default) and the same
    # starting centres: the same problem, in float32.
    km = faiss.Kmeans(X.shape[1], len(start), niter=max_iter, max_points_per_centroid=10**9,
                      seed=0, verbose=False)
    t, _ = timed(lambda: km.train(X32, init_centroids=start.astype(np.float32)), REPEAT)
    _, labels = km.index.search(X32, 1)
    d2 = ((X - km.centroids[labels[:, 0]].astype(np.float64)) ** 2).sum()
    return t, d2


def case(n, d, k, max_iter=MAX_ITER):
    from sklearn.cluster import KMeans as SKMeans

    import fastkm
    from fastkm.init import kmeans_plusplus

    X = _blobs(n, d, k)
    start = kmeans_plusplus(X, np.ones(n), k, np.random.default_rng(0))
    fastkm.KMeans(k, init=start[:k], max_iter=2, tol=0).fit(X[: max(k, 2000)])  # compile
    t_fast, ours = timed(lambda: fastkm.KMeans(k, init=start, max_iter=max_iter, tol=0).fit(X),
                         REPEAT)
    t_lloyd, lloyd = timed(lambda: SKMeans(k, init=start, n_init=1, max_iter=max_iter, tol=0,
                                           algorithm="lloyd").fit(X), REPEAT)
    t_elkan, elkan = timed(lambda: SKMeans(k, init=start, n_init=1, max_iter=max_iter, tol=0,
                                           algorithm="elkan").fit(X), REPEAT)
    faiss_res = _faiss(X, start, max_iter)
    best = min(t_lloyd, t_elkan)
    return {
        "case": f"N={n:,} D={d} K={k}",
        "fastkm": t_fast, "lloyd": t_lloyd, "elkan": t_elkan,
        "faiss": faiss_res[0] if faiss_res else float("nan"),
        "ratio": best / t_fast,
        "rel_inertia": (ours.inertia_ - lloyd.inertia_) / lloyd.inertia_,
        "faiss_rel_inertia": (faiss_res[1] - lloyd.inertia_) / lloyd.inertia_ if faiss_res else float("nan"),
        "labels_differ": int(np.count_nonzero(ours.labels_ != lloyd.labels_)),
        "n_iter": f"{ours.n_iter_}/{lloyd.n_iter_}/{elkan.n_iter_}",
    }


_COLD = """
import time
t = time.perf_counter()
import numpy as np, fastkm
t_import = time.perf_counter() - t
X = np.random.default_rng(0).normal(size=(5000, 3))
t = time.perf_counter()
fastkm.KMeans(8, random_state=0).fit(X)
t_fit = time.perf_counter() - t
img = np.random.default_rng(0).integers(0, 256, size=(64, 64, 3), dtype=np.uint8)
t = time.perf_counter()
fastkm.quantize(img, 16, seed=0)
t_q = time.perf_counter() - t
print(t_import, t_fit, t_q)
"""


def compile_and_import_times():
    """(import, first fit, first quantize) seconds, cold (empty Numba cache) and warm."""
    out = {}
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        for label in ("cold", "warm"):
            res = subprocess.run([sys.executable, "-c", _COLD], env=env, capture_output=True,
                                 text=True, check=True)
            out[label] = [float(v) for v in res.stdout.split()]
    return out


def run(quick: bool = False) -> str:
    cases = QUICK_CASES if quick else CASES
    rows = []
    for n, d, k in cases:
        print(f"kmeans: N={n} D={d} K={k} ...", file=sys.stderr, flush=True)
        r = case(n, d, k)
        rows.append([r["case"], f"{r['fastkm']:.2f}", f"{r['lloyd']:.2f}", f"{r['elkan']:.2f}",
                     f"{r['faiss']:.2f}", f"**{r['ratio']:.1f}x**", f"{r['rel_inertia']:.1e}",
                     r["labels_differ"], f"{r['faiss_rel_inertia']:.1e}", r["n_iter"]])
    times = compile_and_import_times()
    cold, warm = times["cold"], times["warm"]
    return "\n".join([
        "## KMeans on blobs: fastkm vs scikit-learn and faiss",
        "",
        f"Blobs from `make_blobs(N, D, centers=K, random_state=0)`, float64; the same k-means++ "
        f"starting centres for every library; `max_iter={MAX_ITER}`, `tol=0`. Times in seconds, "
        f"median of {REPEAT} fits. *ratio* = faster of scikit-learn's lloyd/elkan divided by fastkm. "
        "*rel. inertia* and *labels differ* compare fastkm with scikit-learn's lloyd; faiss "
        "runs in float32 on all points (max_points_per_centroid raised), for reference.",
        "",
        table(["case", "fastkm", "sklearn lloyd", "sklearn elkan", "faiss", "ratio",
               "rel. inertia", "labels differ", "faiss rel. inertia", "iterations fastkm/lloyd/elkan"],
              rows),
        "",
        "Start-up, each in a fresh process (`NUMBA_CACHE_DIR` empty for *cold*):",
        "",
        table(["", "import fastkm", "first KMeans.fit (5000x3, K=8)", "first quantize (64x64, K=16)"],
              [["cold (compiles, fills cache)", f"{cold[0]:.2f} s", f"{cold[1]:.2f} s", f"{cold[2]:.2f} s"],
               ["warm (cache loaded)", f"{warm[0]:.2f} s", f"{warm[1]:.2f} s", f"{warm[2]:.2f} s"]]),
    ])


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small cases, for a smoke test")
    print(run(ap.parse_args().quick))
