"""Compiled loops of greedy k-means++, pruned by blocks of points.

Each new centre or candidate lowers ``closest[i]`` (the squared distance of point i to its
nearest centre so far) only for points nearer to it than that. Points are taken in blocks of
``BLOCK`` consecutive rows, each with its bounding box and its largest ``closest``: a block
whose box is at least that far from the new point cannot change, and is skipped whole. Late
in a seeding at large K almost every block is skipped (kite.jpg's coarse histogram, K = 256).

The pruning changes no result, to the last bit:

- The squared distance to a box is summed like the distance to a point (coordinate by
  coordinate, in float64), and each of its terms is no larger than the matching term for any
  point of the box, since rounding is monotone. So a skipped block really holds no point
  nearer than its ``closest``, in floating point as in exact arithmetic.
- Potentials are summed per block, then per chunk, then over chunks, in order, whether a
  block is skipped (its stored sum) or scanned (the same sum, recomputed).

Blocks prune only when their rows are near one another: callers that can, order the points
so (``fastkm.quantize`` sorts its coarse cells along a Z-order curve).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from .jit import prange_only
from .kernels import CHUNK, _keyed, _width, _zeros, serial_twin

#: Points per block; CHUNK is a multiple of it, so a chunk is whole blocks.
BLOCK = 64


@njit(cache=True, inline="always")
def _box_gap(lo, hi, b, point, key):
    """Squared distance from ``point`` to block b's box, summed as ``_sqdist`` sums."""
    s = 0.0
    for d in range(_width(lo, key)):
        p = point[d]
        t = 0.0
        if p < lo[b, d]:
            t = lo[b, d] - p
        elif p > hi[b, d]:
            t = p - hi[b, d]
        s += t * t
    return s


@_keyed
@njit(parallel=prange_only(), cache=True)
def block_boxes(X, key):
    """Bounding box ``(lo, hi)``, (n_blocks, D) float64, of each block of BLOCK rows of X."""
    n = X.shape[0]
    n_dims = _width(X, key)
    n_blocks = (n + BLOCK - 1) // BLOCK
    lo = np.empty((n_blocks, n_dims))
    hi = np.empty((n_blocks, n_dims))
    for b in prange(n_blocks):
        width = _width(X, key)  # see kernels.accumulate
        for d in range(width):
            lo[b, d] = np.float64(X[b * BLOCK, d])
            hi[b, d] = lo[b, d]
        for i in range(b * BLOCK + 1, min(n, (b + 1) * BLOCK)):
            for d in range(width):
                x = np.float64(X[i, d])
                lo[b, d] = min(lo[b, d], x)
                hi[b, d] = max(hi[b, d], x)
    return lo, hi


