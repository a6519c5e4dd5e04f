"""Every kernel against a few lines of plain NumPy, on random inputs (hypothesis)."""

from unittest import mock

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from fastkm import kernels, kmeans, seeding
from fastkm.kmeans import _bound_margin, lloyd


def ref_sqdist(X, C):
    """(N, K) squared distances, summed over coordinates in order like the kernels."""
    X = np.asarray(X, dtype=np.float64)
    out = np.zeros((X.shape[0], C.shape[0]))
    for d in range(X.shape[1]):
        out += (X[:, None, d] - C[None, :, d]) ** 2
    return out


@st.composite
def problems(draw, max_n=60, max_k=8, max_d=5, grid=True):
    """(X, w, C): data on a small integer grid (so duplicates and exact ties are common),
    float32 or float64, with weights that may be zero, and K centres, K possibly > N."""
    n = draw(st.integers(1, max_n))
    d = draw(st.integers(1, max_d))
    k = draw(st.integers(1, max_k))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    if grid:
        elems = st.integers(-4, 4).map(float)
    else:
        elems = st.floats(-1e3, 1e3, allow_nan=False, width=32)
    X = draw(arrays(dtype, (n, d), elements=elems))
    C = draw(arrays(np.float64, (k, d), elements=elems))
    w = draw(arrays(np.float64, (n,), elements=st.sampled_from([0.0, 1.0, 2.0, 3.0, 0.5])))
    return np.ascontiguousarray(X), w, C


@settings(max_examples=150, deadline=None)
@given(problems(grid=False))
def test_assign_matches_numpy(p):
    X, _, C = p
    labels = np.empty(len(X), np.int32)
    dist2 = np.empty(len(X))
    kernels.assign(X, C, labels, dist2)
    ref = ref_sqdist(X, C)
    np.testing.assert_array_equal(labels, ref.argmin(axis=1))
    np.testing.assert_array_equal(dist2, ref.min(axis=1))


@settings(max_examples=150, deadline=None)
@given(problems(grid=False), st.data())
def test_assign_near_equals_assign_from_any_guess(p, data):
    X, _, C = p
    for centers in (C, np.concatenate([C, C])):  # duplicated centres: every distance tied
        k = len(centers)
        guess = np.array(data.draw(st.lists(st.integers(0, k - 1), min_size=len(X),
                                            max_size=len(X))), dtype=np.int32)
        want = np.empty(len(X), np.int32)
        want_d = np.empty(len(X))
        kernels.assign(X, centers, want, want_d)
        # Right guesses stop early, wrong ones scan further: both must agree.
        for g in (guess, want):
            labels = np.empty(len(X), np.int32)
            dist2 = np.empty(len(X))
            sdist, order, _ = kernels.center_geometry(centers)
            kernels.assign_near(X, centers, g, sdist, order, _bound_margin(X), labels, dist2)
            np.testing.assert_array_equal(labels, want)
            np.testing.assert_array_equal(dist2, want_d)


