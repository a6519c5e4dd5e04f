"""fastkm.KMeans on hard data (overlapping blobs, random start, 20 iterations) against
scikit-learn (lloyd and elkan) and faiss, beside the arithmetic floor of one pass.

Same data, the same K random data points as starting centres for every library,
``max_iter=20``, ``tol=0``. The floor is the pass's multiply-adds (N*K*D) divided by the
rate a chunked BLAS GEMM reaches on this CPU (``gemm_rate``, measured here).

    python bench/bench_hard.py [--quick]
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from common import table, timed  # noqa: E402

# (N, D, K, cluster_std) of issue 21's table.
CASES = [(1_000_000, 3, 16, 6.0), (1_000_000, 3, 64, 2.0), (1_000_000, 16, 64, 2.0),
         (5_000_000, 3, 64, 2.0)]
QUICK_CASES = [(100_000, 3, 16, 6.0), (100_000, 16, 64, 2.0)]
MAX_ITER = 20
REPEAT = 3
_ABBR = {"scan": "S", "vector": "V", "sorted": "H"}


def gemm_rate(dtype, n=1_000_000, d=16, k=64, chunk=65536):
    """Multiply-adds per second of ``X @ C.T`` in chunks of ``chunk`` rows (BLAS threads)."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n, d)).astype(dtype)
    C = rng.normal(size=(k, d)).astype(dtype)
    out = np.empty((chunk, k), dtype=dtype)

    def run():
        for s in range(0, n, chunk):
            part = X[s:s + chunk]
            np.matmul(part, C.T, out=out[:len(part)])

    run()
    t, _ = timed(run, 5)
    return n * d * k / t


def _data(n, d, k, std):
    from sklearn.datasets import make_blobs

    X, _ = make_blobs(n, n_features=d, centers=k, cluster_std=std, random_state=0)
    X = np.ascontiguousarray(X)
    start = X[np.random.default_rng(0).choice(n, k, replace=False)].copy()
    return X, start


def _faiss(X32, start, max_iter):
    try:
        import faiss
    except ImportError:
        return float("nan")
    km = faiss.Kmeans(X32.shape[1], len(start), niter=max_iter, max_points_per_centroid=10**9,
                      seed=0, verbose=False)
    t, _ = timed(lambda: km.train(X32, init_centroids=start.astype(np.float32)), REPEAT)
    return t


def case(n, d, k, std, rate64, rate32):
    from sklearn.cluster import KMeans as SKMeans

    import fastkm

    X, start = _data(n, d, k, std)
    X32 = X.astype(np.float32)

    def ours(data):
        return fastkm.KMeans(k, init=start, max_iter=MAX_ITER, tol=0).fit(data)

    def sk(algorithm):
        return SKMeans(k, init=start, n_init=1, max_iter=MAX_ITER, tol=0,
                       algorithm=algorithm).fit(X)

    ours(X[:2000])  # compile
    ours(X32[:2000])
    t_fast, fit = timed(lambda: ours(X), REPEAT)
    t_fast32, fit32 = timed(lambda: ours(X32), REPEAT)
    t_lloyd, ref = timed(lambda: sk("lloyd"), REPEAT)
    t_elkan, _ = timed(lambda: sk("elkan"), REPEAT)
    t_faiss = _faiss(X32, start, MAX_ITER)
    log = []
    fastkm.kmeans.lloyd(X, np.ones(n), start, max_iter=MAX_ITER, tol=0, method="auto", log=log)
    stats = " ".join(f"{_ABBR[kind]}{s * 1e3:.0f}" + ("" if skipped is None else f"/{skipped * 100:.0f}%")
                     for kind, s, skipped in log)
    best = min(t_lloyd, t_elkan)
    madds = n * d * k
    return [f"N={n:,} D={d} K={k} std={std:g}",
            f"{t_fast:.3f}", f"{t_lloyd:.3f}", f"{t_elkan:.3f}", f"**{best / t_fast:.2f}x**",
            f"{(fit.inertia_ - ref.inertia_) / ref.inertia_:.1e}",
            int(np.count_nonzero(fit.labels_ != ref.labels_)),
            f"{t_fast32:.3f}", f"{t_faiss:.3f}", f"**{t_faiss / t_fast32:.2f}x**",
            f"{t_fast / MAX_ITER * 1e3:.1f}", f"{madds / rate64 * 1e3:.1f} / {madds / rate32 * 1e3:.1f}",
            stats]


def run(quick: bool = False) -> str:
    rate64, rate32 = gemm_rate(np.float64), gemm_rate(np.float32)
    rows = []
    for n, d, k, std in QUICK_CASES if quick else CASES:
        print(f"hard: N={n} D={d} K={k} std={std} ...", file=sys.stderr, flush=True)
        rows.append(case(n, d, k, std, rate64, rate32))
    return "\n".join([
        "## KMeans on hard data: fastkm vs scikit-learn and faiss, beside the GEMM floor",
        "",
        f"`make_blobs(N, D, centers=K, cluster_std=std, random_state=0)`; the same K random data "
        f"points as starting centres for every library; `max_iter={MAX_ITER}`, `tol=0`. Seconds, "
        f"median of {REPEAT} fits. *ratio* = faster of scikit-learn's lloyd/elkan (float64) "
        "divided by fastkm (float64); *rel. inertia* and *labels differ* compare the two. "
        "*float32*: fastkm on the same data as float32 against faiss's exhaustive k-means "
        "(float32, all points, same start, its default threads). *ms/iter* is fastkm float64 "
        "over the 20 iterations; *floor* = N·K·D multiply-adds at the rate a chunked BLAS GEMM "
        f"reaches here ({rate64 / 1e9:.1f} G/s float64, {rate32 / 1e9:.1f} G/s float32). "
        "*passes* (one more fit, logged): per iteration, the pass fastkm chose (S: vectorised "
        "scan of every centre; V: bounds, failed points rescanned vectorised; H: bounds, "
        "sorted rescans), its milliseconds and the share of point-centre distances it "
        "skipped; the last is the final assignment.",
        "",
        table(["case", "fastkm", "sklearn lloyd", "sklearn elkan", "ratio", "rel. inertia",
               "labels differ", "fastkm float32", "faiss float32", "ratio vs faiss",
               "ms/iter", "floor ms (f64 / f32)", "passes"], rows),
    ])


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small cases, for a smoke test")
    print(run(ap.parse_args().quick))
