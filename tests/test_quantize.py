"""quantize: exact k-means on the histogram equals k-means on every pixel."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import fastkm
from fastkm import kernels
from fastkm.quantize import color_histogram


def photo(photo_dir, name="path-640.jpg"):
    import imageio.v3 as iio
    return iio.imread(photo_dir / name)


def pixel_labels(pixels, centers):
    labels = np.empty(len(pixels), np.int32)
    kernels.assign(np.ascontiguousarray(pixels, dtype=np.float64), centers, labels,
                   np.empty(len(pixels)))
    return labels


@pytest.mark.parametrize("tol", [0.0, 1e-4])  # 1e-4: tol scaled by the pixels' variance
@pytest.mark.parametrize("k", [4, 16, 64])
def test_histogram_kmeans_equals_kmeans_on_every_pixel(demo_photo, k, tol):
    import imageio.v3 as iio
    img = iio.imread(demo_photo)[100:260, 200:400]
    pixels = img.reshape(-1, 3).astype(np.float64)
    start = pixels[np.random.default_rng(k).choice(len(pixels), k, replace=False)]
    q = fastkm.quantize(img, k, init=start, tol=tol)
    km = fastkm.KMeans(k, init=start, tol=tol).fit(pixels)
    np.testing.assert_allclose(q.centers, km.cluster_centers_, rtol=1e-12, atol=1e-10)
    assert q.n_iter == km.n_iter_
    np.testing.assert_array_equal(pixel_labels(pixels, q.centers), km.labels_)


@pytest.mark.parametrize("shape", [(40, 30), (40, 30, 1), (40, 30, 3), (40, 30, 4)])
@pytest.mark.parametrize("k", [8, 200])  # 200: colours mapped by a search from their labels
def test_result_is_consistent(shape, k):
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, size=shape, dtype=np.uint8)
    q = fastkm.quantize(img, k, seed=0)
    c = 1 if len(shape) == 2 else shape[2]
    assert q.palette.shape == (k, c) and q.palette.dtype == np.uint8
    assert q.indices.shape == shape[:2] and q.indices.dtype == np.uint8
    out = q.to_image().astype(np.float64)
    ref = img.reshape(shape[0], shape[1], c).astype(np.float64)
    assert q.mse == pytest.approx(((out - ref) ** 2).mean(), rel=1e-12)
    assert q.psnr == pytest.approx(10 * np.log10(255 ** 2 / q.mse), rel=1e-12)
    # Every pixel gets its nearest palette entry (ties to the lowest index).
    np.testing.assert_array_equal(q.indices, nearest_entries(ref, q.palette))
    assert q.n_distinct == len(np.unique(img.reshape(-1, c), axis=0))


def nearest_entries(img, palette):
    """Index of each pixel's nearest palette entry (ties to the lowest), by brute force."""
    px = img.reshape(-1, palette.shape[1]).astype(np.float64)
    d2 = ((px[:, None, :] - palette.astype(np.float64)[None]) ** 2).sum(-1)
    return d2.argmin(axis=1).reshape(img.shape[:2])


def test_lookup_table_kept_between_calls_and_threads_gives_fresh_results():
    """The RGB lookup table is reused per thread with stale entries: each call must still map
    every pixel to its own nearest entry, in sequence and in parallel threads."""
    from concurrent.futures import ThreadPoolExecutor

    rng = np.random.default_rng(5)
    images = [rng.integers(0, 256, (60, 50, 3), dtype=np.uint8) for _ in range(4)]
    images[1][:30] = images[0][:30]  # shared colours get other entries in the next palette
    for img, k in zip(images, (8, 16, 64, 200)):
        q = fastkm.quantize(img, k, seed=0)
        np.testing.assert_array_equal(q.indices, nearest_entries(img, q.palette))
    alone = [fastkm.quantize(img, 16, seed=1) for img in images]
    with ThreadPoolExecutor(4) as pool:
        together = list(pool.map(lambda img: fastkm.quantize(img, 16, seed=1), images * 3))
    for q, want in zip(together, alone * 3):
        np.testing.assert_array_equal(q.palette, want.palette)
        np.testing.assert_array_equal(q.indices, want.indices)


