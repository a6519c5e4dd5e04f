"""Numba kernels of the .fkm index-plane coder: context model, logistic mixer, binary arithmetic coder.

SPEC.md ("The strip coder") is the normative description; this module is its reference
implementation. Encoder and decoder run the *same* kernel (``_code_strip``) so that their
models cannot drift apart: the only difference is whether each binary decision is written
from the known pixel or read from the stream.

Every array access in the decoding path is bounded by construction: the pixel loop writes
only inside the strip's rows, byte reads past the end of the coded strip return 0, and the
number of decisions per pixel is at most 2 + ceil(log2 K). A damaged strip therefore decodes
to garbage (caught by the CRC, the index-range check or the length check), never to a crash.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from ..jit import prange_only

# Table B is 2**BUCKET_BITS buckets (at most) of 2**(nb+1) counters, one bucket per hashed
# (W, N, NW, NE): all decisions of a pixel then share one or two cache lines at K <= 16.
BUCKET_BITS = 12
SMALL_TABLE_BITS = 12  # neighbour pattern x run for stages 0 and 1, tree node for stage 2
# Model tables never exceed 2**MAX_TABLE_BITS entries, so one strip's model is at most 16 MiB.
MAX_TABLE_BITS = 22
N_INPUTS = 4  # three context models and a bias input
MIXER_SHIFT = 16
MIXER_LR_SHIFT = 12  # weight step = stretch * error >> MIXER_LR_SHIFT
MIX_INIT = 22000  # about 1/3 in 1/65536: the three models start equally trusted
COUNT_LIMIT = 255  # adaptive-rate counters stop slowing down after this many updates

# Status codes a strip kernel returns (0 = fine).
OK = 0
ERR_INDEX = 1
ERR_LENGTH = 2
ERR_OVERFLOW = 3


def _squash_table() -> np.ndarray:
    """squash(d) = 4096 / (1 + exp(-d / 256)) by integer interpolation, d in [-2047, 2047] (lpaq1)."""
    t = np.array([1, 2, 3, 6, 10, 16, 27, 45, 73, 120, 194, 310, 488, 747, 1101, 1546, 2047,
                  2549, 2994, 3348, 3607, 3785, 3901, 3975, 4022, 4050, 4068, 4079, 4085, 4089,
                  4092, 4093, 4094], dtype=np.int64)
    d = np.arange(-2047, 2048)
    w = d & 127
    i = (d >> 7) + 16  # arithmetic shifts, as in lpaq1's integer code
    return ((t[i] * (128 - w) + t[i + 1] * w + 64) >> 7).astype(np.int32)


def _stretch_table(squash: np.ndarray) -> np.ndarray:
    """stretch(p) = the smallest d with squash(d) >= p: the inverse of squash on 12-bit p."""
    # squash is non-decreasing: the first d where it reaches p, 2047 past its largest value.
    first = np.searchsorted(squash, np.arange(4096), side="left") - 2047
    return np.minimum(first, 2047).astype(np.int32)


SQUASH = _squash_table()
STRETCH = _stretch_table(SQUASH)
# Adaptive rate of a counter that has seen n updates: about 1 / (n + 1.5), in 1/65536.
RATE = np.array([131072 // (2 * n + 3) for n in range(COUNT_LIMIT + 1)], dtype=np.int64)


@njit(cache=True)
def table_bits(k, pixels):
    """(nb, log2 size of table A, log2 bucket count of table B) for k colours, ``pixels``.

    nb = ceil(log2 k) (at least 1) is the depth of the symbol tree. Tables are sized for the
    contexts they can meet and never much beyond what the strip can fill, so a tiny image
    does not pay for a 16 MiB model; table B stays within a core's L2 cache at K <= 16,
    which is what keeps decoding fast on busy photos.
    """
    nb = 1
    while (1 << nb) < k:
        nb += 1
    pb = 0
    while (1 << pb) <= pixels:
        pb += 1
    abits = min(MAX_TABLE_BITS, max(3 * nb, 2 * nb + 3) + 2, pb + 3)
    gbits = min(4 * nb, BUCKET_BITS, max(1, pb - nb))
    return nb, abits, gbits


@njit(cache=True, inline="always")
def _slot(c, bits):
    """Table slot of context number c: c itself when it fits, else a multiplicative hash."""
    if c < (np.int64(1) << bits):
        return c
    return np.int64((np.uint64(c) * np.uint64(0x9E3779B97F4A7C15)) >> np.uint64(64 - bits))


@njit(cache=True, inline="always")
def _update(v, bit, rate):
    """Move a counter (16-bit probability << 16 | update count) towards the coded bit."""
    pr = v >> 16
    n = v & 0xFFFF
    target = -bit & 65535
    pr += ((target - pr) * rate[n]) >> 16
    n += np.int64(n < COUNT_LIMIT)
    return np.uint32((pr << 16) | n)


@njit(cache=True, inline="always")
def _squash(d, squash):
    if d > 2047:
        d = 2047
    if d < -2047:
        d = -2047
    return squash[d + 2047]


@njit(cache=True, inline="always")
def _decide(want, s0, sa, sb, m, t_small, t_a, t_b, mix_w, x1, x2, x, pos, end, buf, decode,
            squash, stretch, rate):
    """Predict, code and learn one binary decision; returns (bit, x1, x2, x, pos)."""
    v0 = np.int64(t_small[s0])
    va = np.int64(t_a[sa])
    vb = np.int64(t_b[sb])
    st0 = np.int64(stretch[v0 >> 20])
    sta = np.int64(stretch[va >> 20])
    stb = np.int64(stretch[vb >> 20])
    dot = mix_w[m, 0] * st0 + mix_w[m, 1] * sta + mix_w[m, 2] * stb + mix_w[m, 3] * 256
    p = np.int64(_squash(dot >> MIXER_SHIFT, squash))
    if p < 1:
        p = 1
    elif p > 4095:
        p = 4095
    rng = x2 - x1
    xmid = x1 + (rng >> 12) * p + (((rng & 4095) * p) >> 12)
    if decode:
        bit = np.int64(1) if x <= xmid else np.int64(0)
    else:
        bit = want
    if bit:
        x2 = xmid
    else:
        x1 = xmid + 1
    while ((x1 ^ x2) & 0xFF000000) == 0:
        if decode:
            b = np.int64(0)
            if pos < end:
                b = np.int64(buf[pos])
            x = ((x << 8) & 0xFFFFFFFF) | b
        elif pos < end:
            buf[pos] = np.uint8(x2 >> 24)
        pos += 1
        x1 = (x1 << 8) & 0xFFFFFFFF
        x2 = ((x2 << 8) & 0xFFFFFFFF) | 255
    err = (bit << 12) - p
    mix_w[m, 0] += (st0 * err) >> MIXER_LR_SHIFT
    mix_w[m, 1] += (sta * err) >> MIXER_LR_SHIFT
    mix_w[m, 2] += (stb * err) >> MIXER_LR_SHIFT
    mix_w[m, 3] += (256 * err) >> MIXER_LR_SHIFT
    t_small[s0] = _update(v0, bit, rate)
    t_a[sa] = _update(va, bit, rate)
    t_b[sb] = _update(vb, bit, rate)
    return bit, x1, x2, x, pos


@njit(cache=True)
def _code_strip(plane, y0, y1, k, buf, start, end, decode,
                squash, stretch, rate):
    """Code rows y0..y1-1 of ``plane`` (H, W) uint8 into/out of buf[start:end].

    decode=False: read pixels, write bytes; returns (status, bytes written or needed).
    decode=True: read bytes, write pixels; returns (status, bytes consumed).
    """
    w = plane.shape[1]
    nb, abits, gbits = table_bits(k, (y1 - y0) * w)
    sbits = SMALL_TABLE_BITS
    t_small = np.full(1 << sbits, np.uint32(32768 << 16), dtype=np.uint32)
    t_a = np.full(1 << abits, np.uint32(32768 << 16), dtype=np.uint32)
    t_b = np.full(1 << (gbits + nb + 1), np.uint32(32768 << 16), dtype=np.uint32)
    n_sets = 2 + nb
    mix_w = np.full((n_sets * 4, N_INPUTS), MIX_INIT, dtype=np.int64)
    mix_w[:, N_INPUTS - 1] = 0

    # Binary arithmetic coder state (carry-less, 32-bit, as in lpaq1).
    x1 = np.int64(0)
    x2 = np.int64(0xFFFFFFFF)
    x = np.int64(0)
    pos = start
    if decode:
        for _ in range(4):
            b = np.int64(0)
            if pos < end:
                b = np.int64(buf[pos])
            x = (x << 8) | b
            pos += 1

    for yy in range(y0, y1):
        run = 0
        for xx in range(w):
            # Neighbours; outside the strip they fall back to ones that exist (see SPEC.md).
            has_up = yy > y0
            if xx > 0:
                wv = np.int64(plane[yy, xx - 1])
            elif has_up:
                wv = np.int64(plane[yy - 1, xx])
            else:
                wv = np.int64(0)
            if has_up:
                nv = np.int64(plane[yy - 1, xx])
                nwv = np.int64(plane[yy - 1, xx - 1]) if xx > 0 else nv
                nev = np.int64(plane[yy - 1, xx + 1]) if xx + 1 < w else nv
                nnv = np.int64(plane[yy - 2, xx]) if yy - 1 > y0 else nv
            else:
                nv = wv
                nwv = wv
                nev = wv
                nnv = wv
            wwv = np.int64(plane[yy, xx - 2]) if xx > 1 else wv
            pat = (np.int64(wv == nv) | (np.int64(wv == nwv) << 1) | (np.int64(wv == nev) << 2)
                   | (np.int64(nv == nwv) << 3) | (np.int64(nv == nev) << 4)
                   | (np.int64(wv == wwv) << 5) | (np.int64(nv == nnv) << 6)
                   | (np.int64(nwv == nev) << 7))
            rb = run if run < 3 else 3
            sym = np.int64(0)
            if not decode:
                sym = np.int64(plane[yy, xx])
            # Decision sequence: "== W", then "== N" (when N differs from W), then the tree.
            c_wn = wv | (nv << nb)
            c_4 = c_wn | (nwv << (2 * nb)) | (nev << (3 * nb))
            bucket = _slot(c_4, gbits) << (nb + 1)
            c_flag = c_wn | ((pat & 7) << (2 * nb))
            # One call site for the decisions (each is inlined where it is called).
            stage = 0
            node = np.int64(1)
            depth = 0
            c_tree = c_wn << nb
            while True:
                if stage == 0:
                    want = np.int64(sym == wv)
                    s_ctx = pat | (rb << 8)
                    a_ctx = (c_flag << 2) | 1
                    b_slot = bucket
                    m = pat & 3
                elif stage == 1:
                    want = np.int64(sym == nv)
                    s_ctx = 1024 | pat | (rb << 8)
                    a_ctx = (c_flag << 2) | 2
                    b_slot = bucket + (1 << nb)
                    m = 4 + (pat & 3)
                else:
                    want = (sym >> (nb - 1 - depth)) & 1
                    s_ctx = 2048 + node
                    a_ctx = ((node | c_tree) << 2) | 3
                    b_slot = bucket + node
                    m = (2 + depth) * 4 + (pat & 3)
                bit, x1, x2, x, pos = _decide(
                    want, s_ctx, _slot(a_ctx, abits), b_slot, m, t_small, t_a, t_b, mix_w,
                    x1, x2, x, pos, end, buf, decode, squash, stretch, rate)
                if stage == 0:
                    if bit:
                        result = wv
                        break
                    stage = 1 if nv != wv else 2
                elif stage == 1:
                    if bit:
                        result = nv
                        break
                    stage = 2
                else:
                    node = (node << 1) | bit
                    depth += 1
                    if depth == nb:
                        result = node - (1 << nb)
                        break
            if result == wv:
                run += 1
            else:
                run = 0
            if decode:
                if result >= k:
                    return ERR_INDEX, yy * w + xx
                plane[yy, xx] = np.uint8(result)

    if decode:
        # The encoder emits every shifted byte plus 1..4 flush bytes, so a stream of the
        # right length leaves the reader 0..3 bytes past its end (those read as zero).
        over = pos - end
        if over < 0 or over > 3:
            return ERR_LENGTH, pos - start
        return OK, pos - start
    # Flush: the shortest prefix of a value in [x1, x2]; the decoder pads it with zeros.
    for nbytes in range(1, 5):
        sh = 32 - 8 * nbytes
        v = ((x1 + (1 << sh) - 1) >> sh) << sh
        if v <= x2:
            for i in range(nbytes):
                if pos < end:
                    buf[pos] = np.uint8((v >> (24 - 8 * i)) & 255)
                pos += 1
            break
    # Bytes past ``end`` were counted but not written: the caller retries with more room.
    if pos > end:
        return ERR_OVERFLOW, pos - start
    return OK, pos - start


@njit(cache=True, parallel=prange_only())
def code_strips(plane, strip_h, k, buf, starts, ends, decode, perm, lanes, squash, stretch, rate):
    """Encode or decode every strip of ``plane``; strip s uses buf[starts[s]:ends[s]].

    One kernel for both directions, so a cold start compiles the parallel loop once.
    Encoding: ``plane`` holds the symbols, each strip gets its own slice of ``buf``;
    returns (status, bytes written) per strip. Decoding: ``plane`` is filled strip by strip
    (the container has bounds-checked starts/ends against the file) and each finished strip
    is mapped through ``perm`` (symbol -> palette index); returns (status, bytes consumed
    or, for ERR_INDEX, the flat pixel position).

    Lane t handles strips t, t + lanes, ...: neighbouring strips cost about the same, so
    interleaving balances the threads better than contiguous chunks (sky above, detail
    below).
    """
    h, w = plane.shape
    n = starts.shape[0]
    status = np.zeros(n, dtype=np.int64)
    value = np.zeros(n, dtype=np.int64)
    for t in prange(lanes):
        for s in range(t, n, lanes):
            y0 = s * strip_h
            y1 = min(h, y0 + strip_h)
            r, v = _code_strip(plane, y0, y1, k, buf, starts[s], ends[s], decode,
                               squash, stretch, rate)
            status[s] = r
            value[s] = v
            if decode and r == OK:
                for yy in range(y0, y1):
                    for xx in range(w):
                        plane[yy, xx] = perm[plane[yy, xx]]
    return status, value
