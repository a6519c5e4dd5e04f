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
                      dashboard_address=":0") as cluster, Client(cluster) as client:
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
    with pytest.raises(NotImplementedError, match="k-means"):
        fastkm.KMeans(2, init=lambda X, k, random_state: X[:k]).fit(dX)


def test_blocks_of_very_different_scales(client):
    """A block of tiny values beside one of huge values: the bounds of the tiny block carry
    the huge centres' moves, so their rounding margin must come from the largest coordinate
    of all the blocks, not the block's own (with its own, labels and n_iter_ went wrong)."""
    rng = np.random.default_rng(0)
    big = 1e9
    tiny = rng.normal(size=(2000, 3)) * 1e-6
    huge = rng.normal(size=(1000, 3)) * big * 0.1
    huge[:500, 0] += big
    huge[500:, 0] -= big
    X = np.concatenate([tiny, huge])
    start = np.concatenate([tiny[:6], [[big * 0.2, 0, 0], [-big * 0.2, 0, 0]]])
    got = fastkm.KMeans(8, init=start, tol=0).fit(da.from_array(X, chunks=((2000, 1000), 3)))
    want = fastkm.KMeans(8, init=start, tol=0).fit(X)
    assert got.n_iter_ == want.n_iter_
    np.testing.assert_array_equal(got.labels_.compute(), want.labels_)


@pytest.mark.parametrize(("kwargs", "X", "w", "message"), [
    ({}, [[0.0, 1.0], [np.nan, 2.0], [1.0, 1.0], [2.0, 2.0]], None, "X contains NaN or infinity"),
    ({}, [[0.0, 1.0], [np.inf, 2.0], [1.0, 1.0], [2.0, 2.0]], None, "X contains NaN or infinity"),
    ({}, None, [1.0, -1.0, 1.0, 1.0], "sample_weight must be >= 0"),
    ({}, None, [1.0, np.nan, 1.0, 1.0], "sample_weight contains NaN"),
    ({}, None, [0.0, 0.0, 0.0, 0.0], "must not be all zero"),
    ({"tol": 0.0}, None, [0.0, 0.0, 0.0, 0.0], "must not be all zero"),
    ({"n_clusters": 5}, None, None, "n_clusters=5 must be <= n_samples=4"),
    ({"max_iter": 0}, None, None, "max_iter must be an integer >= 1"),
    ({"tol": -1.0}, None, None, "tol must be a finite number >= 0"),
])
def test_bad_input_is_refused_as_in_memory(client, kwargs, X, w, message):
    X = np.array(X if X is not None else [[0.0, 1.0], [1.0, 2.0], [1.0, 1.0], [2.0, 2.0]])
    start = np.array([[0.0, 0.0], [2.0, 2.0]])
    params = {"n_clusters": 2, "init": start, **kwargs}
    if params["n_clusters"] != 2:
        params["init"] = "k-means++"
    dw = None if w is None else da.from_array(np.array(w), chunks=2)
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        fastkm.KMeans(**params).fit(da.from_array(X, chunks=(2, 2)), sample_weight=dw)
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        fastkm.KMeans(**params).fit(X, sample_weight=w)


def test_float32_data_gives_float32_centres_as_in_memory(client):
    X = blobs(3000, 3, 4, seed=5).astype(np.float32)
    start = X[:4].copy()
    got = fastkm.KMeans(4, init=start).fit(da.from_array(X, chunks=(1000, 3)))
    want = fastkm.KMeans(4, init=start).fit(X)
    assert got.cluster_centers_.dtype == want.cluster_centers_.dtype == np.float32
    np.testing.assert_array_equal(got.labels_.compute(), want.labels_)
    np.testing.assert_allclose(got.cluster_centers_, want.cluster_centers_, rtol=1e-6)


@pytest.mark.parametrize("chunks", [1000, 700])
def test_empty_clusters_are_reseeded_as_in_memory(client, chunks):
    """Two starting centres far from every point get no member: both fits re-seed them with
    the points farthest from their centres, then count every point again."""
    X = blobs(4000, 3, 4, seed=7)
    start = np.concatenate([X[:4], [[1e3, 1e3, 1e3], [-1e3, 0.0, 0.0]]])
    got = fastkm.KMeans(6, init=start, tol=0).fit(da.from_array(X, chunks=(chunks, 3)))
    want = fastkm.KMeans(6, init=start, tol=0).fit(X)
    assert len(np.unique(want.labels_)) == 6  # the far centres were re-seeded
    np.testing.assert_array_equal(got.labels_.compute(), want.labels_)
    np.testing.assert_allclose(got.cluster_centers_, want.cluster_centers_, rtol=1e-10)
    assert got.n_iter_ == want.n_iter_
    assert got.inertia_ == pytest.approx(want.inertia_, rel=1e-10)


