"""Exact Lloyd k-means on CSR matrices (``indptr``, ``indices``, ``data``).

A row's squared distance to centre c is ``||x||² - 2 x·c + ||c||²``, with ``x·c`` summed
over the row's stored values only. The assignment keeps ``||c||² - 2 x·c`` (the part that
decides the label) in scikit-learn's order of operations, so that both pick the same
centre: the dot product accumulates over the row's values in storage order, from 0.0, and
the centre norms are ``np.einsum("ij,ij->i", C, C)`` as scikit-learn's ``row_norms``.

The centres are read transposed, (D, K): a stored value at column d then multiplies one
contiguous row of K centre coordinates, a loop the compiler vectorises, where a (K, D)
layout reads K coordinates D apart. This is where the speed over scikit-learn comes from.

All sums are float64. The centre sums are accumulated cluster by cluster (each prange
iteration owns one cluster's row of sums and reads its members in row order), so there is
no race and the result does not depend on the thread count.

The caller (``fastkm.kmeans``) validates: indices in range, indptr non-decreasing,
``len(data) == indptr[-1]``; these kernels index unchecked.
"""

from __future__ import annotations

import math

import numba
import numpy as np
from numba import float64, int32, int64, prange, void

from .jit import prange_only

# Rows per prange chunk: each chunk has its own buffer of K dot products and its own
# partial sum of the inertia.
_CHUNK = 256

# Interleaved column blocks of ``accumulate``.
_STRIDE = 64

_CSR = (int64[::1], int32[::1], float64[::1])


@numba.njit(float64[::1](*_CSR), parallel=prange_only(), cache=True)
def row_sq_norms(indptr, indices, data):
    """``||x_i||²`` of every row."""
    n = len(indptr) - 1
    out = np.empty(n)
    for i in prange(n):
        s = 0.0
        for p in range(indptr[i], indptr[i + 1]):
            s += data[p] * data[p]
        out[i] = s
    return out


@numba.njit(cache=True, inline="always")
def _row_dots(indptr, indices, data, centers_t, i, dots):
    """``dots[j] = x_i·c_j`` over row ``i``'s stored values (``centers_t`` is (D, K))."""
    dots[:] = 0.0
    for p in range(indptr[i], indptr[i + 1]):
        v = data[p]
        row = centers_t[indices[p]]
        for j in range(dots.shape[0]):
            dots[j] += row[j] * v


@numba.njit(void(*_CSR, float64[:, ::1], float64[::1], int32[::1], float64[::1]),
            parallel=prange_only(), cache=True)
def assign(indptr, indices, data, centers_t, center_norms, labels, best):
    """Label of each row: the first ``j`` minimising ``||c_j||² - 2 x·c_j`` (``centers_t``
    is (D, K), ``center_norms`` (K,)); ``best`` receives that minimum (the squared distance
    minus ``||x||²``)."""
    n = len(indptr) - 1
    k = centers_t.shape[1]
    n_chunks = (n + _CHUNK - 1) // _CHUNK
    for chunk in prange(n_chunks):
        dots = np.empty(k)
        for i in range(chunk * _CHUNK, min(n, (chunk + 1) * _CHUNK)):
            _row_dots(indptr, indices, data, centers_t, i, dots)
            label = 0
            low = np.inf
            for j in range(k):
                d = center_norms[j] - 2.0 * dots[j]
                if d < low:
                    low = d
                    label = j
            labels[i] = label
            best[i] = low


@numba.njit(void(*_CSR, float64[::1], float64[:, ::1], float64[::1], float64[:, ::1]),
            parallel=prange_only(), cache=True)
