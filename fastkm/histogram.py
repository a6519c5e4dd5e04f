"""Compiled loops over pixels: distinct colours with their counts, and the lookup-table map.

A colour of C <= 3 channels packs into a key below 2**24, so counts live in a dense table
indexed by key. Threads split the key range rather than the pixels: each reads every pixel
but counts only its own keys, so no count is ever written by two threads and no per-thread
table of 2**24 entries has to be summed afterwards.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

#: Number of distinct keys for up to three 8-bit channels.
N_KEYS_RGB = 1 << 24


@njit(cache=True)
def _key(pixels, p):
    key = 0
    for ch in range(pixels.shape[1]):
        key = (key << 8) | np.int64(pixels[p, ch])
    return key


@njit(parallel=True, cache=True)
def count_keys(pixels, n_keys, n_parts):
    """``counts[key]`` = number of rows of ``pixels`` (N, C<=3) uint8 that pack to ``key``.

    ``n_parts`` slices of the key range are counted in parallel (one per thread is right).
    Counts are uint32: callers keep N below 2**32.
    """
    counts = np.zeros(n_keys, dtype=np.uint32)
    span = (n_keys + n_parts - 1) // n_parts
    for t in prange(n_parts):
        lo = t * span
        hi = min(n_keys, lo + span)
        for p in range(pixels.shape[0]):
            key = _key(pixels, p)
            if key >= lo and key < hi:
                counts[key] += 1
    return counts


@njit(parallel=True, cache=True)
def pack_keys(pixels):
    """(N, C<=3) uint8 colours to (N,) uint32 keys."""
    keys = np.empty(pixels.shape[0], dtype=np.uint32)
    for p in prange(pixels.shape[0]):
        keys[p] = _key(pixels, p)
    return keys


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
