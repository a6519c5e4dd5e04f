"""fastkm.metrics against few-line NumPy references."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from fastkm import metrics


def reference_mse(a, b) -> float:
    return float(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))


@st.composite
def image_pairs(draw):
    shape = draw(st.sampled_from([(1, 1), (3, 7), (5, 4, 3), (2, 9, 4), (6, 6, 1)]))
    a = draw(arrays(np.uint8, shape))
    b = draw(arrays(np.uint8, shape))
    return a, b


@settings(max_examples=60, deadline=None)
@given(image_pairs())
def test_mse_matches_reference(pair):
    a, b = pair
    assert metrics.mse(a, b) == pytest.approx(reference_mse(a, b), rel=1e-12, abs=1e-12)


def test_mse_does_not_wrap_around_in_uint8():
    a = np.zeros((4, 4, 3), np.uint8)
    b = np.full((4, 4, 3), 255, np.uint8)
    assert metrics.mse(a, b) == 255.0 ** 2
    assert metrics.mse(b, a) == 255.0 ** 2


def test_mse_in_blocks_equals_mse_at_once(monkeypatch, rng):
    a = rng.integers(0, 256, size=(101, 37, 3), dtype=np.uint8)
    b = rng.integers(0, 256, size=(101, 37, 3), dtype=np.uint8)
    whole = reference_mse(a, b)
    monkeypatch.setattr(metrics, "_BLOCK_ELEMENTS", 200)  # a couple of rows per block
    assert metrics.mse(a, b) == pytest.approx(whole, rel=1e-12)


def test_grey_2d_and_grey_with_channel_axis_compare(rng):
    a = rng.integers(0, 256, size=(8, 9), dtype=np.uint8)
    b = rng.integers(0, 256, size=(8, 9, 1), dtype=np.uint8)
    assert metrics.mse(a, b) == pytest.approx(reference_mse(a, b[..., 0]))
    assert metrics.mse(b, a) == pytest.approx(reference_mse(a, b[..., 0]))


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match=r"differ in shape: \(2, 3, 3\) and \(3, 2, 3\)"):
        metrics.mse(np.zeros((2, 3, 3), np.uint8), np.zeros((3, 2, 3), np.uint8))
    with pytest.raises(ValueError, match="empty"):
        metrics.mse(np.zeros((0, 3), np.uint8), np.zeros((0, 3), np.uint8))


def test_psnr_definition(rng):
    a = rng.integers(0, 256, size=(20, 20, 3), dtype=np.uint8)
    b = rng.integers(0, 256, size=(20, 20, 3), dtype=np.uint8)
    want = 10 * math.log10(255 ** 2 / reference_mse(a, b))
    assert metrics.psnr(a, b) == pytest.approx(want, rel=1e-12)
    assert metrics.psnr_from_mse(1.0) == pytest.approx(20 * math.log10(255))
    assert metrics.psnr_from_mse(4.0, peak=1.0) == pytest.approx(-10 * math.log10(4))


def test_psnr_of_identical_images_is_infinite(rng):
    a = rng.integers(0, 256, size=(5, 5), dtype=np.uint8)
    assert metrics.psnr(a, a.copy()) == math.inf


def test_psnr_from_negative_mse_is_an_error():
    with pytest.raises(ValueError, match="mse must be >= 0"):
        metrics.psnr_from_mse(-1.0)


def test_bits_per_pixel_and_ratio():
    assert metrics.bits_per_pixel(1000, 40, 50) == 8 * 1000 / 2000
    assert metrics.ratio_to_raw24(600, 40, 50) == 3 * 2000 / 600
    # 24 bits per pixel is raw RGB: ratio 1.
    assert metrics.ratio_to_raw24(6000, 40, 50) == 1.0
    with pytest.raises(ValueError, match="positive"):
        metrics.bits_per_pixel(10, 0, 5)
    with pytest.raises(ValueError, match="n_bytes must be positive"):
        metrics.ratio_to_raw24(0, 4, 5)


def test_mse_of_other_dtypes_is_in_float64(monkeypatch, rng):
    a = rng.normal(size=(33, 10, 3))
    b = rng.integers(0, 256, size=(33, 10, 3), dtype=np.uint16)
    monkeypatch.setattr(metrics, "_BLOCK_ELEMENTS", 100)
    assert metrics.mse(a, b) == pytest.approx(reference_mse(a, b), rel=1e-12)