def sq_distances(indptr, indices, data, row_norms, centers_t, center_norms, out):
    """``out[i, j] = max(||x_i||² - 2 x_i·c_j + ||c_j||², 0)`` for the (D, M) centres
    ``centers_t``."""
    n = len(indptr) - 1
    k = centers_t.shape[1]
    n_chunks = (n + _CHUNK - 1) // _CHUNK
    for chunk in prange(n_chunks):
        dots = np.empty(k)
        for i in range(chunk * _CHUNK, min(n, (chunk + 1) * _CHUNK)):
            _row_dots(indptr, indices, data, centers_t, i, dots)
            for j in range(k):
                out[i, j] = max(row_norms[i] - 2.0 * dots[j] + center_norms[j], 0.0)


@numba.njit(float64(*_CSR, float64[::1], float64[:, ::1], float64[::1], int32[::1]),
            parallel=prange_only(), cache=True)
def inertia(indptr, indices, data, w, centers, center_norms, labels):
    """``sum_i w_i ||x_i - c_{label_i}||²``, each term as scikit-learn's sparse inertia
    computes it: ``||c||² + sum over stored values of ((x - c)² - c²)``, clipped at 0."""
    n = len(indptr) - 1
    n_chunks = (n + _CHUNK - 1) // _CHUNK
    partial = np.zeros(n_chunks)
    for chunk in prange(n_chunks):
        s = 0.0
        for i in range(chunk * _CHUNK, min(n, (chunk + 1) * _CHUNK)):
            c = centers[labels[i]]
            d = center_norms[labels[i]]
            for p in range(indptr[i], indptr[i + 1]):
                b = c[indices[p]]
                t = data[p] - b
                d += t * t - b * b
            s += max(d, 0.0) * w[i]
        partial[chunk] = s
    return partial.sum()


@numba.njit(void(*_CSR, float64[::1], int32[::1], float64[:, ::1]), parallel=prange_only(), cache=True)
def accumulate(colptr, rows, data, w, labels, sums_t):
    """Weighted sums of the clusters, transposed: ``sums_t[d, j] = sum of w_i x_id`` over
    the rows i of cluster j, from the matrix in CSC form (``colptr``, ``rows``, ``data``;
    rows sorted within a column). Each prange iteration owns one column, so one row of
    ``sums_t``, and adds its values in row order: no race, no dependence on the thread
    count.

    Iteration b of the prange takes the columns b, b + _STRIDE, b + 2 _STRIDE, ...: term
    frequencies fall with the column index in many matrices (vocabularies sorted by
    frequency), and equal contiguous blocks of columns would leave one thread most of the
    values (87% in the benchmark's Zipf-like matrix)."""
    d = len(colptr) - 1
    for b in prange(_STRIDE):
        for c in range(b, d, _STRIDE):
            out = sums_t[c]
            out[:] = 0.0
            for p in range(colptr[c], colptr[c + 1]):
                i = rows[p]
                out[labels[i]] += data[p] * w[i]


def center_sq_norms(centers):
    """Squared norms of the centres, as scikit-learn's ``row_norms`` computes them."""
    return np.einsum("ij,ij->i", centers, centers)


# Squared norms up to here leave ||x||² - 2 x·c + ||c||² finite.
_MAX_SQ_NORM = 1e300
# A row is on its centre (``kmeans.ON_CENTRE``) within the rounding of that expansion.
_ON_CENTRE = 1e-12


def _writable(a, dtype):
    a = np.ascontiguousarray(a, dtype=dtype)
    return a if a.flags.writeable else a.copy()


