"""Seeding: K starting centres drawn from the data, at random or by greedy k-means++."""

from __future__ import annotations

import math

import numpy as np

from . import seeding


def random_points(X, w, n_clusters, rng):
    """K distinct points drawn without replacement, each with probability proportional to its weight.

    When fewer than K points have positive weight, the rest are drawn among the zero-weight
    points (their centres start empty and are re-seeded by the first Lloyd step).
    """
    positive = np.flatnonzero(w > 0)
    take = min(n_clusters, positive.size)
    chosen = rng.choice(positive, size=take, replace=False, p=w[positive] / w[positive].sum())
    if take < n_clusters:
        rest = np.setdiff1d(np.arange(X.shape[0]), chosen)
        chosen = np.concatenate([chosen, rng.choice(rest, size=n_clusters - take, replace=False)])
    return np.asarray(X[chosen], dtype=np.float64)


def kmeans_plusplus(X, w, n_clusters, rng, n_local_trials=None, *, nearest=None):
    """Greedy k-means++ (Arthur & Vassilvitskii 2007, as scikit-learn does it), weighted.

    The first centre is a point drawn in proportion to its weight. Each next centre: draw
    ``n_local_trials`` candidates in proportion to ``w·D(x)²`` (D the distance to the nearest
    centre so far) and keep the one that lowers the total potential most. The distance
    updates and candidate potentials run in kernels (serial below
    ``seeding.SERIAL_MAX_WORK`` points x centres) that skip blocks of points a centre cannot reach
    (``fastkm.seeding``): the seeds are those of the unpruned loops, but the speed depends
    on the row order: points near one another in nearby rows seed fastest.

    ``nearest``, an optional (N,) int32 array, receives each point's nearest seed: a guess
    from which Lloyd's first assignment searches (``fastkm.kmeans.lloyd``).
    """
    n, n_dims = X.shape
    if n_local_trials is None:
        n_local_trials = 2 + int(math.log(n_clusters))
    centers = np.empty((n_clusters, n_dims), dtype=np.float64)
    first = int(rng.choice(n, p=w / w.sum()))
    centers[0] = X[first]
    closest = np.empty(n, dtype=np.float64)
    if nearest is None:
        nearest = np.empty(n, dtype=np.int32)
    serial = n * n_clusters < seeding.SERIAL_MAX_WORK
    block_boxes = seeding.block_boxes_serial if serial else seeding.block_boxes
    update_closest = seeding.update_closest_serial if serial else seeding.update_closest
    potentials = (seeding.candidate_potentials_serial if serial
                  else seeding.candidate_potentials)
    lo, hi = block_boxes(X)
    block_max = np.empty(len(lo))
    block_pot = np.empty(len(lo))
    blocks = (lo, hi, block_max, block_pot)
    chunk_pot = update_closest(X, w, centers[0], 0, closest, nearest, True, *blocks)
    for c in range(1, n_clusters):
        pot = chunk_pot.sum()
        if not pot > 0.0:
            # Every point already coincides with a centre: no new centre can lower the
            # potential, so repeat the first (its cluster stays empty; the caller warns).
            centers[c:] = centers[0]
            break
        targets = rng.uniform(size=n_local_trials) * pot
        cand_ids = seeding.sample_by_potential(w, closest, chunk_pot, block_pot, targets)
        cands = np.ascontiguousarray(X[cand_ids], dtype=np.float64)
        pots = potentials(X, w, closest, cands, *blocks)
        best = int(np.argmin(pots))
        centers[c] = cands[best]
        chunk_pot = update_closest(X, w, centers[c], c, closest, nearest, False, *blocks)
    return centers
