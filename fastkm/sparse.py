"""Exact Lloyd k-means on CSR matrices (``indptr``, ``indices``, ``data``).

A row's squared distance to centre c is ``||x||² - 2 x·c + ||c||²``, with ``x·c`` summed
over the row's stored values only. The assignment keeps ``||c||² - 2 x·c`` (the part that
decides the label) in scikit-learn's order of operations, so that both pick the same
centre: the dot product accumulates over the row's values in storage order, from 0.0, and
the centre norms are ``np.einsum("ij,ij->i", C, C)`` as scikit-learn's ``row_norms``.

The centres are read transposed, (D, K): a stored value at column d then multiplies one
contiguous row of K centre coordinates, a loop the compiler vectorises, where a (K, D)
layout reads K coordinates D apart. This is where the speed over scikit-learn comes from.
Lloyd's iterations read float32 copies (:func:`assign`), redoing near ties in float64,
so the labels stay those of the float64 kernel.

All sums are float64. The centre sums are accumulated column by column from a weighted CSC
copy (each prange iteration owns columns, so rows of the (D, K) sums, and reads their
values in row order), so there is no race and the result does not depend on the thread
count.

The caller (``fastkm.kmeans``) validates: indices in range, indptr non-decreasing,
``len(data) == indptr[-1]``; these kernels index unchecked.
"""

from __future__ import annotations

import math

import numba
import numpy as np
from numba import boolean, float32, float64, int32, int64, prange, void
from numba.types import Tuple

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


@numba.njit(cache=True, inline="always")
def _nearest(dots, center_norms):
    """The first ``j`` minimising ``||c_j||² - 2 dots[j]``, and that minimum."""
    label = 0
    low = np.inf
    for j in range(dots.shape[0]):
        d = center_norms[j] - 2.0 * dots[j]
        if d < low:
            low = d
            label = j
    return label, low


# Float32 products and sums of ``n`` terms, and the float64 sums they stand in for, are
# within (n + _GAMMA_TERMS) * 2**-24 of the sum of the terms' magnitudes (Higham's gamma_n,
# widened for the two conversions to float32 and for the float64 sum's own error).
_GAMMA_TERMS = 4
# An absolute allowance per term for float32 underflow (subnormal spacing is 2**-149).
_TINY = 2.0 ** -146
# The float32 sums are used while rows have at most this many values (so that gamma's
# 1 / (1 - n u) < 1.01) and every product and sum of a row's products stays below
# _F32_MAX (float32 overflows at 3.4e38).
_F32_MAX_ROW_VALUES = 100_000
_F32_MAX = 1e36


@numba.njit(cache=True, inline="always")
def _float32_label(indptr, indices, data32, row_norms, centers_t32, center_norms,
                   center_max, i, dots32, labels):
    """``assign``'s float32 sums for row ``i``: writes its label and returns True when the
    nearest centre is clear of the second by more than the error bound, else False."""
    lo = indptr[i]
    hi = indptr[i + 1]
    dots32[:] = 0.0
    for p in range(lo, hi):
        v = data32[p]
        row = centers_t32[indices[p]]
        for j in range(dots32.shape[0]):
            dots32[j] += row[j] * v
    label = 0
    low = np.inf
    second = np.inf
    for j in range(dots32.shape[0]):
        d = center_norms[j] - 2.0 * np.float64(dots32[j])
        if d < low:
            second = low
            low = d
            label = j
        elif d < second:
            second = d
    terms = hi - lo + _GAMMA_TERMS
    x_norm = math.sqrt(row_norms[i]) * (1.0 + 1e-12)
    dot_err = terms * (1.01 * 2.0 ** -24) * x_norm * center_max + terms * _TINY * (
        1.0 + x_norm + center_max)
    # each distance: twice its dot's error, plus the rounding of the subtraction
    err = 2.0 * dot_err + 2.0 ** -51 * (center_max * center_max + 2.0 * x_norm * center_max)
    if second - low > 2.0 * err:
        labels[i] = label
        return True
    return False


@numba.njit(void(*_CSR, float32[::1], float64[::1], float64[:, ::1], float32[:, ::1],
                 float64[::1], float64, boolean, int32[::1], float64[::1]),
            parallel=prange_only(), cache=True)
