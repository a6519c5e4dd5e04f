"""Dithering onto a fixed palette: ordered (Bayer 8x8) and Floyd–Steinberg (serpentine).

Both work on sRGB values, as most palette tools do: the error that Floyd–Steinberg carries
is a difference of sRGB values, and "nearest" is the Euclidean nearest palette entry in
sRGB (ties to the lowest index). That holds whatever space found the palette. Alpha, when
present, takes part in "nearest" but is never perturbed or diffused: a dithered mask edge
would be noise, not shading.

Nearest-entry search is exact and fast, in two ways built on one test: an entry can be
nearest to some point of a box only if its distance to the box is at most the smallest,
over entries, of the farthest distance to the box.
- Floyd–Steinberg (and ordered dithering of grey and RGBA) looks each pixel up in a coarse
  grid of cells (32 per channel for grey and RGB, 16 for RGBA), each listing the entries
  that pass the test for the cell's box: a few entries instead of the whole palette.
- Ordered dithering of RGB knows every pixel's value in advance, so it works by tiles of
  ``TILE_ROWS`` x ``TILE_COLS`` pixels: the entries that pass the test for the box of the
  tile's values, then every pixel against each of them, in SIMD with no data-dependent
  branch. Scanning more entries without branches beats scanning fewer with them (2-3x at
  K = 64).

Ordered dithering is one independent step per pixel: parallel over rows (over bands of
``TILE_ROWS`` rows for RGB). Floyd–Steinberg is sequential by nature; here the image is
cut into horizontal strips of ``STRIP_ROWS`` rows, processed in parallel. Each strip
starts from zero error, but first runs over the ``WARMUP_ROWS`` rows above it, discarding
their output, so that the error state it starts with is already close to the one a single
sequential pass would have: the seam that a cold start leaves becomes faint to invisible.
Strips are fixed in size, so the result does not depend on the number of threads.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from .jit import prange_only

MODES = ("none", "fs", "ordered")
#: Rows per Floyd–Steinberg strip (the unit of parallel work).
STRIP_ROWS = 128
#: Rows above each strip diffused first, output discarded, to warm up the error state.
WARMUP_ROWS = 8
#: Rows and columns of a tile of the RGB ordered kernel: enough pixels that choosing the
#: tile's candidates costs little per pixel, close enough together that they stay few. A
#: block spans fewer colours than a run of one row: at K = 64 a tile keeps 25 of
#: fallenleaf.jpg's entries (18 of kite.jpg's) where 256 pixels of a row kept 45 (32); on
#: path.jpg's fine texture both keep ~55. Against those runs, over the six large photos:
#: K = 64 1.2x, K = 256 1.4-1.5x (geometric means), K = 16 within noise.
TILE_ROWS, TILE_COLS = 16, 32

#: Bayer's 8x8 threshold matrix: values 0..63, each once, recursively interleaved.
BAYER8 = np.array([[0, 32, 8, 40, 2, 34, 10, 42],
                   [48, 16, 56, 24, 50, 18, 58, 26],
                   [12, 44, 4, 36, 14, 46, 6, 38],
                   [60, 28, 52, 20, 62, 30, 54, 22],
                   [3, 35, 11, 43, 1, 33, 9, 41],
                   [51, 19, 59, 27, 49, 17, 57, 25],
                   [15, 47, 7, 39, 13, 45, 5, 37],
                   [63, 31, 55, 23, 61, 29, 53, 21]])

_F7, _F3, _F5, _F1 = (np.float32(n / 16) for n in (7, 3, 5, 1))


# ---- nearest palette entry through a grid of candidate lists --------------------------
#
# Kernels see every colour as four float32 channels: the palette is padded with zeros to
# (K, 4) and so is each pixel, so one unrolled loop serves grey, RGB and RGBA (padding adds
# 0 to every distance). A cell index is sum_ch (value_ch >> shift) * stride_ch, with
# stride 0 for the padding.

def grid_bits(n_channels: int) -> int:
    """Bits of each channel value that pick the grid cell (cells = 2**(bits * C)).

    For RGB, 5 bits leave about 2 candidates per pixel at K = 16 and 7 at K = 64 and cost
    ~6 ms to build; 6 bits leave 1.4 and 3 but cost ~35 ms, more than they save on a 4 MP
    photo (measured on kite.jpg, 2 cores)."""
    return {1: 8, 3: 5, 4: 4}[n_channels]


@njit(cache=True)
def _low(cell, bits, n_channels, ch):
    """Lower bound in channel ``ch`` of ``cell`` of the grid with ``bits`` bits per channel."""
    side = 1 << bits
    return ((cell >> (bits * (n_channels - 1 - ch))) & (side - 1)) * (256.0 / side)


@njit(cache=True)
def _parent(cell, bits, n_channels):
    """The cell of the grid one bit coarser that contains ``cell``."""
    parent = 0
    for ch in range(n_channels):
        coord = (cell >> (bits * (n_channels - 1 - ch))) & ((1 << bits) - 1)
        parent = (parent << (bits - 1)) | (coord >> 1)
    return parent


@njit(cache=True)
def _far(p, lo, hi):
    """Farthest distance, along one channel, from value ``p`` to the interval [lo, hi]."""
    return max(abs(p - lo), abs(p - hi))


@njit(cache=True)
def _gap(p, lo, hi):
    """Distance, along one channel, from value ``p`` to the interval [lo, hi]."""
    return max(lo - p, p - hi, 0.0)


@njit(cache=True)
def _with_slack(bound):
    # Slack for float32 rounding of the per-pixel distances (values up to 4 * 255**2).
    return bound * (1.0 + 1e-5) + 1.0


@njit(cache=True)
def _cell_candidates(palette, n_channels, bits, cell, offsets, ids, dest, at, write):
    """Write the candidates of ``cell`` (at ``bits`` bits per channel) into ``dest[at:]``,
    chosen among those of its parent; return how many.

    An entry is kept if its distance to the cell's box is at most the smallest, over the
    parent's candidates, of their farthest distance to the box. The entry nearest to any
    point of the cell is among the parent's candidates and passes that test.
    """
    step = 256.0 / (1 << bits)
    parent = _parent(cell, bits, n_channels)
    first, last = offsets[parent], offsets[parent + 1]
    bound = np.inf
    for t in range(first, last):
        dmax = 0.0
        for ch in range(n_channels):
            p = np.float64(palette[ids[t], ch])
            lo = _low(cell, bits, n_channels, ch)
            far = _far(p, lo, lo + step)
            dmax += far * far
        bound = min(bound, dmax)
    bound = _with_slack(bound)
    n = 0
    for t in range(first, last):
        dmin = 0.0
        for ch in range(n_channels):
            p = np.float64(palette[ids[t], ch])
            lo = _low(cell, bits, n_channels, ch)
            gap = _gap(p, lo, lo + step)
            dmin += gap * gap
        if dmin <= bound:
            if write:
                dest[at + n] = ids[t]
            n += 1
    return n


@njit(parallel=prange_only(), cache=True)
def _refine(palette, n_channels, bits, offsets, ids):
    """Candidate lists at ``bits`` bits per channel from those at ``bits - 1``: counted
    first, then written (parents list few entries, so the second pass costs little)."""
    n_cells = 1 << (bits * n_channels)
    counts = np.zeros(n_cells + 1, dtype=np.int64)
    for cell in prange(n_cells):
        counts[cell + 1] = _cell_candidates(palette, n_channels, bits, np.int64(cell), offsets,
                                            ids, ids, 0, False)
    new_offsets = np.cumsum(counts)
    new_ids = np.empty(new_offsets[-1], dtype=np.uint8)
    for cell in prange(n_cells):
        _cell_candidates(palette, n_channels, bits, np.int64(cell), offsets, ids, new_ids,
                         new_offsets[cell], True)
    return new_offsets, new_ids


def candidate_grid(palette: np.ndarray, n_channels: int, bits: int):
    """For each cell of the grid, the palette entries that may be nearest to a point in it.

    Returns ``(offsets, ids)``: cell ``c`` lists ``ids[offsets[c]:offsets[c + 1]]`` in
    increasing index order. Built one bit at a time from the whole palette, so each level
    tests only the few candidates of the level above: cheap even at 2**18 cells.
    """
    offsets = np.array([0, len(palette)], dtype=np.int64)
    ids = np.arange(len(palette), dtype=np.uint8)
    for level in range(1, bits + 1):
        offsets, ids = _refine(palette, n_channels, level, offsets, ids)
    return offsets, ids


@njit(cache=True, inline="always")
def _nearest(v0, v1, v2, v3, palette, offsets, ids, shift, strides):
    """Index of the palette entry nearest to (v0, v1, v2, v3), each float32 in [0, 255]."""
    cell = ((np.int64(v0) >> shift) * strides[0] + (np.int64(v1) >> shift) * strides[1]
            + (np.int64(v2) >> shift) * strides[2] + (np.int64(v3) >> shift) * strides[3])
    best = 0
    best_d = np.float32(np.inf)
    for t in range(offsets[cell], offsets[cell + 1]):
        j = ids[t]
        e0 = v0 - palette[j, 0]
        e1 = v1 - palette[j, 1]
        e2 = v2 - palette[j, 2]
        e3 = v3 - palette[j, 3]
        d = e0 * e0 + e1 * e1 + e2 * e2 + e3 * e3
        if d < best_d:
            best_d = d
            best = j
    return best


@njit(cache=True, inline="always")
def _nearest3(v0, v1, v2, palette, offsets, ids, shift, bits):
    """``_nearest`` for RGB: the same result, with the cell index and distance unrolled."""
    cell = ((((np.int64(v0) >> shift) << bits) | (np.int64(v1) >> shift)) << bits) \
        | (np.int64(v2) >> shift)
    first, last = offsets[cell], offsets[cell + 1]
    if last - first == 1:
        # Most cells of a small palette have one candidate: no distance to compute.
        return np.int64(ids[first])
    best = 0
    best_d = np.float32(np.inf)
    for t in range(first, last):
        j = ids[t]
        e0 = v0 - palette[j, 0]
        e1 = v1 - palette[j, 1]
        e2 = v2 - palette[j, 2]
        d = e0 * e0 + e1 * e1 + e2 * e2
        if d < best_d:
            best_d = d
            best = j
    return best


@njit(cache=True)
def _clamp(x):
    return min(max(x, np.float32(0.0)), np.float32(255.0))


@njit(cache=True, inline="always")
def _channel(image, y, x, ch):
    return np.float32(image[y, x, ch]) if ch < image.shape[2] else np.float32(0.0)


# ---- the three modes ---------------------------------------------------------------------

@njit(parallel=prange_only(), cache=True)
def ordered_kernel(image, palette, offsets, ids, shift, strides, thresholds, gains, out):
    """``out[y, x]`` = nearest entry to ``clamp(image[y, x] + gains * thresholds[y % 8, x % 8])``
    in float32 (``gains`` is 1 for each dithered channel, 0 for alpha and padding)."""
    height, width = out.shape
    for y in prange(height):
        for x in range(width):
            t = thresholds[y & 7, x & 7]
            v0 = _clamp(_channel(image, y, x, 0) + t * gains[0])
            v1 = _clamp(_channel(image, y, x, 1) + t * gains[1])
            v2 = _clamp(_channel(image, y, x, 2) + t * gains[2])
            v3 = _clamp(_channel(image, y, x, 3) + t * gains[3])
            out[y, x] = _nearest(v0, v1, v2, v3, palette, offsets, ids, shift, strides)


@njit(cache=True)
def _box_candidates(palette, lo0, lo1, lo2, hi0, hi1, hi2, cand):
    """Write into ``cand`` the entries (RGB) that may be nearest to some point of the box
    ``[lo, hi]``, in increasing order, then copies of the last one up to a multiple of 4;
    return that padded count. The test is ``_cell_candidates``'s, on an arbitrary box."""
    bound = np.inf
    for j in range(palette.shape[0]):
        p0, p1, p2 = np.float64(palette[j, 0]), np.float64(palette[j, 1]), \
            np.float64(palette[j, 2])
        f0, f1, f2 = _far(p0, lo0, hi0), _far(p1, lo1, hi1), _far(p2, lo2, hi2)
        bound = min(bound, f0 * f0 + f1 * f1 + f2 * f2)
    bound = _with_slack(bound)
    n = 0
    for j in range(palette.shape[0]):
        p0, p1, p2 = np.float64(palette[j, 0]), np.float64(palette[j, 1]), \
            np.float64(palette[j, 2])
        g0, g1, g2 = _gap(p0, lo0, hi0), _gap(p1, lo1, hi1), _gap(p2, lo2, hi2)
        if g0 * g0 + g1 * g1 + g2 * g2 <= bound:
            cand[n] = j
            n += 1
    while n % 4:
        cand[n] = cand[n - 1]  # a repeat never wins: the test below is strict
        n += 1
    return n


