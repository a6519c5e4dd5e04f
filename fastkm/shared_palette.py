"""One palette for a set of images, by exact k-means on their merged colour histograms.

Each image's distinct colours and counts are merged (counts of a colour add over images),
weighted k-means runs once on the merged list, by the same fitting path as
``fastkm.quantize``, and every image is mapped with the one palette. That is exact k-means
on every pixel of every image: from the same start, the same centres as ``fastkm.KMeans``
on the concatenated pixels. For sprite sheets, product shots and the frames of an
animation.
"""

from __future__ import annotations

import itertools
import time
import warnings

import numpy as np

from . import dither as dithering
from .quantize import (
    Quantized,
    _check_image,
    _check_n_colors,
    _check_space,
    _fit_palette,
    _map_image,
    color_histogram,
)


def merge_histograms(histograms):
    """Merge per-image histograms ``[(colors, counts, keys), ...]`` (from
    ``fastkm.quantize.color_histogram``, all of one channel count): the distinct colours of
    all, in key order, their summed counts, and for each image the row of each of its
    colours in the merged list."""
    keys = np.concatenate([k for _, _, k in histograms])
    merged, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    counts = np.zeros(len(merged), dtype=np.int64)
    np.add.at(counts, inverse, np.concatenate([c for _, c, _ in histograms]).astype(np.int64))
    colors = np.concatenate([c for c, _, _ in histograms])[first]
    bounds = np.cumsum([0] + [len(k) for _, _, k in histograms])
    rows = [inverse[a:b] for a, b in itertools.pairwise(bounds)]
    return colors, counts, merged, rows


def quantize_many(images, n_colors=16, *, init="k-means++", n_init=1, max_iter=300, tol=1e-4,
                  seed=None, space="rgb", dither="none") -> list[Quantized]:
    """Reduce every image of ``images`` to one shared palette of ``n_colors`` colours.

    The images must all have the same number of channels (1, 3 or 4; (H, W) counts as 1);
    sizes may differ. Options are ``fastkm.quantize``'s; an explicit ``init`` (K, C) gives
    exactly ``KMeans(init=array)`` on the pixels of all images together. Returns one
    ``Quantized`` per image, all with the same ``palette``, ``centers`` and ``n_iter``;
    ``mse``, ``psnr`` and ``n_distinct`` are each image's own, ``timings["kmeans"]`` the
    shared fit's.
    """
    t0 = time.perf_counter()
    if isinstance(images, np.ndarray):  # else each row would pass for a greyscale image
        raise TypeError("images must be a list of images; for one image use "
                        "fastkm.quantize(image) or quantize_many([image])")
    images = [_check_image(image) for image in images]
    if not images:
        raise ValueError("images is empty: give at least one image")
    channels = {image.shape[2] for image in images}
    if len(channels) > 1:
        raise ValueError(f"images must all have the same number of channels, got "
                         f"{sorted(channels)}")
    n_channels = channels.pop()
    n_colors = _check_n_colors(n_colors)
    space = _check_space(space)
    dither = dithering.check_mode(dither)
    pixels = [image.reshape(-1, n_channels) for image in images]
    if sum(len(p) for p in pixels) >= 1 << 32:
        raise ValueError("the images have 2**32 pixels or more together; at most 2**32 - 1 "
                         "are supported")
    each = [color_histogram(p) for p in pixels]
    colors, counts, _, rows = merge_histograms([(c, n, k) for c, n, k, _ in each])
    t1 = time.perf_counter()

    with warnings.catch_warnings():
        # Merged histograms of small images may leave a cluster empty: not news here.
        warnings.simplefilter("ignore", RuntimeWarning)
        palette, centers, index, points, n_iter = _fit_palette(
            colors, counts, n_colors, n_channels, space, init, n_init, max_iter, tol, seed)
    t2 = time.perf_counter()

    results = []
    for image, image_pixels, hist, own_rows in zip(images, pixels, each, rows):
        start_map = time.perf_counter()
        own_points = None if points is None else points[own_rows]
        indices, mse, psnr, delta_e, errors = _map_image(
            image, image_pixels, hist, index[own_rows],
            palette, own_points, dither if len(colors) > n_colors else "none")
        results.append(Quantized(palette=palette.copy(), indices=indices, mse=mse, psnr=psnr,
                                 _delta_e=delta_e, _histogram=errors, centers=centers.copy(),
                                 n_iter=n_iter, n_distinct=len(hist[0]),
                                 timings={"histogram": t1 - t0, "kmeans": t2 - t1,
                                          "map": time.perf_counter() - start_map}))
    return results
