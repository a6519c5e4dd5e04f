"""The KMeans estimator: scikit-learn equivalence, weights, restarts, validation."""

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fastkm
from fastkm.kmeans import NotFittedError


def sklearn_kmeans():
    """scikit-learn's KMeans, for the comparisons; those tests skip without scikit-learn."""
    return pytest.importorskip("sklearn.cluster").KMeans


def blobs(n, d, k, seed=0):
    """Gaussian blobs (unit spread) around k centres drawn in [-10, 10]^d, as
    scikit-learn's make_blobs, and k distinct points of them as a start."""
    rng = np.random.default_rng(seed)
    centres = rng.uniform(-10, 10, size=(k, d))
    X = centres[rng.integers(0, k, n)] + rng.normal(size=(n, d))
    start = X[np.random.default_rng(seed + 1).choice(n, k, replace=False)]
    return X, start


@pytest.mark.parametrize("n,d,k,algorithm", [
    (20000, 3, 16, "auto"), (20000, 3, 64, "hamerly"), (20000, 3, 64, "elkan"),
    (8000, 16, 32, "auto"), (5000, 1, 8, "auto"), (3000, 2, 1, "auto"),
])
def test_same_result_as_sklearn_lloyd(n, d, k, algorithm):
    sk_kmeans = sklearn_kmeans()
    X, start = blobs(n, d, k)
    ours = fastkm.KMeans(k, init=start, max_iter=300, tol=0, algorithm=algorithm).fit(X)
    ref = sk_kmeans(k, init=start, n_init=1, max_iter=300, tol=0,
                                 algorithm="lloyd").fit(X)
    np.testing.assert_array_equal(ours.labels_, ref.labels_)
    assert abs(ours.inertia_ - ref.inertia_) <= 1e-6 * ref.inertia_
    np.testing.assert_allclose(ours.cluster_centers_, ref.cluster_centers_, rtol=1e-9, atol=1e-9)
    assert ours.n_iter_ == ref.n_iter_


def test_tol_matches_sklearn_definition():
    sk_kmeans = sklearn_kmeans()
    X, start = blobs(20000, 3, 16, seed=3)
    for tol in (1e-2, 1e-4):
        ours = fastkm.KMeans(16, init=start, tol=tol).fit(X)
        ref = sk_kmeans(16, init=start, n_init=1, tol=tol, algorithm="lloyd").fit(X)
        assert ours.n_iter_ == ref.n_iter_
        np.testing.assert_array_equal(ours.labels_, ref.labels_)


@pytest.mark.parametrize("sparse", [False, True])
def test_tol_ignores_sample_weight_as_sklearn(sparse):
    """scikit-learn scales tol by the features' plain variance, whatever the weights: with
    the weighted one, this fit ran 43 iterations where scikit-learn stops after 1."""
    sk_kmeans = sklearn_kmeans()
    rng = np.random.default_rng(0)
    X = rng.normal(size=(2000, 2))
    X[:1000] *= 100
    w = np.r_[np.full(1000, 1e-3), np.ones(1000)]
    start = X[1000:1008]
    Y = pytest.importorskip("scipy.sparse").csr_matrix(X) if sparse else X
    ours = fastkm.KMeans(8, init=start, tol=1e-3).fit(Y, sample_weight=w)
    ref = sk_kmeans(8, init=start, n_init=1, tol=1e-3).fit(Y, sample_weight=w)
    assert ours.n_iter_ == ref.n_iter_
    np.testing.assert_array_equal(ours.labels_, ref.labels_)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**31), n=st.integers(1, 5000), d=st.integers(1, 5),
       dtype=st.sampled_from([np.float32, np.float64]))