class CSR:
    """The three arrays of a validated CSR matrix, in the kernels' dtypes, and the rows'
    squared norms."""

    def __init__(self, X):
        self.shape = X.shape
        # The kernels' signatures take writable arrays: a read-only buffer (joblib's memmaps)
        # is copied rather than refused.
        self.indptr = _writable(X.indptr, np.int64)
        self.indices = _writable(X.indices, np.int32)
        self.data = _writable(X.data, np.float64)
        self.arrays = (self.indptr, self.indices, self.data)
        self.row_norms = row_sq_norms(*self.arrays)
        if self.row_norms.size and not self.row_norms.max() <= _MAX_SQ_NORM:
            raise ValueError("X has rows too large for squared distances in float64 (a "
                             "squared row norm is over 1e300); scale X down")
        self.csc = None

    def row(self, i):
        """Row ``i`` as a dense float64 vector."""
        out = np.zeros(self.shape[1])
        lo, hi = self.indptr[i], self.indptr[i + 1]
        out[self.indices[lo:hi]] = self.data[lo:hi]
        return out

    def sq_distances(self, centers):
        """(N, M) squared distances to the (M, D) ``centers``."""
        centers = np.ascontiguousarray(centers, dtype=np.float64)
        out = np.empty((self.shape[0], len(centers)))
        sq_distances(*self.arrays, self.row_norms, np.ascontiguousarray(centers.T),
                     center_sq_norms(centers), out)
        return out

    def labels(self, centers):
        """Nearest centre of each row, and the squared distance to it."""
        labels = np.empty(self.shape[0], dtype=np.int32)
        best = np.empty(self.shape[0])
        assign(*self.arrays, np.ascontiguousarray(centers.T), center_sq_norms(centers),
               labels, best)
        return labels, np.maximum(best + self.row_norms, 0.0)

    def inertia(self, w, centers, labels):
        return inertia(*self.arrays, w, centers, center_sq_norms(centers), labels)

    def _csc(self):
        """The same matrix in CSC form (rows sorted within each column), made once."""
        if self.csc is None:
            import scipy.sparse as sp

            m = sp.csr_matrix((self.data, self.indices, self.indptr), shape=self.shape).tocsc()
            m.sort_indices()
            self.csc = (np.ascontiguousarray(m.indptr, dtype=np.int64),
                        np.ascontiguousarray(m.indices, dtype=np.int32),
                        np.ascontiguousarray(m.data, dtype=np.float64))
        return self.csc

    def sums_t(self, w, labels, n_clusters):
        """Weighted sums of the clusters, transposed (D, K), and their weights (K,)."""
        sums_t = np.empty((self.shape[1], n_clusters))
        accumulate(*self._csc(), w, labels, sums_t)
        return sums_t, np.bincount(labels, weights=w, minlength=n_clusters)

    def sums(self, w, labels, n_clusters):
        """Weighted sums (K, D) and weights (K,) of the clusters."""
        sums_t, weights = self.sums_t(w, labels, n_clusters)
        return np.ascontiguousarray(sums_t.T), weights

    def mean_variance(self, w):
        """Mean over features of the weighted variance (KMeans's ``tol`` scale)."""
        total = w.sum()
        one = np.zeros(self.shape[0], dtype=np.int32)
        sums, _ = self.sums_t(w, one, 1)
        colptr, rows, data = self._csc()
        squares = np.empty((self.shape[1], 1))
        accumulate(colptr, rows, data * data, w, one, squares)
        mean = sums[:, 0] / total
        return float(np.maximum(squares[:, 0] / total - mean * mean, 0.0).mean())


def kmeans_plusplus(X, w, n_clusters, rng):
    """Greedy k-means++ on a ``CSR`` (as ``fastkm.init.kmeans_plusplus``, scikit-learn's
    rule: ``2 + log K`` candidates drawn in proportion to ``w·D(x)²``, the one lowering the
    potential most is kept), distances by ``sq_distances``."""
    n = X.shape[0]
    trials = 2 + int(math.log(n_clusters))
    centers = np.empty((n_clusters, X.shape[1]))
    centers[0] = X.row(int(rng.choice(n, p=w / w.sum())))
    closest = X.sq_distances(centers[:1])[:, 0]
    pot = float(w @ closest)
    for c in range(1, n_clusters):
        if not pot > 0.0:
            centers[c:] = centers[0]
            break
        targets = rng.uniform(size=trials) * pot
        ids = np.minimum(np.searchsorted(np.cumsum(w * closest), targets), n - 1)
        cands = np.array([X.row(i) for i in ids])
        d = np.minimum(X.sq_distances(cands), closest[:, None])
        pots = w @ d
        best = int(np.argmin(pots))
        centers[c] = cands[best]
        closest = np.ascontiguousarray(d[:, best])
        pot = float(pots[best])
    return centers