@njit(cache=True)
def _closer(x0, x1, x2, p0, p1, p2, j, best_d, best):
    """``(best_d, best)`` updated with entry ``j`` at ``(p0, p1, p2)``: strictly closer wins,
    so ties keep the lower index (entries come in increasing order)."""
    e0, e1, e2 = x0 - p0, x1 - p1, x2 - p2
    d = e0 * e0 + e1 * e1 + e2 * e2
    return min(d, best_d), (j if d < best_d else best)


@njit(cache=True, inline="always")
def _nearest_in_tile(v0, v1, v2, n, palette, cand, n_cand, best_d, best):
    """``best[:n]`` = nearest of the ``cand`` entries to each pixel of the tile, four
    entries per pass over the pixels; the loop over pixels has no data-dependent branch,
    so it compiles to SIMD code (selects, not jumps)."""
    for i in range(n):
        best_d[i] = np.inf
        best[i] = 0
    for c in range(0, n_cand, 4):
        ja, jb, jc, jd = cand[c], cand[c + 1], cand[c + 2], cand[c + 3]
        a0, a1, a2 = palette[ja, 0], palette[ja, 1], palette[ja, 2]
        b0, b1, b2 = palette[jb, 0], palette[jb, 1], palette[jb, 2]
        c0, c1, c2 = palette[jc, 0], palette[jc, 1], palette[jc, 2]
        d0, d1, d2 = palette[jd, 0], palette[jd, 1], palette[jd, 2]
        ia, ib, ic, idd = np.int32(ja), np.int32(jb), np.int32(jc), np.int32(jd)
        for i in range(n):
            x0, x1, x2 = v0[i], v1[i], v2[i]
            bd, bj = _closer(x0, x1, x2, a0, a1, a2, ia, best_d[i], best[i])
            bd, bj = _closer(x0, x1, x2, b0, b1, b2, ib, bd, bj)
            bd, bj = _closer(x0, x1, x2, c0, c1, c2, ic, bd, bj)
            bd, bj = _closer(x0, x1, x2, d0, d1, d2, idd, bd, bj)
            best_d[i], best[i] = bd, bj


