"""Photo -> palette + index plane, by exact k-means on the colour histogram.

K-means on every pixel and weighted k-means on the distinct colours, each weighted by its
pixel count, are the same problem: same centres, same labels from the same start. The
second costs time in the number of distinct colours (at most 2**24, usually a few hundred
thousand), not of pixels. Pixels are then mapped through a lookup table indexed by colour.
"""

from __future__ import annotations

import numbers
import threading
import time
import warnings
from dataclasses import dataclass, field

import numpy as np

from . import breathing, histogram, kernels, oklab
from . import dither as dithering
from .kmeans import _GUIDED_MIN_CLUSTERS, KMeans, _bound_margin, _check_data
from .palette import PaletteImage

MAX_COLORS = 256
# k-means++ costs K passes over its data, and so does each Lloyd iteration: past this many
# distinct colours the seedings and breathing move to the colours cut to fewer bits per
# channel (_seed_bits), and only their result is run on every colour. kite.jpg (34k colours)
# and path-640.jpg (29k): 2-3x faster at K = 64 and 256 than seeding on the colours.
_SEED_MAX_POINTS = 1 << 12
# Lloyd iterations for each seeding on the coarse histogram, to rank them: the best then
# breathes (fastkm.breathing) there, and only its result runs on every colour. Running each
# seeding for 20 instead gave the same MSE after the full run (six photos x 3 seeds, K = 64
# and 256) in 20-35% more time.
_COARSE_RANK_ITER = 8
# Breathing rounds, and Lloyd iterations per run within them, on the coarse histogram. Over
# six photos x 3 seeds the MSE after the full run fell by 0.4-0.5% (K = 16, 64, 256) against
# running the best seeding on to 20 iterations, for about the same time at K <= 64. Above
# K = 64 the rounds cost more (K + m centres on ~20,000 cells): 2 rounds there gave 0.45%
# (4 rounds 0.6%) for 10-20% more time. Each round splits and drops max(2, K // 64)
# centres.
_BREATHS = 4
_BREATHS_ABOVE_64 = 2
_BREATH_ITER = 5
# The coarse histogram needs this many occupied cells per cluster, or seeding moves to finer
# cells (then to the colours themselves): with a few dozen cells per cluster the seeds lose
# detail (kite.jpg, K = 256, 6 bits: 28 cells per cluster, MSE 1.4% above 7 bits' 87).
_MIN_CELLS_PER_CLUSTER = 64
# Over-relaxation of the run on every colour (``fastkm.kmeans.lloyd``'s ``relax``): late in
# a long run the centres creep the same way for dozens of iterations, and stepping 1.9
# times as far cuts them (path.jpg, K = 256: 80 -> 42 iterations, 185 -> 143 ms) and ends
# lower (MSE -0.1% on average). 1.5, 1.7 and 2.2 did about as well; steps that grow while
# the direction holds (up to 4x or 8x) cost more in bounds than they saved in iterations.
_RELAX = 1.9
# Colours run Hamerly's bounds with sorted rescans, not KMeans's per-iteration choice: on the
# distinct colours of photos, from breathing's settled starts, its bounds prune nearly
# everything, and the CLI then compiles no more kernels than it did.
_ALGORITHM = "hamerly"
#: Spaces k-means can cluster in.
SPACES = ("rgb", "oklab")


def _seed_bits(n_colors):
    """Bits per channel of the coarse histogram that seeding runs on.

    5 bits (at most 2**15 cells, a few thousand occupied in a photo) serve up to K = 64; at
    larger K they leave a handful of cells per cluster and the seeds lose detail: 6 bits
    (~20,000 occupied cells) gave 0.7% lower MSE at K = 256 over four 4 MP photos and two
    seeds, and a shorter full run after, for ~0.2 s more seeding."""
    return 5 if n_colors <= 64 else 6


@dataclass(eq=False)  # PaletteImage's ==: the same palette and indices
class Quantized(PaletteImage):
    """A quantized image: the palette image plus how it was made and how close it is.

    ``mse`` is the mean squared error per channel value against the input, ``psnr`` in dB
    (inf when lossless), ``delta_e`` the mean over pixels of the OKLab distance between
    input and output colour, x 100 (see ``fastkm.oklab.to_points`` for grey and alpha;
    computed on first use, from the histogram: converting the distinct colours to OKLab
    costs ~0.1 s per million, a large share of a default quantize that may never ask),
    ``centers`` the k-means centres before rounding to the palette (OKLab coordinates when
    ``space="oklab"``),
    ``n_iter`` the Lloyd iterations, ``n_distinct`` the distinct colours of the input,
    ``timings`` seconds per stage.
    """

    mse: float = 0.0
    psnr: float = float("inf")
    centers: np.ndarray | None = None
    n_iter: int = 0
    n_distinct: int = 0
    timings: dict = field(default_factory=dict)
    _delta_e: float | None = field(default=None, repr=False)
    # (colours, counts, their points or None, palette, index) until delta_e is first read.
    _histogram: tuple | None = field(default=None, repr=False, compare=False)

    @property
    def delta_e(self) -> float:
        if self._delta_e is None:
            if self._histogram is None:
                raise ValueError("delta_e is known only for the results of fastkm.quantize "
                                 "(it needs the input's colours)")
            colors, counts, points, palette, index = self._histogram
            if points is None:
                points = oklab.to_points(colors)
            distance = oklab.weighted_distance_sum(points, counts, oklab.to_points(palette),
                                                   index)
            self._delta_e = 100.0 * float(distance) / counts.sum()
            self._histogram = None
        return self._delta_e