@settings(max_examples=150, deadline=None)
@given(problems())
def test_assign_ties_go_to_lowest_index(p):
    X, _, C = p
    C = np.concatenate([C, C])  # every centre twice: each distance is tied
    labels = np.empty(len(X), np.int32)
    kernels.assign(X, C, labels, np.empty(len(X)))
    np.testing.assert_array_equal(labels, ref_sqdist(X, C).argmin(axis=1))
    assert (labels < len(C) // 2).all()


@settings(max_examples=150, deadline=None)
@given(problems())
def test_accumulate_matches_numpy(p):
    X, w, C = p
    labels = ref_sqdist(X, C).argmin(axis=1).astype(np.int32)
    sums, weights = kernels.accumulate(X, w, labels, len(C))
    ref_s = np.zeros((len(C), X.shape[1]))
    np.add.at(ref_s, labels, w[:, None] * X.astype(np.float64))
    # Grid data and weights in halves: every partial sum is exact, so equality is exact.
    np.testing.assert_array_equal(sums, ref_s)
    np.testing.assert_array_equal(weights, np.bincount(labels, weights=w, minlength=len(C)))


@settings(max_examples=150, deadline=None)
@given(problems(grid=False))
def test_inertia_and_labelled_distances(p):
    X, w, C = p
    labels = (np.arange(len(X)) % len(C)).astype(np.int32)
    ref = ref_sqdist(X, C)[np.arange(len(X)), labels]
    d2 = np.empty(len(X))
    kernels.distances_to_labelled(X, C, labels, d2)
    np.testing.assert_array_equal(d2, ref)
    np.testing.assert_allclose(kernels.inertia(X, w, C, labels), (w * ref).sum(), rtol=1e-12)


def test_chunks_are_summed_in_order_on_large_input():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(3 * kernels.CHUNK + 17, 3))
    w = rng.random(len(X))
    C = rng.normal(size=(5, 3))
    labels = ref_sqdist(X, C).argmin(axis=1).astype(np.int32)
    sums, weights = kernels.accumulate(X, w, labels, 5)
    ref_s = np.zeros((5, 3))
    np.add.at(ref_s, labels, w[:, None] * X)
    np.testing.assert_allclose(sums, ref_s, rtol=1e-12)
    np.testing.assert_allclose(weights, np.bincount(labels, weights=w, minlength=5), rtol=1e-12)


@settings(max_examples=150, deadline=None)
@given(problems(grid=False), st.data())
def test_first_pass_from_any_guess_equals_first_pass(p, data):
    X, w, C = p
    n = len(X)
    for centers in (C, np.concatenate([C, C])):  # duplicated centres: every distance tied
        k = len(centers)
        want = [np.empty(n, np.int32), np.empty(n), np.empty(n, np.int32), np.empty((n, 2))]
        want_sums = kernels.first_pass(X, w, centers, *want)
        guess = np.array(data.draw(st.lists(st.integers(0, k - 1), min_size=n, max_size=n)),
                         dtype=np.int32)
        # Right guesses stop early, wrong ones scan further: both give first_pass's bits.
        for g in (guess, want[0]):
            got = [np.empty(n, np.int32), np.empty(n), np.empty(n, np.int32), np.empty((n, 2))]
            sdist, order, _ = kernels.center_geometry(centers)
            got_sums = kernels.first_pass_from(X, w, centers, sdist, order, g, _bound_margin(X),
                                               *got)
            for a, b in zip(got + list(got_sums), want + list(want_sums)):
                np.testing.assert_array_equal(a, b)


@settings(max_examples=60, deadline=None)
@given(problems(max_n=200, max_k=12), st.integers(0, 2**32 - 1))
def test_lloyd_from_a_guess_gives_the_same_run(p, seed):
    X, w, C = p
    guess = np.random.default_rng(seed).integers(0, len(C), len(X)).astype(np.int32)
    want = lloyd(X, w, C, max_iter=50, tol=0.0)
    # The search from the guess is used from K = 1 on here (by default only for large K).
    with mock.patch.object(kmeans, "_GUIDED_MIN_CLUSTERS", 1):
        got = lloyd(X, w, C, max_iter=50, tol=0.0, guess=guess)
    for a, b in zip(got, want):
        np.testing.assert_array_equal(a, b)


def test_lloyd_refuses_a_guess_out_of_range():
    X = np.arange(12.0).reshape(6, 2)
    with pytest.raises(ValueError, match=r"guess must be 6 centre indices in \[0, 2\)"):
        lloyd(X, np.ones(6), X[:2], max_iter=5, tol=0.0, guess=np.full(6, 2))
    with pytest.raises(ValueError, match="guess must be 6"):
        lloyd(X, np.ones(6), X[:2], max_iter=5, tol=0.0, guess=np.zeros(5))