def random_rows(X, w, n_clusters, rng):
    """K distinct rows drawn in proportion to their weight (``fastkm.init.random_points``)."""
    from .init import random_points

    ids = random_points(np.arange(X.shape[0])[:, None], w, n_clusters, rng)[:, 0]
    return np.array([X.row(int(i)) for i in ids])


def _relocate_empty(X, w, centers, labels, dist, sums_t, weights):
    """Give each empty cluster one of the rows farthest from their centre, moving its
    weighted values out of its old cluster's sums (scikit-learn's rule; the labels stay
    until the next assignment), by the dense fit's rules (``kmeans.far_scores``,
    ``kmeans.reseed``). ``sums_t`` is (D, K). Returns how many clusters were re-seeded."""
    from .kmeans import farthest, reseed, scores_off_centre

    members = np.bincount(labels, weights=w > 0, minlength=len(weights)).astype(np.int64)
    empty = np.flatnonzero(members == 0)
    score = scores_off_centre(dist, w, X.row_norms + center_sq_norms(centers)[labels],
                              _ON_CENTRE)
    far = farthest(score, min(empty.size, int(np.count_nonzero(score > 0))))
    rows = np.array([X.row(int(i)) for i in far]).reshape(len(far), X.shape[1])
    reseed(sums_t.T, weights, members, centers, empty[:len(far)], rows, w[far], labels[far])
    return len(far)


def lloyd(X, w, centers, *, max_iter, tol, verbose=False):
    """Exact Lloyd on a ``CSR`` from ``centers`` (K, D), scikit-learn's loop: stop when no
    label changes (strict convergence) or the squared centre shift is at most ``tol``.
    Returns ``(centers, labels, inertia, n_iter)``.

    The centres are kept transposed (D, K), the layout of both the assignment and the
    accumulation; a (K, D) copy gives their norms as scikit-learn computes them.

    No bounds: Hamerly's (tried, as for dense data) still left 95-100% of the rows to
    compute in most of the first 20 iterations on the TF-IDF-like benchmark (K = 20 and
    100), where distances in high dimension are all alike, and cost 15% more time.
    """
    n_clusters = len(centers)
    centers = np.array(centers, dtype=np.float64, order="C")
    centers_t = np.ascontiguousarray(centers.T)
    labels_old = np.full(X.shape[0], -1, dtype=np.int32)
    labels = np.empty(X.shape[0], dtype=np.int32)
    best = np.empty(X.shape[0])
    strict = False
    for it in range(max_iter):
        assign(*X.arrays, centers_t, center_sq_norms(centers), labels, best)
        sums_t, weights = X.sums_t(w, labels, n_clusters)
        settled = False  # as in kmeans.lloyd: empty clusters, every row on its centre
        if (weights == 0).any():
            dist = np.maximum(best + X.row_norms, 0.0)
            settled = not _relocate_empty(X, w, centers, labels, dist, sums_t, weights)
        full = weights > 0
        if full.all():
            sums_t /= weights
        else:
            sums_t[:, full] /= weights[full]
            sums_t[:, ~full] = centers_t[:, ~full]
        if verbose:
            print(f"Iteration {it}, inertia {X.inertia(w, centers, labels)}.")
        shift = float(((sums_t - centers_t) ** 2).sum())
        centers_t = sums_t
        centers = np.ascontiguousarray(centers_t.T)
        if np.array_equal(labels, labels_old) or settled:
            strict = True
            if verbose:
                print(f"Converged at iteration {it}: strict convergence.")
            break
        if shift <= tol:
            if verbose:
                print(f"Converged at iteration {it}: center shift {shift} within tolerance "
                      f"{tol}.")
            break
        labels_old, labels = labels, labels_old
    if not strict:
        assign(*X.arrays, centers_t, center_sq_norms(centers), labels, best)
    return centers, labels, X.inertia(w, centers, labels), it + 1
