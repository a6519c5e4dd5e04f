"""Compiled loops over pixels: distinct colours with their counts, and the lookup-table map.

A colour of C <= 3 channels packs into a key below 2**24. Rather than a dense table of 2**24
counts (64 MB to clear, fault in and scan on every call, ~0.1 s whatever the image's size),
the keys are bucketed by their top 8 bits, a counting sort in two parallel passes over the
pixels, and each bucket's low 16 bits are counted in a 65,536-entry table that stays in the
core's cache. Buckets are independent, so threads never share a count, and the output comes
out in key order without a sort.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from .jit import prange_only
from .kernels import _int_zeros

#: Pixels per chunk of the bucketing passes.
PIXEL_CHUNK = 1 << 16
#: Buckets per parallel work item of the counting pass (each item clears one table).
BUCKET_GROUP = 8


@njit(cache=True, inline="always")
def _key(pixels, p):
    key = 0
    for ch in range(pixels.shape[1]):
        key = (key << 8) | np.int64(pixels[p, ch])
    return key


@njit(cache=True)
def _bucket_offsets(hist):
    """Where each chunk writes its first key of each bucket, and each bucket's start."""
    n_chunks = hist.shape[0]
    start = np.zeros(257, dtype=np.int64)
    for b in range(256):
        start[b + 1] = start[b] + hist[:, b].sum()
    offsets = np.empty((n_chunks, 256), dtype=np.int64)
    for b in range(256):
        at = start[b]
        for c in range(n_chunks):
            offsets[c, b] = at
            at += hist[c, b]
    return offsets, start


@njit(parallel=prange_only(), cache=True)
def distinct_keys(pixels):
    """Distinct keys of ``pixels`` (N, C<=3) uint8, increasing, and how many rows pack to
    each: ``(keys (M,) int64, counts (M,) int64)``. Buckets count in uint32: N < 2**32."""
    n = pixels.shape[0]
    n_chunks = (n + PIXEL_CHUNK - 1) // PIXEL_CHUNK
    # Colour pixels (the common case) read their bucket and low bits straight from the
    # bytes, and each chunk counts into a row of its own, copied out at the end: path.jpg
    # (4 MP), 9.2 -> 1.5 ms for this pass and 8.3 -> 5 ms for the next.
    rgb = pixels.shape[1] == 3
    hist = _int_zeros((n_chunks, 256))
    for c in prange(n_chunks):
        count = np.zeros(256, dtype=np.int64)
        if rgb:
            for p in range(c * PIXEL_CHUNK, min(n, (c + 1) * PIXEL_CHUNK)):
                count[pixels[p, 0]] += 1
        else:
            for p in range(c * PIXEL_CHUNK, min(n, (c + 1) * PIXEL_CHUNK)):
                count[_key(pixels, p) >> 16] += 1
        for b in range(256):  # element by element: an array copy here compiles Numba's
            hist[c, b] = count[b]  # shape check and its message formatting (~3.5 s cold)
    offsets, start = _bucket_offsets(hist)
    low = np.empty(n, dtype=np.uint16)
    for c in prange(n_chunks):
        at = offsets[c].copy()
        if rgb:
            for p in range(c * PIXEL_CHUNK, min(n, (c + 1) * PIXEL_CHUNK)):
                b = pixels[p, 0]
                low[at[b]] = (np.uint16(pixels[p, 1]) << 8) | np.uint16(pixels[p, 2])
                at[b] += 1
        else:
            for p in range(c * PIXEL_CHUNK, min(n, (c + 1) * PIXEL_CHUNK)):
                key = _key(pixels, p)
                b = key >> 16
                low[at[b]] = key & 0xFFFF
                at[b] += 1
    # Each bucket's distinct keys and counts go to the front of its own slice of these
    # (a bucket has at most as many distinct keys as entries); only those pages are touched.
    found = np.empty(n, dtype=np.int64)
    found_counts = np.empty(n, dtype=np.int64)
    n_found = _int_zeros(256)
    n_groups = 256 // BUCKET_GROUP
    for g in prange(n_groups):
        table = np.zeros(1 << 16, dtype=np.uint32)
        # One bit per 64 table entries, set where any is counted: the read-out visits only
        # those, so a sparse bucket costs its own size, not 65,536 (path-640.jpg, 0.26 MP:
        # the read-out took most of the histogram's 5 ms).
        touched = np.zeros(1 << 10, dtype=np.uint64)
        # Buckets dealt out across the groups, not in runs: a photo's pixels crowd into a
        # few neighbouring buckets, and the threads' shares of the groups then stay even.
        for b in range(g, 256, n_groups):
            first, last = start[b], start[b + 1]
            if first == last:
                continue
            for t in range(first, last):
                v = low[t]
                table[v] += 1
                touched[v >> 6] |= np.uint64(1) << np.uint64(v & 63)
            m = 0
            for word in range(1 << 10):
                if touched[word] == 0:
                    continue
                touched[word] = 0
                for v in range(word << 6, (word + 1) << 6):
                    if table[v] != 0:
                        found[first + m] = (b << 16) | v
                        found_counts[first + m] = table[v]
                        table[v] = 0
                        m += 1
            n_found[b] = m
    out_start = np.zeros(257, dtype=np.int64)
    for b in range(256):
        out_start[b + 1] = out_start[b] + n_found[b]
    keys = np.empty(out_start[256], dtype=np.int64)
    counts = np.empty(out_start[256], dtype=np.int64)
    # Serial: a copy of the M distinct keys (~0.5 ms at 150k), and one parallel loop less
    # to compile (distinct_keys 7.6 -> 6.1 s cold on a VM ~2.2x slower than usual).
    for b in range(256):
        first = start[b]
        for j in range(n_found[b]):
            keys[out_start[b] + j] = found[first + j]
            counts[out_start[b] + j] = found_counts[first + j]
    return keys, counts