@settings(max_examples=60, deadline=None)
@given(img=arrays(np.uint8, st.tuples(st.integers(1, 12), st.integers(1, 12), st.sampled_from([1, 3, 4])),
                  elements=st.sampled_from([0, 7, 128, 255])),
       k=st.integers(1, 256))
def test_few_colours_are_kept_exactly(img, k):
    distinct = np.unique(img.reshape(-1, img.shape[2]), axis=0)
    q = fastkm.quantize(img, k, seed=1)
    if len(distinct) <= k:
        np.testing.assert_array_equal(q.to_image(), img)
        assert q.mse == 0.0 and q.psnr == float("inf")
        assert len(q.palette) == len(distinct)
    else:
        assert len(q.palette) == k
        assert q.mse > 0


@settings(max_examples=60, deadline=None)
@given(arrays(np.uint8, st.tuples(st.integers(1, 40), st.sampled_from([1, 3, 4])),
              elements=st.integers(0, 255)))
def test_color_histogram_matches_numpy_unique(pixels):
    colors, counts, _, inverse = color_histogram(np.ascontiguousarray(pixels))
    ref, ref_counts = np.unique(pixels, axis=0, return_counts=True)
    np.testing.assert_array_equal(colors, ref)
    np.testing.assert_array_equal(counts, ref_counts)
    if inverse is not None:
        np.testing.assert_array_equal(colors[inverse.ravel()], pixels)


@pytest.mark.parametrize("shape", [(1100, 1000, 3), (700, 600, 1), (300, 1, 3)])
def test_color_histogram_on_larger_skewed_images(shape):
    # Several pixel chunks, buckets of very unequal size (the top byte mostly 0..31), a
    # bucket holding a whole grey image, and a column image.
    rng = np.random.default_rng(3)
    img = rng.integers(0, 256, size=shape, dtype=np.uint8)
    img[:, :, 0] //= 8
    img[: shape[0] // 3] = 255
    colors, counts, keys, _ = color_histogram(img.reshape(-1, shape[2]))
    ref, ref_counts = np.unique(img.reshape(-1, shape[2]), axis=0, return_counts=True)
    np.testing.assert_array_equal(colors, ref)
    np.testing.assert_array_equal(counts, ref_counts)
    packed = np.zeros(len(ref), dtype=np.int64)
    for ch in range(shape[2]):
        packed = (packed << 8) | ref[:, ch]
    np.testing.assert_array_equal(keys, packed)


def test_same_seed_same_palette(demo_photo):
    import imageio.v3 as iio
    img = iio.imread(demo_photo)
    a = fastkm.quantize(img, 16, seed=3)
    b = fastkm.quantize(img, 16, seed=3)
    np.testing.assert_array_equal(a.palette, b.palette)
    np.testing.assert_array_equal(a.indices, b.indices)


@pytest.mark.parametrize("channels,bits", [(3, 5), (3, 7), (4, 5), (4, 6), (1, 7)])
def test_coarse_histogram_is_the_weighted_mean_of_each_cell(rng, channels, bits):
    from fastkm.quantize import _coarse_histogram

    # Both paths: occupied cells flagged in a dense table (up to 3 x 7 bits) and sorted
    # cells (4 x 6 bits).
    colors = np.unique(rng.integers(0, 256, (3000, channels), dtype=np.uint8), axis=0)
    counts = rng.integers(1, 50, len(colors)).astype(np.float64)
    data = colors.astype(np.float64) * 0.5 + 1.0  # any points, one row per colour
    mean, weight, cell = _coarse_histogram(colors, data, counts, bits)
    groups = {}
    for c, x, n in zip(colors >> (8 - bits), data, counts):
        total = groups.setdefault(tuple(c.tolist()), [0.0, np.zeros(channels)])
        total[0] += n
        total[1] += n * x
    def z_key(cell):  # the coordinates' bits interleaved, most significant first
        return [(c >> j) & 1 for j in reversed(range(bits)) for c in cell]

    cells = sorted(groups, key=z_key)
    np.testing.assert_array_equal(weight, [groups[c][0] for c in cells])
    np.testing.assert_allclose(mean, [groups[c][1] / groups[c][0] for c in cells], rtol=1e-12)
    row = {c: j for j, c in enumerate(cells)}
    np.testing.assert_array_equal(cell, [row[tuple(c.tolist())] for c in colors >> (8 - bits)])
    # Asked for more cells than are occupied: nothing (the caller tries finer bits).
    assert _coarse_histogram(colors, data, counts, bits, len(mean)) is not None
    assert _coarse_histogram(colors, data, counts, bits, len(mean) + 1) is None


@settings(max_examples=60, deadline=None)
@given(arrays(np.uint8, st.tuples(st.integers(1, 30), st.sampled_from([1, 3, 4]))),
       st.integers(1, 8))
def test_z_order_cells_interleave_the_top_bits(colors, bits):
    from fastkm.histogram import z_order_cells

    want = []
    for c in colors.tolist():
        key = 0
        for b in range(7, 7 - bits, -1):  # most significant first, channel 0 first
            for v in c:
                key = (key << 1) | ((v >> b) & 1)
        want.append(key)
    np.testing.assert_array_equal(z_order_cells(np.ascontiguousarray(colors), bits), want)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, (1 << 12) - 1), min_size=1, max_size=300), st.integers(0, 40),
       st.integers(0, 2**32 - 1))