def _check_image(image):
    if not isinstance(image, np.ndarray):
        image = np.asarray(image)
    if image.dtype != np.uint8:
        raise ValueError(f"image must be a uint8 array, got dtype {image.dtype}")
    if image.ndim == 2:
        image = image[:, :, None]
    if image.ndim != 3 or image.shape[2] not in (1, 3, 4):
        raise ValueError(f"image must have shape (H, W) or (H, W, C) with C in (1, 3, 4), "
                         f"got {image.shape}")
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise ValueError(f"image is empty: shape {image.shape}")
    return np.ascontiguousarray(image)


def _check_n_colors(n_colors):
    if isinstance(n_colors, bool) or not isinstance(n_colors, numbers.Integral) \
            or not 1 <= n_colors <= MAX_COLORS:
        raise ValueError(f"n_colors must be an integer from 1 to {MAX_COLORS}, got {n_colors!r}")
    return int(n_colors)


def color_histogram(pixels):
    """Distinct colours of ``pixels`` (N, C) uint8 with their counts, in key order, and
    the per-pixel index of each pixel's colour in that list (only for C = 4, else None)."""
    n_channels = pixels.shape[1]
    if len(pixels) >= 1 << 32:
        raise ValueError(f"image has {len(pixels)} pixels; at most 2**32 - 1 are supported")
    if n_channels <= 3:
        keys, counts = histogram.distinct_keys(pixels)
        return histogram.unpack_keys(keys, n_channels), counts, keys, None
    # Big-endian keys sort like the colours themselves, as the RGB keys do.
    packed = np.ascontiguousarray(pixels).view(">u4").ravel()
    keys, inverse, counts = np.unique(packed, return_inverse=True, return_counts=True)
    colors = keys.view(np.uint8).reshape(-1, 4)
    return colors, counts, keys, inverse


def _coarse_histogram(colors, data, counts, bits, min_cells=0):
    """The colours cut to ``bits`` bits per channel: the weighted mean of ``data`` (the points
    clustered, one row per colour) in each occupied cell, the cell weights, cells in Z-order
    (``histogram.z_order_cells``), and for each colour the row of its cell; None if fewer
    than ``min_cells`` cells are occupied."""
    cell = histogram.z_order_cells(colors, bits)
    n_cells = 1 << (bits * colors.shape[1])
    if n_cells <= histogram.DENSE_CELLS:
        rows, n_occupied = histogram.cell_rows(cell, n_cells, min_cells)
    else:
        cells, rows = np.unique(cell, return_inverse=True)
        n_occupied = len(cells)
    if n_occupied < min_cells:
        return None
    rows = rows.astype(np.int32, copy=False)
    mean, weight = histogram.cell_means(rows, n_occupied, counts, data)
    return mean, weight, rows


def _seeding_points(colors, data, weights, n_colors):
    """What the seedings run on: ``(points, weights, cell)``, the coarse histogram of
    ``_seed_bits`` bits per channel (or finer, up to 7, until it has enough occupied cells)
    with each colour's row in it, or ``(data, weights, None)`` while the colours are few."""
    if len(data) > _SEED_MAX_POINTS:
        for bits in range(_seed_bits(n_colors), 8):
            coarse = _coarse_histogram(colors, data, weights, bits,
                                       _MIN_CELLS_PER_CLUSTER * n_colors)
            if coarse is not None:
                return coarse
    return data, weights, None