@njit(parallel=prange_only(), cache=True)
def ordered_rgb_kernel(image, palette, thresholds, tile_rows, tile_cols, out):
    """``ordered_kernel`` for RGB, the same result, by tiles of ``tile_rows`` x ``tile_cols``
    pixels: each tile keeps the entries that may be nearest to some point of its box of
    dithered values (``_box_candidates``) and finds every pixel's nearest among them in
    SIMD. Bands of ``tile_rows`` rows are the unit of parallel work."""
    height, width = out.shape
    n_bands = (height + tile_rows - 1) // tile_rows
    n_tiles = (width + tile_cols - 1) // tile_cols
    size = tile_rows * tile_cols
    for band in prange(n_bands):
        y0 = band * tile_rows
        rows = min(tile_rows, height - y0)
        v0 = np.empty(size, np.float32)
        v1 = np.empty(size, np.float32)
        v2 = np.empty(size, np.float32)
        best_d = np.empty(size, np.float32)
        best = np.empty(size, np.int32)
        cand = np.empty(palette.shape[0] + 3, np.int64)
        for k in range(n_tiles):
            x0 = k * tile_cols
            cols = min(tile_cols, width - x0)
            lo0 = lo1 = lo2 = np.float32(255.0)
            hi0 = hi1 = hi2 = np.float32(0.0)
            n = 0
            for r in range(rows):
                # Row views: indexing the 3-D image directly cost 40% more (kite.jpg, K = 1).
                src = image[y0 + r, x0:x0 + cols]
                row_thresholds = thresholds[(y0 + r) & 7]
                for i in range(cols):
                    t = row_thresholds[(x0 + i) & 7]
                    a = _clamp(np.float32(src[i, 0]) + t)
                    b = _clamp(np.float32(src[i, 1]) + t)
                    c = _clamp(np.float32(src[i, 2]) + t)
                    v0[n + i], v1[n + i], v2[n + i] = a, b, c
                    lo0, hi0 = min(lo0, a), max(hi0, a)
                    lo1, hi1 = min(lo1, b), max(hi1, b)
                    lo2, hi2 = min(lo2, c), max(hi2, c)
                n += cols
            n_cand = _box_candidates(palette, lo0, lo1, lo2, hi0, hi1, hi2, cand)
            single = n_cand == 4 and cand[0] == cand[3]
            if not single:
                _nearest_in_tile(v0, v1, v2, n, palette, cand, n_cand, best_d, best)
            n = 0
            for r in range(rows):
                dst = out[y0 + r, x0:x0 + cols]
                for i in range(cols):
                    dst[i] = cand[0] if single else best[n + i]
                n += cols