def test_weighted_mean_variance_matches_numpy(seed, n, d, dtype):
    from fastkm.kmeans import _weighted_mean_variance

    rng = np.random.default_rng(seed)
    X = (rng.normal(size=(n, d)) * rng.uniform(0.1, 100, d) + rng.uniform(-50, 50, d)).astype(dtype)
    w = rng.integers(0, 4, n).astype(np.float64)
    w[0] = 1.0
    x = X.astype(np.float64)
    mean = (w[:, None] * x).sum(axis=0) / w.sum()
    want = ((w[:, None] * (x - mean) ** 2).sum(axis=0) / w.sum()).mean()
    np.testing.assert_allclose(_weighted_mean_variance(X, w), want, rtol=1e-9, atol=1e-12)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**31), k=st.integers(1, 6))
def test_weighted_fit_equals_repeated_points(seed, k):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(60, 2)) * 3
    reps = rng.integers(0, 5, size=60)
    reps[:k] = np.maximum(reps[:k], 1)
    start = X[:k]
    a = fastkm.KMeans(k, init=start, tol=0).fit(X, sample_weight=reps)
    b = fastkm.KMeans(k, init=start, tol=0).fit(np.repeat(X, reps, axis=0))
    np.testing.assert_allclose(a.cluster_centers_, b.cluster_centers_, rtol=1e-10, atol=1e-10)
    np.testing.assert_array_equal(np.repeat(a.labels_, reps), b.labels_)
    np.testing.assert_allclose(a.inertia_, b.inertia_, rtol=1e-10, atol=1e-10)
    assert a.n_iter_ == b.n_iter_


@pytest.mark.parametrize("init", ["k-means++", "random"])
def test_same_seed_same_result_and_restarts_keep_lowest(init):
    X, _ = blobs(5000, 3, 12, seed=5)
    a = fastkm.KMeans(12, init=init, n_init=3, random_state=7).fit(X)
    b = fastkm.KMeans(12, init=init, n_init=3, random_state=7).fit(X)
    np.testing.assert_array_equal(a.cluster_centers_, b.cluster_centers_)
    np.testing.assert_array_equal(a.labels_, b.labels_)
    singles = [fastkm.KMeans(12, init=init, n_init=1, random_state=s).fit(X).inertia_
               for s in range(4)]
    best = fastkm.KMeans(12, init=init, n_init=8, random_state=0).fit(X).inertia_
    assert best <= max(singles)


def test_kmeanspp_beats_random_on_average_and_picks_data_points():
    X, _ = blobs(4000, 2, 20, seed=2)
    from fastkm.init import kmeans_plusplus, random_points
    w = np.ones(len(X))
    rng = np.random.default_rng(0)
    pp = kmeans_plusplus(X, w, 20, rng)
    assert all((X == c).all(axis=1).any() for c in pp)
    ipp = [fastkm.KMeans(20, init=kmeans_plusplus(X, w, 20, np.random.default_rng(s)),
                         max_iter=1).fit(X).inertia_ for s in range(5)]
    irnd = [fastkm.KMeans(20, init=random_points(X, w, 20, np.random.default_rng(s)),
                          max_iter=1).fit(X).inertia_ for s in range(5)]
    assert np.mean(ipp) < np.mean(irnd)


def test_zero_weight_points_are_never_seeds():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(500, 3))
    w = np.zeros(500)
    w[::7] = 1.0
    from fastkm.init import kmeans_plusplus, random_points
    for seeds in (kmeans_plusplus(X, w, 10, rng), random_points(X, w, 10, rng)):
        idx = [np.flatnonzero((X == c).all(axis=1))[0] for c in seeds]
        assert all(w[i] > 0 for i in idx)


def test_float32_input_gives_float32_centres_and_matches_float64():
    X, start = blobs(10000, 3, 8, seed=4)
    a = fastkm.KMeans(8, init=start, tol=0).fit(X.astype(np.float32))
    b = fastkm.KMeans(8, init=start.astype(np.float32).astype(np.float64), tol=0) \
        .fit(X.astype(np.float32).astype(np.float64))
    assert a.cluster_centers_.dtype == np.float32
    np.testing.assert_array_equal(a.labels_, b.labels_)