def _fit_seeded(data, weights, colors, n_colors, init, n_init, max_iter, tol, seed):
    """Weighted k-means on the distinct colours from the best of ``n_init`` seedings.

    The seedings (k-means++ or random) are drawn on ``_seeding_points`` (a coarse histogram,
    or the colours themselves while they are few) and each refined there by
    ``_COARSE_RANK_ITER`` Lloyd iterations; the lowest inertia wins, is improved there by
    breathing k-means (``fastkm.breathing``), and only the result runs on every colour,
    over-relaxed (``_RELAX``).
    """
    with warnings.catch_warnings():
        # Duplicate colours are the norm here: an empty cluster is not news.
        warnings.simplefilter("ignore", RuntimeWarning)
        rng = np.random.default_rng(seed)
        points, point_weights, cell = _seeding_points(colors, data, weights, n_colors)
        best = KMeans(n_colors, init=init, n_init=n_init,
                      max_iter=min(max_iter, _COARSE_RANK_ITER), tol=tol, algorithm=_ALGORITHM,
                      random_state=rng)._fit(points, point_weights, counts=True)
        start = breathing.breathe(points, point_weights, best._centers64,
                                  m=max(2, n_colors // 64),
                                  max_rounds=_BREATHS if n_colors <= 64 else _BREATHS_ABOVE_64,
                                  max_iter=min(max_iter, _BREATH_ITER), tol=tol,
                                  guess=best.labels_)
        # Each colour's first search starts from its cell's centre (path.jpg, K = 256: 10.5 ms
        # for the first pass on 150k colours this way, 31 ms by brute force; see
        # fastkm.kmeans._GUIDED_MIN_CLUSTERS).
        guess = start.labels if cell is None else start.labels[cell]
        return KMeans(n_colors, init=start.centers, max_iter=max_iter, tol=tol,
                      algorithm=_ALGORITHM)._fit(
            data, weights, guess, _RELAX, counts=True)


def _nearest_entries(points, targets, guess):
    """Index of the nearest row of ``targets`` for each point (ties to the lowest index),
    searched from ``guess``, valid indices into ``targets``."""
    labels = np.empty(len(points), dtype=np.int32)
    # From the size where a search from a guess beats the brute force, as in Lloyd's first
    # assignment (path.jpg's 150k colours: K = 64 4.3 ms instead of 7.1, K = 256 6.4 vs 33).
    if len(targets) < _GUIDED_MIN_CLUSTERS:
        # Lloyd's first pass, already compiled by the fit, not ``assign``: the same labels,
        # and a cold start compiles one parallel kernel less (~1.1 s).
        kernels.nearest_with_sums(points, np.zeros(len(points)), targets, labels)
        return labels
    sdist, order, _ = kernels.center_geometry(targets)
    kernels.assign_near(points, targets, guess, sdist, order, _bound_margin(points), labels,
                        np.empty(len(points)))
    return labels


_TABLES = threading.local()


def _lookup_table(n_channels):
    """A table with an entry for every colour key of ``n_channels`` channels, contents
    undefined: a call writes the entries of its own colours before it reads any. The 16 MB
    RGB table is kept per thread: a fresh one cost 1.8 ms of page faults and clearing per
    call (a 0.26 MP photo quantizes in ~20 ms), filling a kept one 0.3 ms."""
    if n_channels < 3:
        return np.empty(1 << (8 * n_channels), dtype=np.uint8)
    table = getattr(_TABLES, "rgb", None)
    if table is None:
        table = _TABLES.rgb = np.empty(1 << 24, dtype=np.uint8)
    return table


def _fit_palette(colors, counts, n_colors, n_channels, space, init, n_init, max_iter, tol, seed):
    """The palette of weighted k-means on distinct ``colors`` (with pixel ``counts``):
    ``(palette, centers, index, points, n_iter)``, ``index`` each colour's palette entry and
    ``points`` the colours in OKLab when clustered there (else None)."""
    n_iter = 0
    points = None
    # Options are checked whatever the image: not only when it has more colours than K.
    if isinstance(init, str):
        if init not in ("k-means++", "random"):
            raise ValueError(f"init must be 'k-means++', 'random' or an array, got {init!r}")
        if isinstance(n_init, bool) or not isinstance(n_init, numbers.Integral) or n_init < 1:
            raise ValueError(f"n_init must be an integer >= 1, got {n_init!r}")
    else:
        init = _check_data(init, "init")
        if init.shape != (n_colors, n_channels):
            raise ValueError(f"init must have shape (n_colors, channels) = "
                             f"({n_colors}, {n_channels}), got {init.shape}")
    if len(colors) <= n_colors:
        palette = colors.copy()
        centers = colors.astype(np.float64)
        index = np.arange(len(colors), dtype=np.uint8)
    else:
        # float64 like ordinary KMeans use, so both share one set of compiled kernels.
        data = colors.astype(np.float64) if space == "rgb" else oklab.to_points(colors)
        weights = counts.astype(np.float64)
        if isinstance(init, str):
            km = _fit_seeded(data, weights, colors, n_colors, init, int(n_init), max_iter,
                             tol, seed)
        else:
            start = init
            if space == "oklab":
                start = oklab.to_points(start)
            # Weights are pixel counts: tol as KMeans(init=start) on every pixel has it.
            km = KMeans(n_colors, init=start, max_iter=max_iter, tol=tol,
                        algorithm=_ALGORITHM)._fit(data, weights, counts=True)
        centers = km._centers64
        n_iter = km.n_iter_
        if space == "rgb":
            palette = np.clip(np.rint(centers), 0, 255).astype(np.uint8)
            targets = palette.astype(np.float64)
        else:
            palette = oklab.from_points(centers, n_channels)
            targets = oklab.to_points(palette)
            points = data
        # Rounding can move a colour's nearest entry, so map to the palette, not the labels
        # (which are almost always right: they are where the search starts).
        index = _nearest_entries(data, targets, km.labels_).astype(np.uint8)
    return palette, centers, index, points, n_iter


def _map_image(image, pixels, hist, index, palette, points, dither):
    """Map ``image`` (H, W, C) onto ``palette``: its ``pixels`` (H*W, C), its histogram
    ``hist`` (colors, counts, keys, inverse of ``color_histogram``), each colour's entry
    ``index``, and OKLab ``points`` of the colours (or None); dithered unless ``dither`` is
    "none". Returns ``(indices, mse, psnr, delta_e, histogram_errors)``: delta_e when
    dithered, else the histogram ``Quantized`` measures it from."""
    h, w, n_channels = image.shape
    colors, counts, keys, inverse = hist
    n_pixels = h * w
    delta_e = histogram_errors = None
    if dither != "none":
        indices = dithering.dither(image, palette, dither)
        sse, distance = oklab.image_errors(pixels, palette, indices)
        delta_e = 100.0 * float(distance) / n_pixels
    else:
        if inverse is None:
            lut = _lookup_table(n_channels)
            lut[keys] = index
            indices = np.empty(n_pixels, dtype=np.uint8)
            histogram.map_pixels(pixels, lut, indices)
        else:
            indices = index[inverse]
        indices = indices.reshape(h, w)
        weights = counts.astype(np.float64)
        sse = float(histogram.squared_errors(colors, weights, palette, index).sum())
        histogram_errors = (colors, weights, points, palette, index)
    mse = sse / (n_pixels * n_channels)
    psnr = float("inf") if mse == 0 else 10.0 * np.log10(255.0 ** 2 / mse)
    return indices, mse, psnr, delta_e, histogram_errors


def _check_space(space):
    if not isinstance(space, str) or space not in SPACES:
        raise ValueError(f"space must be one of {', '.join(map(repr, SPACES))}, got {space!r}")
    return space


def quantize(image, n_colors=16, *, init="k-means++", n_init=1, max_iter=300, tol=1e-4,
             seed=None, space="rgb", dither="none") -> Quantized:
    """Reduce ``image`` to a palette of ``n_colors`` colours by k-means.

    ``image`` is (H, W) or (H, W, C) uint8, C in (1, 3, 4); alpha, when present, is
    clustered as a fourth channel. ``init`` is "k-means++" or "random", drawn ``n_init``
    times (the run of lowest inertia is kept; see ``_fit_seeded``), or an explicit (K, C)
    array of starting centres, in which case the result is exactly that of
    ``KMeans(init=array)`` on every pixel. ``max_iter`` and ``tol`` are KMeans's. With no more
    distinct colours than ``n_colors``
    the palette is exactly those colours and the result is lossless.

    ``space="oklab"`` clusters the OKLab coordinates of the colours (same histogram, same
    counts), converts the centres back to sRGB for the palette and gives each colour the
    palette entry nearest in OKLab. An explicit ``init`` is still given as colours (0..255
    per channel) and converted, so the same array means the same start in either space.

    ``dither`` ("none", "fs" Floyd–Steinberg, "ordered" Bayer 8x8) maps pixels onto the
    palette found, in sRGB (see ``fastkm.dither``); the errors are then measured pixel by
    pixel on the dithered result.
    """
    t0 = time.perf_counter()
    image = _check_image(image)
    n_colors = _check_n_colors(n_colors)
    space = _check_space(space)
    dither = dithering.check_mode(dither)
    h, w, n_channels = image.shape
    pixels = image.reshape(-1, n_channels)
    colors, counts, keys, inverse = color_histogram(pixels)
    t1 = time.perf_counter()

    palette, centers, index, points, n_iter = _fit_palette(
        colors, counts, n_colors, n_channels, space, init, n_init, max_iter, tol, seed)
    t2 = time.perf_counter()

    indices, mse, psnr, delta_e, histogram_errors = _map_image(
        image, pixels, (colors, counts, keys, inverse), index, palette, points,
        dither if len(colors) > n_colors else "none")
    t3 = time.perf_counter()
    return Quantized(palette=palette, indices=indices, mse=mse, psnr=psnr,
                     _delta_e=delta_e, _histogram=histogram_errors, centers=centers,
                     n_iter=n_iter, n_distinct=len(colors),
                     timings={"histogram": t1 - t0, "kmeans": t2 - t1, "map": t3 - t2,
                              "total": t3 - t0})
