"""KMeans on a Dask array: fastkm (fastkm.dask_kmeans) against dask-ml's KMeans and the
in-memory fastkm fit, N x 3 points, K = 64, 20 iterations (tol = 0, max_iter = 20), the
same explicit init, LocalCluster of 2 worker processes x 1 thread.

    python bench/bench_dask.py [N]      # needs dask-ml (pip install dask-ml)

Prints a Markdown section; the client's peak RSS is read from /proc (VmHWM) after each fit.
"""

from __future__ import annotations

import statistics
import sys
import time

import numpy as np


def hwm_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM"):
                return int(line.split()[1]) / 1024
    return float("nan")


def load() -> str:
    with open("/proc/loadavg") as f:
        return f.read().split()[0]


def main(n: int = 4_000_000, k: int = 64, iters: int = 20, repeat: int = 2) -> str:
    import dask.array as da
    from distributed import Client, LocalCluster

    import fastkm

    rng = np.random.default_rng(0)
    means = rng.uniform(0, 255, size=(k, 3))
    chunk = 500_000
    start = means + rng.normal(scale=5, size=(k, 3))
    loads = [load()]
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster):
        # The data is made on the workers, never on the client.
        def block(seed, size):
            r = np.random.default_rng(seed)
            return means[r.integers(0, k, size)] + r.normal(scale=12, size=(size, 3))

        sizes = [min(chunk, n - i) for i in range(0, n, chunk)]
        blocks = [da.from_delayed(__import__("dask").delayed(block)(i, s), (s, 3), float)
                  for i, s in enumerate(sizes)]
        X = da.concatenate(blocks).persist()
        hwm0 = hwm_mb()
        fk = fastkm.KMeans(k, init=start, max_iter=iters, tol=0)
        fk.fit(X)  # warm: Numba caches on the workers
        times = {"fastkm on Dask": [], "dask-ml KMeans": [], "fastkm in memory": []}
        for _ in range(repeat):
            t = time.perf_counter()
            fk = fastkm.KMeans(k, init=start, max_iter=iters, tol=0).fit(X)
            times["fastkm on Dask"].append(time.perf_counter() - t)
        hwm_fit = hwm_mb()
        from dask_ml.cluster import KMeans as DaskMLKMeans

        dm = None
        for _ in range(1):
            t = time.perf_counter()
            dm = DaskMLKMeans(n_clusters=k, init=start, max_iter=iters, tol=0,
                              oversampling_factor=2).fit(X)
            times["dask-ml KMeans"].append(time.perf_counter() - t)
        Xm = X.compute()
        labels = fk.labels_.compute()
    for _ in range(repeat):
        t = time.perf_counter()
        mem = fastkm.KMeans(k, init=start, max_iter=iters, tol=0).fit(Xm)
        times["fastkm in memory"].append(time.perf_counter() - t)
    loads.append(load())
    med = {name: statistics.median(v) for name, v in times.items()}
    rel = abs(fk.inertia_ - mem.inertia_) / mem.inertia_
    same = int((labels != mem.labels_).sum())
    rows = [f"| {name} | {med[name]:.2f} | {med[name] / med['fastkm on Dask']:.1f} |"
            for name in times]
    return "\n".join([
        "## KMeans on a Dask array",
        "",
        (f"- command: `python bench/bench_dask.py {n}`; N = {n:,} x 3 (64 blobs, made on the "
        f"workers), K = {k}, {iters} iterations (tol = 0), the same explicit init, "
        "LocalCluster 2 processes x 1 thread; median of "
        f"{repeat} (dask-ml: 1 run), after a warm-up fit"),
        f"- load average at start / end: {loads[0]} / {loads[1]} (shared machine)",
        (f"- fastkm n_iter_ {fk.n_iter_} (in memory {mem.n_iter_}), dask-ml n_iter_ "
        f"{getattr(dm, 'n_iter_', '?')}; relative inertia difference Dask vs in memory "
        f"{rel:.1e}; labels differing: {same}"),
        (f"- client peak RSS (VmHWM): {hwm0:.0f} MB after persisting the data, {hwm_fit:.0f} MB "
        f"after the fastkm Dask fits (data: {n * 24 / 2**20:.0f} MB on the workers)"),
        "",
        "| fit | seconds | x fastkm on Dask |",
        "|---|---|---|",
        *rows,
        "",
    ])


def run(quick: bool = False) -> str:
    try:
        import dask_ml  # noqa: F401
    except ImportError:
        return "## KMeans on a Dask array\n\nskipped: dask-ml is not installed\n"
    return main(200_000 if quick else 4_000_000)


if __name__ == "__main__":
    print(main(int(sys.argv[1]) if len(sys.argv) > 1 else 4_000_000))