def test_predict_and_fit_predict():
    X, start = blobs(3000, 3, 5)
    km = fastkm.KMeans(5, init=start).fit(X)
    np.testing.assert_array_equal(km.predict(X), km.labels_)
    np.testing.assert_array_equal(fastkm.KMeans(5, init=start).fit_predict(X), km.labels_)
    assert km.score(X) == pytest.approx(-km.inertia_, rel=1e-12)


def test_empty_clusters_are_reseeded_from_far_points():
    X = np.concatenate([np.zeros((50, 2)), np.full((50, 2), 10.0), [[100.0, 100.0]]])
    # Three centres start far from everything: two would stay empty without re-seeding.
    start = np.array([[0.0, 0.0], [-500.0, -500.0], [-600.0, -600.0]])
    km = fastkm.KMeans(3, init=start, tol=0).fit(X)
    assert sorted(np.bincount(km.labels_, minlength=3)) == [1, 50, 50]
    assert km.inertia_ == 0.0


@pytest.mark.parametrize("sparse", [False, True])
def test_more_clusters_than_distinct_points_converge_at_once(sparse):
    """Points already on their centres are never moved to empty clusters: they would only
    duplicate a centre, and groups of duplicates then hopped between the copies every
    iteration (n_iter_ reached max_iter, 8 s on 1M rows against scikit-learn's 0.7 s)."""
    Y = np.repeat(np.random.default_rng(0).normal(size=(5, 2)), 1000, axis=0)
    if sparse:
        Y = pytest.importorskip("scipy.sparse").csr_matrix(Y)
    with pytest.warns(RuntimeWarning, match=r"distinct clusters \(5\)"):
        km = fastkm.KMeans(8, random_state=0, tol=0).fit(Y)
    assert km.n_iter_ <= 2
    assert km.inertia_ < 1e-9  # every point on its centre, up to rounding (5000 points)


@pytest.mark.parametrize("sparse", [False, True])
def test_a_cluster_emptied_by_reseeding_keeps_its_centre(sparse):
    """Cluster 0 gives both its points to the two empty clusters: its weight is then
    rounding residue (2.5 + 1.3 - 2.5 - 1.3), and residue over residue had put its centre
    at -4.0, away from every point; now it keeps its centre, dense and sparse alike."""
    X = np.array([[-3.8], [-1.5], [100.0], [100.5]])
    w = np.array([2.5, 1.3, 1.0, 1.0])
    start = np.array([[-2.65], [100.25], [1000.0], [2000.0]])
    if sparse:
        X = pytest.importorskip("scipy.sparse").csr_matrix(X)
    with pytest.warns(RuntimeWarning, match="distinct clusters"):
        km = fastkm.KMeans(4, init=start, max_iter=1).fit(X, sample_weight=w)
    np.testing.assert_array_equal(km.cluster_centers_.ravel(), [-2.65, 100.25, -3.8, -1.5])


@pytest.mark.parametrize("sparse", [False, True])
def test_zero_weight_points_never_reseed(sparse):
    X = np.array([[0.0], [1.0], [10.0], [50.0], [60.0]])
    w = np.array([1.0, 1.0, 1.0, 0.0, 0.0])
    if sparse:
        X = pytest.importorskip("scipy.sparse").csr_matrix(X)
    km = fastkm.KMeans(3, init=np.array([[0.0], [1.0], [100.0]]), tol=0).fit(X, sample_weight=w)
    assert km.inertia_ == 0.0
    assert km.cluster_centers_[2, 0] == 10.0


def test_fewer_distinct_points_than_clusters_warns():
    X = np.repeat(np.array([[0.0, 0.0], [1.0, 1.0], [5.0, 5.0]]), 10, axis=0)
    with pytest.warns(RuntimeWarning, match=r"Number of distinct clusters \(3\) found smaller than n_clusters \(5\)"):
        km = fastkm.KMeans(5, random_state=0).fit(X)
    assert km.inertia_ == 0.0
    assert set(map(tuple, km.cluster_centers_[np.unique(km.labels_)])) == {(0, 0), (1, 1), (5, 5)}


