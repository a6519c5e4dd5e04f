"""k-means++ kernels pruned by blocks (fastkm.seeding) against plain NumPy, to the last bit,
on data spread over many blocks, with real-valued floats so the summation order shows."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_kernels import ref_sqdist

from fastkm import seeding
from fastkm.init import kmeans_plusplus
from fastkm.kernels import CHUNK
from fastkm.seeding import BLOCK


def seq_sum(values):
    """Left-to-right float64 sum from 0.0, as the kernels add."""
    total = 0.0
    for v in values:
        total += float(v)
    return total


def ref_block_sums(values, n):
    """Per-block sums, each left to right."""
    return np.array([seq_sum(values[b:b + BLOCK]) for b in range(0, n, BLOCK)])


def ref_total(block_values):
    """Blocks summed per chunk in order, then the chunks in order, as the kernels do."""
    per_chunk = CHUNK // BLOCK
    return seq_sum([seq_sum(block_values[c:c + per_chunk])
                    for c in range(0, len(block_values), per_chunk)])


@st.composite
def clustered(draw):
    """Points in a few tight clusters, sorted along the first axis so that blocks of
    consecutive rows are compact (where pruning skips them), plus centres to seed with."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    n = draw(st.integers(1, 3 * CHUNK))
    d = draw(st.integers(1, 4))
    spread = draw(st.sampled_from([0.01, 0.5, 5.0]))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    middles = rng.uniform(-100, 100, (draw(st.integers(1, 12)), d))
    X = middles[rng.integers(0, len(middles), n)] + rng.normal(0, spread, (n, d))
    if draw(st.booleans()):
        X = np.round(X)  # duplicates and exact ties
    X = np.ascontiguousarray(X[np.argsort(X[:, 0], kind="stable")], dtype=dtype)
    w = rng.choice([0.0, 1.0, 0.5, 3.25, 17.0], n)
    centers = np.concatenate([X[rng.integers(0, n, 6)].astype(np.float64),
                              middles[:2] + 0.25])
    return X, w, centers


PARALLEL = (seeding.block_boxes, seeding.update_closest, seeding.candidate_potentials)
SERIAL = (seeding.block_boxes_serial, seeding.update_closest_serial,
          seeding.candidate_potentials_serial)


@pytest.mark.parametrize("build", [PARALLEL, SERIAL], ids=["parallel", "serial"])
@settings(max_examples=40, deadline=None)
@given(p=clustered())
def test_pruned_kmeanspp_kernels_equal_numpy_to_the_last_bit(build, p):
    block_boxes, update_closest, candidate_potentials = build
    X, w, centers = p
    n = len(X)
    lo, hi = block_boxes(X)
    starts = np.arange(0, n, BLOCK)
    np.testing.assert_array_equal(lo, np.minimum.reduceat(X, starts).astype(np.float64))
    np.testing.assert_array_equal(hi, np.maximum.reduceat(X, starts).astype(np.float64))
    block_max, block_pot = np.empty(len(lo)), np.empty(len(lo))
    closest, nearest = np.empty(n), np.empty(n, np.int32)
    ref = None
    for j, point in enumerate(centers[:6]):
        part = update_closest(X, w, point, j, closest, nearest, j == 0, lo, hi,
                              block_max, block_pot)
        d2 = ref_sqdist(X, point[None])[:, 0]
        ref = d2 if ref is None else np.minimum(ref, d2)
        np.testing.assert_array_equal(closest, ref)
        # Each point's nearest seed so far, the earliest of equals.
        np.testing.assert_array_equal(nearest, ref_sqdist(X, centers[:j + 1]).argmin(axis=1))
        np.testing.assert_array_equal(block_max, np.maximum.reduceat(ref, starts))
        np.testing.assert_array_equal(block_pot, ref_block_sums(w * ref, n))
        assert seq_sum(part) == ref_total(block_pot)
    candidates = centers[3:]
    pots = candidate_potentials(X, w, closest, candidates, lo, hi, block_max, block_pot)
    after = np.minimum(ref[:, None], ref_sqdist(X, candidates))
    want = [ref_total(ref_block_sums(w * after[:, t], n)) for t in range(len(candidates))]
    np.testing.assert_array_equal(pots, want)
    # Without pruning (no block can be skipped) the kernels give the very same bits.
    unpruned = np.full(len(lo), np.inf)
    np.testing.assert_array_equal(
        candidate_potentials(X, w, closest, candidates, lo, hi, unpruned, block_pot), pots)