@settings(max_examples=150, deadline=None)
@given(problems())
def test_first_pass_bounds(p):
    X, w, C = p
    n = len(X)
    labels, seconds = np.empty(n, np.int32), np.empty(n, np.int32)
    upper, lower = np.empty(n), np.empty((n, 2))
    sums, weights = kernels.first_pass(X, w, C, labels, upper, seconds, lower)
    ref = ref_sqdist(X, C)
    np.testing.assert_array_equal(labels, ref.argmin(axis=1))
    np.testing.assert_array_equal(upper, np.sqrt(ref.min(axis=1)))
    ranked = np.sort(ref, axis=1)
    second = ranked[:, 1] if len(C) > 1 else np.full(n, np.inf)
    third = ranked[:, 2] if len(C) > 2 else np.full(n, np.inf)
    np.testing.assert_array_equal(lower[:, 0], np.sqrt(second))
    np.testing.assert_array_equal(lower[:, 1], np.sqrt(third))
    # The second nearest by name: the lowest index at that distance other than the label.
    others = ref.copy()
    others[np.arange(n), labels] = np.inf
    want = others.argmin(axis=1) if len(C) > 1 else labels
    np.testing.assert_array_equal(seconds, want)
    ref_sums, ref_w = kernels.accumulate(X, w, labels, len(C))
    np.testing.assert_array_equal(sums, ref_sums)
    np.testing.assert_array_equal(weights, ref_w)


@settings(max_examples=150, deadline=None)
@given(problems())
def test_elkan_first_pass_bounds(p):
    X, w, C = p
    n = len(X)
    labels = np.empty(n, np.int32)
    upper, lower = np.empty(n), np.empty((n, len(C)))
    kernels.elkan_first_pass(X, w, C, labels, upper, lower)
    ref = ref_sqdist(X, C)
    np.testing.assert_array_equal(labels, ref.argmin(axis=1))
    np.testing.assert_array_equal(lower, np.sqrt(ref))
    np.testing.assert_array_equal(upper, np.sqrt(ref.min(axis=1)))


@pytest.mark.parametrize("method", ["hamerly", "elkan"])
@settings(max_examples=200, deadline=None)
@given(p=problems(max_n=80, max_k=10), max_iter=st.integers(1, 30))
def test_bounded_lloyd_equals_brute_force(method, p, max_iter):
    """Bounds only skip work: every iteration's labels and centres equal plain Lloyd's,
    on grid data full of duplicates and exact ties."""
    X, w, C = p
    if not w.sum() > 0 or len(C) > len(X):
        return
    ref = lloyd(X, w, C, max_iter=max_iter, tol=0.0, method="lloyd")
    got = lloyd(X, w, C, max_iter=max_iter, tol=0.0, method=method)
    np.testing.assert_array_equal(got[1], ref[1])
    np.testing.assert_array_equal(got[0], ref[0])
    assert got[3] == ref[3]
    assert got[2] == ref[2]


@pytest.mark.parametrize("method", ["hamerly", "elkan"])
@settings(max_examples=150, deadline=None)
@given(p=problems(max_n=80, max_k=10), max_iter=st.integers(1, 30),
       relax=st.sampled_from([1.5, 1.9, 3.0]))
def test_relaxed_lloyd_keeps_exact_labels(method, p, max_iter, relax):
    """Over-relaxed steps are longer moves, and the bounds must follow them: labels and
    centres equal those of the same run computing every distance."""
    X, w, C = p
    if not w.sum() > 0 or len(C) > len(X):
        return
    ref = lloyd(X, w, C, max_iter=max_iter, tol=0.0, method="lloyd", relax=relax)
    got = lloyd(X, w, C, max_iter=max_iter, tol=0.0, method=method, relax=relax)
    np.testing.assert_array_equal(got[1], ref[1])
    np.testing.assert_array_equal(got[0], ref[0])
    assert got[3] == ref[3]
    np.testing.assert_array_equal(got[1], ref_sqdist(X, got[0]).argmin(axis=1))


@settings(max_examples=100, deadline=None)
@given(problems(grid=False, max_n=150, max_k=8), st.sampled_from([1.5, 1.9, 3.0]))
def test_relaxed_lloyd_ends_where_plain_lloyd_stops(p, relax):
    """Run to the end (tol 0), an over-relaxed run stops only at a fixed point of plain
    Lloyd: every centre the weighted mean of its points, every point at its nearest."""
    X, w, C = p
    if not (w > 0).all() or len(C) > len(X):
        return
    centers, labels, inertia, n_iter = lloyd(X, w, C, max_iter=500, tol=0.0, relax=relax)
    assert n_iter < 500
    np.testing.assert_array_equal(labels, ref_sqdist(X, centers).argmin(axis=1))
    for k in np.unique(labels):
        mine = labels == k
        mean = (w[mine, None] * X[mine]).sum(axis=0) / w[mine].sum()
        np.testing.assert_allclose(centers[k], mean, rtol=1e-9, atol=1e-9)
    assert inertia == pytest.approx((w * ref_sqdist(X, centers).min(axis=1)).sum(), rel=1e-9)


