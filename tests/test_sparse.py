"""Sparse input: the CSR kernels against NumPy, and KMeans on CSR against scikit-learn."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fastkm
from fastkm import sparse

sp = pytest.importorskip("scipy.sparse")


def random_csr(rng, n, d, density, dtype=np.float64):
    X = sp.random(n, d, density=density, format="csr", random_state=rng.integers(2**31),
                  dtype=np.float64)
    X.data = rng.uniform(0.1, 1.0, X.nnz)
    return X.astype(dtype)


def tfidf_like(n, d, density, seed):
    """Positive values, rows scaled to unit norm (as TF-IDF), some rows empty."""
    rng = np.random.default_rng(seed)
    X = random_csr(rng, n, d, density)
    norms = np.sqrt(np.asarray(X.multiply(X).sum(axis=1)).ravel())
    norms[norms == 0] = 1.0
    return sp.csr_matrix(sp.diags(1.0 / norms) @ X)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**31), n=st.integers(1, 300), d=st.integers(1, 40),
       k=st.integers(1, 9), density=st.floats(0.0, 1.0))
def test_kernels_match_numpy(seed, n, d, k, density):
    rng = np.random.default_rng(seed)
    X = random_csr(rng, n, d, density)
    dense = X.toarray()
    C = rng.normal(size=(k, d))
    w = rng.uniform(0, 3, n)
    csr = sparse.CSR(sp.csr_matrix(X))
    want = ((dense[:, None, :] - C[None]) ** 2).sum(axis=2)
    np.testing.assert_allclose(csr.row_norms, (dense ** 2).sum(axis=1), rtol=1e-12)
    np.testing.assert_allclose(csr.sq_distances(C), want, rtol=1e-9, atol=1e-9)
    labels, dist = csr.labels(C)
    # The chosen centre is a nearest one (ties within rounding may go either way).
    np.testing.assert_allclose(want[np.arange(n), labels], want.min(axis=1), rtol=1e-9,
                               atol=1e-9)
    np.testing.assert_allclose(dist, want.min(axis=1), rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(csr.inertia(w, C, labels), (w * want.min(axis=1)).sum(),
                               rtol=1e-9, atol=1e-9)
    sums, weights = csr.sums(w, labels, k)
    for j in range(k):
        members = labels == j
        np.testing.assert_allclose(sums[j], w[members] @ dense[members], rtol=1e-12,
                                   atol=1e-12)
        assert weights[j] == pytest.approx(w[members].sum(), rel=1e-12)


def f32_labels(csr, C):
    """Labels from ``sparse.assign_f32`` (through ``CSR.assign``) and from the float64
    ``sparse.assign``."""
    got = np.full(csr.shape[0], -1, dtype=np.int32)
    csr.assign(C, np.ascontiguousarray(C.T), got)
    return got, csr.labels(C)[0]


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**31), n=st.integers(1, 200), d=st.integers(1, 30),
       k=st.integers(1, 12), density=st.floats(0.0, 1.0),
       scale=st.sampled_from([1e-30, 1e-3, 1.0, 1e12]), copies=st.integers(0, 3))
def test_float32_assignment_gives_the_float64_labels(seed, n, d, k, density, scale, copies):
    """Same labels as the float64 kernel, bit for bit, with duplicate centres (exact ties:
    the lowest index) and centres a few ulps apart (near ties, redone in float64)."""
    rng = np.random.default_rng(seed)
    X = random_csr(rng, n, d, density) * scale
    C = rng.normal(size=(k, d)) * scale
    rows = X[rng.integers(0, n, k)].toarray()
    C[: k // 2] = rows[: k // 2]  # centres on data rows
    for _ in range(copies):  # a copy, and a copy nudged by an ulp or two
        a, b = rng.integers(0, k, 2)
        C[b] = C[a]
        if rng.random() < 0.5:
            j = rng.integers(0, d)
            C[b, j] = np.nextafter(C[b, j], np.inf * rng.choice([-1, 1]))
    csr = sparse.CSR(sp.csr_matrix(X))
    got, want = f32_labels(csr, C)
    np.testing.assert_array_equal(got, want)


def test_float32_assignment_near_ties_and_out_of_range_values():
    """Rows half way between two centres, up to rounding: the float32 sums cannot tell,
    so they are redone in float64; values beyond float32's range take the float64 kernel."""
    rng = np.random.default_rng(1)
    d = 50
    C = rng.uniform(0, 1, (2, d))
    mid = (C[0] + C[1]) / 2
    X = np.array([mid + rng.normal(scale=s, size=d) for s in (0, 1e-16, 1e-12, 1e-8, 1e-4)
                  for _ in range(20)])
    for scale in (1.0, 1e-20, 1e20, 1e-100, 1e100):
        csr = sparse.CSR(sp.csr_matrix(X * scale))
        got, want = f32_labels(csr, C * scale)
        np.testing.assert_array_equal(got, want)
        ref = ((X[:, None, :] - C[None]) ** 2).sum(axis=2)
        clear = np.abs(ref[:, 0] - ref[:, 1]) > 1e-9  # rounding cannot flip these
        np.testing.assert_array_equal(got[clear], ref[clear].argmin(axis=1))


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**31), n=st.integers(1, 200), d=st.integers(1, 30),
       k=st.integers(1, 6), density=st.floats(0.0, 1.0))