@_keyed
@njit(parallel=prange_only(), cache=True)
def update_closest(X, w, point, index, closest, nearest, first, lo, hi, block_max, block_pot,
                   key):
    """``closest[i] = min(closest[i], ||X[i] - point||²)`` (just the distance if ``first``),
    and ``nearest[i] = index`` where that is the new minimum: each point's nearest seed so
    far (the earliest of equals), from which Lloyd's first assignment can search.

    Keeps ``block_max`` (the largest ``closest`` of each block) and ``block_pot`` (its sum of
    ``w·closest``) up to date, skipping blocks the point cannot reach. Returns the per-chunk
    sums of ``block_pot``, which :func:`sample_by_potential` uses to draw points without an
    O(N) cumulative sum per draw.
    """
    n = X.shape[0]
    n_chunks = (n + CHUNK - 1) // CHUNK
    n_blocks = block_pot.shape[0]
    part = _zeros(n_chunks)
    for c in prange(n_chunks):
        width = _width(X, key)  # see kernels.accumulate
        total = 0.0
        for b in range(c * (CHUNK // BLOCK), min(n_blocks, (c + 1) * (CHUNK // BLOCK))):
            if first or _box_gap(lo, hi, b, point, key) < block_max[b]:
                s = 0.0
                top = 0.0
                for i in range(b * BLOCK, min(n, (b + 1) * BLOCK)):
                    d2 = 0.0
                    for d in range(width):
                        t = np.float64(X[i, d]) - point[d]
                        d2 += t * t
                    if first or d2 < closest[i]:
                        closest[i] = d2
                        nearest[i] = index
                    s += w[i] * closest[i]
                    top = max(top, closest[i])
                block_pot[b] = s
                block_max[b] = top
            total += block_pot[b]
        part[c] = total
    return part


@_keyed
@njit(parallel=prange_only(), cache=True)
def candidate_potentials(X, w, closest, candidates, lo, hi, block_max, block_pot, key):
    """Potential after adding each candidate: ``Σ_i w[i]·min(closest[i], ||X[i] - cand||²)``.

    ``candidates`` is (T, D) float64; returns (T,) float64, summed per block, per chunk, then
    in order. The threads share the candidates, not the chunks: the blocks a candidate
    cannot skip lie near it, so late in a seeding most of the work is in a few chunks, and
    split by chunk it fell to one thread (path-640.jpg, K = 256: 26-28 -> 19-21 us a call
    late in the seeding).
    """
    n = X.shape[0]
    n_cand = candidates.shape[0]
    n_chunks = (n + CHUNK - 1) // CHUNK
    n_blocks = block_pot.shape[0]
    out = np.empty(n_cand)
    for t in prange(n_cand):
        width = _width(X, key)  # see kernels.accumulate
        total = 0.0
        for c in range(n_chunks):
            acc = 0.0
            for b in range(c * (CHUNK // BLOCK), min(n_blocks, (c + 1) * (CHUNK // BLOCK))):
                if _box_gap(lo, hi, b, candidates[t], key) >= block_max[b]:
                    acc += block_pot[b]
                    continue
                s = 0.0
                for i in range(b * BLOCK, min(n, (b + 1) * BLOCK)):
                    d2 = 0.0
                    for d in range(width):
                        u = np.float64(X[i, d]) - candidates[t, d]
                        d2 += u * u
                    s += w[i] * min(closest[i], d2)
                acc += s
            total += acc
        out[t] = total
    return out


#: Below this many points x centres :func:`fastkm.init.kmeans_plusplus` runs the serial
#: twins below, where waking the threads costs about what they save. A photo's seeding at
#: K < 64 (at most ~2**15 coarse cells) is always below it, so a cold start at K < 64
#: compiles no parallel seeding loop (~1.3 s less); K = 256 on 20-30k cells is above.
SERIAL_MAX_WORK = 1 << 21

block_boxes_serial = serial_twin(block_boxes)
update_closest_serial = serial_twin(update_closest)
candidate_potentials_serial = serial_twin(candidate_potentials)


@njit(cache=True)
def sample_by_potential(w, closest, chunk_pot, block_pot, targets):
    """Indices drawn in proportion to ``w·closest``, one for each target in [0, Σ chunk_pot).

    The point chosen for target ``r`` is the first whose running sum of ``w·closest`` exceeds
    ``r``; the running sum goes by chunk totals, then by block totals, then by points, so a
    draw reads one chunk's blocks and one block's points. Points of zero potential are never
    chosen while any potential is left.
    """
    n = w.shape[0]
    n_chunks = chunk_pot.shape[0]
    n_blocks = block_pot.shape[0]
    out = np.empty(targets.shape[0], dtype=np.int64)
    for t in range(targets.shape[0]):
        r = targets[t]
        c = 0
        while c < n_chunks - 1 and r >= chunk_pot[c]:
            r -= chunk_pot[c]
            c += 1
        b = c * (CHUNK // BLOCK)
        last_block = min(n_blocks, (c + 1) * (CHUNK // BLOCK)) - 1
        while b < last_block and r >= block_pot[b]:
            r -= block_pot[b]
            b += 1
        pick = -1
        last_positive = -1
        run = 0.0
        for i in range(b * BLOCK, min(n, (b + 1) * BLOCK)):
            p = w[i] * closest[i]
            if p > 0.0:
                last_positive = i
                run += p
                if run > r:
                    pick = i
                    break
        if pick < 0:
            # Rounding left r at or past this block's total: take its last point of
            # positive potential, or failing that any such point at all.
            pick = last_positive
            if pick < 0:
                for i in range(n):
                    if w[i] * closest[i] > 0.0:
                        pick = i
                        break
            if pick < 0:
                pick = 0
        out[t] = pick
    return out