def test_cell_rows_and_means_match_unique_and_bincount_to_the_bit(cell, min_cells, seed):
    from fastkm.histogram import cell_means, cell_rows

    cell = np.array(cell, dtype=np.int64)
    r = np.random.default_rng(seed)
    weights = r.integers(1, 1000, len(cell)).astype(np.float64)
    data = r.normal(0, 100, (len(cell), 3))
    cells, want_rows = np.unique(cell, return_inverse=True)
    rows, n_occupied = cell_rows(cell, 1 << 12, min_cells)
    assert n_occupied == len(cells)
    if n_occupied < min_cells:
        assert len(rows) == 0
        return
    np.testing.assert_array_equal(rows, want_rows)
    means, totals = cell_means(rows, n_occupied, weights, data)
    want_totals = np.bincount(want_rows, weights=weights)
    np.testing.assert_array_equal(totals, want_totals)
    for d in range(3):
        np.testing.assert_array_equal(
            means[:, d], np.bincount(want_rows, weights=weights * data[:, d]) / want_totals)


def test_seeding_runs_on_a_coarse_histogram_only_when_it_has_enough_cells(rng):
    from fastkm.quantize import _SEED_MAX_POINTS, _seeding_points

    few = np.unique(rng.integers(0, 256, (500, 3), dtype=np.uint8), axis=0)
    many = np.unique(rng.integers(0, 256, (200_000, 3), dtype=np.uint8), axis=0)
    narrow = np.unique(rng.integers(0, 32, (50_000, 3), dtype=np.uint8), axis=0)
    assert len(many) > _SEED_MAX_POINTS and len(narrow) > _SEED_MAX_POINTS
    # narrow spans 4, 8, 16 cells per channel at 5, 6, 7 bits: 64, 512, 4096 cells.
    for colors, k, bits in [(few, 16, None),      # few colours: seed on them
                            (many, 16, 5),
                            (many, 256, 6),       # K > 64: 6 bits
                            (narrow, 8, 6),       # 64 cells < 64 per cluster: 6 bits
                            (narrow, 64, 7),
                            (narrow, 128, None)]:  # never enough cells: the colours
        w = np.ones(len(colors))
        data = colors.astype(np.float64)
        points, weights, cell = _seeding_points(colors, data, w, k)
        want = len(colors) if bits is None else len(np.unique(colors >> (8 - bits), axis=0))
        assert len(points) == want
        assert (points is data) == (bits is None) == (cell is None)
        assert weights.sum() == len(colors)
        if cell is not None:  # each colour's cell: its points there weigh what they count
            np.testing.assert_array_equal(np.bincount(cell, weights=w), weights)


