"""KMeans.fit on a Dask array, on a real LocalCluster (2 workers x 2 threads): the same
centres, labels, inertia and n_iter_ as the in-memory fit from the same start."""

from __future__ import annotations

import numpy as np
import pytest

import fastkm

da = pytest.importorskip("dask.array")
pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def client():
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=2, processes=True,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        yield client


def blobs(n, d, k, seed):
    rng = np.random.default_rng(seed)
    means = rng.normal(scale=10, size=(k, d))
    return means[rng.integers(0, k, n)] + rng.normal(size=(n, d))


@pytest.mark.parametrize(("d", "k", "weighted", "tol", "spread", "max_iter"), [
    (3, 8, False, 0.0, 10, 300),
    (5, 4, True, 1e-4, 10, 300),
    # Overlapping clusters that have not converged after 13 iterations: the fit stops at
    # max_iter in the middle of a graph of ITERATIONS_PER_GRAPH iterations.
    (3, 16, False, 0.0, 1, 13),
])
def test_equals_in_memory_fit(client, d, k, weighted, tol, spread, max_iter):
    rng = np.random.default_rng(d)
    X = blobs(6000, d, k, seed=d) if spread == 10 else rng.normal(size=(6000, d))
    w = np.random.default_rng(1).uniform(0.5, 2.0, len(X)) if weighted else None
    start = X[np.random.default_rng(k).choice(len(X), k, replace=False)]
    dX = da.from_array(X, chunks=(1000, d))
    dw = None if w is None else da.from_array(w, chunks=1000)
    got = fastkm.KMeans(k, init=start, tol=tol, max_iter=max_iter).fit(dX, sample_weight=dw)
    want = fastkm.KMeans(k, init=start, tol=tol, max_iter=max_iter).fit(X, sample_weight=w)
    if max_iter < 300:
        assert want.n_iter_ == max_iter
    assert type(got.labels_).__module__.startswith("dask.")
    np.testing.assert_allclose(got.cluster_centers_, want.cluster_centers_, rtol=1e-12,
                               atol=1e-12)
    assert got.n_iter_ == want.n_iter_
    assert got.inertia_ == pytest.approx(want.inertia_, rel=1e-12)
    np.testing.assert_array_equal(got.labels_.compute(), want.labels_)
    pred = got.predict(dX)
    assert type(pred).__module__.startswith("dask.")
    np.testing.assert_array_equal(pred.compute(), want.predict(X))


def test_kmeans_parallel_seeding(client):
    X = blobs(8000, 3, 6, seed=7)
    dX = da.from_array(X, chunks=(2000, 3))
    a = fastkm.KMeans(6, random_state=3).fit(dX)
    b = fastkm.KMeans(6, random_state=3).fit(dX)
    np.testing.assert_array_equal(a.cluster_centers_, b.cluster_centers_)  # reproducible
    # Well separated blobs: the seeding finds every blob, so the fit is the in-memory one
    # from its centres and close to the blobs' own k-means optimum.
    want = fastkm.KMeans(6, init=a.cluster_centers_, tol=0).fit(X)
    np.testing.assert_allclose(a.cluster_centers_, want.cluster_centers_, rtol=1e-6, atol=1e-6)
    best = min(fastkm.KMeans(6, random_state=s).fit(X).inertia_ for s in range(5))
    assert a.inertia_ <= best * (1 + 1e-6)
    assert len(np.unique(a.labels_.compute())) == 6


def test_unsupported_init(client):
    dX = da.zeros((10, 2), chunks=5)
    with pytest.raises(NotImplementedError, match="k-means"):
        fastkm.KMeans(2, init="random").fit(dX)