@njit(cache=True)
def _fs_strip(image, palette, offsets, ids, shift, strides, y_start, y0, y1, out):
    """Floyd–Steinberg over rows ``y_start`` to ``y1``; output kept from row ``y0`` on.
    Error is carried in channels 0-2 (zero for grey's padding), never in alpha."""
    width = out.shape[1]
    rgb = image.shape[2] == 3
    # Two rows of error (this row, next row) chosen by row parity, padded by one pixel on
    # each side so that the loop never tests for the image's edge.
    err = np.zeros((2, width + 2, 3), dtype=np.float32)
    for y in range(y_start, y1):
        cur = err[y & 1]
        nxt = err[(y + 1) & 1]
        forward = y % 2 == 0
        step = 1 if forward else -1
        for i in range(width):
            x = i if forward else width - 1 - i
            v0 = _clamp(_channel(image, y, x, 0) + cur[x + 1, 0])
            v1 = _clamp(_channel(image, y, x, 1) + cur[x + 1, 1])
            v2 = _clamp(_channel(image, y, x, 2) + cur[x + 1, 2])
            if rgb:
                j = _nearest3(v0, v1, v2, palette, offsets, ids, shift, 8 - shift)
            else:
                j = _nearest(v0, v1, v2, _channel(image, y, x, 3), palette, offsets, ids, shift,
                             strides)
            if y >= y0:
                out[y, x] = j
            e0 = v0 - palette[j, 0]
            e1 = v1 - palette[j, 1]
            e2 = v2 - palette[j, 2]
            _spread(cur, x + 1 + step, e0, e1, e2, _F7)
            _spread(nxt, x + 1 - step, e0, e1, e2, _F3)
            _spread(nxt, x + 1, e0, e1, e2, _F5)
            _spread(nxt, x + 1 + step, e0, e1, e2, _F1)
        cur[:, :] = 0.0