def assign(indptr, indices, data, data32, row_norms, centers_t, centers_t32, center_norms,
           center_max, exact, labels, best):
    """Label of each row: the first ``j`` minimising ``||c_j||² - 2 x·c_j`` (``centers_t``
    is (D, K), ``center_norms`` (K,)).

    ``exact``: ``x·c_j`` in float64 over the row's values in storage order, and ``best``
    receives the minimum (the squared distance minus ``||x||²``); ``data32`` and
    ``centers_t32`` are not read. Otherwise the same labels, bit for bit, at float32 speed
    (half the bytes of the centre rows each stored value reads) and ``best`` is not
    written: ``x·c_j`` is summed in float32 from ``data32`` and ``centers_t32``, with an
    error of at most ``gamma ||x|| ||c_j||`` (Cauchy-Schwarz on the sum of the terms'
    magnitudes; ``center_max`` bounds every ``||c_j||``). When the nearest centre is ahead
    of the second by more than twice a distance's error it is the exact one; else (near
    ties) the row is redone in float64. The caller keeps every product and sum of a row's
    products within float32 range."""
    n = len(indptr) - 1
    k = centers_t.shape[1]
    n_chunks = (n + _CHUNK - 1) // _CHUNK
    for chunk in prange(n_chunks):
        dots32 = np.empty(k, dtype=np.float32)
        dots = np.empty(k)
        for i in range(chunk * _CHUNK, min(n, (chunk + 1) * _CHUNK)):
            if not exact and _float32_label(indptr, indices, data32, row_norms, centers_t32,
                                            center_norms, center_max, i, dots32, labels):
                continue
            _row_dots(indptr, indices, data, centers_t, i, dots)
            label, low = _nearest(dots, center_norms)
            labels[i] = label
            if exact:
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


@numba.njit(Tuple((int64[::1], int32[::1], float64[::1]))(*_CSR, float64[::1], int64),
            cache=True)
def weighted_csc(indptr, indices, data, w, n_columns):
    """The matrix in CSC form (``colptr``, ``rows``, ``values``; rows ascending within each
    column) with each value multiplied by its row's weight: ``values[q] = data[p] * w[i]``,
    the product :func:`accumulate` would otherwise form (and gather ``w`` for) every
    iteration. Serial: a counting sort of the values by column."""
    n = len(indptr) - 1
    colptr = np.zeros(n_columns + 1, dtype=np.int64)
    for p in range(indptr[n]):
        colptr[indices[p] + 1] += 1
    for c in range(n_columns):
        colptr[c + 1] += colptr[c]
    at = colptr[:-1].copy()
    rows = np.empty(indptr[n], dtype=np.int32)
    values = np.empty(indptr[n])
    for i in range(n):
        wi = w[i]
        for p in range(indptr[i], indptr[i + 1]):
            q = at[indices[p]]
            at[indices[p]] = q + 1
            rows[q] = i
            values[q] = data[p] * wi
    return colptr, rows, values


@numba.njit(void(int64[::1], int32[::1], float64[::1], int32[::1], float64[:, ::1]),
            parallel=prange_only(), cache=True)
def accumulate(colptr, rows, values, labels, sums_t):
    """Weighted sums of the clusters, transposed: ``sums_t[d, j] = sum of w_i x_id`` over
    the rows i of cluster j, from the matrix in CSC form with weighted values
    (:func:`weighted_csc`). Each prange iteration owns one column, so one row of
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
                out[labels[rows[p]]] += values[p]


@numba.njit(float64(float64[:, ::1], float64[::1], float64[:, ::1], float64[:, ::1]),
            cache=True)
def new_centers(sums_t, weights, centers_t, centers):
    """The centres' update in place: ``sums_t`` (D, K) becomes the new centres (sums over
    weights; a cluster of weight 0 keeps its centre from ``centers_t``), ``centers`` (K, D)
    their transpose. Returns the squared shift from ``centers_t``."""
    d, k = sums_t.shape
    shift = 0.0
    for c in range(d):
        for j in range(k):
            new = sums_t[c, j] / weights[j] if weights[j] > 0 else centers_t[c, j]
            t = new - centers_t[c, j]
            shift += t * t
            sums_t[c, j] = new
            centers[j, c] = new
    return shift


def center_sq_norms(centers):
    """Squared norms of the centres, as scikit-learn's ``row_norms`` computes them."""
    return np.einsum("ij,ij->i", centers, centers)


