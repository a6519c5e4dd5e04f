"""Breathing k-means (fastkm.breathing): it must leave Lloyd's local minima, never end
worse than the Lloyd run it starts from, and stay deterministic."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from fastkm import KMeans
from fastkm.breathing import _merge, _split, breathe


def blobs_on_a_line(rng, n_per=200, spread=0.3):
    middles = np.array([[0.0, 0.0], [10.0, 0.0], [20.0, 0.0], [30.0, 0.0]])
    X = np.concatenate([rng.normal(m, spread, (n_per, 2)) for m in middles])
    return X, middles


def test_breathing_moves_a_centre_across_the_data_where_lloyd_is_stuck():
    X, middles = blobs_on_a_line(np.random.default_rng(0))
    w = np.ones(len(X))
    # Two centres share the first blob; one sits between the second and third: a local
    # minimum that Lloyd keeps.
    start = np.array([[-0.1, 0.0], [0.1, 0.0], [15.0, 0.0], [30.0, 0.0]])
    stuck = KMeans(4, init=start, max_iter=100, tol=0.0).fit(X, sample_weight=w)
    got = breathe(X, w, start, m=1, max_rounds=4, max_iter=20)
    best = KMeans(4, init=middles, max_iter=100, tol=0.0).fit(X, sample_weight=w)
    assert stuck.inertia_ > 10 * best.inertia_
    assert got.inertia == best.inertia_
    np.testing.assert_allclose(np.sort(got.centers[:, 0]), middles[:, 0], atol=0.1)


def test_split_twins_the_centre_of_largest_error_and_merge_drops_a_redundant_one():
    X, middles = blobs_on_a_line(np.random.default_rng(1))
    w = np.ones(len(X))
    centers = np.array([[0.0, 0.0], [15.0, 0.0], [30.0, 0.0]])
    labels = np.argmin(((X[:, None] - centers[None]) ** 2).sum(-1), axis=1).astype(np.int32)
    grown = _split(X, w, centers, labels, 1)
    assert grown.shape == (4, 2)
    np.testing.assert_array_equal(grown[:3], centers)
    assert np.linalg.norm(grown[3] - centers[1]) < 0.1  # the twin of the centre at 15
    # Two centres on the first blob: dropping either costs almost nothing; dropping the
    # lone centre of another blob costs a lot.
    crowded = np.array([[-0.05, 0.0], [0.05, 0.0], [10.0, 0.0], [20.0, 0.0], [30.0, 0.0]])
    nearest = np.argmin(((X[:, None] - crowded[None]) ** 2).sum(-1), axis=1).astype(np.int32)
    # The labels passed in only say where the search starts: a poor start, same result.
    for start in (nearest, np.zeros(len(X), np.int32)):
        kept, guess = _merge(X, w, crowded, start, 1)
        assert kept.shape == (4, 2)
        assert sum(abs(c[0]) < 1 for c in kept) == 1
        # Each point's guess is its own centre if kept, the kept centre nearest to it if not.
        dropped = [j for j in range(5) if not any((kept == crowded[j]).all(axis=1))]
        assert len(dropped) == 1
        for j in range(5):
            target = crowded[1 - dropped[0]] if j == dropped[0] else crowded[j]
            assert (kept[guess[nearest == j]] == target).all()
    # Removing two: never both of a pair of nearest neighbours.
    kept, _ = _merge(X, w, crowded, nearest, 2)
    assert sum(abs(c[0]) < 1 for c in kept) == 1


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(2, 12), st.integers(1, 3))
def test_breathing_never_ends_above_its_first_lloyd_run(seed, k, m):
    rng = np.random.default_rng(seed)
    X = rng.normal(0, 1, (300, 3)) * rng.uniform(0.1, 3, 3)
    w = rng.integers(0, 5, len(X)).astype(np.float64)
    w[0] = 1.0
    start = X[rng.choice(len(X), k, replace=False)]
    plain = KMeans(k, init=start, max_iter=5, tol=0.0).fit(X, sample_weight=w)
    got = breathe(X, w, start, m=m, max_rounds=3, max_iter=5)
    assert got.inertia <= plain.inertia_
    again = breathe(X, w, start, m=m, max_rounds=3, max_iter=5)
    np.testing.assert_array_equal(got.centers, again.centers)
    np.testing.assert_array_equal(got.labels, again.labels)