@pytest.mark.parametrize("name", ["kite.jpg", "colorfulcups.jpg"])
def test_quality_not_worse_than_kmeans_on_every_pixel(photo_dir, name):
    """Seeding on the 15-bit histogram must not cost quality against k-means++ run on the
    pixels themselves (a 4x-subsampled photo keeps this quick)."""
    img = photo(photo_dir, name)[::4, ::4]
    pixels = img.reshape(-1, 3).astype(np.float64)
    ours = np.mean([fastkm.quantize(img, 32, seed=s).mse for s in range(3)])
    ref = []
    for s in range(3):
        km = fastkm.KMeans(32, random_state=s).fit(pixels)
        pal = np.clip(np.rint(km.cluster_centers_), 0, 255)
        ref.append(((pixels - pal[pixel_labels(pixels, pal)]) ** 2).mean())
    assert ours <= np.mean(ref) * 1.01


@pytest.mark.parametrize("image,k,message", [
    (np.zeros((4, 4), np.float32), 2, "image must be a uint8 array, got dtype float32"),
    (np.zeros((4, 4, 2), np.uint8), 2,
     r"image must have shape \(H, W\) or \(H, W, C\) with C in \(1, 3, 4\), got \(4, 4, 2\)"),
    (np.zeros((0, 4, 3), np.uint8), 2, r"image is empty: shape \(0, 4, 3\)"),
    (np.zeros(5, np.uint8), 2, r"got \(5,\)"),
    (np.zeros((4, 4, 3), np.uint8), 0, "n_colors must be an integer from 1 to 256, got 0"),
    (np.zeros((4, 4, 3), np.uint8), 257, "n_colors must be an integer from 1 to 256, got 257"),
    (np.zeros((4, 4, 3), np.uint8), 100000, "n_colors must be an integer from 1 to 256, got 100000"),
])
def test_invalid_input(image, k, message):
    with pytest.raises(ValueError, match=message):
        fastkm.quantize(image, k)


def test_bad_explicit_init_shape():
    img = np.random.default_rng(0).integers(0, 256, (10, 10, 3), dtype=np.uint8)
    with pytest.raises(ValueError, match=r"init must have shape \(n_colors, channels\) = \(4, 3\), got \(4, 2\)"):
        fastkm.quantize(img, 4, init=np.zeros((4, 2)))


def test_options_are_checked_whatever_the_image():
    """An image with no more colours than K skips k-means; its options were then never
    looked at, so a bad init passed on a flat image and failed on a busy one."""
    flat = np.zeros((4, 4, 3), np.uint8)
    with pytest.raises(ValueError, match="init must be 'k-means\\+\\+', 'random' or an array"):
        fastkm.quantize(flat, 8, init="bogus")
    with pytest.raises(ValueError, match=r"init must have shape \(n_colors, channels\) = \(8, 3\)"):
        fastkm.quantize(flat, 8, init=np.zeros((99, 7)))
    with pytest.raises(ValueError, match="n_init must be an integer >= 1"):
        fastkm.quantize(flat, 8, n_init=0)


def test_results_compare_by_palette_and_indices():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, size=(20, 30, 3), dtype=np.uint8)
    q = fastkm.quantize(img, 8, seed=1)
    assert q == fastkm.quantize(img, 8, seed=1)  # "truth value ambiguous" before
    assert q == fastkm.PaletteImage(q.palette.copy(), q.indices.copy())
    assert (q == "image") is False
    with pytest.raises(ValueError, match="delta_e is known only for the results of"):
        fastkm.Quantized(q.palette, q.indices).delta_e


def test_codec_is_reachable_as_fastkm_codec(tmp_path):
    """SPEC.md's synopsis: ``fastkm.codec.read_info`` right after ``import fastkm``."""
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", "import fastkm; print(fastkm.codec.read_info.__name__)"],
                         capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "read_info"