def test_csc_and_centre_update_match_numpy(seed, n, d, k, density):
    rng = np.random.default_rng(seed)
    X = random_csr(rng, n, d, density)
    w = rng.uniform(0, 3, n)
    colptr, rows, values = sparse.weighted_csc(X.indptr.astype(np.int64), X.indices, X.data,
                                               w, d)
    ref = X.tocsc()
    ref.sort_indices()
    np.testing.assert_array_equal(colptr, ref.indptr)
    np.testing.assert_array_equal(rows, ref.indices)
    np.testing.assert_array_equal(values, ref.data * w[ref.indices])  # the same products
    sums_t = rng.normal(size=(d, k))
    weights = rng.uniform(0, 2, k) * (rng.random(k) < 0.7)
    old_t = rng.normal(size=(d, k))
    new_t = sums_t.copy()
    centers = np.empty((k, d))
    shift = sparse.new_centers(new_t, weights, old_t, centers)
    want = np.where(weights > 0, sums_t / np.where(weights > 0, weights, 1), old_t)
    np.testing.assert_array_equal(new_t, want)
    np.testing.assert_array_equal(centers, want.T)
    assert shift == pytest.approx(((want - old_t) ** 2).sum(), rel=1e-12)


@pytest.mark.parametrize("n,d,density,k,weighted", [
    (3000, 500, 0.01, 8, False), (3000, 500, 0.01, 8, True), (2000, 2000, 0.002, 20, False),
    (1000, 50, 0.3, 5, True),
])
def test_same_result_as_sklearn_from_the_same_start(n, d, density, k, weighted):
    sk = pytest.importorskip("sklearn.cluster")
    X = tfidf_like(n, d, density, seed=n + k)
    rng = np.random.default_rng(k)
    start = X[rng.choice(n, k, replace=False)].toarray()
    w = rng.uniform(0.5, 2.0, n) if weighted else None
    ours = fastkm.KMeans(k, init=start, tol=0, max_iter=100).fit(X, sample_weight=w)
    ref = sk.KMeans(k, init=start, n_init=1, tol=0, max_iter=100, algorithm="lloyd").fit(
        X, sample_weight=w)
    np.testing.assert_array_equal(ours.labels_, ref.labels_)
    assert ours.inertia_ == pytest.approx(ref.inertia_, rel=1e-9)
    assert ours.n_iter_ == ref.n_iter_
    np.testing.assert_allclose(ours.cluster_centers_, ref.cluster_centers_, rtol=1e-9,
                               atol=1e-12)
    with_tol = fastkm.KMeans(k, init=start, tol=1e-3).fit(X, sample_weight=w)
    ref_tol = sk.KMeans(k, init=start, n_init=1, tol=1e-3, algorithm="lloyd").fit(
        X, sample_weight=w)
    assert with_tol.n_iter_ == ref_tol.n_iter_
    np.testing.assert_array_equal(with_tol.labels_, ref_tol.labels_)


def test_empty_clusters_are_reseeded_as_sklearn():
    sk = pytest.importorskip("sklearn.cluster")
    X = sp.csr_matrix(np.concatenate([np.zeros((30, 3)), np.full((30, 3), 5.0),
                                      [[50.0, 0.0, 0.0]]]))
    start = np.array([[0.0, 0.0, 0.0], [-100.0, 0, 0], [-200.0, 0, 0]])
    ours = fastkm.KMeans(3, init=start, tol=0).fit(X)
    ref = sk.KMeans(3, init=start, n_init=1, tol=0).fit(X)
    np.testing.assert_array_equal(ours.labels_, ref.labels_)
    assert ours.inertia_ == pytest.approx(ref.inertia_, abs=1e-9)
    assert sorted(np.bincount(ours.labels_)) == [1, 30, 30]


def test_read_only_buffers_are_accepted():
    """joblib hands large arrays to its workers as read-only memmaps."""
    X = tfidf_like(300, 40, 0.1, seed=2)
    start = X[:4].toarray()
    want = fastkm.KMeans(4, init=start).fit(X)
    Y = X.copy()
    for a in (Y.data, Y.indices, Y.indptr):
        a.setflags(write=False)
    got = fastkm.KMeans(4, init=start).fit(Y)
    np.testing.assert_array_equal(got.labels_, want.labels_)
    np.testing.assert_array_equal(got.predict(Y), want.labels_)
    assert got.score(Y) == want.score(X)


def test_rows_too_large_to_square_are_refused():
    """||x||² - 2x·c + ||c||² overflows where the dense path is still exact: refused, where
    it gave all labels 0 and a NaN inertia."""
    X = sp.csr_matrix(np.array([[1e155], [1.1e155], [5e155], [5.1e155]]))
    with pytest.raises(ValueError, match="rows too large for squared distances"):
        fastkm.KMeans(2, init=np.array([[1e155], [5e155]])).fit(X)