def test_relaxed_lloyd_that_cycles_goes_on_plain_and_ends():
    """Over-relaxed steps that cycle (hypothesis found this case: labels flipped back and
    forth for all 500 iterations) give way to plain ones after _RELAX_MAX_ITER, and the run
    ends at a fixed point of plain Lloyd."""
    X = np.array([[-335.0], [-200.0], [-229.0], [-293.0], [-159.0], [-284.0], [0.0]],
                 dtype=np.float32)
    w = np.ones(7)
    C = np.full((3, 1), -147.0)
    centers, labels, _, n_iter = lloyd(X, w, C, max_iter=500, tol=0.0, relax=3.0)
    assert kmeans._RELAX_MAX_ITER < n_iter < 500
    np.testing.assert_array_equal(labels, ref_sqdist(X, centers).argmin(axis=1))
    for k in range(3):
        np.testing.assert_allclose(centers[k], X[labels == k].mean(axis=0), rtol=1e-12)


def test_relaxed_lloyd_stopped_by_max_iter_ends_on_means():
    """A run cut short by max_iter takes a plain step last, so its centres are the means of
    the labels they came from, never an overshoot."""
    rng = np.random.default_rng(5)
    X = np.concatenate([rng.normal(m, 1.0, (300, 2)) for m in (0.0, 4.0, 9.0)])
    w = rng.uniform(0.5, 2.0, len(X))
    start = X[:3].copy()
    calls = []
    real = kernels.moved_centers

    def spy(sums, weights, centers, moved, relax, last, tol):
        calls.append(relax)
        return real(sums, weights, centers, moved, relax, last, tol)

    for max_iter in (2, 3, 5):
        calls.clear()
        with mock.patch.object(kernels, "moved_centers", spy):
            lloyd(X, w, start, max_iter=max_iter, tol=0.0, relax=1.9)
        assert calls == [1.9] * (max_iter - 1) + [1.0]


def _assert_geometry(C, sdist, order, half):
    """``center_geometry``'s contract, against distances computed in NumPy."""
    ref = np.sqrt(ref_sqdist(C, C))
    for a in range(len(C)):
        assert sorted(order[a]) == list(range(len(C)))
        assert order[a, 0] == a or ref[a, order[a, 0]] == 0.0
        assert sdist[a, 0] == 0.0
        np.testing.assert_allclose(sdist[a, 1:], ref[a, order[a, 1:]], rtol=1e-12, atol=1e-12)
        assert (np.diff(sdist[a]) >= 0).all()
    if len(C) > 1:
        off = ref + np.diag(np.full(len(C), np.inf))
        np.testing.assert_allclose(half, 0.5 * off.min(axis=1), rtol=1e-12)
    else:
        assert half.tolist() == [np.inf]


