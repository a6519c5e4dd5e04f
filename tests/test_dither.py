"""Dithering: the compiled kernels against plain NumPy / Python references, bit for bit."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import fastkm
from fastkm import dither, metrics, oklab

F = {n: np.float32(n / 16) for n in (7, 3, 5, 1)}


def brute_nearest(values, palette):
    """Index of the nearest entry for each row of ``values`` (N, C) float32: distances summed
    channel by channel in float32, ties to the lowest index (np.argmin)."""
    pal = palette.astype(np.float32)
    e = values[:, None, :] - pal[None]
    d = e[..., 0] * e[..., 0]
    for ch in range(1, pal.shape[1]):
        d = d + e[..., ch] * e[..., ch]
    return d.argmin(axis=1)


def ordered_twin(image, palette):
    img = image.astype(np.float32)
    h, w, c = img.shape
    thr = dither.ordered_thresholds(palette)
    yy, xx = np.mgrid[0:h, 0:w]
    n = min(c, 3)
    img[..., :n] = np.clip(img[..., :n] + thr[yy % 8, xx % 8][..., None], 0, 255)
    return brute_nearest(img.reshape(-1, c), palette).reshape(h, w)


def fs_reference(image, palette, rows=None):
    """Serpentine Floyd–Steinberg in plain Python over ``rows`` = (start, keep_from, end)."""
    h, w, c = image.shape
    start, keep, end = rows or (0, 0, h)
    pal = palette.astype(np.float32)
    out = np.full((h, w), -1)
    err = np.zeros((2, w + 2, 3), np.float32)
    for y in range(start, end):
        cur, nxt = err[y % 2], err[(y + 1) % 2]
        step = 1 if y % 2 == 0 else -1
        for x in (range(w) if step == 1 else range(w - 1, -1, -1)):
            v = image[y, x].astype(np.float32)
            for ch in range(min(c, 3)):
                v[ch] = min(max(v[ch] + cur[x + 1, ch], np.float32(0)), np.float32(255))
            j = brute_nearest(v[None], palette)[0]
            if y >= keep:
                out[y, x] = j
            for ch in range(min(c, 3)):
                e = v[ch] - pal[j, ch]
                cur[x + 1 + step, ch] += e * F[7]
                nxt[x + 1 - step, ch] += e * F[3]
                nxt[x + 1, ch] += e * F[5]
                nxt[x + 1 + step, ch] += e * F[1]
        cur[:] = 0
    return out


@st.composite
def image_and_palette(draw, max_side=12):
    c = draw(st.sampled_from([1, 3, 4]))
    h, w = draw(st.integers(1, max_side)), draw(st.integers(1, max_side))
    image = draw(arrays(np.uint8, (h, w, c)))
    k = draw(st.integers(1, 40))
    palette = draw(arrays(np.uint8, (k, c)))
    if draw(st.booleans()):  # duplicate entries: ties must go to the lowest index
        palette = np.vstack([palette, palette[::-1]])
    return image, palette


@settings(max_examples=60, deadline=None)
@given(image_and_palette())
def test_none_is_the_exact_nearest_entry(case):
    image, palette = case
    got = dither.dither(image, palette, "none")
    want = brute_nearest(image.reshape(-1, image.shape[2]).astype(np.float32), palette)
    np.testing.assert_array_equal(got.ravel(), want)


@settings(max_examples=60, deadline=None)
@given(image_and_palette(max_side=20))
def test_ordered_equals_numpy_twin(case):
    image, palette = case
    np.testing.assert_array_equal(dither.dither(image, palette, "ordered"),
                                  ordered_twin(image, palette))


@st.composite
def rgb_tiles_case(draw):
    """An RGB image, often smooth (tiles whose box one entry owns), a palette, a tile shape."""
    h, w = draw(st.integers(1, 20)), draw(st.integers(1, 40))
    image = draw(arrays(np.uint8, (h, w, 3)))
    if draw(st.booleans()):
        base = draw(arrays(np.uint8, 3)).astype(np.int64)
        image = np.clip(base + image.astype(np.int64) % draw(st.integers(1, 12)), 0, 255)
        image = image.astype(np.uint8)
    k = draw(st.integers(1, 40))
    palette = draw(arrays(np.uint8, (k, 3)))
    if draw(st.booleans()):
        palette = np.vstack([palette, palette[::-1]])
    return image, palette, (draw(st.integers(1, 9)), draw(st.integers(1, 17)))


@settings(max_examples=100, deadline=None)
@given(rgb_tiles_case(), st.booleans())
def test_ordered_rgb_tiles_equal_numpy_twin(case, dithered):
    image, palette, (tile_rows, tile_cols) = case
    pal = np.zeros((len(palette), 4), np.float32)
    pal[:, :3] = palette
    thr = dither.ordered_thresholds(palette) if dithered else np.zeros((8, 8), np.float32)
    got = np.empty(image.shape[:2], np.uint8)
    dither.ordered_rgb_kernel(image, pal, thr, tile_rows, tile_cols, got)
    if dithered:
        want = ordered_twin(image, palette)
    else:
        want = brute_nearest(image.reshape(-1, 3).astype(np.float32), palette)
    np.testing.assert_array_equal(got.ravel(), want.ravel())


def test_ordered_rgb_on_a_photo_equals_numpy_twin(demo_photo):
    from fastkm.images import read_image

    image = read_image(demo_photo)[:43, :637]  # several bands and tiles, partial ones last
    assert image.shape[0] > 2 * dither.TILE_ROWS and image.shape[0] % dither.TILE_ROWS
    assert image.shape[1] > 2 * dither.TILE_COLS and image.shape[1] % dither.TILE_COLS
    for k in (2, 16, 64, 256):
        palette = fastkm.quantize(image, k, seed=0).palette
        np.testing.assert_array_equal(dither.dither(image, palette, "ordered"),
                                      ordered_twin(image, palette))


@settings(max_examples=30, deadline=None)
@given(image_and_palette(max_side=9))
def test_fs_on_one_strip_equals_python_serpentine(case):
    image, palette = case
    assert image.shape[0] <= dither.STRIP_ROWS
    np.testing.assert_array_equal(dither.dither(image, palette, "fs"),
                                  fs_reference(image, palette))


def test_fs_strips_each_warm_up_on_the_rows_above(rng):
    image = rng.integers(0, 256, (11, 7, 3), dtype=np.uint8)
    palette = rng.integers(0, 256, (6, 3), dtype=np.uint8)
    strip, warm = 4, 2
    want = np.full((11, 7), -1)
    for y0 in range(0, 11, strip):
        part = fs_reference(image, palette, (max(0, y0 - warm), y0, min(11, y0 + strip)))
        want[y0:y0 + strip] = part[y0:y0 + strip]
    pal = np.zeros((6, 4), np.float32)
    pal[:, :3] = palette
    bits = dither.grid_bits(3)
    offsets, ids = dither.candidate_grid(pal, 3, bits)
    strides = np.array([1 << 2 * bits, 1 << bits, 1, 0])
    got = np.empty((11, 7), np.uint8)
    dither.fs_kernel(image, pal, offsets, ids, 8 - bits, strides, strip, warm, got)
    np.testing.assert_array_equal(got, want)


def test_ordered_thresholds_span_one_palette_step():
    palette = np.array([[0, 0, 0], [30, 30, 30], [60, 60, 60], [255, 255, 255]], np.uint8)
    thr = dither.ordered_thresholds(palette).astype(np.float64)
    assert sorted(np.unique(thr).tolist()) == sorted(thr.ravel().tolist())  # 64 levels
    step = np.sqrt(3 * 30 ** 2) / np.sqrt(3)  # median nearest-neighbour distance / sqrt(3)
    assert thr.max() - thr.min() == pytest.approx(step * 63 / 64, rel=1e-6)
    assert thr.mean() == pytest.approx(0, abs=1e-6)
    assert not dither.ordered_thresholds(palette[:1]).any()


@pytest.mark.parametrize("mode", ["fs", "ordered"])
def test_dithered_quantize_measures_the_dithered_pixels(small_photo, mode):
    from fastkm.images import read_image

    image = read_image(small_photo)
    q = fastkm.quantize(image, 8, seed=0, dither=mode)
    plain = fastkm.quantize(image, 8, seed=0)
    np.testing.assert_array_equal(q.palette, plain.palette)  # dithering comes after
    np.testing.assert_array_equal(q.indices, dither.dither(image, q.palette, mode))
    assert q.mse == pytest.approx(metrics.mse(image, q.to_image()), rel=1e-12)
    a, b = oklab.to_points(image.reshape(-1, 3)), oklab.to_points(q.palette)
    de = 100 * np.sqrt(((a - b[q.indices.ravel()]) ** 2).sum(1)).mean()
    assert q.delta_e == pytest.approx(de, rel=1e-10)
    assert q.delta_e == pytest.approx(metrics.delta_e(image, q.to_image()), rel=1e-10)
    back = fastkm.decode(fastkm.encode(q))
    np.testing.assert_array_equal(back.palette, q.palette)
    np.testing.assert_array_equal(back.indices, q.indices)


@pytest.mark.parametrize("channels", [1, 4])
def test_dithered_grey_and_rgba_round_trip(rng, channels):
    image = rng.integers(0, 256, (40, 30, channels), dtype=np.uint8)
    q = fastkm.quantize(image, 5, seed=0, dither="fs", space="oklab")
    assert q.mse == pytest.approx(metrics.mse(image, q.to_image()), rel=1e-12)
    back = fastkm.decode(fastkm.encode(q))
    np.testing.assert_array_equal(back.indices, q.indices)


@pytest.mark.parametrize("mode", ["floyd", "FS", "", None, 1])
def test_bad_mode_names_the_parameter(mode):
    message = r"dither must be one of 'none', 'fs', 'ordered', got "
    with pytest.raises(ValueError, match=message):
        fastkm.quantize(np.zeros((4, 4, 3), np.uint8), 2, dither=mode)
    with pytest.raises(ValueError, match=message):
        dither.dither(np.zeros((4, 4, 3), np.uint8), np.zeros((2, 3), np.uint8), mode)


@pytest.mark.parametrize("image, palette, message", [
    (np.zeros((4, 4, 3), np.uint8), np.zeros((2, 4), np.uint8), r"palette must have shape"),
    (np.zeros((4, 4, 3), np.uint8), np.zeros((0, 3), np.uint8), r"palette must have shape"),
    (np.zeros((4, 4, 3), np.uint8), np.zeros((257, 3), np.uint8), r"palette must have shape"),
    (np.zeros((4, 4, 3), np.uint8), np.zeros((2, 3)), r"must be uint8"),
    (np.zeros((0, 4, 3), np.uint8), np.zeros((2, 3), np.uint8), r"image must have shape"),
    (np.zeros((4, 4, 2), np.uint8), np.zeros((2, 2), np.uint8), r"image must have shape"),
])
def test_bad_inputs_are_refused_before_any_kernel(image, palette, message):
    with pytest.raises(ValueError, match=message):
        dither.dither(image, palette, "fs")
