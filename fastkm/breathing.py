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

import numpy as np

from . import kernels
from .kmeans import KMeans


def _nearest_two(X, w, centers):
    """Label of each point, and its squared distances to the nearest and second-nearest
    centre."""
    n = X.shape[0]
    labels = np.empty(n, dtype=np.int32)
    upper = np.empty(n)
    lower = np.empty(n)
    kernels.first_pass(X, w, centers, labels, upper, lower)
    return labels, upper * upper, lower * lower


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


def _merge(X, w, centers, m):
    """The centres less the ``m`` whose removal raises the error least; the nearest
    neighbour of a removed centre stays while there are others to remove (it takes over the
    removed centre's points, so its own utility is stale)."""
    k = centers.shape[0]
    labels, near, second = _nearest_two(X, w, centers)
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
    return np.delete(centers, removed, axis=0)


def breathe(X, w, centers, *, m=2, max_rounds=4, max_iter=5, tol=0.0):
    """Breathing k-means from ``centers`` (K, D) on ``X`` (N, D) weighted by ``w``.

    Each Lloyd run is at most ``max_iter`` iterations (``tol`` as KMeans's). Returns the
    fitted ``KMeans`` of the best K centres found.
    """
    k = centers.shape[0]
    best = KMeans(k, init=centers, max_iter=max_iter, tol=tol).fit(X, sample_weight=w)
    m = min(m, k, X.shape[0] - k)  # at most one twin per centre, and K + m <= N points
    for _ in range(max_rounds):
        if m <= 0:
            break
        grown = KMeans(k + m, init=_split(X, w, best._centers64, best.labels_, m),
                       max_iter=max_iter, tol=tol).fit(X, sample_weight=w)
        run = KMeans(k, init=_merge(X, w, grown._centers64, m), max_iter=max_iter,
                     tol=tol).fit(X, sample_weight=w)
        if run.inertia_ < best.inertia_:
            best = run
        else:
            m -= 1
    return best