@pytest.mark.parametrize(("X", "start"), [
    # Four points tie as the farthest: both fits take the lowest indices first.
    ([[1.0], [2.0], [1.0], [1.0], [1.0], [0.0], [0.0], [2.0]], [[1.0], [10.0], [11.0]]),
    # No label changes in the iteration that re-seeds: both stop there (strict convergence,
    # as scikit-learn), without a last assignment.
    ([[1.0], [2.0], [1.0], [2.0], [2.0], [2.0], [1.0]], [[1.0], [10.0], [11.0], [12.0]]),
    # Empty clusters and every point on its centre: none to re-seed them with, both stop.
    ([[0.0], [0.0], [0.0], [1.0], [1.0]], [[0.0], [1.0], [0.0], [5.0]]),
])
@pytest.mark.parametrize("chunks", [2, 8])
@pytest.mark.filterwarnings("ignore:Number of distinct clusters")  # 2-3 distinct points
def test_reseeding_ties_and_strict_stop_as_in_memory(client, X, start, chunks):
    X, start = np.array(X), np.array(start)
    got = fastkm.KMeans(len(start), init=start, tol=0).fit(da.from_array(X, chunks=(chunks, 1)))
    want = fastkm.KMeans(len(start), init=start, tol=0).fit(X)
    assert got.n_iter_ == want.n_iter_
    np.testing.assert_array_equal(got.labels_.compute(), want.labels_)
    np.testing.assert_allclose(got.cluster_centers_, want.cluster_centers_, rtol=1e-12)


def test_too_few_distinct_points_warns_as_in_memory(client):
    X = np.repeat([[0.0, 0.0], [5.0, 5.0]], 10, axis=0)
    start = np.array([[0.0, 0.0], [5.0, 5.0], [9.0, 9.0]])
    with pytest.warns(RuntimeWarning, match=r"distinct clusters \(2\) found smaller"):
        fastkm.KMeans(3, init=start).fit(X)
    with pytest.warns(RuntimeWarning, match=r"distinct clusters \(2\) found smaller"):
        fastkm.KMeans(3, init=start).fit(da.from_array(X, chunks=(7, 2)))


def test_a_state_changed_by_a_later_step_is_refused():
    """Steps update a block's arrays in place: reading the state a step has moved past (what
    a replay after a lost worker does) raises instead of giving wrong sums or labels."""
    from fastkm import dask_kmeans, kernels

    X = blobs(500, 3, 4, seed=2)
    w = np.ones(len(X))
    centers = X[:4].copy()
    half_sep = kernels.separations(centers)[1]
    moved = np.zeros(5)
    first = dask_kmeans._block_step(X, w, None, centers, half_sep, moved, 0.0)
    second = dask_kmeans._block_step(X, w, first, centers, half_sep, moved, first[8])
    assert dask_kmeans._totals([[second]])  # the current state reads
    message = "a Dask worker was lost"
    with pytest.raises(dask_kmeans.LostStateError, match=message):
        dask_kmeans._block_step(X, w, first, centers, half_sep, moved, first[8])
    with pytest.raises(dask_kmeans.LostStateError, match=message):
        dask_kmeans._totals([[first]])
    # labels_ read from a rebuilt state: those of the centres, computed afresh.
    moved_away = centers + 0.5
    nearest = ((X[:, None, :] - moved_away[None]) ** 2).sum(axis=2).argmin(axis=1)
    np.testing.assert_array_equal(dask_kmeans._labels_of([[first]], 0, X, moved_away), nearest)


def test_a_worker_lost_mid_fit_gives_the_in_memory_result():
    """A worker dies as it starts its step of iteration 25, in the middle of a graph: Dask
    recomputes what it held by replaying steps, some over arrays the other worker's later
    steps had already changed. Before the states carried generations this ended silently
    wrong (inertia 4e-4 off, 99,950 of 600,000 labels differing in a run by hand); now the
    fit counts every block afresh from the last centres and ends as in memory."""
    import os

    from distributed import Client, LocalCluster, wait
    from distributed.diagnostics.plugin import WorkerPlugin

    class DieAtStep(WorkerPlugin):
        """Kills the worker at ``address`` as its ``n``-th group step starts."""

        def __init__(self, address, n):
            self.address, self.n, self.seen = address, n, 0

        def setup(self, worker):
            self.worker = worker

        def transition(self, key, start, finish, **kwargs):
            if (finish == "executing" and self.worker.address == self.address
                    and str(key).startswith("group_step")):
                self.seen += 1
                if self.seen == self.n:
                    os._exit(1)

    rng = np.random.default_rng(0)
    X = rng.normal(size=(60_000, 3)) * 3 + rng.integers(0, 40, size=(60_000, 1))
    start = X[rng.choice(len(X), 16, replace=False)]
    want = fastkm.KMeans(16, init=start, tol=0, max_iter=40).fit(X)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=":0") as cluster, Client(cluster) as client:
        dX = da.from_array(X, chunks=(10_000, 3)).persist()
        wait(dX)
        held = client.who_has(dX)  # a worker with blocks runs a group step every iteration
        doomed = sorted({w for holders in held.values() for w in holders})[0]
        pid = client.run(os.getpid, workers=[doomed])[doomed]
        client.register_plugin(DieAtStep(doomed, 25))
        got = fastkm.KMeans(16, init=start, tol=0, max_iter=40).fit(dX)
        labels = got.labels_.compute()
        assert pid not in client.run(os.getpid).values()  # it did die
    assert got.n_iter_ == want.n_iter_ == 40
    assert got.inertia_ == pytest.approx(want.inertia_, rel=1e-9)
    np.testing.assert_array_equal(labels, want.labels_)