def test_one_cluster_is_the_weighted_mean():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(100, 4))
    w = rng.random(100)
    km = fastkm.KMeans(1).fit(X, sample_weight=w)
    np.testing.assert_allclose(km.cluster_centers_[0], (w @ X) / w.sum(), rtol=1e-12)
    assert (km.labels_ == 0).all()


@pytest.mark.parametrize("X,kwargs,fit_kw,message", [
    (np.zeros((0, 3)), {}, {}, (r"Found array with 0 sample\(s\) \(shape=\(0, 3\)\) while a "
                                r"minimum of 1 is required \(X is empty\)")),
    (np.zeros((3, 0)), {}, {}, r"Found array with 0 feature\(s\) \(shape=\(3, 0\)\)"),
    (np.zeros(5), {}, {}, (r"Expected 2D array, got 1D array instead: X has shape \(5,\)\. "
                           r"Reshape your data")),
    (np.zeros((2, 2, 2)), {}, {}, (r"X must be a 2-D array \(n_samples, n_features\), got "
                                   r"shape \(2, 2, 2\)")),
    (np.array([["a", "b"]]), {}, {}, "X must be numeric, got dtype <U1"),
    (np.array([["a", 1.0]], dtype=object), {}, {}, "X must be numeric: could not convert"),
    (np.ones((5, 2)) + 1j, {}, {}, r"Complex data not supported \(X has dtype complex128\)"),
    (np.array([[0.0, np.nan]] * 3), {"n_clusters": 1}, {}, "X contains NaN or infinity"),
    (np.array([[0.0, np.inf]] * 3), {"n_clusters": 1}, {}, "X contains NaN or infinity"),
    (np.zeros((5, 2)), {"n_clusters": 0}, {}, "n_clusters must be an integer >= 1, got 0"),
    (np.zeros((5, 2)), {"n_clusters": 6}, {}, "n_clusters=6 must be <= n_samples=5"),
    (np.zeros((5, 2)), {"n_clusters": 2.5}, {}, "n_clusters must be an integer >= 1, got 2.5"),
    (np.zeros((5, 2)), {"n_clusters": 2, "init": "kmeans"}, {},
     "init must be 'k-means\\+\\+', 'random', a callable or an array, got 'kmeans'"),
    (np.zeros((5, 2)), {"n_clusters": 2, "init": np.zeros((3, 2))}, {},
     r"init must have shape \(n_clusters, n_features\) = \(2, 2\), got \(3, 2\)"),
    (np.zeros((5, 2)), {"n_clusters": 2, "n_init": 0}, {}, "n_init must be an integer >= 1 or 'auto', got 0"),
    (np.zeros((5, 2)), {"n_clusters": 2, "max_iter": 0}, {}, "max_iter must be an integer >= 1, got 0"),
    (np.zeros((5, 2)), {"n_clusters": 2, "tol": -1.0}, {}, "tol must be a finite number >= 0, got -1.0"),
    (np.zeros((5, 2)), {"n_clusters": 2, "algorithm": "fast"}, {}, "algorithm must be one of"),
    (np.zeros((5, 2)), {"n_clusters": 2}, {"sample_weight": -np.ones(5)},
     "sample_weight must be >= 0, got a minimum of -1.0"),
    (np.zeros((5, 2)), {"n_clusters": 2}, {"sample_weight": np.zeros(5)}, "sample_weight must not be all zero"),
    (np.zeros((5, 2)), {"n_clusters": 2}, {"sample_weight": np.ones(4)},
     r"sample_weight must have shape \(5,\), got \(4,\)"),
    (np.zeros((5, 2)), {"n_clusters": 2}, {"sample_weight": [1, 1, np.nan, 1, 1]},
     "sample_weight contains NaN or infinity"),
])
def test_invalid_input_is_named(X, kwargs, fit_kw, message):
    with pytest.raises(ValueError, match=message):
        fastkm.KMeans(**{"n_clusters": 2, **kwargs}).fit(X, **fit_kw)