@njit(cache=True, inline="always")
def _spread(row, x, e0, e1, e2, weight):
    row[x, 0] += e0 * weight
    row[x, 1] += e1 * weight
    row[x, 2] += e2 * weight


@njit(parallel=prange_only(), cache=True)
def fs_kernel(image, palette, offsets, ids, shift, strides, strip_rows, warmup_rows, out):
    """Floyd–Steinberg, serpentine (even rows left to right, odd rows right to left, by
    absolute row number), in strips of ``strip_rows`` rows, each warmed up on the
    ``warmup_rows`` rows above it. Error: float32, weights 7/16 ahead, 3/16, 5/16, 1/16 on
    the next row; error pushed past the image's edges is dropped."""
    height = out.shape[0]
    n_strips = (height + strip_rows - 1) // strip_rows
    for s in prange(n_strips):
        y0 = s * strip_rows
        _fs_strip(image, palette, offsets, ids, shift, strides, max(0, y0 - warmup_rows),
                  y0, min(height, y0 + strip_rows), out)


def ordered_thresholds(palette: np.ndarray) -> np.ndarray:
    """The 8x8 offsets (float32) added to each channel before the nearest-entry search.

    The offsets span one typical palette step: the median distance from an entry to its
    nearest neighbour, shared over the dithered channels (an offset ``s`` on each of three
    channels moves a colour by ``s * sqrt(3)``). A colour between two neighbouring entries
    is then drawn from both in proportion to where it lies; a larger spread adds noise, a
    smaller one leaves bands. The median ignores a few near-duplicate entries.
    """
    pal = palette.astype(np.float64)
    n_dithered = min(pal.shape[1], 3)
    if len(pal) < 2:
        spread = 0.0
    else:
        d2 = ((pal[:, None, :n_dithered] - pal[None, :, :n_dithered]) ** 2).sum(-1)
        np.fill_diagonal(d2, np.inf)
        spread = float(np.median(np.sqrt(d2.min(axis=1)))) / np.sqrt(n_dithered)
    return (spread * ((BAYER8 + 0.5) / 64.0 - 0.5)).astype(np.float32)


