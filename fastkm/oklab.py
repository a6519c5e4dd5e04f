"""sRGB <-> OKLab, compiled: the perceptual space that `quantize(space="oklab")` clusters in.

OKLab (Björn Ottosson, 2020, https://bottosson.github.io/posts/oklab/): sRGB values are
decoded to linear light with the sRGB transfer function, taken to cone-like LMS by the
matrix ``M1``, compressed by a cube root, and mixed by ``M2`` into L (lightness, 0..1) and
a, b (green-red, blue-yellow; about -0.3..0.3 for sRGB). Euclidean distance there follows
perceived difference far better than in sRGB. ``delta E`` is reported as the distance x 100;
about 2 is a just-noticeable difference (the JND of 0.02 that CSS Color 4 uses for OKLab).

The way back inverts each step. A point of OKLab need not be an sRGB colour (the mean of
sRGB colours in OKLab can fall just outside the gamut), so linear RGB is clamped to [0, 1]
before encoding: the simplest gamut mapping, and enough for palette centres, which are
means of in-gamut colours.

All arithmetic is float64. The uint8 path decodes through a 256-entry table computed by the
very same scalar function as the float path, so both give identical bits for integer input.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from .jit import prange_only
from .kernels import serial_twin

#: Colours per chunk of the parallel loops (fixed, so results do not depend on threads).
CHUNK = 8192

#: Linear sRGB -> LMS (Ottosson's M1 for linear sRGB input, as published in the post).
M1 = np.array([[0.4122214708, 0.5363325363, 0.0514459929],
               [0.2119034982, 0.6806995451, 0.1073969566],
               [0.0883024619, 0.2817188376, 0.6299787005]])
#: Cube-rooted LMS -> OKLab (Ottosson's M2).
M2 = np.array([[0.2104542553, 0.7936177850, -0.0040720468],
               [1.9779984951, -2.4285922050, 0.4505937099],
               [0.0259040371, 0.7827717662, -0.8086757660]])
# The post prints the inverses rounded to 10 digits; inverting here instead makes
# uint8 -> OKLab -> uint8 exact for every colour (checked in the tests), with room to spare.
M1_INV = np.linalg.inv(M1)
M2_INV = np.linalg.inv(M2)


@njit(cache=True)
def srgb_to_linear(v):
    """sRGB transfer function decoded: ``v`` in [0, 1] -> linear light in [0, 1]."""
    if v <= 0.04045:
        return v / 12.92
    return ((v + 0.055) / 1.055) ** 2.4


@njit(cache=True)
def linear_to_srgb(x):
    """Linear light in [0, 1] -> sRGB-encoded value in [0, 1] (clamped first)."""
    x = min(max(x, 0.0), 1.0)
    if x <= 0.0031308:
        return 12.92 * x
    return 1.055 * x ** (1.0 / 2.4) - 0.055


@njit(cache=True)
def _linear_to_lab(r, g, b, m1, m2, out, i):
    l_ = np.cbrt(m1[0, 0] * r + m1[0, 1] * g + m1[0, 2] * b)
    m_ = np.cbrt(m1[1, 0] * r + m1[1, 1] * g + m1[1, 2] * b)
    s_ = np.cbrt(m1[2, 0] * r + m1[2, 1] * g + m1[2, 2] * b)
    out[i, 0] = m2[0, 0] * l_ + m2[0, 1] * m_ + m2[0, 2] * s_
    out[i, 1] = m2[1, 0] * l_ + m2[1, 1] * m_ + m2[1, 2] * s_
    out[i, 2] = m2[2, 0] * l_ + m2[2, 1] * m_ + m2[2, 2] * s_


@njit(cache=True)
def linear_table():
    """Linear light of every uint8 sRGB value, ``srgb_to_linear(v / 255)``."""
    table = np.empty(256)
    for v in range(256):
        table[v] = srgb_to_linear(v / 255.0)
    return table


@njit(parallel=prange_only(), cache=True)
def _u8_to_oklab(rgb, table, m1, m2):
    n = rgb.shape[0]
    out = np.empty((n, 3))
    for c in prange((n + CHUNK - 1) // CHUNK):
        for i in range(c * CHUNK, min(n, (c + 1) * CHUNK)):
            _linear_to_lab(table[rgb[i, 0]], table[rgb[i, 1]], table[rgb[i, 2]], m1, m2, out, i)
    return out


_u8_to_oklab_serial = serial_twin(_u8_to_oklab)


# Serial, as _oklab_to_float: they convert K centres, not pixels.
@njit(cache=True)
def _float_to_oklab(rgb, m1, m2):
    out = np.empty((rgb.shape[0], 3))
    for i in range(rgb.shape[0]):
        _linear_to_lab(srgb_to_linear(rgb[i, 0] / 255.0), srgb_to_linear(rgb[i, 1] / 255.0),
                       srgb_to_linear(rgb[i, 2] / 255.0), m1, m2, out, i)
    return out


@njit(cache=True)
def _oklab_to_float(lab, m1_inv, m2_inv):
    out = np.empty((lab.shape[0], 3))
    lms = np.empty(3)
    for i in range(lab.shape[0]):
        for j in range(3):
            t = m2_inv[j, 0] * lab[i, 0] + m2_inv[j, 1] * lab[i, 1] + m2_inv[j, 2] * lab[i, 2]
            lms[j] = t * t * t
        for j in range(3):
            lin = m1_inv[j, 0] * lms[0] + m1_inv[j, 1] * lms[1] + m1_inv[j, 2] * lms[2]
            out[i, j] = 255.0 * linear_to_srgb(lin)
    return out


_TABLE = None


def _table() -> np.ndarray:
    """:func:`linear_table`, made on first use: importing this module runs no kernel."""
    global _TABLE
    if _TABLE is None:
        _TABLE = linear_table()
    return _TABLE


def srgb_to_oklab(rgb, *, parallel: bool = False) -> np.ndarray:
    """(N, 3) sRGB values 0..255 (uint8, or float for non-integer colours such as k-means
    centres) -> (N, 3) float64 OKLab (L, a, b). ``parallel``: uint8 colours on every core,
    for pixels; a photo's distinct colours (~0.1 ms) and palettes take the serial twin, so
    that quantizing compiles no parallel loop for them."""
    rgb = np.asarray(rgb)
    if rgb.ndim != 2 or rgb.shape[1] != 3:
        raise ValueError(f"sRGB colours must have shape (N, 3), got {rgb.shape}")
    if rgb.dtype == np.uint8:
        convert = _u8_to_oklab if parallel else _u8_to_oklab_serial
        return convert(np.ascontiguousarray(rgb), _table(), M1, M2)
    return _float_to_oklab(np.ascontiguousarray(rgb, dtype=np.float64), M1, M2)


def oklab_to_srgb(lab) -> np.ndarray:
    """(N, 3) OKLab -> (N, 3) float64 sRGB values 0..255, out-of-gamut points clamped in
    linear RGB (not rounded; see ``oklab_to_srgb8``)."""
    lab = np.asarray(lab, dtype=np.float64)
    if lab.ndim != 2 or lab.shape[1] != 3:
        raise ValueError(f"OKLab points must have shape (N, 3), got {lab.shape}")
    return _oklab_to_float(np.ascontiguousarray(lab), M1_INV, M2_INV)


def oklab_to_srgb8(lab) -> np.ndarray:
    """(N, 3) OKLab -> (N, 3) uint8 sRGB, rounded to the nearest value."""
    return np.clip(np.rint(oklab_to_srgb(lab)), 0, 255).astype(np.uint8)


# ---- the coordinates a quantizer clusters in, for every channel layout ----------------

def to_points(colors, *, parallel: bool = False) -> np.ndarray:
    """(N, C) colours (uint8 or float 0..255), C in (1, 3, 4) -> (N, D) float64 OKLab points
    (``parallel``: see :func:`srgb_to_oklab`).

    RGB: (L, a, b). Grey (C = 1): L alone, since every grey has a = b = 0 (to 1e-8); the
    distance between greys is then the same as in full OKLab. RGBA: (L, a, b, alpha / 255):
    alpha on the same 0..1 scale as L, so fully transparent against opaque counts as far as
    black against white.
    """
    colors = np.asarray(colors)
    n_channels = colors.shape[1]
    if n_channels == 1:
        grey = np.repeat(colors, 3, axis=1)
        return np.ascontiguousarray(srgb_to_oklab(grey, parallel=parallel)[:, :1])
    if n_channels == 3:
        return srgb_to_oklab(colors, parallel=parallel)
    if n_channels == 4:
        alpha = colors[:, 3:4].astype(np.float64) / 255.0
        return np.ascontiguousarray(np.hstack([srgb_to_oklab(colors[:, :3], parallel=parallel),
                                               alpha]))
    raise ValueError(f"colours must have 1, 3 or 4 channels, got {n_channels}")


def from_points(points, n_channels: int) -> np.ndarray:
    """Inverse of ``to_points``: (N, D) OKLab points -> (N, C) uint8 colours, rounded."""
    points = np.asarray(points, dtype=np.float64)
    if n_channels == 1:
        lab = np.zeros((len(points), 3))
        lab[:, 0] = points[:, 0]
        # A grey's R, G and B agree to 1e-9; take G, the channel L weights most.
        return oklab_to_srgb8(lab)[:, 1:2].copy()
    rgb = oklab_to_srgb8(points[:, :3])
    if n_channels == 3:
        return rgb
    alpha = np.clip(np.rint(points[:, 3:4] * 255.0), 0, 255).astype(np.uint8)
    return np.hstack([rgb, alpha])


# ---- error measures: delta E (x100 OKLab distance) and squared error ------------------

# Serial: a photo's distinct colours take well under a millisecond; a parallel loop took
# ~0.3 s more to compile on a cold start.
@njit(cache=True)
def weighted_distance_sum(points, counts, palette_points, index):
    """``Σ_j counts[j]·||points[j] - palette_points[index[j]]||`` over distinct colours, in
    float64 with per-chunk partial sums (the image's total OKLab distance from its histogram)."""
    n, n_dims = points.shape
    n_chunks = (n + CHUNK - 1) // CHUNK
    part = np.zeros(n_chunks)
    for c in range(n_chunks):
        s = 0.0
        for j in range(c * CHUNK, min(n, (c + 1) * CHUNK)):
            d2 = 0.0
            for ch in range(n_dims):
                t = points[j, ch] - palette_points[index[j], ch]
                d2 += t * t
            s += counts[j] * np.sqrt(d2)
        part[c] = s
    return part.sum()


@njit(cache=True)
def _pixel_point(pixels, p, table, m1, m2, buf):
    """``to_points`` of one pixel into ``buf`` (D,), with the same arithmetic."""
    n_channels = pixels.shape[1]
    if n_channels == 1:
        v = table[pixels[p, 0]]
        _linear_to_lab(v, v, v, m1, m2, buf, 0)
    else:
        _linear_to_lab(table[pixels[p, 0]], table[pixels[p, 1]], table[pixels[p, 2]], m1, m2,
                       buf, 0)
        if n_channels == 4:
            buf[0, 3] = pixels[p, 3] / 255.0


@njit(parallel=prange_only(), cache=True)
def pixel_errors(pixels, palette, palette_points, indices, table, m1, m2):
    """Per-pixel totals for an arbitrary (e.g. dithered) index plane: ``(Σ squared error over
    channels, Σ OKLab distance)`` between ``pixels`` (N, C) uint8 and ``palette[indices]``."""
    n, n_channels = pixels.shape
    n_dims = palette_points.shape[1]
    n_chunks = (n + CHUNK - 1) // CHUNK
    part_sq = np.zeros(n_chunks)
    part_d = np.zeros(n_chunks)
    for c in prange(n_chunks):
        buf = np.zeros((1, 4))
        sq = 0.0
        dist = 0.0
        for p in range(c * CHUNK, min(n, (c + 1) * CHUNK)):
            k = indices[p]
            for ch in range(n_channels):
                t = np.float64(pixels[p, ch]) - np.float64(palette[k, ch])
                sq += t * t
            _pixel_point(pixels, p, table, m1, m2, buf)
            d2 = 0.0
            for ch in range(n_dims):
                t = buf[0, ch] - palette_points[k, ch]
                d2 += t * t
            dist += np.sqrt(d2)
        part_sq[c] = sq
        part_d[c] = dist
    return part_sq.sum(), part_d.sum()


def image_errors(pixels, palette, indices):
    """(sum of squared errors, sum of OKLab distances) of the palette image against
    ``pixels`` (N, C) uint8, pixel by pixel (for index planes no histogram describes)."""
    return pixel_errors(np.ascontiguousarray(pixels), palette, to_points(palette),
                        np.ascontiguousarray(indices).ravel(), _table(), M1, M2)
