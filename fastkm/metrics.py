"""Image quality and size measures: MSE, PSNR, delta E (OKLab), bits per pixel, ratio to raw
24-bit."""

from __future__ import annotations

import math

import numpy as np

#: Elements per block when differencing two images. Bounds the temporaries to a few tens of
#: MB even for a 59 MP picture, where one whole-image float64 copy is 1.4 GB.
_BLOCK_ELEMENTS = 1 << 22


def _as_comparable(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.asarray(a), np.asarray(b)
    # A greyscale picture may come as (H, W) from a reader and (H, W, 1) from a palette.
    if a.ndim == 2 and b.ndim == 3 and b.shape[2] == 1:
        b = b[:, :, 0]
    elif b.ndim == 2 and a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if a.shape != b.shape:
        raise ValueError(f"images differ in shape: {a.shape} and {b.shape}")
    if a.size == 0:
        raise ValueError("images are empty")
    return a, b


# Squares of every difference two uint8 samples can have, -255..255.
_SQUARES = np.arange(-255, 256, dtype=np.int64) ** 2


def mse(a: np.ndarray, b: np.ndarray) -> float:
    """Mean squared error over all pixels and channels, ``mean((a - b) ** 2)``.

    For uint8 images the sum of squares is exact: a histogram of the differences (there are
    only 511) weighted by their squares, which is also faster than float arithmetic.
    Other dtypes are differenced in float64.
    """
    a, b = _as_comparable(a, b)
    rows = max(1, _BLOCK_ELEMENTS // max(1, a[0].size))
    exact = a.dtype == np.uint8 and b.dtype == np.uint8
    total = 0
    for start in range(0, a.shape[0], rows):
        block_a, block_b = a[start:start + rows], b[start:start + rows]
        if exact:
            d = np.subtract(block_a, block_b, dtype=np.int16).ravel()
            d += 255
            total += int(np.bincount(d, minlength=511) @ _SQUARES)
        else:
            d = (block_a.astype(np.float64) - block_b).ravel()
            total += float(np.dot(d, d))
    return total / a.size


def psnr_from_mse(error: float, peak: float = 255.0) -> float:
    """Peak signal-to-noise ratio in dB, ``10 log10(peak^2 / mse)``; inf when mse is 0."""
    if error < 0:
        raise ValueError(f"mse must be >= 0, got {error}")
    return math.inf if error == 0 else 10.0 * math.log10(peak * peak / error)


def psnr(a: np.ndarray, b: np.ndarray, peak: float = 255.0) -> float:
    """PSNR in dB between two uint8 images (inf when they are identical)."""
    return psnr_from_mse(mse(a, b), peak)


def delta_e(a: np.ndarray, b: np.ndarray) -> float:
    """Mean over pixels of the Euclidean distance in OKLab between two uint8 images, x 100.

    One unit is about a just-noticeable difference. Grey images are compared by OKLab
    lightness, RGBA ones with alpha / 255 as a fourth coordinate (``fastkm.oklab.to_points``).
    """
    from .oklab import to_points

    a, b = _as_comparable(a, b)
    if a.dtype != np.uint8 or b.dtype != np.uint8:
        raise ValueError(f"delta_e compares uint8 images, got {a.dtype} and {b.dtype}")
    channels = 1 if a.ndim == 2 else a.shape[2]
    a, b = a.reshape(-1, channels), b.reshape(-1, channels)
    rows = max(1, _BLOCK_ELEMENTS // 4)
    total = 0.0
    for start in range(0, len(a), rows):
        d = (to_points(a[start:start + rows], parallel=True)
             - to_points(b[start:start + rows], parallel=True))
        total += float(np.sqrt((d * d).sum(axis=1)).sum())
    return 100.0 * total / len(a)


def bits_per_pixel(n_bytes: int, height: int, width: int) -> float:
    """Bits of encoded output per image pixel, ``8 * n_bytes / (height * width)``."""
    if height <= 0 or width <= 0:
        raise ValueError(f"image size must be positive, got {width}x{height}")
    return 8.0 * n_bytes / (height * width)


def ratio_to_raw24(n_bytes: int, height: int, width: int) -> float:
    """How many times smaller than raw 24-bit RGB, ``3 * height * width / n_bytes``."""
    if n_bytes <= 0:
        raise ValueError(f"n_bytes must be positive, got {n_bytes}")
    return 3.0 * height * width / n_bytes
