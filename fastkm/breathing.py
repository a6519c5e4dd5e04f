"""Breathing k-means (Fritzke, 2020): better local minima than Lloyd alone, cheaply.

Lloyd stops in a local minimum where some regions of the data have too many centres and
others too few; it cannot move a centre across the data. Breathing does, in rounds:

- breathe in: split the ``m`` centres of largest error (each gets a twin, nudged by a
  hundredth of its cluster's RMS radius) and run Lloyd with K + m centres;
- breathe out: drop the ``m`` centres whose removal costs least (their utility: how much the
  error would grow if their points went to their second-nearest centre), sparing the nearest
  neighbour of each one dropped while others are left, and run Lloyd with K centres again.

A round is kept only if it lowers the inertia; otherwise ``m`` shrinks by one. It ends when
``m`` reaches 0 or after ``max_rounds``. Every step is an ordinary weighted Lloyd run, so the
result is still a set of K centres Lloyd has run on; its inertia is never above the first run's.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from . import kernels
from .kmeans import _bound_margin, _weighted_mean_variance, first_assignment, lloyd


class Breathed(NamedTuple):
    """Breathing's result: the K centres, each point's label and the inertia."""

    centers: np.ndarray
    labels: np.ndarray
    inertia: float


def _nearest_two(X, w, centers, guess, margin):
    """Label of each point, and its squared distances to the nearest and second-nearest
    centre; ``guess`` names a centre near each point (where a search may start)."""
    n = X.shape[0]
    labels = np.empty(n, dtype=np.int32)
    upper = np.empty(n)
    lower = np.empty((n, 2))
    first_assignment(X, w, centers, guess, margin, labels, upper,
                     np.empty(n, dtype=np.int32), lower)
    second = lower[:, 0]
    return labels, upper * upper, second * second


def _split(X, w, centers, labels, m):
    """The centres, plus a twin of each of the ``m`` of largest error; ``labels`` are the
    points' nearest centres (a fit's own, so no search is needed)."""
    k, n_dims = centers.shape
    near = np.empty(X.shape[0])
    kernels.distances_to_labelled(X, centers, labels, near)
    error = np.bincount(labels, weights=w * near, minlength=k)
    weight = np.bincount(labels, weights=w, minlength=k)
    worst = np.argsort(-error, kind="stable")[:m]
    radius = np.sqrt(error[worst] / np.maximum(weight[worst], 1e-300))
    nudge = (0.01 / np.sqrt(n_dims)) * radius[:, None]
    return np.concatenate([centers, centers[worst] + nudge])


def _merge(X, w, centers, labels, m, margin=None):
    """The centres less the ``m`` whose removal raises the error least; the nearest
    neighbour of a removed centre stays while there are others to remove (it takes over the
    removed centre's points, so its own utility is stale). ``labels`` are the points'
    nearest centres (a fit's own).

    Returns the centres kept and, for each point, the index among them of its centre or,
    if that was removed, of the kept centre nearest to it (a guess for the next run).
    """
    k = centers.shape[0]
    if margin is None:
        margin = _bound_margin(X)
    labels, near, second = _nearest_two(X, w, centers, labels, margin)
    utility = np.bincount(labels, weights=w * (second - near), minlength=k)
    between = kernels.center_distances(centers)
    np.fill_diagonal(between, np.inf)
    neighbour = between.argmin(axis=1)
    by_utility = np.argsort(utility, kind="stable")
    removed, frozen = [], set()
    for j in by_utility:
        if len(removed) == m:
            break
        if j not in frozen:
            removed.append(j)
            frozen.add(int(neighbour[j]))
    # With few centres the frozen ones can leave fewer than m to remove: then take them too.
    for j in by_utility:
        if len(removed) == m:
            break
        if j not in removed:
            removed.append(j)
    keep = np.ones(k, dtype=bool)
    keep[removed] = False
    kept = np.flatnonzero(keep)  # np.setdiff1d sorts: 60 us of a ~150 us merge at K = 16
    renumber = np.empty(k, dtype=np.int32)
    renumber[kept] = np.arange(len(kept))
    if len(kept):
        renumber[removed] = renumber[kept[between[np.ix_(removed, kept)].argmin(axis=1)]]
    return centers[kept], renumber[labels]


def breathe(X, w, centers, *, m=2, max_rounds=4, max_iter=5, tol=0.0, guess=None):
    """Breathing k-means from ``centers`` (K, D) on ``X`` (N, D) weighted by ``w``, both
    already validated (C-contiguous float, as ``fastkm.kmeans._check_data`` gives).

    Each Lloyd run is at most ``max_iter`` iterations (``tol`` relative, as KMeans's).
    ``guess`` optionally names a centre near each point (as ``fastkm.kmeans.lloyd``'s; speed
    only). Returns the best K centres found as a :class:`Breathed`.
    """
    k = centers.shape[0]
    # The runs call lloyd itself, not KMeans: a dozen fits on the same points would each
    # validate them and recompute the variance behind tol (path-640.jpg, K = 16: ~60 us a
    # fit, on runs of ~0.4 ms).
    tol = tol * _weighted_mean_variance(X, w) if tol > 0 else 0.0
    margin = _bound_margin(X)

    def run(start, near):
        return lloyd(X, w, start, max_iter=max_iter, tol=tol, guess=near, margin=margin)

    best = run(centers, guess)
    m = min(m, k, X.shape[0] - k)  # at most one twin per centre, and K + m <= N points
    for _ in range(max_rounds):
        if m <= 0:
            break
        # The twins are appended, so the last labels are still valid guesses.
        grown = run(_split(X, w, best[0], best[1], m), best[1])
        kept, near = _merge(X, w, grown[0], grown[1], m, margin)
        this = run(kept, near)
        if this[2] < best[2]:
            best = this
        else:
            m -= 1
    return Breathed(best[0], best[1], float(best[2]))