@settings(max_examples=40, deadline=None)
@given(clustered(), st.lists(st.floats(0.0, 1.0, exclude_max=True), min_size=1, max_size=8))
def test_draws_follow_the_running_sum_of_potential(p, fractions):
    X, w, centers = p
    # Integer coordinates and weights in halves and quarters: every running sum is exact, so
    # the pick must be exactly the first point whose running sum exceeds the target.
    X, centers = np.round(X), np.round(centers)
    lo, hi = seeding.block_boxes(X)
    block_max, block_pot = np.empty(len(lo)), np.empty(len(lo))
    closest, nearest = np.empty(len(X)), np.empty(len(X), np.int32)
    part = seeding.update_closest(X, w, centers[0], 0, closest, nearest, True, lo, hi,
                                  block_max, block_pot)
    part = seeding.update_closest(X, w, centers[1], 1, closest, nearest, False, lo, hi,
                                  block_max, block_pot)
    total = seq_sum(part)
    if not total > 0:
        return
    # Targets inside blocks, and exactly on block ends (where the draw must move on).
    block_ends = np.cumsum(block_pot)[:-1]
    targets = np.concatenate([np.array(fractions) * total, block_ends[block_ends < total]])
    picks = seeding.sample_by_potential(w, closest, part, block_pot, targets)
    assert (w[picks] * closest[picks] > 0).all()
    running = np.cumsum(w * closest)
    np.testing.assert_array_equal(picks, [np.flatnonzero(running > r)[0] for r in targets])


@pytest.mark.parametrize("serial", [False, True], ids=["parallel", "serial"])
def test_kmeanspp_draws_the_same_seeds_without_pruning(monkeypatch, serial):
    """Seeds depend on the row order (draws walk the rows) but not on what pruning skips:
    a seeding with every block forced to be scanned draws the same centres; and the serial
    kernels (below ``SERIAL_MAX_WORK`` points x centres) draw the parallel ones' seeds."""
    rng = np.random.default_rng(4)
    X = np.concatenate([rng.normal(c, 1.5, (700, 3)) for c in rng.uniform(0, 255, (40, 3))])
    X = X[np.lexsort(X.T[::-1])]
    w = rng.integers(1, 20, len(X)).astype(np.float64)
    limit = seeding.SERIAL_MAX_WORK
    assert len(X) * 64 < limit  # by default these points seed serially
    monkeypatch.setattr(seeding, "SERIAL_MAX_WORK", limit if serial else 0)
    pruned = kmeans_plusplus(X, w, 64, np.random.default_rng(0))
    with monkeypatch.context() as other:
        other.setattr(seeding, "SERIAL_MAX_WORK", 0 if serial else limit)
        np.testing.assert_array_equal(kmeans_plusplus(X, w, 64, np.random.default_rng(0)),
                                      pruned)
    suffix = "_serial" if serial else ""
    update = getattr(seeding, "update_closest" + suffix)
    potentials = getattr(seeding, "candidate_potentials" + suffix)

    def update_all(X, w, point, index, closest, nearest, first, lo, hi, block_max, block_pot):
        block_max[:] = np.inf
        return update(X, w, point, index, closest, nearest, first, lo, hi, block_max,
                      block_pot)

    def potentials_all(X, w, closest, candidates, lo, hi, block_max, block_pot):
        return potentials(X, w, closest, candidates, lo, hi, np.full_like(block_max, np.inf),
                          block_pot)

    monkeypatch.setattr(seeding, "update_closest" + suffix, update_all)
    monkeypatch.setattr(seeding, "candidate_potentials" + suffix, potentials_all)
    near_unpruned = np.empty(len(X), np.int32)
    unpruned = kmeans_plusplus(X, w, 64, np.random.default_rng(0), nearest=near_unpruned)
    np.testing.assert_array_equal(pruned, unpruned)
    np.testing.assert_array_equal(near_unpruned, ref_sqdist(X, pruned).argmin(axis=1))
    assert all((X == c).all(axis=1).any() for c in pruned)