def check_mode(mode) -> str:
    if not isinstance(mode, str) or mode not in MODES:
        raise ValueError(f"dither must be one of {', '.join(map(repr, MODES))}, got {mode!r}")
    return mode


def dither(image, palette, mode: str = "fs") -> np.ndarray:
    """Index plane (H, W) uint8 of ``image`` on ``palette``, by ``mode``:

    "none" the nearest entry of each pixel, "ordered" Bayer 8x8, "fs" Floyd–Steinberg. See
    the module notes: sRGB values, exact nearest entry, alpha not dithered.
    ``image`` is (H, W) or (H, W, C) uint8, ``palette`` (K, C) uint8, 1 <= K <= 256.
    """
    mode = check_mode(mode)
    image = np.asarray(image)
    palette = np.asarray(palette)
    if image.dtype != np.uint8 or palette.dtype != np.uint8:
        raise ValueError(f"image and palette must be uint8, got {image.dtype} and "
                         f"{palette.dtype}")
    if image.ndim == 2:
        image = image[:, :, None]
    if image.ndim != 3 or image.shape[2] not in (1, 3, 4) or 0 in image.shape:
        raise ValueError(f"image must have shape (H, W) or (H, W, C) with C in (1, 3, 4) "
                         f"and H, W > 0, got {image.shape}")
    if palette.ndim != 2 or palette.shape[1] != image.shape[2] or not 1 <= len(palette) <= 256:
        raise ValueError(f"palette must have shape (K, {image.shape[2]}) with 1 <= K <= 256, "
                         f"got {palette.shape}")
    image = np.ascontiguousarray(image)
    n_channels = image.shape[2]
    pal = np.zeros((len(palette), 4), dtype=np.float32)
    pal[:, :n_channels] = palette
    out = np.empty(image.shape[:2], dtype=np.uint8)
    thresholds = ordered_thresholds(palette) if mode == "ordered" \
        else np.zeros((8, 8), dtype=np.float32)
    if mode != "fs" and n_channels == 3:
        ordered_rgb_kernel(image, pal, thresholds, TILE_ROWS, TILE_COLS, out)
        return out
    bits = grid_bits(n_channels)
    offsets, ids = candidate_grid(pal, n_channels, bits)
    strides = np.zeros(4, dtype=np.int64)
    strides[:n_channels] = [1 << (bits * (n_channels - 1 - ch)) for ch in range(n_channels)]
    if mode == "fs":
        fs_kernel(image, pal, offsets, ids, 8 - bits, strides, STRIP_ROWS, WARMUP_ROWS, out)
    else:
        gains = np.zeros(4, dtype=np.float32)
        gains[:min(n_channels, 3)] = 1.0
        ordered_kernel(image, pal, offsets, ids, 8 - bits, strides, thresholds, gains, out)
    return out