def test_predict_before_fit_and_wrong_width():
    for method in ("predict", "transform", "score"):
        with pytest.raises(NotFittedError, match="This KMeans instance is not fitted yet"):
            getattr(fastkm.KMeans(2), method)(np.zeros((3, 2)))
    km = fastkm.KMeans(2, random_state=0).fit(np.random.default_rng(0).normal(size=(10, 2)))
    for method in (km.predict, km.transform, km.score):
        with pytest.raises(ValueError, match="X has 3 features, but KMeans is expecting 2 "
                                             "features as input"):
            method(np.zeros((3, 3)))
    with pytest.raises(ValueError, match="Expected 2D array, got 1D array instead.*Reshape"):
        km.predict(np.zeros(2))


def test_integer_and_bool_input_is_accepted():
    X = np.array([[0, 0], [0, 1], [10, 10], [10, 11]], dtype=np.int16)
    km = fastkm.KMeans(2, random_state=0).fit(X)
    assert km.inertia_ == pytest.approx(1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fastkm.KMeans(2, random_state=0).fit(X.astype(bool))


# The estimator protocol, without scikit-learn (tests/test_estimator.py runs it with).


def test_get_params_set_params_and_repr():
    km = fastkm.KMeans(5, random_state=3)
    params = km.get_params()
    assert params == {"n_clusters": 5, "init": "k-means++", "n_init": "auto", "max_iter": 300,
                      "tol": 1e-4, "verbose": 0, "random_state": 3, "copy_x": True,
                      "algorithm": "auto"}
    assert repr(km) == "KMeans(n_clusters=5, random_state=3)"
    assert repr(fastkm.KMeans()) == "KMeans()"
    assert km.set_params(n_clusters=2, algorithm="lloyd") is km
    assert repr(km) == "KMeans(algorithm='lloyd', n_clusters=2, random_state=3)"
    assert type(km)(**km.get_params()).get_params() == km.get_params()
    with pytest.raises(ValueError, match="Invalid parameter 'k' for estimator"):
        km.set_params(k=3)


def test_unsupported_parameter_values_are_named():
    X = np.zeros((5, 2))
    for kwargs, message in [({"verbose": "yes"}, "verbose must be an integer or a bool"),
                            ({"copy_x": "no"}, "copy_x must be a bool, got 'no'"),
                            ({"init": 3}, "init must be a 2-D array"),
                            ({"n_init": "many"}, "n_init must be an integer >= 1 or 'auto'")]:
        with pytest.raises(ValueError, match=message):
            fastkm.KMeans(2, **kwargs).fit(X)


def test_n_init_auto_means_ten_runs_for_random_and_callable():
    X, _ = blobs(600, 2, 6, seed=8)
    calls = []

    def seeds(data, k, state):
        calls.append(state.randint(1000))
        return data[:k]

    fastkm.KMeans(6, init=seeds, random_state=0).fit(X)
    assert len(calls) == 10
    fastkm.KMeans(6, init=seeds, n_init=2, random_state=0).fit(X)
    assert len(calls) == 12
    # "auto" with "random": the best of 10, so as good as any of the ten single runs.
    km = fastkm.KMeans(6, init="random", random_state=4).fit(X)
    auto10 = fastkm.KMeans(6, init="random", n_init=10, random_state=4).fit(X)
    assert km.inertia_ == auto10.inertia_
    assert fastkm.KMeans(6, init="random", n_init=1, random_state=4).fit(X).inertia_ >= km.inertia_


def test_callable_init_gets_the_data_and_its_centres_are_checked():
    X, start = blobs(500, 3, 4, seed=9)
    km = fastkm.KMeans(4, init=lambda data, k, state: start, tol=0).fit(X)
    ref = fastkm.KMeans(4, init=start, tol=0).fit(X)
    np.testing.assert_array_equal(km.labels_, ref.labels_)
    with pytest.raises(ValueError, match=r"init\(X, n_clusters, random_state\) must have shape "
                                         r"\(n_clusters, n_features\) = \(4, 3\), got \(3, 3\)"):
        fastkm.KMeans(4, init=lambda data, k, state: start[:3]).fit(X)


@pytest.mark.parametrize("algorithm", ["lloyd", "elkan", "auto"])
def test_verbose_prints_each_iteration(algorithm, capsys):
    X, start = blobs(400, 2, 3, seed=1)
    km = fastkm.KMeans(3, init=start, tol=0, verbose=1, algorithm=algorithm).fit(X)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "Initialization complete"
    iterations = [line for line in lines if line.startswith("Iteration ")]
    assert len(iterations) == km.n_iter_
    assert iterations[-1].startswith(f"Iteration {km.n_iter_ - 1}, inertia ")
    # The last printed inertia is of the last labels against the centres before the last
    # update; once converged, the final inertia.
    assert float(iterations[-1].split("inertia ")[1].rstrip(".")) == pytest.approx(km.inertia_)
    fastkm.KMeans(3, init=start, tol=0).fit(X)
    assert capsys.readouterr().out == ""


def test_copy_x_changes_nothing_and_x_is_untouched():
    X, start = blobs(300, 2, 3, seed=2)
    before = X.copy()
    a = fastkm.KMeans(3, init=start, copy_x=False).fit(X)
    b = fastkm.KMeans(3, init=start, copy_x=True).fit(X)
    np.testing.assert_array_equal(X, before)
    np.testing.assert_array_equal(a.cluster_centers_, b.cluster_centers_)


def test_transform_is_the_distance_to_each_centre():
    X, start = blobs(700, 3, 5, seed=6)
    km = fastkm.KMeans(5, init=start).fit(X)
    want = np.sqrt(((X[:, None, :] - km.cluster_centers_[None]) ** 2).sum(axis=2))
    np.testing.assert_allclose(km.transform(X), want, rtol=1e-12)
    np.testing.assert_allclose(fastkm.KMeans(5, init=start).fit_transform(X), want, rtol=1e-12)
    np.testing.assert_array_equal(km.transform(X).argmin(axis=1), km.labels_)
    assert km.transform(X.astype(np.float32)).dtype == np.float64
    km32 = fastkm.KMeans(5, init=start).fit(X.astype(np.float32))
    assert km32.transform(X.astype(np.float32)).dtype == np.float32
    assert list(km.get_feature_names_out()) == [f"kmeans{i}" for i in range(5)]


def test_score_is_minus_the_weighted_inertia():
    X, start = blobs(500, 2, 4, seed=7)
    km = fastkm.KMeans(4, init=start).fit(X)
    Y = X[:100] + 0.5
    w = np.random.default_rng(0).random(100)
    d2 = ((Y[:, None, :] - km.cluster_centers_[None]) ** 2).sum(axis=2).min(axis=1)
    assert km.score(Y, sample_weight=w) == pytest.approx(-(w * d2).sum(), rel=1e-12)
    assert km.score(Y) == pytest.approx(-d2.sum(), rel=1e-12)


def test_object_arrays_of_numbers_convert():
    X, start = blobs(200, 2, 3, seed=3)
    a = fastkm.KMeans(3, init=start).fit(X.astype(object))
    b = fastkm.KMeans(3, init=start).fit(X)
    np.testing.assert_array_equal(a.labels_, b.labels_)
    bad = X.astype(object)
    bad[0, 0] = {"a": 1}
    with pytest.raises(TypeError, match="X must be numeric: float\\(\\) argument must be"):
        fastkm.KMeans(3).fit(bad)


def test_pickle_round_trip():
    import pickle

    X, start = blobs(300, 2, 3, seed=4)
    km = fastkm.KMeans(3, init=start, random_state=1).fit(X)
    again = pickle.loads(pickle.dumps(km))
    assert repr(again) == repr(km)
    np.testing.assert_array_equal(again.predict(X), km.labels_)
    np.testing.assert_array_equal(again.cluster_centers_, km.cluster_centers_)


class _Frame:
    """Stands in for a DataFrame: only ``columns`` and ``__array__``."""

    def __init__(self, data, columns):
        self.data, self.columns = data, columns

    def __array__(self, dtype=None, copy=None):
        return self.data


def test_sample_weight_scalar_object_and_overflow():
    X, start = blobs(200, 2, 3, seed=4)
    twice = fastkm.KMeans(3, init=start).fit(X, sample_weight=np.full(len(X), 2.0))
    assert fastkm.KMeans(3, init=start).fit(X, sample_weight=2.0).inertia_ == twice.inertia_
    objects = np.array([2.0] * len(X), dtype=object)
    assert fastkm.KMeans(3, init=start).fit(X, sample_weight=objects).inertia_ == twice.inertia_
    with pytest.raises(ValueError, match="sample_weight must be numeric"):
        fastkm.KMeans(3, init=start).fit(X, sample_weight=np.array(["a"] * len(X), dtype=object))
    with pytest.raises(ValueError, match="sample_weight sums to more than float64 holds"):
        fastkm.KMeans(3, init=start).fit(X, sample_weight=np.full(len(X), 1e307))


def test_feature_names_in_from_string_columns_only():
    X, start = blobs(100, 2, 2, seed=5)
    km = fastkm.KMeans(2, init=start).fit(_Frame(X, ["a", "b"]))
    assert list(km.feature_names_in_) == ["a", "b"]
    km.fit(X)
    assert not hasattr(km, "feature_names_in_")
    km.fit(_Frame(X, [0, 1]))
    assert not hasattr(km, "feature_names_in_")


def test_works_without_scikit_learn_installed(tmp_path):
    """fit, predict, transform and quantize in a process where scikit-learn, scipy and pandas
    cannot be imported."""
    import subprocess
    import sys

    code = """
import sys
for name in ("sklearn", "scipy", "pandas"):
    sys.modules[name] = None
import numpy as np
import fastkm
from fastkm.kmeans import NotFittedError
X = np.random.default_rng(0).normal(size=(300, 3))
km = fastkm.KMeans(4, random_state=0).fit(X)
assert (km.predict(X) == km.labels_).all()
assert km.transform(X).shape == (300, 4)
print(repr(km), round(km.score(X) + km.inertia_, 6))
q = fastkm.quantize(np.random.default_rng(1).integers(0, 256, (16, 16, 3), dtype=np.uint8), 4)
print(len(q.palette))
try:
    fastkm.KMeans().predict(X)
except NotFittedError as exc:
    print(type(exc).__name__)
print(sorted(m for m in ("sklearn", "scipy", "pandas") if sys.modules.get(m) is not None))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=300, check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split("\n") == ["KMeans(n_clusters=4, random_state=0) 0.0", "4",
                                      "NotFittedError", "[]", ""]


@given(st.lists(st.integers(0, 5), min_size=0, max_size=40), st.integers(0, 45))
@settings(max_examples=200, deadline=None)
def test_farthest_is_largest_first_lowest_index_among_equals(values, take):
    """kmeans.farthest (re-seeding empty clusters, in memory and block by block on Dask)
    against a full sort by (score descending, index)."""
    from fastkm.kmeans import farthest

    score = np.array(values, dtype=np.float64)
    want = np.lexsort((np.arange(len(score)), -score))[:take]
    np.testing.assert_array_equal(farthest(score, take), want)
