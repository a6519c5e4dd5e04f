"""fastkm.KMeans on sparse TF-IDF-like data against scikit-learn's KMeans (lloyd and elkan).

The matrix is synthetic (nothing is downloaded): N documents over a vocabulary of D terms,
each document drawing about D * density distinct terms with a Zipf-like skew (term of rank r
drawn with probability proportional to 1 / (r + 100)), the count of each term 1 + Poisson(0.5),
weighted by the term's inverse document frequency and each row scaled to unit norm, as
scikit-learn's TfidfVectorizer does. The same starting centres (fastkm's sparse k-means++,
drawn once) for every library; a fixed number of iterations (``max_iter``, ``tol=0``).
Timed interleaved (fastkm, lloyd, elkan, then again), median of REPEAT fits each.

    python bench/bench_sparse.py [--quick]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from common import SETTLE_S, table

CASES = [(100_000, 20_000, 0.001, 20), (100_000, 20_000, 0.001, 100),
         (100_000, 20_000, 0.005, 20), (100_000, 20_000, 0.005, 100)]
QUICK_CASES = [(20_000, 5_000, 0.002, 20)]
MAX_ITER = 20
REPEAT = 3


def tfidf_like(n, d, density, seed=0):
    import scipy.sparse as sp

    rng = np.random.default_rng(seed)
    per_row = rng.poisson(d * density, n)
    p = 1.0 / (np.arange(d) + 100.0)
    p /= p.sum()
    rows = np.repeat(np.arange(n), per_row)
    cols = rng.choice(d, size=rows.size, p=p)
    counts = 1.0 + rng.poisson(0.5, rows.size)
    X = sp.csr_matrix((counts, (rows, cols)), shape=(n, d))  # sums repeated terms
    X.sum_duplicates()
    df = np.bincount(X.indices, minlength=d)
    X.data *= np.log((1 + n) / (1 + df[X.indices])) + 1.0
    norms = np.sqrt(np.bincount(np.repeat(np.arange(n), np.diff(X.indptr)),
                                weights=X.data ** 2, minlength=n))
    norms[norms == 0] = 1.0
    X.data /= np.repeat(norms, np.diff(X.indptr))
    return X


def case(n, d, density, k, max_iter=MAX_ITER):
    from sklearn.cluster import KMeans as SKMeans

    import fastkm
    from fastkm import sparse
    from fastkm.validation import check_sparse

    X = tfidf_like(n, d, density)
    start = sparse.kmeans_plusplus(sparse.CSR(check_sparse(X)), np.ones(n), k,
                                   np.random.default_rng(0))
    fits = {
        "fastkm": lambda: fastkm.KMeans(k, init=start, max_iter=max_iter, tol=0).fit(X),
        "lloyd": lambda: SKMeans(k, init=start, n_init=1, max_iter=max_iter, tol=0,
                                 algorithm="lloyd").fit(X),
        "elkan": lambda: SKMeans(k, init=start, n_init=1, max_iter=max_iter, tol=0,
                                 algorithm="elkan").fit(X),
    }
    fits["fastkm"]()  # compile / load the kernels
    times = {name: [] for name in fits}
    result = {}
    for _ in range(REPEAT):
        for name, fit in fits.items():
            time.sleep(SETTLE_S)
            t = time.perf_counter()
            result[name] = fit()
            times[name].append(time.perf_counter() - t)
    med = {name: statistics.median(ts) for name, ts in times.items()}
    ours, ref = result["fastkm"], result["lloyd"]
    return {
        "case": f"N={n:,} D={d:,} density {X.nnz / (n * d):.2%} K={k}",
        "fastkm": med["fastkm"], "lloyd": med["lloyd"], "elkan": med["elkan"],
        "ratio": min(med["lloyd"], med["elkan"]) / med["fastkm"],
        "rel": (ours.inertia_ - ref.inertia_) / ref.inertia_,
        "rel_elkan": (ours.inertia_ - result["elkan"].inertia_) / result["elkan"].inertia_,
        "differ": int(np.count_nonzero(ours.labels_ != ref.labels_)),
        "differ_elkan": int(np.count_nonzero(ours.labels_ != result["elkan"].labels_)),
        "iters": f"{ours.n_iter_}/{ref.n_iter_}/{result['elkan'].n_iter_}",
    }


COLD = """
import time, numpy as np, scipy.sparse as sp
t = time.perf_counter()
import fastkm
t_import = time.perf_counter() - t
X = sp.random(2000, 300, density=0.02, format="csr", random_state=0)
t = time.perf_counter()
km = fastkm.KMeans(8, random_state=0).fit(X)
km.transform(X)
km.score(X)
print(t_import, time.perf_counter() - t)
"""


def first_sparse_fit():
    """(import, first sparse fit + transform + score) seconds: cold (empty Numba cache),
    then warm, each in a fresh process."""
    out = []
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        for _ in ("cold", "warm"):
            res = subprocess.run([sys.executable, "-c", COLD], env=env, capture_output=True,
                                 text=True, check=True)
            out.append(tuple(float(v) for v in res.stdout.split()))
    return out


def _load():
    with open("/proc/loadavg") as f:
        return f.read().split()[0]


def run(quick=False) -> str:
    load = _load()
    rows = []
    for n, d, density, k in QUICK_CASES if quick else CASES:
        print(f"sparse case N={n} D={d} density={density} K={k}", file=sys.stderr, flush=True)
        r = case(n, d, density, k)
        rows.append([r["case"], f"{r['fastkm']:.2f}", f"{r['lloyd']:.2f}", f"{r['elkan']:.2f}",
                     f"**{r['ratio']:.1f}x**", f"{r['rel']:.1e}", r["differ"],
                     f"{r['rel_elkan']:.1e}", r["differ_elkan"], r["iters"]])
    load_end = _load()
    cold, warm = first_sparse_fit()
    return "\n".join([
        "## KMeans on sparse TF-IDF-like data: fastkm vs scikit-learn",
        "",
        ("Synthetic TF-IDF-like CSR (see bench/bench_sparse.py: Zipf-skewed terms, counts "
        "times IDF, rows of unit norm), float64; the same k-means++ start for every library; "
        f"`max_iter={MAX_ITER}`, `tol=0`. Times in seconds, median of {REPEAT} fits, "
        "interleaved. *ratio* = faster of scikit-learn's lloyd/elkan divided by fastkm. "
        "*rel. inertia* and *labels differ* compare fastkm with scikit-learn's lloyd (and "
        f"elkan). Load average {load} at the start, {load_end} at the end; the machine was "
        "shared with other engineers' work."),
        "",
        table(["case", "fastkm", "sklearn lloyd", "sklearn elkan", "ratio", "rel. inertia",
               "labels differ", "rel. inertia vs elkan", "labels differ vs elkan",
               "iterations fastkm/lloyd/elkan"], rows),
        "",
        ("First sparse fit + transform + score (2000 x 300, K = 8) in a fresh process; "
        "`NUMBA_CACHE_DIR` empty for *cold*. The sparse kernels load only when sparse data "
        "arrives, so `import fastkm` does not compile them:"),
        "",
        table(["", "import fastkm", "first sparse fit"],
              [["cold (compiles, fills cache)", f"{cold[0]:.2f} s", f"{cold[1]:.2f} s"],
               ["warm (cache loaded)", f"{warm[0]:.2f} s", f"{warm[1]:.2f} s"]]),
        "",
        "Command: `python bench/run.py --only sparse` (or `python bench/bench_sparse.py`).",
    ])


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    print(run(quick=ap.parse_args().quick))
