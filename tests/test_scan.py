"""The vectorised passes (fastkm.scan) against plain NumPy and against the scalar kernels,
and "auto"'s per-iteration choice between them."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_kernels import problems, ref_sqdist

from fastkm import kernels, kmeans, scan
from fastkm.kmeans import _bound_margin, _PassChooser, lloyd


def buffers(n):
    return (np.zeros(n, np.int32), np.empty(n), np.empty(n, np.int32), np.empty((n, 2)))


def ref_ranked(X, C):
    """Per point: the nearest centre, the second nearest by name (lowest index among the
    others at that distance) and the three smallest squared distances (inf past K)."""
    ref = ref_sqdist(X, C)
    n = len(X)
    first = ref.argmin(axis=1)
    others = ref.copy()
    others[np.arange(n), first] = np.inf
    second = others.argmin(axis=1) if len(C) > 1 else first
    ranked = np.sort(ref, axis=1)
    pad = np.full((n, max(0, 3 - len(C))), np.inf)
    return first, second, np.hstack([ranked, pad])[:, :3]


def err_of(X, C):
    return scan.float32_error(kmeans._largest(X), C)


def check_bounds(X, C, labels, upper, seconds, lower, moved, tight=None):
    """The bounds ``kernels.bounded_pass`` relies on hold for every point: ``upper`` at least
    the distance to its own centre, ``lower[:, 0]`` at most the distance to ``seconds`` and
    ``lower[:, 1]`` at most the distance to every other centre, all net of ``moved``; with
    ``tight``, each within ``tight`` of the exact value. Up to ``TIGHT_MAX_DIMS`` dimensions
    no pass reads ``upper`` and the scans leave it unset."""
    n, k = len(X), len(C)
    dist = np.sqrt(ref_sqdist(X, C))
    rows = np.arange(n)
    own = dist[rows, labels]
    named = dist[rows, seconds]
    rest = dist.copy()
    rest[rows, labels] = np.inf
    rest[rows, seconds] = np.inf
    if k > 1:
        assert (seconds != labels).all()
    slack = 1e-12 * (1.0 + dist.max(initial=0.0))
    with_upper = X.shape[1] > kernels.TIGHT_MAX_DIMS
    assert not with_upper or (upper + moved[labels] >= own - slack).all()
    assert (lower[:, 0] - moved[seconds] <= np.where(seconds != labels, named, np.inf) + slack).all()
    assert (lower[:, 1] - moved[k] <= rest.min(axis=1, initial=np.inf) + slack).all()
    if tight is not None:
        if with_upper:
            np.testing.assert_allclose(upper + moved[labels], own, atol=tight)
        if k > 1:
            np.testing.assert_allclose(lower[:, 0] - moved[seconds], named, atol=tight)


def check_scan(X, w, C, moved):
    n, k = len(X), len(C)
    labels, upper, seconds, lower = buffers(n)
    sums, weights, members, changed = scan.scan_pass(X, w, C, labels, upper, seconds, lower,
                                                     moved, False, *err_of(X, C))
    first, second, d2 = ref_ranked(X, C)
    np.testing.assert_array_equal(labels, first)  # exact, ties to the lower index
    check_bounds(X, C, labels, upper, seconds, lower, moved,
                 tight=np.sqrt(4 * err_of(X, C)[0] + 1e-300) + 1e-9)
    ref_sums, ref_w = kernels.accumulate(X, w, labels, k)
    np.testing.assert_array_equal(sums, ref_sums)  # the same bits, not only close
    np.testing.assert_array_equal(weights, ref_w)
    np.testing.assert_allclose(sums, [(w[labels == j, None] * X[labels == j]).sum(axis=0)
                                      for j in range(k)], rtol=1e-12, atol=1e-9)
    np.testing.assert_array_equal(members, np.bincount(labels, weights=w > 0, minlength=k))
    assert changed == np.count_nonzero(first != 0)


def f32_sqdist(X, C):
    """The float32 squared distances the scan computes: inputs rounded to float32, then
    differences, squares and the sum over coordinates in order, all in float32."""
    x, c = X.astype(np.float32), C.astype(np.float32)
    out = np.zeros((len(x), len(c)), np.float32)
    for d in range(x.shape[1]):
        t = x[:, None, d] - c[None, :, d]
        out = out + t * t
    return out


@settings(max_examples=200, deadline=None)
@given(problems(max_n=100, max_k=12, max_d=20, grid=False), st.sampled_from([1e-30, 1e-6, 1.0, 1e6, 1e12]))
def test_float32_error_bounds_the_float32_distances(p, scale):
    X, _, C = p
    X = np.ascontiguousarray(X * scale)
    C = C * scale
    err_abs, err_rel = err_of(X, C)
    got = f32_sqdist(X, C).astype(np.float64)
    exact = ref_sqdist(X, C)
    assert (np.abs(got - exact) <= err_abs + err_rel * got).all()


def test_float32_error_is_infinite_beyond_float32():
    X = np.array([[1e30, 0.0]])
    assert scan.float32_error(kmeans._largest(X), X.copy()) == (np.inf, 0.0)
    labels, upper, seconds, lower = buffers(2)
    X = np.array([[1e30, 0.0], [-1e30, 1.0]])
    C = np.array([[1e30, 1.0], [-1e30, 0.0]])
    scan.scan_pass(X, np.ones(2), C, labels, upper, seconds, lower, np.zeros(3), False,
                   *err_of(X, C))
    np.testing.assert_array_equal(labels, [0, 1])


@settings(max_examples=200, deadline=None)
@given(problems(max_n=300, max_k=20), st.booleans())
def test_scan_pass_matches_numpy_on_ties(p, with_moves):
    """Grid data: duplicate points, duplicate centres and exact ties everywhere."""
    X, w, C = p
    moved = np.linspace(0.0, 1.0, len(C) + 1) if with_moves else np.zeros(len(C) + 1)
    check_scan(X, w, C, moved)


@settings(max_examples=150, deadline=None)
@given(problems(max_n=600, max_k=40, max_d=20, grid=False))
def test_scan_pass_matches_numpy(p):
    X, w, C = p
    check_scan(X, w, C, np.zeros(len(C) + 1))


@pytest.mark.parametrize("d", [3, 16])
def test_scan_pass_near_ties_resolve_as_numpy(d):
    """Centres one ulp apart in distance from each point, built on purpose: the lower
    index wins an exact tie and the truly nearer centre a near one, in both layouts."""
    rng = np.random.default_rng(1)
    X = rng.normal(size=(3000, d))
    base = rng.normal(size=(8, d))
    # Mirror pairs: c and 2x - c are at the same distance from x for x on the bisector;
    # here each point has two centres at distances equal or one ulp apart.
    C = np.concatenate([base, base, np.nextafter(base, np.inf)])
    check_scan(X, np.ones(len(X)), C, np.zeros(len(C) + 1))
    # Points exactly halfway between two centres (integers: exact arithmetic).
    C = np.zeros((2, d))
    C[1, 0] = 2.0
    X = np.zeros((5000, d))
    X[:, 0] = 1.0
    X[::2, 0] = np.nextafter(1.0, 2.0)
    X[1::4, 0] = np.nextafter(1.0, 0.0)
    check_scan(X, np.ones(len(X)), C, np.zeros(3))


@pytest.mark.parametrize("d", [3, 7])
def test_scan_pass_deltas_equal_bounded_pass(d):
    """With deltas, the sums change by the points that changed label, the same bits as
    ``kernels.bounded_pass`` gives (``sums_mode`` 2), whichever pass made them."""
    rng = np.random.default_rng(2)
    X = rng.normal(size=(9000, d))
    w = rng.choice([0.0, 1.0, 2.5], size=len(X))
    C = X[:12].copy()
    labels, upper, seconds, lower = buffers(len(X))
    moved = np.zeros(13)
    sums, weights, _, _ = scan.scan_pass(X, w, C, labels, upper, seconds, lower, moved, False,
                                         *err_of(X, C))
    new, _ = kernels.moved_centers(sums, weights, C, moved, 1.0, np.zeros((0, 0)), 0.0)
    margin = _bound_margin(X)
    sdist, order, half_sep = kernels.center_geometry(new)
    state = [a.copy() for a in (labels, upper, seconds, lower)]
    err = err_of(X, new)
    got_scan = scan.scan_pass(X, w, new, *state, moved, True, *err)
    state_b = [a.copy() for a in (labels, upper, seconds, lower)]
    got_sorted = kernels.bounded_pass(X, w, new, sdist, order, half_sep, *state_b, moved,
                                      margin, 2)
    state_v = [a.copy() for a in (labels, upper, seconds, lower)]
    got_vector = scan.bounded_scan_pass(X, w, new, half_sep, *state_v, moved, margin, *err)
    assert got_scan[3] == got_sorted[3] == got_vector[3] > 0
    for i in range(3):
        np.testing.assert_array_equal(got_scan[i], got_sorted[i])
        np.testing.assert_array_equal(got_vector[i], got_sorted[i])
    np.testing.assert_array_equal(state[0], ref_sqdist(X, new).argmin(axis=1))
    np.testing.assert_array_equal(state_v[0], state[0])
    np.testing.assert_array_equal(state_b[0], state[0])
    # The vectorised rescans record valid bounds: a point they rescanned has the scan's.
    redone = state_v[3][:, 1] != lower[:, 1]
    assert redone.any()
    np.testing.assert_array_equal(state_v[3][redone], state[3][redone])
    for st_ in (state, state_v):
        check_bounds(X, new, st_[0], st_[1], st_[2], st_[3], moved)
    assert len(X) <= got_vector[4] <= len(X) * len(C)


class _Rotation(_PassChooser):
    """Runs the kinds in turn, so that every kind follows every other in a test."""

    def pick(self):
        return self.kinds[len(self.log) % len(self.kinds)]


@pytest.fixture
def every_kind(monkeypatch):
    monkeypatch.setattr(kmeans, "_PassChooser", _Rotation)
    monkeypatch.setattr(kmeans, "_SORTED_MIN_CLUSTERS", 1)


# The fixture only swaps two module attributes for the whole test: nothing to reset.
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(p=problems(max_n=120, max_k=12), max_iter=st.integers(1, 30),
       relax=st.sampled_from([1.0, 1.9]))
def test_auto_equals_hamerly_whatever_the_passes(every_kind, p, max_iter, relax):
    """"auto" mixing scans, vectorised and sorted rescans gives Hamerly's run bit for bit
    (the same labels, centres and inertia), on grid data full of exact ties."""
    X, w, C = p
    if not w.sum() > 0 or len(C) > len(X):
        return
    ref = lloyd(X, w, C, max_iter=max_iter, tol=0.0, method="hamerly", relax=relax)
    got = lloyd(X, w, C, max_iter=max_iter, tol=0.0, method="auto", relax=relax)
    np.testing.assert_array_equal(got[1], ref[1])
    np.testing.assert_array_equal(got[0], ref[0])
    assert got[2:] == ref[2:]


def test_auto_equals_lloyd_on_blobs_with_empty_clusters(every_kind):
    """Duplicated starting centres leave clusters empty; they are re-seeded and the run
    still equals brute force's labels at every step's end."""
    rng = np.random.default_rng(3)
    X = np.ascontiguousarray(np.repeat(rng.normal(size=(400, 3)), 3, axis=0))
    w = np.ones(len(X))
    C = np.concatenate([X[:5], X[:5]])
    ref = lloyd(X, w, C, max_iter=25, tol=0.0, method="hamerly")
    got = lloyd(X, w, C, max_iter=25, tol=0.0, method="auto")
    np.testing.assert_array_equal(got[1], ref[1])
    np.testing.assert_array_equal(got[0], ref[0])


def test_auto_logs_every_pass_and_its_skipped_share():
    rng = np.random.default_rng(4)
    X = rng.normal(size=(20000, 3)) + rng.integers(0, 6, (20000, 1)) * 4.0
    log = []
    run = lloyd(X, np.ones(len(X)), X[:8].copy(), max_iter=15, tol=0.0, method="auto",
                log=log)
    assert log[0][0] == "scan" and log[0][2] == 0.0
    assert len(log) == run[3] + 1  # every iteration, and the final assignment
    kinds = {kind for kind, _, _ in log}
    assert kinds <= {"scan", "vector"} and "vector" in kinds
    for kind, seconds, skipped in log:
        assert seconds > 0
        assert 0.0 <= skipped < 1.0
        assert (skipped == 0.0) == (kind == "scan")


def test_chooser_takes_the_fastest_and_probes_with_growing_patience():
    c = _PassChooser(("scan", "vector", "sorted"))
    assert c.pick() == "scan"
    c.record("scan", 1.0, 0.0)
    assert c.pick() == "vector"
    c.record("vector", 2.0, 0.5)
    assert c.pick() == "sorted"
    c.record("sorted", 3.0, None)
    # The scan is fastest; each bounded kind is tried again after its patience, which
    # doubled when it lost.
    picks = []
    for _ in range(12):
        kind = c.pick()
        picks.append(kind)
        c.record(kind, {"scan": 1.0, "vector": 2.0, "sorted": 3.0}[kind], 0.0)
    assert picks.count("scan") >= 8
    first_vector = picks.index("vector")
    assert "vector" in picks[first_vector + 1:] and picks.count("vector") <= 3
    # The scan is never re-timed while a bound kind wins: its cost does not change.
    c.record("vector", 0.5, 0.9)
    assert [c.pick() for _ in range(3)] == ["vector"] * 3


def test_kmeans_auto_on_float32_matches_float64_labels():
    rng = np.random.default_rng(5)
    X = (rng.normal(size=(30000, 16)) + rng.integers(0, 8, (30000, 1))).astype(np.float32)
    C = X[:24].astype(np.float64)
    got = kmeans.KMeans(24, init=C, max_iter=20, tol=0).fit(X)
    ref = kmeans.KMeans(24, init=C, max_iter=20, tol=0, algorithm="lloyd").fit(X)
    assert got.cluster_centers_.dtype == np.float32
    np.testing.assert_array_equal(got.labels_, ref.labels_)
    assert abs(got.inertia_ - ref.inertia_) <= 1e-9 * ref.inertia_


def test_auto_gives_the_same_bits_on_one_thread_as_on_all():
    """Per-chunk partial sums in chunk order, whichever passes the timing picked: the fit
    does not depend on the number of threads."""
    import numba

    rng = np.random.default_rng(6)
    X = rng.normal(size=(60000, 3)) * 3 + rng.integers(0, 5, (60000, 1))
    C = X[:16].copy()
    runs = []
    for threads in (1, numba.config.NUMBA_NUM_THREADS):
        numba.set_num_threads(threads)
        try:
            runs.append(kmeans.KMeans(16, init=C, max_iter=25, tol=0).fit(X))
        finally:
            numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    np.testing.assert_array_equal(runs[0].labels_, runs[1].labels_)
    np.testing.assert_array_equal(runs[0].cluster_centers_, runs[1].cluster_centers_)
    assert runs[0].inertia_ == runs[1].inertia_
