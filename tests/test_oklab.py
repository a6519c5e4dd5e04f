"""OKLab conversions against published values and a NumPy twin; quantize in OKLab; delta E."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import fastkm
from fastkm import oklab


def numpy_oklab(rgb):
    """The OKLab definition in a few lines of NumPy (float64), for any 0..255 input."""
    v = np.asarray(rgb, dtype=np.float64) / 255.0
    lin = np.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4)
    return np.cbrt(lin @ oklab.M1.T) @ oklab.M2.T


# CSS Color Module Level 4, section 9 (OKLab), and its reference code (colorjs.io): the
# sRGB primaries and white in OKLab, to the 5 decimals usually quoted, e.g. red is
# oklab(0.62796 0.22486 0.12585) = oklch(62.796% 0.25768 29.23).
SRGB_REFERENCE = [
    ((255, 0, 0), (0.62796, 0.22486, 0.12585)),
    ((0, 255, 0), (0.86644, -0.23389, 0.17950)),
    ((0, 0, 255), (0.45201, -0.03246, -0.31153)),
    ((255, 255, 255), (1.0, 0.0, 0.0)),
    ((0, 0, 0), (0.0, 0.0, 0.0)),
]

# Ottosson, "A perceptual color space for image processing" (2020), table "Table of example
# XYZ and OKLab pairs" (D65 XYZ, 3 decimals).
XYZ_REFERENCE = [
    ((0.950, 1.000, 1.089), (1.000, 0.000, 0.000)),
    ((1.000, 0.000, 0.000), (0.450, 1.236, -0.019)),
    ((0.000, 1.000, 0.000), (0.922, -0.671, 0.263)),
    ((0.000, 0.000, 1.000), (0.153, -1.415, -0.449)),
]
# The post's M1 for XYZ input, and the sRGB (D65) -> XYZ matrix of IEC 61966-2-1.
M1_XYZ = np.array([[0.8189330101, 0.3618667424, -0.1288597137],
                   [0.0329845436, 0.9293118715, 0.0361456387],
                   [0.0482003018, 0.2643662691, 0.6338517070]])
SRGB_TO_XYZ = np.array([[0.4124, 0.3576, 0.1805],
                        [0.2126, 0.7152, 0.0722],
                        [0.0193, 0.1192, 0.9505]])


@pytest.mark.parametrize("rgb, lab", SRGB_REFERENCE)
def test_srgb_reference_values(rgb, lab):
    got = oklab.srgb_to_oklab(np.array([rgb], np.uint8))[0]
    np.testing.assert_allclose(got, lab, atol=6e-6)


@pytest.mark.parametrize("xyz, lab", XYZ_REFERENCE)
def test_xyz_reference_values_through_our_m2(xyz, lab):
    got = oklab.M2 @ np.cbrt(M1_XYZ @ np.array(xyz))
    np.testing.assert_allclose(got, lab, atol=6e-4)


def test_srgb_m1_is_the_xyz_m1_after_srgb_to_xyz():
    # Ottosson's linear-sRGB M1 is M1_xyz composed with sRGB -> XYZ (to the 4 digits of
    # the standard's matrix).
    np.testing.assert_allclose(oklab.M1, M1_XYZ @ SRGB_TO_XYZ, atol=5e-4)


@settings(max_examples=40, deadline=None)
@given(arrays(np.uint8, st.tuples(st.integers(1, 300), st.just(3))))
def test_kernel_equals_numpy_twin(rgb):
    np.testing.assert_allclose(oklab.srgb_to_oklab(rgb), numpy_oklab(rgb), rtol=1e-12,
                               atol=1e-13)
    # The float path (k-means centres) gives the very same bits for integer values.
    np.testing.assert_array_equal(oklab.srgb_to_oklab(rgb.astype(np.float64)),
                                  oklab.srgb_to_oklab(rgb))


def test_round_trip_is_exact():
    # Every grey, every corner of the cube, and 2**20 random colours. (All 2**24 colours
    # were checked once, 0 mismatches; it takes ~10 s, too long for the suite.)
    rng = np.random.default_rng(0)
    grey = np.repeat(np.arange(256, dtype=np.uint8)[:, None], 3, axis=1)
    corners = np.array([[r, g, b] for r in (0, 255) for g in (0, 255) for b in (0, 255)],
                       np.uint8)
    colors = np.vstack([grey, corners, rng.integers(0, 256, (1 << 20, 3), dtype=np.uint8)])
    np.testing.assert_array_equal(oklab.oklab_to_srgb8(oklab.srgb_to_oklab(colors)), colors)


def test_out_of_gamut_points_are_clamped_in_linear_rgb():
    far = np.array([[0.5, 0.4, 0.0], [1.2, 0.0, 0.0], [-0.1, 0.0, 0.0]])
    got = oklab.oklab_to_srgb(far)
    assert got.min() >= 0 and got.max() <= 255
    np.testing.assert_array_equal(oklab.oklab_to_srgb8(far[1:]), [[255] * 3, [0] * 3])


@pytest.mark.parametrize("channels", [1, 3, 4])
def test_points_round_trip_for_every_layout(channels, rng):
    colors = rng.integers(0, 256, (500, channels), dtype=np.uint8)
    points = oklab.to_points(colors)
    assert points.shape == (500, {1: 1, 3: 3, 4: 4}[channels])
    np.testing.assert_array_equal(oklab.from_points(points, channels), colors)
    if channels == 1:
        np.testing.assert_allclose(points[:, 0], numpy_oklab(np.repeat(colors, 3, 1))[:, 0])
    if channels == 4:
        np.testing.assert_array_equal(points[:, 3], colors[:, 3] / 255.0)


def test_bad_shapes_are_refused():
    with pytest.raises(ValueError, match=r"shape \(N, 3\)"):
        oklab.srgb_to_oklab(np.zeros((4, 2), np.uint8))
    with pytest.raises(ValueError, match=r"shape \(N, 3\)"):
        oklab.oklab_to_srgb(np.zeros(3))


# ---- quantize in OKLab ---------------------------------------------------------------

def numpy_delta_e(image, palette, indices):
    """Mean over pixels of the OKLab distance, x 100, computed pixel by pixel."""
    c = palette.shape[1]
    a = oklab.to_points(image.reshape(-1, c))
    b = oklab.to_points(palette)[indices.ravel()]
    return 100 * np.sqrt(((a - b) ** 2).sum(1)).mean()


@pytest.mark.parametrize("k", [4, 16])
def test_oklab_histogram_kmeans_equals_kmeans_on_every_pixel(demo_photo, k):
    import imageio.v3 as iio
    img = iio.imread(demo_photo)[100:260, 200:400]
    pixels = img.reshape(-1, 3)
    start = pixels[np.random.default_rng(k).choice(len(pixels), k, replace=False)]
    q = fastkm.quantize(img, k, init=start, tol=0, space="oklab")
    points = oklab.to_points(pixels)
    km = fastkm.KMeans(k, init=oklab.to_points(start), tol=0).fit(points)
    np.testing.assert_allclose(q.centers, km.cluster_centers_, rtol=1e-12, atol=1e-12)
    assert q.n_iter == km.n_iter_
    palette = oklab.from_points(km.cluster_centers_, 3)
    np.testing.assert_array_equal(q.palette, palette)
    # Every pixel gets the palette entry nearest in OKLab.
    d = ((points[:, None] - oklab.to_points(palette)[None]) ** 2).sum(-1)
    np.testing.assert_array_equal(q.indices.ravel(), d.argmin(1))


@pytest.mark.parametrize("space", ["rgb", "oklab"])
@pytest.mark.parametrize("channels", [1, 3, 4])
def test_delta_e_from_histogram_equals_per_pixel(space, channels, rng):
    img = rng.integers(0, 256, (30, 40, channels), dtype=np.uint8)
    img[:15] //= 32  # repeated colours, so counts differ
    q = fastkm.quantize(img, 6, seed=1, space=space)
    assert q.delta_e > 0
    assert q.delta_e == pytest.approx(numpy_delta_e(img, q.palette, q.indices), rel=1e-10)
    assert q.mse == pytest.approx(fastkm.metrics.mse(img, q.to_image()), rel=1e-12)


def test_lossless_result_has_zero_delta_e(rng):
    img = rng.integers(0, 4, (20, 20, 3), dtype=np.uint8)
    q = fastkm.quantize(img, 64, space="oklab")
    assert q.delta_e == 0 and q.mse == 0


@pytest.mark.parametrize("space", ["lab", "RGB", 3, None])
def test_bad_space_names_the_parameter(space):
    with pytest.raises(ValueError, match=r"space must be one of 'rgb', 'oklab', got "):
        fastkm.quantize(np.zeros((4, 4, 3), np.uint8), 2, space=space)
