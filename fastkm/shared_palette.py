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
import numbers
import time
import warnings

import numpy as np

from . import dither as dithering
from . import histogram, oklab
from .kmeans import KMeans, _check_data
from .quantize import (
    Quantized,
    _check_image,
    _check_n_colors,
    _check_space,
    _fit_seeded,
    _lookup_table,
    _nearest_entries,
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

    n_iter = 0
    points = None
    if len(colors) <= n_colors:
        palette = colors.copy()
        centers = colors.astype(np.float64)
        index = np.arange(len(colors), dtype=np.uint8)
    else:
        data = colors.astype(np.float64) if space == "rgb" else oklab.to_points(colors)
        weights = counts.astype(np.float64)
        if isinstance(init, str):
            if init not in ("k-means++", "random"):
                raise ValueError(f"init must be 'k-means++', 'random' or an array, got {init!r}")
            if isinstance(n_init, bool) or not isinstance(n_init, numbers.Integral) or n_init < 1:
                raise ValueError(f"n_init must be an integer >= 1, got {n_init!r}")
            km = _fit_seeded(data, weights, colors, n_colors, init, int(n_init), max_iter, tol,
                             seed)
        else:
            start = _check_data(init, "init")
            if start.shape != (n_colors, n_channels):
                raise ValueError(f"init must have shape (n_colors, channels) = "
                                 f"({n_colors}, {n_channels}), got {start.shape}")
            if space == "oklab":
                start = oklab.to_points(start)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                km = KMeans(n_colors, init=start, max_iter=max_iter, tol=tol) \
                    .fit(data, sample_weight=weights)
        centers = km._centers64
        n_iter = km.n_iter_
        if space == "rgb":
            palette = np.clip(np.rint(centers), 0, 255).astype(np.uint8)
            targets = palette.astype(np.float64)
        else:
            palette = oklab.from_points(centers, n_channels)
            targets = oklab.to_points(palette)
            points = data
        index = _nearest_entries(data, targets, km.labels_).astype(np.uint8)
    t2 = time.perf_counter()

    results = []
    for image, image_pixels, (own_colors, own_counts, own_keys, inverse), own_rows in zip(
            images, pixels, each, rows):
        start_map = time.perf_counter()
        h, w = image.shape[:2]
        own_index = index[own_rows]
        weights = own_counts.astype(np.float64)
        delta_e = errors = None
        if dither != "none" and len(colors) > n_colors:
            indices = dithering.dither(image, palette, dither)
            sse, distance = oklab.image_errors(image_pixels, palette, indices)
            delta_e = 100.0 * float(distance) / (h * w)
        else:
            if inverse is None:
                lut = _lookup_table(n_channels)
                lut[own_keys] = own_index
                indices = np.empty(h * w, dtype=np.uint8)
                histogram.map_pixels(image_pixels, lut, indices)
            else:
                indices = own_index[inverse]
            indices = indices.reshape(h, w)
            sse = float(histogram.squared_errors(own_colors, weights, palette, own_index).sum())
            own_points = None if points is None else points[own_rows]
            errors = (own_colors, weights, own_points, palette, own_index)
        mse = sse / (h * w * n_channels)
        psnr = float("inf") if mse == 0 else 10.0 * np.log10(255.0 ** 2 / mse)
        results.append(Quantized(palette=palette.copy(), indices=indices, mse=mse, psnr=psnr,
                                 _delta_e=delta_e, _histogram=errors, centers=centers.copy(),
                                 n_iter=n_iter, n_distinct=len(own_colors),
                                 timings={"histogram": t1 - t0, "kmeans": t2 - t1,
                                          "map": time.perf_counter() - start_map}))
    return results
