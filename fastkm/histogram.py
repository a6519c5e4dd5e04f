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

from .kernels import _int_zeros

#: Pixels per chunk of the bucketing passes.
PIXEL_CHUNK = 1 << 16
#: Buckets per parallel work item of the counting pass (each item clears one table).
BUCKET_GROUP = 8


@njit(cache=True)
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


@njit(parallel=True, cache=True)
def distinct_keys(pixels):
    """Distinct keys of ``pixels`` (N, C<=3) uint8, increasing, and how many rows pack to
    each: ``(keys (M,) int64, counts (M,) int64)``. Buckets count in uint32: N < 2**32."""
    n = pixels.shape[0]
    n_chunks = (n + PIXEL_CHUNK - 1) // PIXEL_CHUNK
    hist = _int_zeros((n_chunks, 256))
    for c in prange(n_chunks):
        for p in range(c * PIXEL_CHUNK, min(n, (c + 1) * PIXEL_CHUNK)):
            hist[c, _key(pixels, p) >> 16] += 1
    offsets, start = _bucket_offsets(hist)
    low = np.empty(n, dtype=np.uint16)
    for c in prange(n_chunks):
        at = offsets[c]
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
        for b in range(g * BUCKET_GROUP, (g + 1) * BUCKET_GROUP):
            first, last = start[b], start[b + 1]
            if first == last:
                continue
            for t in range(first, last):
                table[low[t]] += 1
            m = 0
            for v in range(1 << 16):
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
    for b in prange(256):
        first = start[b]
        for j in range(n_found[b]):
            keys[out_start[b] + j] = found[first + j]
            counts[out_start[b] + j] = found_counts[first + j]
    return keys, counts


@njit(cache=True)
def unpack_keys(keys, n_channels):
    """(M,) keys back to (M, C) uint8 colours."""
    out = np.empty((keys.shape[0], n_channels), dtype=np.uint8)
    for j in range(keys.shape[0]):
        key = keys[j]
        for ch in range(n_channels - 1, -1, -1):
            out[j, ch] = key & 0xFF
            key >>= 8
    return out


@njit(parallel=True, cache=True)
def map_pixels(pixels, lut, out):
    """``out[p] = lut[key(pixels[p])]`` for every pixel, in parallel."""
    for p in prange(pixels.shape[0]):
        out[p] = lut[_key(pixels, p)]


@njit(parallel=True, cache=True)
def squared_errors(colors, counts, palette, index):
    """``err[j] = counts[j]·||colors[j] - palette[index[j]]||²`` for every distinct colour; the
    image's total squared error is their sum."""
    err = np.empty(colors.shape[0])
    for j in prange(colors.shape[0]):
        s = 0.0
        for ch in range(colors.shape[1]):
            t = np.float64(colors[j, ch]) - np.float64(palette[index[j], ch])
            s += t * t
        err[j] = counts[j] * s
    return err