@settings(max_examples=100, deadline=None)
@given(problems(grid=False, max_n=100))
def test_center_geometry(p):
    _, _, C = p
    sdist, order, half = kernels.center_geometry(C)
    _assert_geometry(C, sdist, order, half)
    # Elkan's by-index distances give the same separations.
    cdist, elkan_half = kernels.separations(C)
    off_diagonal = ~np.eye(len(C), dtype=bool)
    np.testing.assert_allclose(cdist[off_diagonal], np.sqrt(ref_sqdist(C, C))[off_diagonal],
                               rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(elkan_half, half)
    # Re-sorting a stale order (reversed rows here) gives a sorted order too.
    stale = np.ascontiguousarray(order[:, ::-1])
    sdist, again, half = kernels.center_geometry(C, stale)
    assert again is stale
    _assert_geometry(C, sdist, again, half)


@pytest.mark.parametrize("k", [5, kernels.RESORT_PARALLEL_MIN + 6])
def test_resorting_on_one_core_or_all_gives_the_same_geometry(k):
    rng = np.random.default_rng(k)
    C = rng.normal(0, 10, (k, 3))
    _, order, _ = kernels.center_geometry(C)
    moved = C + rng.normal(0, 0.5, C.shape)
    one, all_ = order.copy(), order.copy()
    key = kernels.width_key(3)
    np.testing.assert_array_equal(kernels._resorted_distances_serial(moved, one, key),
                                  kernels._resorted_distances(moved, all_, key))
    np.testing.assert_array_equal(one, all_)
    sdist, again, half = kernels.center_geometry(moved, order)
    np.testing.assert_array_equal(again, one)
    _assert_geometry(moved, sdist, again, half)
    # The same as sorting from scratch, up to ties (none here: random centres).
    fresh_sdist, fresh, _ = kernels.center_geometry(moved)
    np.testing.assert_array_equal(again, fresh)
    np.testing.assert_array_equal(sdist, fresh_sdist)


@settings(max_examples=150, deadline=None)
@given(problems(grid=False), st.data())
def test_center_update_matches_numpy(p, data):
    _, _, C = p
    k = len(C)
    sums = data.draw(arrays(np.float64, C.shape, elements=st.floats(-1e6, 1e6)))
    weights = data.draw(arrays(np.float64, (k,), elements=st.floats(0.5, 1e3)))
    members = data.draw(arrays(np.int64, (k,), elements=st.integers(0, 3)))
    want_s, want_w = sums.copy(), weights.copy()
    want_s[members == 0] = 0.0
    want_w[members == 0] = 0.0
    assert kernels.clear_empty(sums, weights, members) == np.count_nonzero(members == 0)
    np.testing.assert_array_equal(sums, want_s)
    np.testing.assert_array_equal(weights, want_w)
    weights[members == 0] = 1.0
    moved = np.arange(k + 1.0)
    new, shift = kernels.moved_centers(sums, weights, C, moved, 1.0, np.empty((0, 0)), 0.0)
    np.testing.assert_array_equal(new, sums / weights[:, None])
    np.testing.assert_array_equal(shift, np.sqrt(ref_sqdist(new, C)[np.arange(k), np.arange(k)]))
    np.testing.assert_array_equal(moved, np.append(np.arange(k) + shift, k + shift.max()))


@settings(max_examples=150, deadline=None)
@given(problems(grid=False), st.data())
def test_relaxed_center_update_matches_numpy(p, data):
    _, _, C = p
    k, n_dims = C.shape
    sums = data.draw(arrays(np.float64, C.shape, elements=st.floats(-1e6, 1e6)))
    weights = data.draw(arrays(np.float64, (k,), elements=st.floats(0.5, 1e3)))
    last = data.draw(arrays(np.float64, C.shape, elements=st.floats(-10, 10)))
    relax = data.draw(st.sampled_from([1.5, 1.9, 3.0]))
    step = sums / weights[:, None] - C
    plain = float((step ** 2).sum())
    tol = data.draw(st.sampled_from([0.0, plain / 2, plain * 2]))
    # Only centres whose step keeps the direction of the last one go further, and none
    # once the steps add up to tol or less.
    along = ((step * last).sum(axis=1) > 0) & (plain > tol)
    want = C + np.where(along, relax, 1.0)[:, None] * step
    want[~along] = (sums / weights[:, None])[~along]
    moved = np.zeros(k + 1)
    given_last = last.copy()
    new, shift = kernels.moved_centers(sums, weights, C, moved, relax, given_last, tol)
    np.testing.assert_allclose(new, want, rtol=1e-12, atol=1e-9)
    np.testing.assert_array_equal(given_last, step)
    np.testing.assert_allclose(shift, np.sqrt(((new - C) ** 2).sum(axis=1)), rtol=1e-12,
                               atol=1e-9)
    np.testing.assert_allclose(moved, np.append(shift, shift.max()), rtol=1e-12, atol=1e-9)


@settings(max_examples=150, deadline=None)
@given(problems())
def test_kmeanspp_kernels(p):
    X, w, C = p
    n = len(X)
    closest, nearest = np.empty(n), np.empty(n, np.int32)
    lo, hi = seeding.block_boxes(X)
    blocks = (lo, hi, np.empty(len(lo)), np.empty(len(lo)))
    part = seeding.update_closest(X, w, C[0], 0, closest, nearest, True, *blocks)
    ref = ref_sqdist(X, C[:1])[:, 0]
    np.testing.assert_array_equal(closest, ref)
    np.testing.assert_array_equal(nearest, 0)
    last = len(C) - 1
    part = seeding.update_closest(X, w, C[last], last, closest, nearest, False, *blocks)
    d2 = ref_sqdist(X, C[last:])[:, 0]
    np.testing.assert_array_equal(nearest, np.where(d2 < ref, last, 0))  # the earliest of equals
    ref = np.minimum(ref, d2)
    np.testing.assert_array_equal(closest, ref)
    assert part.sum() == (w * ref).sum()
    pots = seeding.candidate_potentials(X, w, closest, C, *blocks)
    np.testing.assert_array_equal(pots, (w[:, None] * np.minimum(ref[:, None], ref_sqdist(X, C))).sum(0))
    total = (w * closest).sum()
    if total > 0:
        # Integer-valued potentials: the running sums are exact, so the pick is exactly the
        # first point whose cumulative potential exceeds the target.
        targets = np.array([0.0, total / 3, total - 0.5, total * 0.999])
        picks = seeding.sample_by_potential(w, closest, part, blocks[3], targets)
        cum = np.cumsum(w * closest)
        np.testing.assert_array_equal(picks, [np.flatnonzero(cum > t)[0] for t in targets])
        assert (w[picks] * closest[picks] > 0).all()


@pytest.mark.parametrize("max_iter", [1, 2, 5, 20, 60])
def test_hamerly_incremental_sums_track_plain_lloyd_on_real_floats(max_iter):
    """Off the grid, Hamerly's sums are updated from the points that change label, so its
    centres may differ from plain Lloyd's in the last bits; labels and iterations may not."""
    rng = np.random.default_rng(7)
    X = np.concatenate([rng.normal(c, 0.7, (800, 3)) for c in rng.uniform(-5, 5, (12, 3))])
    w = rng.uniform(0.0, 3.0, len(X))
    w[::17] = 0.0
    C = X[rng.choice(len(X), 24, replace=False)].copy()
    ref = lloyd(X, w, C, max_iter=max_iter, tol=0.0, method="lloyd")
    got = lloyd(X, w, C, max_iter=max_iter, tol=0.0, method="hamerly")
    np.testing.assert_array_equal(got[1], ref[1])
    np.testing.assert_allclose(got[0], ref[0], rtol=1e-12, atol=1e-12)
    assert got[3] == ref[3]
    assert got[2] == pytest.approx(ref[2], rel=1e-12)


def test_kernels_compiled_for_three_columns_give_the_generic_results():
    """Colours run kernels compiled with D = 3 as a constant; with that turned off the
    same code reads D from the array. Both give the same bits, through every kernel a
    quantize uses (seeding, breathing, guided first passes, bounded passes, mapping)."""
    from numba import types

    import fastkm

    rng = np.random.default_rng(11)
    yy, xx = np.mgrid[0:120, 0:160]
    base = np.stack([xx * 1.5, yy * 2.0, (xx + yy) * 0.8], axis=-1)
    image = np.clip(base + rng.normal(0, 12, base.shape), 0, 255).astype(np.uint8)
    def run():
        q = fastkm.quantize(image, 64, seed=3)
        return q.palette, q.indices, q.centers, q.mse

    constant = run()
    with mock.patch.dict(kernels._CONSTANT_WIDTHS, clear=True):
        generic = run()
    for got, want in zip(generic, constant):
        np.testing.assert_array_equal(got, want)
    # Both compilations really ran: a width key of three, and the empty one.
    keys = {sig[-1] for sig in kernels.bounded_pass.kernel.signatures}
    assert types.UniTuple(types.int64, 3) in keys and types.Tuple(()) in keys