def unpack_keys(keys, n_channels):
    """(M,) keys back to (M, C) uint8 colours (NumPy: once per image, no kernel to load)."""
    shifts = 8 * np.arange(n_channels - 1, -1, -1)
    return ((keys[:, None] >> shifts) & 0xFF).astype(np.uint8)


@njit(parallel=prange_only(), cache=True)
def map_pixels(pixels, lut, out):
    """``out[p] = lut[key(pixels[p])]`` for every pixel, in parallel."""
    # One parallel loop (each costs its own compile), the test inside: it never changes.
    rgb = pixels.shape[1] == 3
    for p in prange(pixels.shape[0]):
        if rgb:  # the key from the bytes, as in distinct_keys
            out[p] = lut[(np.int64(pixels[p, 0]) << 16) | (np.int64(pixels[p, 1]) << 8)
                         | np.int64(pixels[p, 2])]
        else:
            out[p] = lut[_key(pixels, p)]


@njit(parallel=prange_only(), cache=True)
def z_order_cells(colors, bits):
    """Index along a Z-order curve of each colour's cell when cut to ``bits`` bits per
    channel: those bits of every channel interleaved, most significant first, channel 0
    before channel 1 at each level. Cells near one another in colour then sit near one
    another in index order, which is what k-means++'s pruning by blocks needs."""
    n, n_channels = colors.shape
    out = np.empty(n, dtype=np.int64)
    for j in prange(n):
        cell = 0
        for b in range(7, 7 - bits, -1):
            for ch in range(n_channels):
                cell = (cell << 1) | ((np.int64(colors[j, ch]) >> b) & 1)
        out[j] = cell
    return out


#: Cells up to which ``cell_rows`` marks occupied cells in a dense table (2 MB of flags and
#: 8 MB of rows, only the occupied rows' pages touched): 7 bits of RGB.
DENSE_CELLS = 1 << 21


@njit(cache=True)
def cell_rows(cell, n_cells, min_cells):
    """Number the occupied cells (``cell`` (M,) from :func:`z_order_cells`, each below
    ``n_cells`` <= ``DENSE_CELLS``) 0, 1, ... in increasing cell order, as ``np.unique``
    would: ``(row of each colour's cell (M,) int32, occupied cells)``. With fewer than
    ``min_cells`` occupied the rows are left out (an empty array), since the caller then
    moves to finer cells."""
    seen = np.zeros(n_cells, dtype=np.uint8)
    n_occupied = 0
    for j in range(cell.shape[0]):
        if seen[cell[j]] == 0:
            seen[cell[j]] = 1
            n_occupied += 1
    if n_occupied < min_cells:
        return np.empty(0, dtype=np.int32), n_occupied
    row = np.empty(n_cells, dtype=np.int32)
    # Eight flags at a time: at 7 bits a photo occupies a few percent of the 2**21 cells.
    words = seen.view(np.uint64)
    r = 0
    for word in range(words.shape[0]):
        if words[word] == 0:
            continue
        for c in range(word * 8, word * 8 + 8):
            if seen[c] != 0:
                row[c] = r
                r += 1
    out = np.empty(cell.shape[0], dtype=np.int32)
    for j in range(cell.shape[0]):
        out[j] = row[cell[j]]
    return out, n_occupied


@njit(cache=True)
def cell_means(rows, n_rows, weights, data):
    """Weighted mean of ``data`` (M, D) per row and the rows' total weights:
    ``(means (n_rows, D), totals (n_rows,))``, summed in colour order as ``np.bincount``
    does, so the means equal its to the last bit."""
    n_dims = data.shape[1]
    total = np.zeros(n_rows)
    sums = np.zeros((n_rows, n_dims))
    for j in range(rows.shape[0]):
        r = rows[j]
        wj = weights[j]
        total[r] += wj
        for d in range(n_dims):
            sums[r, d] += wj * data[j, d]
    for r in range(n_rows):
        for d in range(n_dims):
            sums[r, d] /= total[r]
    return sums, total


# Serial (see fastkm.oklab.weighted_distance_sum).
@njit(cache=True)
def squared_errors(colors, counts, palette, index):
    """``err[j] = counts[j]·||colors[j] - palette[index[j]]||²`` for every distinct colour; the
    image's total squared error is their sum."""
    err = np.empty(colors.shape[0])
    for j in range(colors.shape[0]):
        s = 0.0
        for ch in range(colors.shape[1]):
            t = np.float64(colors[j, ch]) - np.float64(palette[index[j], ch])
            s += t * t
        err[j] = counts[j] * s
    return err