# Squared norms up to here leave ||x||² - 2 x·c + ||c||² finite.
_MAX_SQ_NORM = 1e300
# A row is on its centre (``kmeans.ON_CENTRE``) within the rounding of that expansion.
_ON_CENTRE = 1e-12


# Placeholders for the arrays that ``assign`` does not read in its exact mode.
_NO_DATA32 = np.empty(0, dtype=np.float32)
_NO_CENTERS32 = np.empty((0, 0), dtype=np.float32)
_NO_BEST = np.empty(0)


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
        self._data32 = None

    def _float32_data(self):
        """``data`` in float32 and the largest row value times the most values in a row,
        or (None, inf) when rows are too long or large for :func:`assign`'s float32 sums."""
        if self._data32 is None:
            row_values = max(int(np.diff(self.indptr).max(initial=0)), 1)
            scale = float(np.abs(self.data).max(initial=0.0)) * row_values
            ok = row_values <= _F32_MAX_ROW_VALUES and scale <= _F32_MAX
            self._data32 = ((self.data.astype(np.float32), max(scale, 1.0)) if ok
                            else (None, np.inf))
        return self._data32

    def assign(self, centers, centers_t, labels, best=None):
        """Labels of the rows for the (K, D) ``centers`` (``centers_t`` their transpose),
        into ``labels``. Without ``best``, in float32 where it is safe (the labels of
        float64 all the same); with it, in float64, and ``best`` receives each row's
        minimum of ``||c||² - 2 x·c``."""
        norms = center_sq_norms(centers)
        center_max = math.sqrt(norms.max(initial=0.0)) * (1.0 + 1e-12)  # >= every |c_jd|
        data32, scale = self._float32_data()
        if best is None and center_max * scale <= _F32_MAX:
            assign(*self.arrays, data32, self.row_norms, centers_t,
                   centers_t.astype(np.float32), norms, center_max, False, labels, _NO_BEST)
        else:
            assign(*self.arrays, _NO_DATA32, self.row_norms, centers_t, _NO_CENTERS32, norms,
                   center_max, True, labels, best if best is not None else
                   np.empty(len(labels)))

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
        centers = np.ascontiguousarray(centers, dtype=np.float64)
        labels = np.empty(self.shape[0], dtype=np.int32)
        best = np.empty(self.shape[0])
        self.assign(centers, np.ascontiguousarray(centers.T), labels, best)
        return labels, np.maximum(best + self.row_norms, 0.0)

    def inertia(self, w, centers, labels):
        return inertia(*self.arrays, w, centers, center_sq_norms(centers), labels)

    def _csc(self, w):
        """:func:`weighted_csc` of the matrix with the weights ``w``, made once per ``w``."""
        if self.csc is None or self.csc[0] is not w:
            self.csc = (w, weighted_csc(*self.arrays, w, self.shape[1]))
        return self.csc[1]

    def sums_t(self, w, labels, n_clusters, out=None):
        """Weighted sums of the clusters, transposed (D, K), and their weights (K,)."""
        sums_t = np.empty((self.shape[1], n_clusters)) if out is None else out
        accumulate(*self._csc(w), labels, sums_t)
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
        squares = np.empty((self.shape[1], 1))
        indptr, indices, data = self.arrays
        accumulate(*weighted_csc(indptr, indices, data * data, w, self.shape[1]), one,
                   squares)
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
    sums_t = np.empty_like(centers_t)
    labels_old = np.full(X.shape[0], -1, dtype=np.int32)
    labels = np.empty(X.shape[0], dtype=np.int32)
    strict = False
    for it in range(max_iter):
        X.assign(centers, centers_t, labels)
        sums_t, weights = X.sums_t(w, labels, n_clusters, out=sums_t)
        settled = False  # as in kmeans.lloyd: empty clusters, every row on its centre
        if (weights == 0).any():
            dist = X.labels(centers)[1]  # labels as X.assign's
            settled = not _relocate_empty(X, w, centers, labels, dist, sums_t, weights)
        if verbose:
            print(f"Iteration {it}, inertia {X.inertia(w, centers, labels)}.")
        # sums_t becomes the new centres and centers their (K, D) copy
        shift = new_centers(sums_t, weights, centers_t, centers)
        centers_t, sums_t = sums_t, centers_t
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
        X.assign(centers, centers_t, labels)
    return centers, labels, X.inertia(w, centers, labels), it + 1