@pytest.mark.parametrize("fmt", ["csr_matrix", "csr_array", "csc_matrix", "coo_array",
                                 "lil_matrix"])
def test_every_format_gives_the_dense_result(fmt):
    X = tfidf_like(800, 60, 0.05, seed=3)
    dense = X.toarray()
    Y = getattr(sp, fmt)(X)
    start = dense[:6]
    a = fastkm.KMeans(6, init=start, tol=0).fit(Y)
    b = fastkm.KMeans(6, init=start, tol=0, algorithm="lloyd").fit(dense)
    np.testing.assert_array_equal(a.labels_, b.labels_)
    assert a.inertia_ == pytest.approx(b.inertia_, rel=1e-9)
    np.testing.assert_array_equal(a.predict(Y), a.labels_)
    np.testing.assert_allclose(a.transform(Y), b.transform(dense), rtol=1e-7, atol=1e-9)
    assert a.score(Y) == pytest.approx(b.score(dense), rel=1e-9)
    # A model fitted on dense data predicts CSR rows too, and the other way round.
    np.testing.assert_array_equal(b.predict(Y), b.labels_)
    np.testing.assert_array_equal(a.predict(dense), a.labels_)


def test_random_seeding_draws_the_dense_seeds():
    from fastkm.init import random_points

    X = tfidf_like(1500, 80, 0.05, seed=4)
    w = np.random.default_rng(0).uniform(0, 2, X.shape[0])
    a = sparse.random_rows(sparse.CSR(sp.csr_matrix(X)), w, 7, np.random.default_rng(5))
    b = random_points(X.toarray(), w, 7, np.random.default_rng(5))
    np.testing.assert_array_equal(a, b)


def test_sparse_kmeans_plusplus_picks_rows_and_beats_random():
    X = tfidf_like(1500, 80, 0.05, seed=6)
    csr = sparse.CSR(sp.csr_matrix(X))
    w = np.ones(X.shape[0])
    dense = X.toarray()
    seeds = sparse.kmeans_plusplus(csr, w, 10, np.random.default_rng(0))
    assert all((dense == c).all(axis=1).any() for c in seeds)
    again = sparse.kmeans_plusplus(csr, w, 10, np.random.default_rng(0))
    np.testing.assert_array_equal(seeds, again)

    def potential(centres):
        return csr.sq_distances(centres).min(axis=1).sum()

    pp = [potential(sparse.kmeans_plusplus(csr, w, 10, np.random.default_rng(s)))
          for s in range(5)]
    rnd = [potential(sparse.random_rows(csr, w, 10, np.random.default_rng(s))) for s in range(5)]
    assert np.mean(pp) < np.mean(rnd)
    # Zero-weight rows are never drawn.
    w0 = np.zeros(X.shape[0])
    w0[::5] = 1.0
    picked = sparse.kmeans_plusplus(csr, w0, 6, np.random.default_rng(1))
    rows = [np.flatnonzero((dense == c).all(axis=1)) for c in picked]
    assert all((w0[r] > 0).any() for r in rows)


def test_float32_and_duplicates():
    rows, cols = np.array([0, 0, 1, 2, 2]), np.array([1, 1, 0, 2, 0])
    vals = np.array([1.0, 2.0, 4.0, 1.0, 1.0])
    X = sp.coo_matrix((vals, (rows, cols)), shape=(3, 3)).tocsr()  # duplicates kept
    Xd = sp.csr_matrix((vals, cols, np.array([0, 2, 3, 5])), shape=(3, 3))
    assert not Xd.has_canonical_format
    start = np.eye(3)
    a = fastkm.KMeans(3, init=start, tol=0).fit(Xd)
    b = fastkm.KMeans(3, init=start, tol=0, algorithm="lloyd").fit(X.toarray())
    np.testing.assert_array_equal(a.labels_, b.labels_)
    assert a.inertia_ == pytest.approx(b.inertia_, abs=1e-12)
    assert Xd.data.tolist() == vals.tolist()  # the input is not modified
    km = fastkm.KMeans(3, init=start).fit(X.astype(np.float32))
    assert km.cluster_centers_.dtype == np.float32


@pytest.mark.parametrize("make,message", [
    (lambda: sp.csr_matrix((0, 3)), r"Found array with 0 sample\(s\)"),
    (lambda: sp.csr_matrix((3, 0)), r"Found array with 0 feature\(s\)"),
    (lambda: sp.csr_matrix(np.array([[1.0, np.nan], [0, 1]])), "X contains NaN or infinity"),
    (lambda: sp.csr_matrix(np.ones((3, 2)) * 1j), "Complex data not supported"),
    (lambda: sp.csr_matrix((np.ones(2), np.array([0, 5]), np.array([0, 1, 2])), shape=(2, 3)),
     "column index out of range"),
])
def test_bad_sparse_input_is_named(make, message):
    with pytest.raises(ValueError, match=message):
        fastkm.KMeans(1).fit(make())
