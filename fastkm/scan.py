"""Vectorised k-means passes: every point against every centre, points in SIMD lanes.

:mod:`fastkm.kernels` scans centres one point at a time, in scalar code that skips what the
bounds rule out. Where the bounds prune little (overlapping clusters, a random start, the
first iterations) that scalar loop is the cost. Here a block of ``BLOCK`` points is copied
into a (D, BLOCK) float32 buffer and each centre is compared with the whole block in one
loop over the points, which LLVM vectorises: distances, and the three nearest centres so
far, sit in float32 vector lanes, one point per lane.

The result follows the conventions of :mod:`fastkm.kernels` exactly: a point whose two
nearest centres are closer in float32 than the float32 error bound (:func:`float32_error`)
is redone in float64, summed over the coordinates in order (the same bits as
``kernels._sqdist``), so the labels are the exact argmin with ties to the lowest centre
index; per-chunk partial sums are added in chunk order from the float64 data, so the sums
equal those of ``kernels.bounded_pass`` to the last bit. Only the stored bounds differ:
they are widened by the error bound, and still hold.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from .jit import prange_only
from .kernels import (
    CHUNK,
    TIGHT_MAX_DIMS,
    _count,
    _int_zeros,
    _keyed,
    _move,
    _reduce,
    _reduce_counts,
    _sqdist,
    _threshold,
    _total,
    _width,
    _zeros,
)

#: Points per vectorised block; divides ``CHUNK``. 256 points of D = 16 in float32 are
#: 16 KiB, half of L1 (128 and 512 timed the same within noise).
BLOCK = 256


@njit(cache=True, inline="always")
def _take(v, j, fk, b1, b2, b3, k1, k2):
    """Lane ``j`` sees centre ``fk`` (its index as a float32, so that every lane has the
    width of the distances) at squared distance ``v``: keep the three smallest distances and the two nearest
    centres. Selects, no branches; ties keep the lower index first."""
    o1 = b1[j]
    o2 = b2[j]
    q1 = v < o1
    k2[j] = k1[j] if q1 else (fk if v < o2 else k2[j])
    k1[j] = fk if q1 else k1[j]
    b3[j] = min(b3[j], max(o2, v))
    b2[j] = min(o2, max(o1, v))
    b1[j] = min(o1, v)


@njit(cache=True, inline="always")
def _nearest3(xt, m, centers, dist, b1, b2, b3, k1, k2, key):
    """For the ``m`` points in the columns of ``xt`` (D, BLOCK): the squared distances to
    their three nearest centres (``b1 <= b2 <= b3``, inf where K is smaller) and the two
    nearest (``k1``, ``k2``, as floats; ``k2`` is ``k1`` when K = 1)."""
    for j in range(m):
        b1[j] = np.inf
        b2[j] = np.inf
        b3[j] = np.inf
        k1[j] = 0.0
        k2[j] = 0.0
    for k in range(centers.shape[0]):
        fk = np.float32(k)
        if len(key) == 3:
            # Colours: the centre in registers and each distance in one expression (named
            # scalars, as LLVM will not hoist loads it cannot prove unaliased).
            c0 = centers[k, 0]
            c1 = centers[k, 1]
            c2 = centers[k, 2]
            for j in range(m):
                t = xt[0, j] - c0
                v = t * t
                t = xt[1, j] - c1
                v += t * t
                t = xt[2, j] - c2
                v += t * t
                _take(v, j, fk, b1, b2, b3, k1, k2)
        else:
            for j in range(m):
                dist[j] = 0.0
            for d in range(xt.shape[0]):
                cd = centers[k, d]
                for j in range(m):
                    t = xt[d, j] - cd
                    dist[j] += t * t
            for j in range(m):
                _take(dist[j], j, fk, b1, b2, b3, k1, k2)


@njit(cache=True, inline="always")
def _exact3(X, i, centers, key):
    """Point ``i``'s three smallest squared distances and two nearest centres, in float64
    as ``kernels._sqdist`` sums them (ties to the lower index, as ``_take``)."""
    b1 = np.inf
    b2 = np.inf
    b3 = np.inf
    k1 = 0
    k2 = 0
    for k in range(centers.shape[0]):
        v = _sqdist(X, i, centers, k, key)
        q1 = v < b1
        k2 = k1 if q1 else (k if v < b2 else k2)
        k1 = k if q1 else k1
        b3 = min(b3, max(b2, v))
        b2 = min(b2, max(b1, v))
        b1 = min(b1, v)
    return b1, b2, b3, k1, k2


@njit(cache=True, inline="always")
def _below(v, err_abs, err_rel):
    """A lower bound of the exact squared distance whose float32 value is ``v``."""
    return v if v == np.inf else max(v - err_abs - err_rel * v, 0.0)


@njit(cache=True, inline="always")
def _record(X, i, j, centers, b1, b2, b3, k1, k2, err_abs, err_rel, labels, upper, seconds,
            lower, moved, key):
    """Point ``i``'s (lane ``j``'s) exact label and the bounds ``kernels.bounded_pass``
    keeps, net of the centres' moves so far (``moved``); returns the label.

    The lane's float32 distances are within ``err_abs + err_rel * v`` of the exact ones
    (:func:`float32_error`): when the nearest is ahead of the second by more than twice
    that, it is the exact argmin and the bounds are widened by the error; otherwise (near
    ties, about 0.1% of points on overlapping blobs) the point is redone in float64.
    """
    v1 = np.float64(b1[j])
    v2 = np.float64(b2[j])
    if v2 - v1 > 2.0 * err_abs + err_rel * (v1 + v2):
        d1 = v1 + err_abs + err_rel * v1
        d2 = _below(v2, err_abs, err_rel)
        d3 = _below(np.float64(b3[j]), err_abs, err_rel)
        a = np.int64(k1[j])
        b = np.int64(k2[j])
    else:
        d1, d2, d3, a, b = _exact3(X, i, centers, key)
    labels[i] = a
    if _width(X, key) > TIGHT_MAX_DIMS:  # else unused: see kernels.bounded_pass
        upper[i] = np.sqrt(d1) - moved[a]
    seconds[i] = b
    lower[i, 0] = np.sqrt(d2) + moved[b]
    lower[i, 1] = np.sqrt(d3) + moved[moved.shape[0] - 1]
    return a


def float32_error(largest, centers):
    """``(err_abs, err_rel)``: a squared distance between a point whose coordinates are at
    most ``largest`` in magnitude and a centre,
    computed as :func:`_nearest3` does in float32 (both rounded to float32, differences,
    squares and sums in float32), is within ``err_abs + err_rel * v`` of the exact one,
    ``v`` the float32 result. With u = 2^-24 and M twice the largest coordinate: input
    rounding moves each difference by at most 2uM, so each square by 4uM^2 and its own
    rounding adds uM^2; the D-term sum adds (D-1)u of the total. The constants below are
    2.4x and 2x those. Data too large for float32 gets an infinite error: every point
    is then done in float64."""
    u = 2.0 ** -24
    n_dims = centers.shape[1]
    big = 2.0 * max(largest, -float(centers.min()), float(centers.max()))
    if not big * big * n_dims < 1e36:
        return np.inf, 0.0
    return 12.0 * n_dims * u * big * big + 1e-30, 2.0 * n_dims * u


def scan_pass(X, w, centers, labels, upper, seconds, lower, moved, deltas, err_abs, err_rel):
    """Exact assignment of every point by a vectorised scan of all centres.

    Sets ``labels`` and the bounds of ``kernels.first_pass`` (``upper``, ``seconds``,
    ``lower``) net of ``moved`` (see ``kernels.bounded_pass``), so a bounded pass can follow.
    The scan runs in float32 lanes, twice as many as float64; ``(err_abs, err_rel)`` is
    :func:`float32_error` of ``X`` and ``centers``, within which a point's two nearest
    centres are compared again in float64 (:func:`_record`), so the labels are exact.
    Returns ``(sums, weights, members, n_changed)``: for the new labels as ``bounded_pass``
    with ``sums_mode`` 1, or with ``deltas`` only their changes from the points that changed
    label (``sums_mode`` 2), the same bits as ``bounded_pass`` gives them.
    """
    unused = np.empty(0)
    return _vector_pass(X, w, centers, unused, labels, upper, seconds, lower, moved, 0.0,
                        True, deltas, err_abs, err_rel)[:4]


def bounded_scan_pass(X, w, centers, half_sep, labels, upper, seconds, lower, moved, margin,
                      err_abs, err_rel):
    """``kernels.bounded_pass`` (``sums_mode`` 2) with the rescans vectorised.

    The same bound test decides which points keep their label; those whose bounds fail are
    gathered, a chunk at a time, and scanned against every centre by the vectorised scan of
    :func:`scan_pass` instead of one at a time. Returns ``(sums, weights, members,
    n_changed, n_distances)``: the changes of the sums from the points that changed label,
    the same bits as ``bounded_pass`` gives them, and the number of distinct point-centre
    distances computed.
    """
    return _vector_pass(X, w, centers, half_sep, labels, upper, seconds, lower, moved, margin,
                        False, True, err_abs, err_rel)


# One compiled kernel for both passes: each costs ~4 s to compile per width and dtype.
@_keyed
@njit(parallel=prange_only(), cache=True)
def _vector_pass(X, w, centers, half_sep, labels, upper, seconds, lower, moved, margin,
                 everything, deltas, err_abs, err_rel, key):
    """:func:`scan_pass` (``everything``: every point is rescanned) or
    :func:`bounded_scan_pass` (the points whose bounds fail); with ``deltas`` False the sums
    of every point, in point order."""
    n = X.shape[0]
    n_dims = _width(X, key)
    n_clusters = centers.shape[0]
    n_chunks = (n + CHUNK - 1) // CHUNK
    part_s = _zeros((n_chunks, n_clusters, n_dims))
    part_w = _zeros((n_chunks, n_clusters))
    part_m = _int_zeros((n_chunks, n_clusters))
    changed = _int_zeros(n_chunks)
    scanned = _int_zeros(n_chunks)
    c32 = centers.astype(np.float32)
    for c in prange(n_chunks):
        width = _width(X, key)  # see kernels.accumulate
        xt = np.empty((width, BLOCK), dtype=np.float32)
        dist = np.empty(BLOCK, dtype=np.float32)
        b1 = np.empty(BLOCK, dtype=np.float32)
        b2 = np.empty(BLOCK, dtype=np.float32)
        b3 = np.empty(BLOCK, dtype=np.float32)
        k1 = np.empty(BLOCK, dtype=np.float32)
        k2 = np.empty(BLOCK, dtype=np.float32)
        # The chunk's failed points, in point order, rescanned a block at a time: late in a
        # run a few per block fail, too few to fill the vector lanes of a scan.
        fail = np.empty(CHUNK, dtype=np.int64)
        n_changed = 0
        n_scanned = 0
        nf = 0
        start = c * CHUNK
        end = min(n, (c + 1) * CHUNK)
        if everything:
            nf = end - start  # the list is not written: point start + f is its f-th entry
        else:
            for s0 in range(start, end, BLOCK):
                m = min(BLOCK, end - s0)
                if width <= TIGHT_MAX_DIMS:
                    # Every point's distance to its own centre, and the points that failed
                    # the test listed without a branch: the test's outcome is a coin toss
                    # the branch predictor loses. (One loop: two, through a flag array,
                    # took 0.6 ms more a pass at 1M points, D = 3, K = 16.)
                    for i in range(s0, s0 + m):
                        a = labels[i]
                        t = _threshold(i, a, lower, seconds, moved, half_sep, margin)
                        d2a = 0.0
                        for d in range(width):
                            u = np.float64(X[i, d]) - centers[a, d]
                            d2a += u * u
                        fail[nf] = i
                        nf += not (t > 0.0 and d2a < t * t)
                    n_scanned += m
                else:
                    for i in range(s0, s0 + m):
                        a = labels[i]
                        t = _threshold(i, a, lower, seconds, moved, half_sep, margin)
                        if upper[i] + moved[a] < t:
                            continue
                        n_scanned += 1
                        d2a = 0.0
                        for d in range(width):
                            u = np.float64(X[i, d]) - centers[a, d]
                            d2a += u * u
                        if t > 0.0 and d2a < t * t:
                            upper[i] = np.sqrt(d2a) - moved[a]
                            continue
                        fail[nf] = i
                        nf += 1
            n_scanned -= nf  # their own distance is counted below
        for f0 in range(0, nf, BLOCK):
            m = min(BLOCK, nf - f0)
            if everything:
                # Rows in order, without the index list: 0.9 ms less a scan of 1M x 3.
                for j in range(m):
                    for d in range(width):
                        xt[d, j] = X[start + f0 + j, d]
            else:
                for j in range(m):
                    for d in range(width):
                        xt[d, j] = X[fail[f0 + j], d]
            _nearest3(xt, m, c32, dist, b1, b2, b3, k1, k2, key)
            for j in range(m):
                i = start + f0 + j if everything else fail[f0 + j]
                a = labels[i]
                b = _record(X, i, j, centers, b1, b2, b3, k1, k2, err_abs, err_rel, labels,
                            upper, seconds, lower, moved, key)
                if b != a:
                    n_changed += 1
                    if deltas:
                        _move(X, w, i, c, a, b, part_s, part_w, part_m, key)
        n_scanned += nf * n_clusters
        if not deltas:
            for i in range(start, end):
                _count(X, w, i, c, labels[i], part_s, part_w, part_m, key)
        changed[c] = n_changed
        scanned[c] = n_scanned
    sums, weights = _reduce(part_s, part_w, n_clusters, n_dims)
    return (sums, weights, _reduce_counts(part_m, n_clusters), _total(changed),
            _total(scanned))
